"""docs/tutorial-own-trial.md, run step by step through the installed command: the protocol it
shows validates, loads and schedules a first patient exactly as the tutorial says."""

from __future__ import annotations

import json
import re
from pathlib import Path

TUTORIAL = Path(__file__).parents[2] / "docs" / "tutorial-own-trial.md"


def _toml() -> str:
    [block] = re.findall(r"```toml\n(.*?)```", TUTORIAL.read_text(encoding="utf-8"), re.S)
    return block


def _commands() -> list[list[str]]:
    blocks = re.findall(r"```sh\n(.*?)```", TUTORIAL.read_text(encoding="utf-8"), re.S)
    lines = [line.split("#", 1)[0].split() for block in blocks for line in block.splitlines()]
    return [words[1:] for words in lines if words and words[0] == "sarcoma-sched"]


def test_the_tutorial_trial_goes_from_a_file_to_a_first_calendar(run, tmp_path):
    (tmp_path / "q21d.toml").write_text(_toml(), encoding="utf-8")
    db = str(tmp_path / "trial.db")
    steps = _commands()
    assert [s[:2] for s in steps] == [
        ["protocol", "validate"], ["init"], ["protocol", "load"], ["screen", "Q21D-6"],
        ["allocate", "TUTH-Q21D-6-S0001"], ["schedule", "TUTH-Q21D-6-0001"],
    ]  # fmt: skip
    outputs = []
    for step in steps:
        args = [str(tmp_path / a) if a == "q21d.toml" else a for a in step]
        outputs.append(run("--db", db, *args, check=True).stdout)
    assert outputs[0].startswith(f"ok  {tmp_path / 'q21d.toml'}  Q21D-6 v1.0")
    assert "season:" not in outputs[0]  # as the tutorial says: no holiday leaves it stuck
    assert outputs[2].startswith("Q21D-6 v1.0 loaded (sha256:")
    schedule = json.loads(
        run("--db", db, "schedule", "TUTH-Q21D-6-0001", "--format", "json", check=True).stdout
    )
    events = [e["event"] for e in schedule["events"]]
    assert [e for e in events if e.startswith("cycle.")] == [f"cycle.{n}" for n in range(1, 7)]
    assert [e for e in events if e.startswith("labs.")] == [f"labs.{n}" for n in range(1, 7)]
    assert [e for e in events if e.startswith("follow_up.")] == [
        f"follow_up.m{m}" for m in range(3, 25, 3)
    ]
    # The same file again is a no-op, as the tutorial says.
    again = run("--db", db, "protocol", "load", str(tmp_path / "q21d.toml"), check=True)
    assert "already loaded, unchanged" in again.stdout


def test_the_tight_variant_the_tutorial_suggests_shows_what_the_holidays_do(run, tmp_path):
    loose = "repeat = { count = 6, every = 21, earliest = 20, latest = 28 }"
    assert loose in _toml()
    tight = _toml().replace(loose, loose.replace("earliest = 20, latest = 28",
                                                 "earliest = 21, latest = 21"))  # fmt: skip
    (tmp_path / "tight.toml").write_text(tight, encoding="utf-8")
    done = run("protocol", "validate", str(tmp_path / "tight.toml"), check=True).stdout
    seasons = [line for line in done.splitlines() if line.startswith("    season: Q21D cycle.")]
    assert seasons and all("no_valid_day" in line for line in seasons)
