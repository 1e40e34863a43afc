"""The counts the allocator reads from the database are those it would count from the history.

``services.allocation.allocate_patient`` no longer decodes every earlier allocation: one
``GROUP BY arm, factors`` (``services.allocation_counts.trial_counts``) hands
``allocation.count_groups`` a few rows per combination of levels. Held here to
``allocation.counts_of`` over the same history, on both backends, for random designs (blocks and
minimization, odd arm ids and levels, booleans, a history recorded out of any rule), and the
decision taken from either count is the same.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert
from sqlalchemy.orm import Session

from sarcoma_sched.allocation import (
    DrawStream,
    PriorAllocation,
    allocate,
    allocate_counted,
    counts_of,
)
from sarcoma_sched.db.models import Allocation, Patient
from sarcoma_sched.errors import AllocationError
from sarcoma_sched.protocol.allocation import Factor, MinimizationAllocation
from sarcoma_sched.services.allocation_counts import trial_counts
from tests.integration.test_pg_allocation import trials

_NOW = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)


def _store(session: Session, trial_id: str, history: list[PriorAllocation]) -> None:
    conn = session.connection()
    for p in history:
        patient_id = conn.execute(
            insert(Patient).returning(Patient.id),
            {
                "protocol_id": trial_id,
                "site_code": "PKUIH",
                "screening_number": f"S{p.position}",
                "sex": "unknown",
                "created_at": _NOW,
            },
        ).scalar_one()
        conn.execute(
            insert(Allocation),
            {
                "patient_id": patient_id,
                "protocol_id": trial_id,
                "position": p.position,
                "arm": p.arm,
                "method": "minimization",
                "stratum": None,
                "factors": dict(p.factors),
                "detail": {},
                "allocation_date": dt.date(2026, 1, 5),
                "allocated_at": _NOW,
                "allocated_by": "test",
            },
        )


def _outcome(fn) -> str:  # type: ignore[no-untyped-def]
    try:
        return repr(fn())
    except AllocationError as exc:
        return f"error: {exc}"


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(trials(), st.sampled_from(["NATARS-R", "T|x=1"]))
def test_the_database_counts_what_the_history_counts(database, trial, trial_id):
    method, arms, patients, key, mode = trial
    stream = DrawStream(key)
    history: list[PriorAllocation] = []
    position = 0
    for gap, factors, arm in patients[:-1]:
        position += gap
        if mode == "forward":
            arm = allocate(method, arms, history, factors, position, stream).arm
        history.append(PriorAllocation(position, arm, factors))
    factors = dict(patients[-1][1])
    position += patients[-1][0]
    # Every example in a transaction of its own, rolled back: the database is empty again.
    with database.engine.connect() as conn, conn.begin() as txn:
        session = Session(bind=conn)
        _store(session, trial_id, history)
        from_db = trial_counts(session, trial_id, method, arms, factors)
        txn.rollback()
    assert from_db == counts_of(method, arms, history, factors)
    # And so the arm: the decision is a function of the counts.
    assert _outcome(
        lambda: allocate_counted(method, arms, from_db, factors, position, stream)
    ) == _outcome(lambda: allocate(method, arms, history, factors, position, stream))


def test_a_stored_allocation_without_a_factor_is_refused_by_name(database):
    method = MinimizationAllocation(
        method="minimization",
        ratio={"A": 1, "B": 1},
        factors=[Factor(field="histology", weight=1.0), Factor(field="site", weight=1.0)],
        probability=0.8,
        imbalance="range",
    )
    patient = {"histology": "LMS", "site": "X"}
    history = [
        PriorAllocation(1, "A", {"histology": "LMS", "site": "PKUIH"}),
        PriorAllocation(2, "B", {"histology": "LMS"}),
    ]
    with database.engine.connect() as conn, conn.begin() as txn:
        session = Session(bind=conn)
        _store(session, "NATARS-R", history)
        counts = trial_counts(session, "NATARS-R", method, ["A", "B"], patient)
        txn.rollback()
    assert counts.missing_factor == "site"
    with pytest.raises(AllocationError) as refused:
        allocate_counted(method, ["A", "B"], counts, patient, 3, DrawStream(b"k" * 32))
    assert str(refused.value) == "an earlier allocation has no value for allocation factor 'site'"
