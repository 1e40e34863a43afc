"""The audit trail: every change is logged in its own transaction, and tampering is caught."""

from __future__ import annotations

import contextlib
import datetime as dt
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from sarcoma_sched.db.audit import entry_hash, verify
from sarcoma_sched.db.models import Allocation, AuditEntry, Patient, ScheduledEvent
from sarcoma_sched.db.session import Database
from sarcoma_sched.db.types import utc_now
from sarcoma_sched.errors import InputFileError
from sarcoma_sched.services.enrollment import enroll
from sarcoma_sched.services.screening import screen
from tests.cohort import ELIGIBLE_NATARS

DAY = dt.date(2026, 3, 2)


def _allocated_patient(db: Database) -> int:
    """A screened, enrolled patient with an allocation and one event, written in audited
    transactions (the allocator's own tests cover how allocations are decided)."""
    outcome = screen(db, "nurse", "NATARS", "PKUIH", ELIGIBLE_NATARS, screened_on=DAY)
    enroll(db, "nurse", outcome.screening_number, DAY, today=DAY)
    with db.write("nurse", "allocate") as session:
        patient = session.scalars(
            select(Patient).where(Patient.screening_number == outcome.screening_number)
        ).one()
        session.add(
            Allocation(
                patient_id=patient.id,
                protocol_id="NATARS",
                position=1,
                arm="NEOADJUVANT",
                method="assigned",
                stratum=None,
                factors={},
                detail={},
                basis="mdt_decision",
                reason="MDT 2026-03-02",
                allocation_date=DAY,
                allocated_at=utc_now(),
                allocated_by="nurse",
            )
        )
        session.add(
            ScheduledEvent(
                patient_id=patient.id,
                uid=f"{patient.id}-ai.1",
                event_id="ai.1",
                event_key="ai",
                kind="chemotherapy",
                label="AI cycle 1",
                cycle=1,
                target=DAY,
                earliest=DAY,
                latest=DAY + dt.timedelta(days=3),
                days=[DAY.isoformat()],
                first_day=DAY,
                last_day=DAY,
                local_time=None,
                status="planned",
                actual_date=None,
                deviation=None,
                reason=None,
                flags=[],
                revision=0,
                updated_at=utc_now(),
            )
        )
        return patient.id


def _problems(db: Database) -> list[str]:
    with db.read() as session:
        return verify(session).problems


def _sql(db: Database, statement: str, **params) -> None:
    """A write behind the engine. On PostgreSQL the server audits every write and refuses edits
    of the log (migration 0006), so the attacker these tests play is a superuser who switches
    the triggers off first: what is left to catch them is the chain itself."""
    with db.engine.begin() as conn:
        if db.backend == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text(statement), params)


def _count(db: Database) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(AuditEntry))


def test_every_change_is_logged_with_actor_action_and_before_after(database):
    _allocated_patient(database)
    with database.write("dm", "correct reason") as session:
        allocation = session.scalars(select(Allocation)).one()
        allocation.reason = "MDT minutes 2026-03-02"
    with database.read() as session:
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
        # On PostgreSQL the server names the login, not the label the caller passed.
        postgresql = database.backend == "postgresql"
        login = session.scalar(text("SELECT session_user")) if postgresql else "dm"
    change = json.loads(last.change)
    assert (last.actor, last.action, last.entity, change["op"]) == (
        login,
        "correct reason",
        "allocations",
        "update",
    )
    assert change["before"]["reason"] == "MDT 2026-03-02"
    assert change["after"]["reason"] == "MDT minutes 2026-03-02"
    assert _problems(database) == []


def test_a_failed_service_call_leaves_no_rows_and_no_audit_entries(database):
    entries = _count(database)
    with pytest.raises(InputFileError):
        screen(
            database,
            "nurse",
            "NATARS",
            "PKUIH",
            {**ELIGIBLE_NATARS, "age_years": "abc"},
            screened_on=DAY,
        )
    assert _count(database) == entries
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(Patient)) == 0


def test_a_change_outside_a_service_transaction_is_refused(database):
    with database.read() as session:
        session.add(
            Patient(
                protocol_id="NATARS",
                site_code="PKUIH",
                screening_number="X",
                sex="unknown",
                created_at=utc_now(),
            )
        )
        with pytest.raises(RuntimeError, match="outside a service write transaction"):
            session.flush()


