"""Allocation through the one service: gate, atomicity, methods, withdrawal, replay, concurrency."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import undefer

from sarcoma_sched.db.audit import verify
from sarcoma_sched.db.models import (
    Allocation,
    AuditEntry,
    Enrollment,
    ParticipationEnd,
    ScheduledEvent,
)
from sarcoma_sched.errors import AllocationError, Conflict, IneligibleError, SecretError
from sarcoma_sched.protocol.loader import LoadedProtocol, parse_protocol
from sarcoma_sched.services.allocation import allocate_patient, history
from sarcoma_sched.services.allocation_audit import reveal_sequence, verify_allocations
from sarcoma_sched.services.lookups import current_protocol
from sarcoma_sched.services.participation import end_participation
from sarcoma_sched.services.protocols import load_protocols
from sarcoma_sched.services.screening import screen
from tests.cohort import ELIGIBLE_NATARS, ELIGIBLE_TNT

DAY = dt.date(2026, 11, 2)
SECRET = hashlib.sha256(b"sarcoma-sched test key").digest()
ROOT = Path(__file__).parents[2]


def _screen(db, protocol="NATARS-R", site="PKUIH", **changes):
    base = ELIGIBLE_TNT if protocol == "TNT-STS" else ELIGIBLE_NATARS
    return screen(db, "nurse", protocol, site, {**base, **changes}, screened_on=DAY)


def _counts(db) -> dict[str, int]:
    with db.read() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (Allocation, Enrollment, ScheduledEvent, AuditEntry)
        }


def test_all_three_bundled_protocols_allocate_through_the_same_service(database):
    tnt = allocate_patient(
        database,
        "nurse",
        _screen(database, "TNT-STS", "FJMUUH").screening_number,
        today=DAY,
        consent_date=DAY,
    )
    natars = allocate_patient(
        database,
        "nurse",
        _screen(database, "NATARS").screening_number,
        today=DAY,
        consent_date=DAY,
        arm="SURGERY_ONLY",
        basis="patient_preference",
        reason="declined chemotherapy after counselling",
    )
    randomized = allocate_patient(
        database,
        "nurse",
        _screen(database).screening_number,
        today=DAY,
        consent_date=DAY,
        secret=SECRET,
    )
    assert (tnt.arm, tnt.study_id, tnt.position) == ("TNT", "FJMUUH-TNT-STS-0001", 1)
    assert (natars.arm, natars.method) == ("SURGERY_ONLY", "assigned")
    assert randomized.method == "minimization" and randomized.arm in {"SURGERY_ONLY", "NEOADJUVANT"}
    with database.read() as session:
        stored = session.scalars(select(Allocation).order_by(Allocation.id)).all()
        events = session.scalar(select(func.count()).select_from(ScheduledEvent))
        assert verify(session).problems == []
    assert [a.basis for a in stored] == [None, "patient_preference", None]
    assert stored[2].stratum == "histology=DDLPS|site=PKUIH"
    assert events == len(tnt.events) + len(natars.events) + len(randomized.events)


def test_an_ineligible_patient_cannot_be_enrolled_or_allocated(database):
    failed = _screen(database, age_years="15")
    before = _counts(database)
    with pytest.raises(IneligibleError, match="INC-13"):
        allocate_patient(
            database, "nurse", failed.screening_number, today=DAY, consent_date=DAY, secret=SECRET
        )
    assert _counts(database) == before


def test_the_latest_screening_decides_the_gate(database):
    first = _screen(database)
    # Re-screened before consent: metastasis found. The earlier pass no longer counts.
    screen(
        database,
        "nurse",
        "NATARS-R",
        None,
        {**ELIGIBLE_NATARS, "metastasis": "yes"},
        screened_on=DAY + dt.timedelta(days=1),
        patient_ref=first.screening_number,
    )
    with pytest.raises(IneligibleError, match="EXC-04"):
        allocate_patient(
            database, "nurse", first.screening_number, today=DAY, consent_date=DAY, secret=SECRET
        )
    # A screen failure re-screened as eligible (e.g. after the MDT) can be allocated.
    failed = _screen(database, mdt_r0_r1_possible="no")
    screen(
        database,
        "nurse",
        "NATARS-R",
        None,
        ELIGIBLE_NATARS,
        screened_on=DAY + dt.timedelta(days=1),
        patient_ref=failed.screening_number,
    )
    later = DAY + dt.timedelta(days=1)
    done = allocate_patient(
        database, "nurse", failed.screening_number, today=later, consent_date=later, secret=SECRET
    )
    assert done.position == 1
    with pytest.raises(Conflict, match="already enrolled"):
        screen(
            database,
            "nurse",
            "NATARS-R",
            None,
            ELIGIBLE_NATARS,
            screened_on=later,
            patient_ref=done.study_id,
        )


def test_allocating_twice_is_refused_and_changes_nothing(database):
    ok = _screen(database)
    allocate_patient(
        database, "nurse", ok.screening_number, today=DAY, consent_date=DAY, secret=SECRET
    )
    before = _counts(database)
    with pytest.raises(Conflict, match="already allocated"):
        allocate_patient(database, "nurse", ok.screening_number, today=DAY, secret=SECRET)
    assert _counts(database) == before


def test_a_failure_after_allocation_rolls_back_enrolment_allocation_and_schedule(database):
    ok = _screen(database)
    before = _counts(database)
    # Assigned-arm details on a randomized trial fail late, after enrolment was written.
    with pytest.raises(AllocationError, match="randomized"):
        allocate_patient(
            database,
            "nurse",
            ok.screening_number,
            today=DAY,
            consent_date=DAY,
            arm="NEOADJUVANT",
            secret=SECRET,
        )
    assert _counts(database) == before


def test_assigned_arms_need_a_known_basis_and_a_reason(database):
    ok = _screen(database, "NATARS")
    for kwargs, message in [
        ({}, "give --arm"),
        ({"arm": "NEOADJUVANT", "basis": "coin"}, "basis must be one of"),
        ({"arm": "NEOADJUVANT", "basis": "mdt_decision", "reason": " "}, "needs a reason"),
    ]:
        with pytest.raises(Conflict, match=message):
            allocate_patient(
                database, "nurse", ok.screening_number, today=DAY, consent_date=DAY, **kwargs
            )


def test_a_randomized_allocation_without_the_secret_is_refused(database):
    ok = _screen(database)
    with pytest.raises(Conflict, match="secret"):
        allocate_patient(database, "nurse", ok.screening_number, today=DAY, consent_date=DAY)


def test_withdrawal_cancels_future_events_keeps_rows_and_still_counts_in_minimization(database):
    first = allocate_patient(
        database,
        "nurse",
        _screen(database).screening_number,
        today=DAY,
        consent_date=DAY,
        secret=SECRET,
    )
    outcome = end_participation(
        database,
        "nurse",
        first.study_id,
        "excluded",
        "final pathology: WDLPS",
        effective_date=DAY,
        today=DAY,
        criterion_id="EXC-02",
    )
    assert outcome.cancelled and len(outcome.cancelled) == len(first.events)
    with database.read() as session:
        statuses = Counter(session.scalars(select(ScheduledEvent.status)))
        assert statuses == {"cancelled": len(first.events)}
        assert session.scalar(select(ParticipationEnd.criterion_id)) == "EXC-02"
        assert [p.arm for p in history(session, "NATARS-R")] == [first.arm]
    second = allocate_patient(
        database,
        "nurse",
        _screen(database).screening_number,
        today=DAY,
        consent_date=DAY,
        secret=SECRET,
    )
    assert second.position == 2
    with pytest.raises(Conflict, match="already recorded as excluded"):
        end_participation(
            database,
            "nurse",
            first.study_id,
            "withdrawn",
            "moved away",
            effective_date=DAY,
            today=DAY,
        )


def test_verify_replays_every_allocation_and_catches_an_arm_changed_afterwards(database):
    for i in range(12):
        allocate_patient(
            database,
            "nurse",
            _screen(
                database, site=["PKUIH", "BJFH"][i % 2], histology=["DDLPS", "LMS", "UPS"][i % 3]
            ).screening_number,
            today=DAY,
            consent_date=DAY,
            secret=SECRET,
        )
    result = verify_allocations(database, "NATARS-R", SECRET)
    assert (result.checked, result.mismatches) == (12, [])
    with database.engine.begin() as conn:
        arm = conn.exec_driver_sql("SELECT arm FROM allocations WHERE position = 7").scalar()
        other = "NEOADJUVANT" if arm == "SURGERY_ONLY" else "SURGERY_ONLY"
        conn.exec_driver_sql(f"UPDATE allocations SET arm = '{other}' WHERE position = 7")
    result = verify_allocations(database, "NATARS-R", SECRET)
    assert result.mismatches[0] == f"position 7: recorded {other}, the sequence gives {arm}"
    # A wrong secret cannot confirm the sequence either: the trial's key commitment says so
    # before any arm is replayed.
    with pytest.raises(SecretError, match="not the key NATARS-R committed to"):
        verify_allocations(database, "NATARS-R", bytes(range(1, 33)))


def test_a_trial_allocates_only_with_the_key_it_committed_to_and_never_the_demo_key(database):
    from sarcoma_sched.allocation.secret import DEMO_SECRET

    def allocate_with(secret: bytes) -> None:
        number = _screen(database).screening_number
        allocate_patient(database, "nurse", number, today=DAY, consent_date=DAY, secret=secret)

    with pytest.raises(SecretError, match="demo's published key"):
        allocate_with(DEMO_SECRET)
    with pytest.raises(SecretError, match="one byte repeated"):
        allocate_with(bytes(32))
    allocate_with(SECRET)
    with database.read() as session:
        (count,) = session.execute(select(func.count()).select_from(Allocation)).one()
    # A coordinator's own key, however strong, no longer matches the trial's commitment.
    with pytest.raises(SecretError, match="not the key NATARS-R committed to"):
        allocate_with(hashlib.sha256(b"steering attempt 6").digest())
    with database.read() as session:
        assert session.execute(select(func.count()).select_from(Allocation)).one() == (count,)
        assert verify(session).problems == []


def test_revealing_the_sequence_is_itself_audited(database):
    allocate_patient(
        database,
        "nurse",
        _screen(database).screening_number,
        today=DAY,
        consent_date=DAY,
        secret=SECRET,
    )
    rows = reveal_sequence(database, "statistician", "NATARS-R", SECRET)
    assert [r["arm"] == r["replayed"] for r in rows] == [True]
    with database.read() as session:
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
        postgresql = database.backend == "postgresql"
        login = session.scalar(text("SELECT session_user")) if postgresql else "statistician"
        assert (last.actor, last.entity, last.entity_id) == (
            login,
            "allocation_reveal",
            "NATARS-R",
        )
        assert verify(session).problems == []


WORKERS, PER_WORKER = 8, 50


def test_concurrent_coordinators_never_share_or_skip_a_position(database, tmp_path):
    env = {**os.environ, "SARCOMA_SCHED_SECRET": SECRET.hex(), "PYTHONPATH": str(ROOT)}
    start_at = time.time() + 3.0
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.integration.alloc_worker",
                database.url,
                str(w),
                str(PER_WORKER),
                str(start_at),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(WORKERS)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=540)
        assert proc.returncode == 0, err[-2000:]

    total = WORKERS * PER_WORKER
    with database.read() as session:
        positions = session.scalars(
            select(Allocation.position).where(Allocation.protocol_id == "NATARS-R")
        ).all()
        actors = set(session.scalars(select(Allocation.allocated_by)))
        report = verify(session)
        recorded = Counter(p.arm for p in history(session, "NATARS-R"))
        protocol = current_protocol(session, "NATARS-R").protocol
    assert sorted(positions) == list(range(1, total + 1))
    # On PostgreSQL the server stamps the login (one here), not the workers' labels.
    assert len(actors) == (1 if database.backend == "postgresql" else WORKERS)
    assert report.problems == []

    # A sequential replay with the same secret gives every arm, hence the same counts.
    from sarcoma_sched.allocation import DrawStream, replay, trial_key

    with database.read() as session:
        rows = replay(
            protocol.allocation,
            [a.id for a in protocol.arms],
            history(session, "NATARS-R"),
            DrawStream(trial_key(SECRET, "NATARS-R")),
        )
    assert all(r.match for r in rows)
    assert Counter(r.expected_arm for r in rows) == recorded
    verified = verify_allocations(database, "NATARS-R", SECRET)
    assert (verified.checked, verified.mismatches) == (total, [])


def _blocks_variant() -> LoadedProtocol:
    """NATARS-R with stratified permuted blocks instead of minimization, as a test trial."""
    path = ROOT / "protocols" / "natars-randomized.toml"
    text = path.read_text()
    start = text.index("[allocation]")
    end = text.index("[[arms]]")
    text = (
        text[:start]
        + '[allocation]\nmethod = "stratified_blocks"\n'
        + "ratio = { SURGERY_ONLY = 2, NEOADJUVANT = 1 }\n"
        + 'strata = ["histology"]\nblock_sizes = [3, 6]\n\n'
        + text[end:]
    ).replace('id = "NATARS-R"', 'id = "NATARS-B"', 1)
    return LoadedProtocol(parse_protocol(text, "natars-blocks.toml"), text, None)


def test_a_blocks_trial_stores_nothing_that_reveals_the_rest_of_a_block(database):
    load_protocols(database, "dm", [_blocks_variant()])
    for i in range(9):
        allocate_patient(
            database,
            "nurse",
            _screen(database, "NATARS-B", histology=["DDLPS", "LMS"][i % 2]).screening_number,
            today=DAY,
            consent_date=DAY,
            secret=SECRET,
        )
    with database.read() as session:
        stored = session.scalars(
            select(Allocation).options(undefer(Allocation.detail)).order_by(Allocation.position)
        ).all()
        log = " ".join(session.scalars(select(AuditEntry.change)))
    for row in stored:
        assert row.method == "stratified_blocks"
        assert row.stratum in ("histology=DDLPS", "histology=LMS")
        assert not {"block", "block_size", "slot"} & set(row.detail)
    # Neither the rows nor their audit entries carry the block structure.
    assert '"block_size"' not in log and '"slot"' not in log
    assert verify_allocations(database, "NATARS-B", SECRET).mismatches == []
    revealed = reveal_sequence(database, "statistician", "NATARS-B", SECRET)
    assert all("block_size=" in r["concealed"] for r in revealed)


def test_withdrawal_cancels_only_events_from_its_date_and_exclusion_needs_a_later_criterion(
    database,
):
    start = DAY - dt.timedelta(days=60)
    done = allocate_patient(
        database, "nurse", _screen(database).screening_number, today=DAY,
        allocation_date=start, consent_date=start, secret=SECRET,
    )  # fmt: skip
    with pytest.raises(Conflict, match=r"INC-13 is checked at screening.*EXC-02"):
        end_participation(database, "nurse", done.study_id, "excluded", "x",
                          effective_date=DAY, today=DAY, criterion_id="INC-13")  # fmt: skip
    outcome = end_participation(
        database, "nurse", done.study_id, "withdrawn", "withdrew consent",
        effective_date=DAY - dt.timedelta(days=10), today=DAY,
    )  # fmt: skip
    with database.read() as session:
        rows = session.scalars(select(ScheduledEvent)).all()
    cut = DAY - dt.timedelta(days=10)
    # Events due before the withdrawal stay planned, for the coordinator to record.
    assert {r.status for r in rows if r.target < cut} == {"planned"}
    assert {r.status for r in rows if r.target >= cut} == {"cancelled"}
    assert sorted(outcome.cancelled) == sorted(r.event_id for r in rows if r.target >= cut)
