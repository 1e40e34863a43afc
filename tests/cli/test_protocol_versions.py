"""A trial team's own protocol and its amendments through the installed command (issue 22,
item 1): load, versions, diff; an identical file is a no-op, a changed one under a version
already loaded is refused, and nothing changes when a load is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sarcoma_sched.protocol.loader import bundled_protocol_dir
from tests.dumps import dump

SURGERY = "offset = 35, earliest = 28, latest = 56"
POST_OP = """
[[arms.events]]
key = "post_op_6w"
kind = "visit"
label = "Post-operative visit, 6 weeks"
timing = { anchor = { event = "surgery", point = "start" }, offset = 42, earliest = 35, \
latest = 49, day_rule = "working_day", shift = "nearest" }
"""


def amended(
    tmp_path: Path, *, version: str = "1.3", window: tuple[int, int, int] = (35, 28, 63)
) -> Path:
    """NATARS with the surgery window widened and a 6-week post-operative visit added."""
    text = (bundled_protocol_dir() / "natars.toml").read_text(encoding="utf-8")
    surgery = text.index(SURGERY, text.index('key = "ai"'))
    line_end = text.index("\n", surgery) + 1
    text = (
        text[:surgery]
        + "offset = {}, earliest = {}, latest = {}".format(*window)
        + text[surgery + len(SURGERY) : line_end]
        + POST_OP
        + text[line_end:]
    )
    text = text.replace('version = "1.2"', f'version = "{version}"', 1)
    path = tmp_path / f"natars-{version}-{window[2]}.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def db(run, tmp_path) -> str:
    path = str(tmp_path / "trial.db")
    run("--db", path, "init", check=True)
    return path


def test_an_amendment_loads_as_a_new_version_and_the_diff_says_what_it_changes(run, db, tmp_path):
    file = amended(tmp_path)
    done = run("--db", db, "protocol", "load", str(file), check=True)
    assert done.stdout.startswith("NATARS v1.3 loaded (sha256:")
    listed = json.loads(run("--db", db, "protocol", "versions", "NATARS", "--format", "json",
                            check=True).stdout)  # fmt: skip
    assert [(v["version"], v["file"], v["enrolled"]) for v in listed] == [
        ("1.2", "natars.toml", 0),
        ("1.3", file.name, 0),
    ]
    changes = json.loads(run("--db", db, "protocol", "diff", "NATARS", "1.2", "1.3",
                             "--format", "json", check=True).stdout)  # fmt: skip
    assert changes == [
        {"area": "study", "path": "study.version", "change": "changed", "old": "1.2",
         "new": "1.3"},
        {"area": "schedule", "path": "arms[NEOADJUVANT].events[surgery].timing.latest",
         "change": "changed", "old": 56, "new": 63},
        {"area": "schedule", "path": "arms[NEOADJUVANT].events[post_op_6w]", "change": "added",
         "old": None, "new": changes[2]["new"]},
    ]  # fmt: skip
    assert changes[2]["new"]["label"] == "Post-operative visit, 6 weeks"
    words = run("--db", db, "protocol", "diff", "NATARS", "1.2", "1.3", check=True).stdout
    assert "arms[NEOADJUVANT].events[surgery].timing.latest: 56 → 63" in words
    assert "events[post_op_6w] added: post_op_6w (Post-operative visit, 6 weeks)" in words
    same = run("--db", db, "protocol", "diff", "NATARS", "1.3", "1.3", check=True).stdout
    assert same.strip() == "NATARS 1.3 and 1.3 define the same protocol"


def test_the_same_file_again_changes_nothing(run, db, tmp_path):
    file = amended(tmp_path)
    run("--db", db, "protocol", "load", str(file), check=True)
    before = dump(db)
    again = run("--db", db, "protocol", "load", str(file), check=True)
    assert "already loaded, unchanged" in again.stdout
    assert dump(db) == before


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: amended(tmp, version="1.2"), "NATARS version 1.2 is already loaded with "
                                                  "other content"),
        (lambda tmp: amended(tmp, window=(24, 24, 26)), "cannot all be met"),
    ],
    ids=["same-version-other-content", "rules-that-clash"],
)  # fmt: skip
def test_a_load_that_cannot_be_is_refused_in_one_line_and_stores_nothing(
    run, db, tmp_path, make, message
):
    before = dump(db)
    refused = run("--db", db, "protocol", "load", str(make(tmp_path)))
    assert refused.returncode == 1
    assert message in refused.stderr and refused.stderr.count("\n") == 1
    assert dump(db) == before


def test_a_diff_of_an_unknown_version_names_the_ones_loaded(run, db):
    refused = run("--db", db, "protocol", "diff", "NATARS", "1.2", "9")
    assert refused.returncode != 0
    assert refused.stderr.strip() == "error: protocol NATARS has no version '9' (loaded: 1.2)"


def test_an_amendment_that_changes_the_allocation_of_a_trial_that_has_allocated_is_refused(
    run, db, tmp_path
):
    from tests.cohort import ELIGIBLE_NATARS

    fields = [a for k, v in ELIGIBLE_NATARS.items() for a in ("--field", f"{k}={v}")]
    changed = amended(tmp_path, version="1.4")
    text = changed.read_text(encoding="utf-8")
    changed.write_text(text.replace("reason_required = true", "reason_required = false"),
                       encoding="utf-8")  # fmt: skip
    run("--db", db, "screen", "NATARS", "--site", "PKUIH", *fields, check=True)
    run("--db", db, "allocate", "PKUIH-NATARS-S0001", "--consent-date", "today", "--arm",
        "SURGERY_ONLY", "--basis", "mdt_decision", "--reason", "MDT", check=True)  # fmt: skip
    before = dump(db)
    refused = run("--db", db, "protocol", "load", str(changed))
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert (
        "NATARS has allocated 1 patient(s) under version 1.2: version 1.4 changes its "
        "allocation (reason_required)"
    ) in refused.stderr
    assert dump(db) == before
    # The schedule may change; the allocation may not.
    run("--db", db, "protocol", "load", str(amended(tmp_path)), check=True)