def test_editing_an_audit_entry_is_reported_at_that_entry(database):
    _allocated_patient(database)
    _sql(database, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 14")
    assert _problems(database)[0] == "audit entry 14: content does not match its hash (edited)"


def test_deleting_an_audit_entry_is_reported_as_the_missing_one(database):
    _allocated_patient(database)
    _sql(database, "DELETE FROM audit_log WHERE seq = 13")
    assert _problems(database)[0].startswith("audit entry 13: missing")


def test_deleting_the_last_audit_entries_is_caught_by_the_head(database):
    _allocated_patient(database)
    last = _count(database)
    _sql(database, "DELETE FROM audit_log WHERE seq = :seq", seq=last)
    problems = _problems(database)
    assert problems[0] == (
        f"audit log ends at entry {last - 1} but its head records entry {last}: "
        "entries were removed from or added to the end of the log"
    )


def test_inserting_a_forged_entry_with_a_valid_hash_in_the_middle_breaks_the_next_link(database):
    _allocated_patient(database)
    last = _count(database)
    # Make room at 5 by shifting later entries, then forge entry 5 consistently with entry 4.
    _sql(database, "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 5")
    _sql(database, "UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1005")
    with database.engine.connect() as conn:
        prev = conn.execute(text("SELECT hash FROM audit_log WHERE seq = 4")).scalar_one()
    change = '{"after":null,"before":null,"op":"note"}'
    fields = (5, "2026-01-01T00:00:00+00:00", "mallory", "forge", "notes", "1", change, prev)
    _sql(
        database,
        "INSERT INTO audit_log (seq, at, actor, action, entity, entity_id, change, prev_hash, "
        "hash) VALUES (5, :at, 'mallory', 'forge', 'notes', '1', :change, :prev, :hash)",
        at=fields[1],
        change=change,
        prev=prev,
        hash=entry_hash(*fields),
    )
    problems = _problems(database)
    assert problems[0] == "audit entry 6: does not link to entry 5 (inserted or replaced)"
    assert _count(database) == last + 1


def test_editing_an_allocation_behind_the_engine_is_caught(database):
    _allocated_patient(database)
    _sql(database, "UPDATE allocations SET arm = 'SURGERY_ONLY'")
    assert _problems(database) == [
        "allocations 1: differs from its last audit entry in arm (changed behind the engine)"
    ]


def test_moving_a_scheduled_event_behind_the_engine_is_caught(database):
    _allocated_patient(database)
    _sql(database, "UPDATE scheduled_events SET target = earliest, status = 'done'")
    assert _problems(database) == [
        "scheduled_events 1: differs from its last audit entry in status "
        "(changed behind the engine)"
    ]


def test_rows_inserted_or_deleted_behind_the_engine_are_caught(database):
    patient_id = _allocated_patient(database)
    _sql(database, "DELETE FROM scheduled_events")
    _sql(
        database,
        "INSERT INTO participation_ends (patient_id, kind, effective_date, reason, recorded_at, "
        "recorded_by) VALUES (:p, 'withdrawn', '2026-04-01', 'x', '2026-04-01 00:00:00', 'm')",
        p=patient_id,
    )
    problems = _problems(database)
    assert "participation_ends 1: has no audit entry (written behind the engine)" in problems
    assert "scheduled_events 1: deleted without an audit entry" in problems


@pytest.fixture(scope="module")
def chain_db(tmp_path_factory):
    """One SQLite database with a realistic log, copied per example."""
    from sarcoma_sched.services.protocols import initialize

    path = tmp_path_factory.mktemp("chain") / "schedule.db"
    db = Database(str(path), check_schema=False)
    initialize(db, "setup")
    _allocated_patient(db)
    db.dispose()
    return path


COLUMNS = ["at", "actor", "action", "entity", "entity_id", "change", "prev_hash", "hash"]


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_edit_of_any_audit_field_is_reported_at_or_before_that_entry(
    chain_db, tmp_path, data
):
    import shutil

    copy = tmp_path / f"copy-{data.draw(st.uuids()).hex}.db"
    shutil.copy(chain_db, copy)
    db = Database(str(copy))
    total = _count(db)
    seq = data.draw(st.integers(1, total), label="seq")
    column = data.draw(st.sampled_from(COLUMNS), label="column")
    _sql(db, f"UPDATE audit_log SET {column} = {column} || 'x' WHERE seq = :seq", seq=seq)
    problems = _problems(db)
    db.dispose()
    assert problems, f"edit of {column} at entry {seq} went unnoticed"
    # A forged hash shows as the next entry failing to link to it (or the head, at the end).
    first = problems[0]
    if first.startswith("audit entry"):
        assert int(first.split()[2].rstrip(":")) in (seq, seq + 1)
    else:
        assert seq == total and "head records" in first


# --- the verifier at scale: digests instead of states, same reports ----------------------------


def test_replacing_the_last_entry_with_a_consistent_forgery_is_caught_by_the_head(database):
    _allocated_patient(database)
    last = _count(database)
    with database.engine.connect() as conn:
        prev = conn.execute(
            text("SELECT prev_hash FROM audit_log WHERE seq = :seq"), {"seq": last}
        ).scalar_one()
    change = '{"after":null,"before":null,"op":"note"}'
    fields = (last, "2026-01-01T00:00:00+00:00", "mallory", "forge", "notes", "1", change, prev)
    _sql(
        database,
        "UPDATE audit_log SET at = :at, actor = 'mallory', action = 'forge', entity = 'notes', "
        "entity_id = '1', change = :change, hash = :hash WHERE seq = :seq",
        at=fields[1],
        change=change,
        hash=entry_hash(*fields),
        seq=last,
    )
    assert _problems(database)[0] == (
        f"audit entry {last}: its hash is not the one the head records "
        "(the last entry was replaced or its hash edited)"
    )


def test_many_rows_changed_behind_the_engine_are_each_named_in_key_order(database, monkeypatch):
    import sarcoma_sched.db.audit as audit

    # Rows whose digest differs are re-read in batches; small batches exercise the flushes.
    monkeypatch.setattr(audit, "_RECHECK_BATCH", 3)
    _sql(database, "UPDATE sites SET name = name || ' (renamed)'")
    with database.read() as session:
        codes = list(session.scalars(text("SELECT code FROM sites ORDER BY code")))
    assert len(codes) > 3
    assert _problems(database) == [
        f"sites {code}: differs from its last audit entry in name (changed behind the engine)"
        for code in codes
    ]


def test_the_same_json_value_spelt_differently_is_not_a_change(database):
    _allocated_patient(database)
    with database.write("dm", "annotate") as session:
        session.scalars(select(Allocation)).one().detail = {"scores": {"A": 1, "B": 0.5}}
    # Another spelling of the same values: the digest differs, the comparison does not.
    _sql(database, """UPDATE allocations SET detail = '{"scores": {"B": 0.50, "A": 1.0}}'""")
    assert _problems(database) == []


def test_entries_for_far_out_or_oddly_spelt_ids_name_rows_that_do_not_exist(database):
    _allocated_patient(database)
    last = _count(database)
    with database.engine.connect() as conn:
        prev = conn.execute(
            text("SELECT hash FROM audit_log WHERE seq = :seq"), {"seq": last}
        ).scalar_one()
    after = '{"after":{"id":1},"before":null,"op":"insert"}'
    for entity_id in ("1000000000000", "01"):
        last += 1
        fields = (last, "2026-01-01T00:00:00+00:00", "m", "forge", "allocations", entity_id)
        digest = entry_hash(*fields, after, prev)
        _sql(
            database,
            "INSERT INTO audit_log (seq, at, actor, action, entity, entity_id, change, "
            "prev_hash, hash) VALUES (:seq, :at, 'm', 'forge', 'allocations', :id, :change, "
            ":prev, :hash)",
            seq=last,
            at=fields[1],
            id=entity_id,
            change=after,
            prev=prev,
            hash=digest,
        )
        prev = digest
    _sql(database, "UPDATE audit_head SET seq = :seq, hash = :hash", seq=last, hash=prev)
    # "01" is not row 1: the row keeps its own entry, and neither forged id has a row.
    assert _problems(database) == [
        "allocations 01: deleted without an audit entry",
        "allocations 1000000000000: deleted without an audit entry",
    ]


def _reference_row_problems(session) -> list[str]:
    """The row check as first written: every row's whole last state held in memory."""
    from sarcoma_sched.db.audit import _differing, _normalise
    from sarcoma_sched.db.models import AUDITED

    last: dict[tuple[str, str], dict | None] = {}
    for entry in session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            last[(entry.entity, entry.entity_id)] = json.loads(entry.change)["after"]
    problems, seen = [], set()
    for entity, model in AUDITED.items():
        (pk,) = model.__table__.primary_key.columns
        for row in session.execute(select(model.__table__).order_by(pk)).mappings():
            key = (entity, str(row[pk.name]))
            seen.add(key)
            if key not in last:
                problems.append(
                    f"{entity} {key[1]}: has no audit entry (written behind the engine)"
                )
            elif last[key] is None:
                problems.append(f"{entity} {key[1]}: audit log says deleted, but the row exists")
            elif fields := _differing(_normalise(dict(row)), last[key]):
                problems.append(
                    f"{entity} {key[1]}: differs from its last audit entry in "
                    f"{', '.join(fields)} (changed behind the engine)"
                )
    problems += [
        f"{e} {i}: deleted without an audit entry"
        for (e, i), state in last.items()
        if e in AUDITED and state is not None and (e, i) not in seen
    ]
    return problems


class _Drawn:
    def __init__(self, data) -> None:
        self.data = data

    def choice(self, seq):
        return self.data.draw(st.sampled_from(list(seq)))


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_digests_report_exactly_what_comparing_whole_states_reports(chain_db, tmp_path, data):
    from benchmarks.reliability.tamper import SqliteTrials

    trials = SqliteTrials(chain_db, tmp_path / "trial.db")
    try:
        done, problems = trials(_Drawn(data))
        with trials.db.read() as session:
            expected = _reference_row_problems(session)
    finally:
        trials.close()
    rows = [p for p in problems if not p.startswith("audit ")]
    assert sorted(rows) == sorted(expected), done


# --- allocation verify replays in linear time, deciding exactly as allocate does ----------------


def _designs():
    from sarcoma_sched.protocol.allocation import (
        BlockAllocation,
        Factor,
        MinimizationAllocation,
    )

    ratio = st.sampled_from([{"A": 1, "B": 1}, {"A": 2, "B": 1}, {"A": 1, "B": 1, "C": 1}])
    blocks = st.builds(
        lambda r, strata, sizes: BlockAllocation(
            method="stratified_blocks",
            ratio=r,
            strata=strata,
            block_sizes=[k * sum(r.values()) for k in sizes],
        ),
        ratio,
        st.sampled_from([[], ["site"], ["site", "histology"]]),
        st.lists(st.integers(1, 3), min_size=1, max_size=2),
    )
    minimization = st.builds(
        lambda r, p, measure: MinimizationAllocation(
            method="minimization",
            ratio=r,
            factors=[Factor(field="histology"), Factor(field="site", weight=0.5)],
            probability=p,
            imbalance=measure,
        ),
        ratio,
        st.sampled_from([0.8, 1.0]),
        st.sampled_from(["range", "variance"]),
    )
    return blocks | minimization


@settings(max_examples=40, deadline=None)
@given(design=_designs(), data=st.data())
def test_replaying_a_tampered_history_decides_each_position_as_allocate_would(design, data):
    from sarcoma_sched.allocation import (
        DrawStream,
        PriorAllocation,
        allocate,
        replay_decisions,
        trial_key,
    )

    arms = list(design.ratio)
    patient = st.fixed_dictionaries(
        {"site": st.sampled_from(["X", "Y"]), "histology": st.sampled_from(["LMS", "UPS"])}
    )
    patients = data.draw(st.lists(patient, min_size=1, max_size=40))
    stream = DrawStream(trial_key(b"k" * 32, "T"))
    history: list[PriorAllocation] = []
    for position, factors in enumerate(patients, 1):
        d = allocate(design, arms, history, factors, position, stream)
        # Some records changed behind the engine: later positions see the recorded arms.
        arm = data.draw(st.sampled_from([d.arm, d.arm, *arms]))
        history.append(PriorAllocation(position, arm, d.factors, d.stratum))
    expected = [
        allocate(design, arms, history[:i], p.factors, p.position, stream)
        for i, p in enumerate(history)
    ]
    assert replay_decisions(design, arms, history, stream) == expected
