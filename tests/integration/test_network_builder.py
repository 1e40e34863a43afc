"""The bulk network builder writes what the services' ORM path writes, and a valid audit chain.

``benchmarks.network`` builds the 100,000-patient networks the query benchmarks run on with
``benchmarks.bulk`` (complete rows, ``executemany``/``COPY``, audit entries chained by hand).
Those figures only mean something if the bulk database is the one the engine would have
written: same rows, same audit entries, a chain ``audit verify`` accepts, ids that let the
engine go on writing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from contextlib import ExitStack

import pytest
from sqlalchemy import select, text

from benchmarks.network import SECRET, build_network
from sarcoma_sched.db.audit import verify
from sarcoma_sched.db.models import AUDITED, Allocation, AuditEntry, Installation
from sarcoma_sched.db.session import Database
from sarcoma_sched.services.allocation import allocate_patient
from sarcoma_sched.services.allocation_audit import verify_allocations
from sarcoma_sched.services.screening import screen
from tests.cohort import ELIGIBLE_NATARS
from tests.databases import pg_schema_url

AS_OF = dt.date(2026, 11, 21)
# Instants taken at build time, not from the history: they differ between any two builds.
CLOCK = {
    "protocol_versions": {"loaded_at"},
    "protocol_activations": {"activated_at"},
    "sites": {"created_at"},
    "scheduled_events": {"updated_at"},
    # Each installation gets an id of its own when it is made: two builds are two installations.
    "installation": {"uid", "created_at"},
}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def two_urls(request, tmp_path):
    if request.param == "sqlite":
        yield str(tmp_path / "orm.db"), str(tmp_path / "bulk.db")
        return
    with ExitStack() as stack:
        yield stack.enter_context(pg_schema_url()), stack.enter_context(pg_schema_url())


# An event's UID carries its database's installation id (services.schedules.event_uid): the
# same in both builds but for that part, which is compared apart (it must be the database's).
_INSTALLATION = re.compile(r"@[0-9a-f]{12}\.sarcoma-sched$")


def _uid_masked(row: dict, installation: str) -> dict:
    if "uid" in row and isinstance(row["uid"], str) and "@" in row["uid"]:
        assert row["uid"].endswith(f"@{installation.replace('-', '')[:12]}.sarcoma-sched")
        row = {**row, "uid": _INSTALLATION.sub("@INSTALLATION.sarcoma-sched", row["uid"])}
    return row


def _tables(url: str) -> dict[str, list[dict]]:
    db = Database(url)
    try:
        with db.read() as session:
            installation = session.scalars(select(Installation.uid)).one()
            tables = {
                name: [
                    _uid_masked(
                        {k: v for k, v in row.items() if k not in CLOCK.get(name, ())},
                        installation,
                    )
                    for row in session.execute(
                        select(model.__table__).order_by(*model.__table__.primary_key.columns)
                    ).mappings()
                ]
                for name, model in AUDITED.items()
            }
            tables["audit_entries"] = [
                (e.seq, e.actor, e.action, e.entity, e.entity_id, _without_clock(e, installation))
                for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))
            ]
    finally:
        db.dispose()
    return tables


def _without_clock(entry: AuditEntry, installation: str) -> dict:
    data = json.loads(entry.change)
    for side in ("before", "after"):
        if isinstance(data.get(side), dict):
            for column in CLOCK.get(entry.entity, ()):
                data[side].pop(column, None)
            if entry.entity == "scheduled_events":
                data[side] = _uid_masked(data[side], installation)
    return data


def test_bulk_builder_writes_the_orm_rows_and_a_valid_chain(two_urls):
    orm_url, bulk_url = two_urls
    quiet = lambda _line: None  # noqa: E731
    orm = build_network(orm_url, 120, as_of=AS_OF, batch=50, writer="orm", progress=quiet)
    fast = build_network(bulk_url, 120, as_of=AS_OF, batch=50, writer="bulk", progress=quiet)
    assert (fast.patients, fast.events, fast.audit_entries) == (
        orm.patients,
        orm.events,
        orm.audit_entries,
    )
    # Withdrawals (cancelled events) and late records (deviations) are in the sample.
    assert fast.withdrawn + fast.excluded > 0
    bulk_tables, orm_tables = _tables(bulk_url), _tables(orm_url)
    if bulk_url.startswith("postgresql"):
        # The server chains each transaction's rows in the order its statements ran (the
        # ORM's unit of work, or the builder's table order): the same entries, each
        # transaction's in another order.
        for tables in (bulk_tables, orm_tables):
            entries = tables["audit_entries"]
            assert [e[0] for e in entries] == list(range(1, len(entries) + 1))
            tables["audit_entries"] = sorted(
                (e[1:5], json.dumps(e[5], sort_keys=True)) for e in entries
            )
    assert bulk_tables == orm_tables

    db = Database(bulk_url)
    try:
        with db.read() as session:
            report = verify(session)
            assert report.ok, report.problems[:3]
            assert report.entries == fast.audit_entries
            deviations = session.scalar(
                text("SELECT count(*) FROM scheduled_events WHERE deviation IS NOT NULL")
            )
            assert deviations > 0
        replay = verify_allocations(db, "NATARS-R", SECRET)
        assert replay.checked > 0 and replay.mismatches == []
        # The engine goes on from the bulk ids (PostgreSQL: sequences moved past them).
        outcome = screen(db, "nurse", "NATARS-R", "PKUIH", ELIGIBLE_NATARS, screened_on=AS_OF)
        assert outcome.result.eligible
        allocated = allocate_patient(
            db,
            "nurse",
            outcome.screening_number,
            today=AS_OF,
            consent_date=AS_OF,
            secret=SECRET,
        )
        with db.read() as session:
            assert verify(session).ok
            positions = session.scalars(
                select(Allocation.position)
                .where(Allocation.protocol_id == "NATARS-R")
                .order_by(Allocation.position)
            ).all()
            assert positions == list(range(1, len(positions) + 1))
            assert positions[-1] == allocated.position
    finally:
        db.dispose()
