"""Crash consistency, short: a coordinator process SIGKILLed at random moments while it screens
and allocates, on a real SQLite file (durable commits) and the real PostgreSQL.

The long run is ``python -m benchmarks.reliability.crash --db PATH_OR_URL --kills 50``; what
"consistent" means is written down in ``benchmarks.reliability._common``.
"""

from __future__ import annotations

from benchmarks.reliability.crash import run_crash

KILLS = 8


def test_a_coordinator_killed_at_random_moments_leaves_every_patient_whole_or_absent(
    db_url, tmp_path
):
    result = run_crash(db_url, KILLS, seed=7, max_delay=0.6, work_dir=tmp_path / "crash")
    assert result.problems == []
    assert (result.kills, result.checks_passed) == (KILLS, KILLS)
    # The child spends most of its time inside write transactions, so with the delay counted
    # from its first one, some kills must land there; otherwise the test tested nothing.
    in_transaction = (
        result.phases["inside a write transaction"] + result.phases["during or just after a commit"]
    )
    assert in_transaction >= 1, result.phases
    assert result.allocated >= 4  # the parent's warm-up patients, at least
