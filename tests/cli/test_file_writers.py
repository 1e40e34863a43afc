"""Every command that writes a file, run as installed against a planted symlink attack.

The database is the demo's (``sarcoma-sched demo --as-of 2026-06-01``), made once. Before each
writer runs, a symlink to a victim file outside the output directory is planted at every name it
will write and at every temporary name the old code used (``.NAME.tmp``, fixed, so guessable).
Afterwards each victim holds what it held, each target is a regular file of its own, and each
planted temporary-name link is still there, untouched: the writer never opened a path it did not
create itself (``mkstemp``), and its rename replaced the symlink at the target, not what the
symlink points to.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.conftest import invoke, query

pytestmark = pytest.mark.skipif(os.name != "posix", reason="symlinks need POSIX")

AS_OF = "2026-06-01"
PATIENT = "PKUIH-NATARS-0001"
SDTM = ["ta.csv", "te.csv", "tv.csv", "ti.csv", "ts.csv"]


@dataclass(frozen=True)
class Demo:
    cwd: Path
    db: str
    calendars: list[str]  # the names the demo writes into its --out directory
    trials: list[str]
    allocated: list[str]


@pytest.fixture(scope="module")
def demo(command, tmp_path_factory) -> Demo:
    cwd = tmp_path_factory.mktemp("writers")
    invoke(command, cwd, "demo", "--as-of", AS_OF, "--out", str(cwd / "first"))
    db = str(cwd / "first" / "demo.db")
    calendars = sorted(p.name for p in (cwd / "first").glob("*.ics"))
    trials = [t for (t,) in query(db, "SELECT DISTINCT protocol_id FROM protocol_versions")]
    allocated = [
        s
        for (s,) in query(
            db, "SELECT p.study_id FROM patients p JOIN allocations a ON a.patient_id = p.id"
        )
    ]
    assert PATIENT in allocated and f"{PATIENT}.ics" in calendars
    return Demo(cwd, db, calendars, sorted(trials), sorted(allocated))


@dataclass(frozen=True)
class Trap:
    link: Path
    victim: Path
    content: bytes


def plant(out: Path, names: list[str], outside: Path) -> list[Trap]:
    """A symlink to a victim of its own at each target and at each old temporary name."""
    outside.mkdir(parents=True, exist_ok=True)
    traps = []
    for name in names:
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        for link in (target, target.with_name(f".{target.name}.tmp")):
            victim = outside / f"victim-{len(traps)}"
            content = f"victim {len(traps)}: {link.name} must never write here\n".encode()
            victim.write_bytes(content)
            link.symlink_to(victim)
            traps.append(Trap(link, victim, content))
    return traps


def check(traps: list[Trap], out: Path, names: list[str]) -> None:
    for trap in traps:
        assert trap.victim.read_bytes() == trap.content, f"written through {trap.link}"
    for name in names:
        target = out / name
        st = os.lstat(target)
        assert stat.S_ISREG(st.st_mode), f"{target} is still a symlink"
        assert st.st_size > 0 and st.st_nlink == 1, target
        temporary = target.with_name(f".{target.name}.tmp")
        assert temporary.is_symlink(), f"{temporary} was removed or replaced"
    # Nothing left behind under another temporary name either.
    planted = {trap.link for trap in traps}
    assert [p for p in out.rglob(".*") if p not in planted] == []


WRITERS = {
    "export ical": (["export", "ical", PATIENT, "--out", "{out}/patient.ics"], ["patient.ics"]),
    "export sdtm": (["export", "sdtm", "NATARS", "--out", "{out}"], SDTM),
    "report consort svg": (
        ["report", "consort", "NATARS", "--today", AS_OF, "--out", "{out}/consort.svg"],
        ["consort.svg"],
    ),
    "report consort png": (
        ["report", "consort", "NATARS-R", "--today", AS_OF, "--out", "{out}/consort.png"],
        ["consort.png"],
    ),
    "report timeline": (
        ["report", "timeline", PATIENT, "--today", AS_OF, "--out", "{out}/timeline.svg"],
        ["timeline.svg"],
    ),
    "report workload": (
        ["report", "workload", "--from", AS_OF, "--by", "week", "--out", "{out}/workload.png"],
        ["workload.png"],
    ),
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_command_writing_one_file_never_writes_through_a_planted_symlink(
    command, demo, tmp_path, writer
):
    args, names = WRITERS[writer]
    out = tmp_path / "out"
    out.mkdir()
    traps = plant(out, names, tmp_path / "outside")
    invoke(command, tmp_path, "--db", demo.db, *(a.format(out=out) for a in args))
    check(traps, out, names)


def test_the_html_report_never_writes_through_a_planted_symlink(command, demo, tmp_path):
    out = tmp_path / "report"
    names = [
        "index.html",
        *(f"{trial}.html" for trial in demo.trials),
        *(f"timelines/{study_id}.svg" for study_id in demo.allocated),
    ]
    traps = plant(out, names, tmp_path / "outside")
    # --timelines: every patient's picture too, each a file a symlink could have been planted at.
    html = ["report", "html", "--today", AS_OF, "--timelines", "--out", str(out)]
    invoke(command, tmp_path, "--db", demo.db, *html)
    check(traps, out, names)


def test_the_demo_never_writes_its_calendars_through_a_planted_symlink(command, demo, tmp_path):
    out = tmp_path / "again"
    traps = plant(out, demo.calendars, tmp_path / "outside")
    invoke(
        command, tmp_path, "demo", "--as-of", AS_OF, "--db", str(tmp_path / "again.db"),
        "--out", str(out),
    )  # fmt: skip
    check(traps, out, demo.calendars)
    assert sorted(p.name for p in out.glob("*.ics") if not p.name.startswith(".")) == (
        demo.calendars
    )


def test_a_trial_secret_is_never_written_through_a_symlink_and_never_replaces_one(run, tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    [at_target, at_temporary] = plant(keys, ["trial.key"], tmp_path / "outside")

    # A symlink at the key file's own name: refused, as any existing file is.
    result = run("allocation", "init-secret", "--secret-file", str(keys / "trial.key"))
    assert result.returncode == 1
    assert result.stderr == (
        f"error: {keys / 'trial.key'} already exists; a trial secret is never overwritten\n"
    )
    assert at_target.link.is_symlink() and at_target.victim.read_bytes() == at_target.content

    # Only the old temporary name planted: the key is created beside it, owner-only.
    at_target.link.unlink()
    run("allocation", "init-secret", "--secret-file", str(keys / "trial.key"), check=True)
    key = os.lstat(keys / "trial.key")
    assert stat.S_ISREG(key.st_mode) and stat.S_IMODE(key.st_mode) == 0o600
    assert at_temporary.link.is_symlink()
    assert at_temporary.victim.read_bytes() == at_temporary.content
    assert sorted(p.name for p in keys.iterdir()) == [".trial.key.tmp", "trial.key"]
