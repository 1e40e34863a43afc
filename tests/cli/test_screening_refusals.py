"""Screenings that would block a patient for good are refused, on SQLite and PostgreSQL.

The latest screening decides enrolment. One dated after today stays the latest until its date
comes (2199-12-31: never), and if it failed, no re-screen can let the patient in. One with no
values at all fails every criterion and is stored as a screen failure, a CONSORT exclusion for a
file that was empty. Each is refused in one ``error:`` line with exit 1, the database unchanged.
"Today" is the site's, in its time zone: the machine running the command may be a day away.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.cli.conftest import query
from tests.cohort import ELIGIBLE_NATARS
from tests.dumps import dump

SHANGHAI = "Asia/Shanghai"  # every NATARS site's zone
KIRITIMATI, PAGO_PAGO = "Pacific/Kiritimati", "Pacific/Pago_Pago"  # UTC+14 and UTC-11
DATELINE = Path(__file__).parents[1] / "protocols" / "sites_a_day_apart.toml"
NO_VALUES = "a screening without any would be stored as a screen failure"


def fields(values: dict[str, str]) -> list[str]:
    return [arg for name, value in values.items() for arg in ("--field", f"{name}={value}")]


def site_today(zone: str) -> dt.date:
    return dt.datetime.now(ZoneInfo(zone)).date()


def clear_of_midnight(*zones: str) -> None:
    """Wait out the last seconds of a day in any of ``zones``, so the dates a test works out
    are still the dates when the command it runs reads the clock."""
    for zone in zones:
        now = dt.datetime.now(ZoneInfo(zone))
        left = 86_400 - (now.hour * 3600 + now.minute * 60 + now.second)
        if left < 15:
            time.sleep(left + 1)


def test_a_screening_dated_after_today_at_the_site_is_refused_for_a_new_or_known_patient(
    run, db_arg
):
    run("--db", db_arg, "init", check=True)
    run(
        "--db", db_arg, "screen", "NATARS", "--site", "PKUIH", *fields(ELIGIBLE_NATARS),
        "--date", "-1d", check=True,
    )  # fmt: skip
    clear_of_midnight(SHANGHAI)
    today = site_today(SHANGHAI)
    tomorrow = today + dt.timedelta(days=1)
    before = dump(db_arg)

    new = run(
        "--db", db_arg, "screen", "NATARS", "--site", "PKUIH", *fields(ELIGIBLE_NATARS),
        "--date", tomorrow.isoformat(),
    )  # fmt: skip
    assert (new.returncode, new.stdout) == (1, "")
    assert new.stderr == (
        f"error: screening date {tomorrow} is in the future: today at site PKUIH "
        f"({SHANGHAI}) is {today}\n"
    )
    # A failed re-screen dated at the end of the calendar would have been the latest for good.
    again = run(
        "--db", db_arg, "screen", "NATARS", "--patient", "PKUIH-NATARS-S0001",
        *fields({**ELIGIBLE_NATARS, "age_years": "80"}), "--date", "2199-12-31",
    )  # fmt: skip
    assert (again.returncode, again.stdout) == (1, "")
    assert again.stderr == (
        f"error: screening date 2199-12-31 is in the future: today at site PKUIH "
        f"({SHANGHAI}) is {today}\n"
    )
    assert dump(db_arg) == before, "a refused screening changed the database"


def test_an_empty_file_null_values_or_no_values_at_all_are_refused_not_stored_as_a_failure(
    run, db_arg, tmp_path
):
    run("--db", db_arg, "init", check=True)
    (tmp_path / "empty.json").write_text("{}")
    (tmp_path / "empty.toml").write_text("")
    (tmp_path / "nulls.json").write_text('{"age_years": null, "histology": null}')
    screen = ("--db", db_arg, "screen", "NATARS", "--site", "PKUIH")
    before = dump(db_arg)
    for name in ("empty.json", "empty.toml", "nulls.json"):
        refused = run(*screen, "--from-file", name)
        assert (refused.returncode, refused.stdout) == (1, ""), name
        assert refused.stderr == (
            f"error: {name}: no screening values in it, and none given with --field ({NO_VALUES})\n"
        )
    bare = run(*screen)
    assert (bare.returncode, bare.stdout) == (1, "")
    assert bare.stderr == (
        f"error: no screening values: give --field NAME=VALUE or --from-file FILE ({NO_VALUES})\n"
    )
    assert dump(db_arg) == before, "a refused screening changed the database"
    # One value is a screening (missing values count as not passed, as the help says).
    run(*screen, "--from-file", "empty.json", "--field", "age_years=56", check=True)
    assert query(db_arg, "SELECT count(*) FROM screenings") == [(1,)]


def test_today_is_the_site_s_date_whatever_the_machine_s_clock_says(
    run, db_arg, tmp_path, monkeypatch
):
    """Kiritimati is a day or two ahead of Pago Pago at every instant: run from one, screen at
    the other, and the machine's today is never the site's."""
    protocols = tmp_path / "protocols"
    protocols.mkdir()
    shutil.copyfile(DATELINE, protocols / DATELINE.name)
    monkeypatch.setenv("SARCOMA_SCHED_PROTOCOLS", str(protocols))
    run("--db", db_arg, "init", check=True)
    values = ("--field", "age_years=50", "--field", "histology=LMS")
    clear_of_midnight(KIRITIMATI, PAGO_PAGO)

    # A machine behind the site: no --date is the site's today, a date the machine has not
    # reached yet.
    monkeypatch.setenv("TZ", PAGO_PAGO)
    ahead = site_today(KIRITIMATI)
    done = run("--db", db_arg, "screen", "DATELINE", "--site", "KIR", *values, check=True)
    assert done.stdout.splitlines()[-1] == (
        f"KIR-DATELINE-S0001: ELIGIBLE (DATELINE, site KIR, screened {ahead})"
    )
    assert [str(d) for (d,) in query(db_arg, "SELECT screened_on FROM screenings")] == [str(ahead)]

    # A machine ahead of the site: its today is the site's tomorrow. "today" typed is the
    # site's (issue 21, item 5); the machine's date typed out is refused.
    monkeypatch.setenv("TZ", KIRITIMATI)
    typed = run("--db", db_arg, "screen", "DATELINE", "--site", "PPG", *values, "--date", "today",
                "--dry-run", check=True)  # fmt: skip
    assert f"screened {site_today(PAGO_PAGO)}" in typed.stdout.splitlines()[-1]
    before = dump(db_arg)
    refused = run("--db", db_arg, "screen", "DATELINE", "--site", "PPG", *values,
                  "--date", str(site_today(KIRITIMATI)))  # fmt: skip
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == (
        f"error: screening date {site_today(KIRITIMATI)} is in the future: today at site PPG "
        f"({PAGO_PAGO}) is {site_today(PAGO_PAGO)}\n"
    )
    assert dump(db_arg) == before, "a refused screening changed the database"
