"""A deviation is printed once, by the command that makes it (issue 21, item 5); after that it
is the `deviations` listing's. A deviation a later change alters (its window moved) is new
news and printed again."""

from __future__ import annotations

import datetime as dt
import json

from tests.cli.test_recorded_events import NATARS_P, build, events


def _deviation_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("deviation:")]


def test_a_deviation_is_printed_by_the_record_that_makes_it_and_not_by_later_ones(run, tmp_path):
    db = str(tmp_path / "trial.db")
    build(db, natars_days_ago=80)
    missed = run("--db", db, "record", NATARS_P, "labs.1", "--status", "missed", check=True)
    labs1 = events(db, NATARS_P)["labs.1"]["deviation"]
    assert labs1 and "was missed" in labs1
    assert _deviation_lines(missed.stdout) == [f"deviation: labs.1: {labs1}"]

    # labs.2 missed: labs.1's deviation is untouched by it, so only labs.2's is news.
    second = run("--db", db, "record", NATARS_P, "labs.2", "--status", "missed", check=True)
    labs2 = events(db, NATARS_P)["labs.2"]["deviation"]
    assert events(db, NATARS_P)["labs.1"]["deviation"] == labs1
    assert _deviation_lines(second.stdout) == [f"deviation: labs.2: {labs2}"]

    as_json = run("--db", db, "record", NATARS_P, "labs.3", "--status", "missed",
                  "--format", "json", check=True)  # fmt: skip
    labs3 = events(db, NATARS_P)["labs.3"]["deviation"]
    assert json.loads(as_json.stdout)["deviations"] == [f"labs.3: {labs3}"]
    as_csv = run("--db", db, "record", NATARS_P, "restaging", "--status", "missed",
                 "--format", "csv", check=True)  # fmt: skip
    restaging = events(db, NATARS_P)["restaging"]["deviation"]
    assert _deviation_lines(as_csv.stderr) == [f"deviation: restaging: {restaging}"]

    # Every one is still listed where deviations are looked up.
    listed = json.loads(run("--db", db, "deviations", "--format", "json", check=True).stdout)
    assert {row["event"]: row["deviation"] for row in listed} == {
        "labs.1": labs1,
        "labs.2": labs2,
        "labs.3": labs3,
        "restaging": restaging,
    }


def test_a_deviation_the_change_alters_is_printed_again_with_its_new_text(run, tmp_path):
    db = str(tmp_path / "trial.db")
    build(db, natars_days_ago=80)
    run("--db", db, "record", NATARS_P, "labs.1", "--status", "missed", check=True)
    before = events(db, NATARS_P)["labs.1"]
    # ai.1 given a day after it was planned: labs.1 is timed from it, so its window (and the
    # deviation's text) moves with it.
    ai1 = events(db, NATARS_P)["ai.1"]["days"][0] + dt.timedelta(days=1)
    done = run("--db", db, "record", NATARS_P, "ai.1", "--status", "done",
               "--date", ai1.isoformat(), check=True)  # fmt: skip
    after = events(db, NATARS_P)["labs.1"]["deviation"]
    assert after != before["deviation"]
    assert _deviation_lines(done.stdout) == [f"deviation: labs.1: {after}"]
