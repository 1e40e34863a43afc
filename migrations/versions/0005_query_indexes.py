"""Indexes for the coordinators' daily queries at network scale, and each event's span.

At 100,000 patients (millions of scheduled events) "visits at site X this week", "overdue at
site X" and "deviations this month" must each read about as many index entries as they return:

* ``span_days`` (``last_day - first_day``) with an index, so ``max(span_days)`` is one index
  lookup and a query for events touching ``[from, to]`` can also say ``first_day >= from -
  longest span``: a two-sided range on ``first_day`` instead of every event that started before
  ``to`` (all of history). A check constraint keeps it equal to the days on every row, because
  a row with too small a span would silently drop out of ``visits``.
* ``(patient_id, status, first_day)``: a site's queries walk the site's patients
  (``ix_patients_site_code``) and read each one's planned (or done) events inside the date
  range directly, instead of every event of the network in the range.
* ``(status, first_day)`` replaces ``(status, latest)``, which no query uses: "planned and
  started before today" across all sites is one short range.
* ``(patient_id, first_day) WHERE deviation IS NOT NULL``: deviations are a few percent of the
  rows; a site's deviations are a handful of entries per patient in a small partial index.
  ``(first_day) WHERE deviation IS NOT NULL`` serves the network-wide list by date.
* ``patients(study_id)`` and ``patients(screening_number)``: a patient is looked up by either
  without the trial (``find_patient``); the unique indexes start with ``protocol_id`` and could
  not serve that lookup.

Existing rows get their ``span_days`` from their days. That is a change to audited rows, so
each one gets an audit entry (actor ``migration``) extending its last recorded state with the
new column, as 0003 did: ``audit verify`` keeps passing on upgraded data.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import sqlalchemy as sa
from alembic import op

from sarcoma_sched.db.audit import canonical, entry_hash

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ACTION = "migrate 0005"
# Rows per UPDATE batch and per audit INSERT: bounded memory however large the schedule.
CHUNK = 5000

SPAN_CHECK = {
    # SQLite stores a Date as 'YYYY-MM-DD' text: julianday() turns it into a day number.
    "sqlite": "span_days = julianday(last_day) - julianday(first_day)",
    "postgresql": "span_days = last_day - first_day",
}

# Unchanged since 0003; SQLite cannot rebuild a table a view refers to, so it is dropped around the
# rebuild and created again.
VISIT_SCHEDULE = """
    SELECT p.protocol_id, p.site_code, p.study_id, a.arm,
           e.event_id, e.event_key, e.kind, e.label, e.cycle,
           e.first_day, e.last_day, e.target, e.earliest, e.latest, e.local_time,
           e.status, e.actual_date, e.pinned, e.deviation, e.reason, e.revision,
           pe.kind AS participation_end
    FROM scheduled_events e
    JOIN patients p ON p.id = e.patient_id
    JOIN allocations a ON a.patient_id = p.id
    LEFT JOIN participation_ends pe ON pe.patient_id = p.id
"""

events = sa.table(
    "scheduled_events",
    sa.column("id", sa.Integer),
    sa.column("first_day", sa.Date),
    sa.column("last_day", sa.Date),
    sa.column("span_days", sa.Integer),
)
log = sa.table(
    "audit_log",
    *(sa.column(c) for c in ("seq", "at", "actor", "action", "entity", "entity_id")),
    sa.column("change"),
    sa.column("prev_hash"),
    sa.column("hash"),
)
head = sa.table("audit_head", sa.column("id"), sa.column("seq"), sa.column("hash"))


def upgrade() -> None:
    conn = op.get_bind()
    op.execute("DROP VIEW v_visit_schedule")
    with op.batch_alter_table("scheduled_events") as batch:
        batch.add_column(sa.Column("span_days", sa.Integer(), nullable=True))
    _backfill(conn)
    with op.batch_alter_table("scheduled_events") as batch:
        batch.alter_column("span_days", existing_type=sa.Integer(), nullable=False)
        batch.create_check_constraint(
            batch.f("ck_scheduled_events_span"), SPAN_CHECK[conn.dialect.name]
        )
        batch.drop_index(batch.f("ix_scheduled_events_status_latest"))
        batch.create_index(batch.f("ix_scheduled_events_span_days"), ["span_days"])
        batch.create_index(batch.f("ix_scheduled_events_status_first_day"), ["status", "first_day"])
        batch.create_index(
            batch.f("ix_scheduled_events_patient_id_status_first_day"),
            ["patient_id", "status", "first_day"],
        )
        batch.create_index(
            batch.f("ix_scheduled_events_deviation_first_day"),
            ["first_day"],
            sqlite_where=sa.text("deviation IS NOT NULL"),
            postgresql_where=sa.text("deviation IS NOT NULL"),
        )
        batch.create_index(
            batch.f("ix_scheduled_events_deviation_patient_id_first_day"),
            ["patient_id", "first_day"],
            sqlite_where=sa.text("deviation IS NOT NULL"),
            postgresql_where=sa.text("deviation IS NOT NULL"),
        )
    op.execute(f"CREATE VIEW v_visit_schedule AS {VISIT_SCHEDULE.strip()}")
    with op.batch_alter_table("patients") as batch:
        batch.create_index(batch.f("ix_patients_study_id"), ["study_id"])
        batch.create_index(batch.f("ix_patients_screening_number"), ["screening_number"])
    # The planners choose these indexes from statistics; without them SQLite would not until
    # the schedule grows by half (``db.engine.refresh_statistics``), and PostgreSQL not until
    # autovacuum comes by. Seconds even for millions of rows.
    op.execute("ANALYZE scheduled_events")
    op.execute("ANALYZE patients")


def _spans(conn: sa.Connection) -> Iterator[list[tuple[int, int]]]:
    """(row id, span) in id order, a chunk at a time."""
    after = 0
    while True:
        rows = conn.execute(
            sa.select(events.c.id, events.c.first_day, events.c.last_day)
            .where(events.c.id > after)
            .order_by(events.c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            return
        yield [(r.id, (_day(r.last_day) - _day(r.first_day)).days) for r in rows]
        after = rows[-1].id


def _day(value: dt.date | str) -> dt.date:
    # A bare sa.table() column reads SQLite's stored text as text.
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def _backfill(conn: sa.Connection) -> None:
    seq, prev = conn.execute(sa.select(head.c.seq, head.c.hash).where(head.c.id == 1)).one()
    at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    update = events.update().where(events.c.id == sa.bindparam("row_id"))
    for chunk in _spans(conn):
        conn.execute(update, [{"row_id": i, "span_days": span} for i, span in chunk])
        recorded = _last_recorded(conn, chunk[0][0], chunk[-1][0])
        entries = []
        for row_id, span in chunk:
            before = recorded.get(str(row_id))
            if before is None:
                continue  # a row with no history is reported by `audit verify` as it was before
            seq += 1
            change = canonical(
                {"op": "update", "before": before, "after": before | {"span_days": span}}
            )
            entity_id = str(row_id)
            digest = entry_hash(
                seq, at, "migration", ACTION, "scheduled_events", entity_id, change, prev
            )
            entries.append(
                {
                    "seq": seq,
                    "at": at,
                    "actor": "migration",
                    "action": ACTION,
                    "entity": "scheduled_events",
                    "entity_id": entity_id,
                    "change": change,
                    "prev_hash": prev,
                    "hash": digest,
                }
            )
            prev = digest
        if entries:
            conn.execute(log.insert(), entries)
    conn.execute(head.update().where(head.c.id == 1).values(seq=seq, hash=prev))


def _last_recorded(conn: sa.Connection, first: int, last: int) -> dict[str, dict]:
    """The state the log last recorded for each event row with an id in [first, last].

    Entity ids are text, so the range is taken over the rows' ids and matched in Python.
    """
    ids = [str(i) for i in range(first, last + 1)]
    last_seq = (
        sa.select(sa.func.max(log.c.seq))
        .where(log.c.entity == "scheduled_events", log.c.entity_id.in_(ids))
        .group_by(log.c.entity_id)
    )
    recorded: dict[str, dict] = {}
    for entry in conn.execute(
        sa.select(log.c.entity_id, log.c.change).where(log.c.seq.in_(last_seq))
    ):
        after = json.loads(entry.change).get("after")
        if after is not None:
            recorded[entry.entity_id] = after
    return recorded


def downgrade() -> None:
    # The audit entries of the upgrade stay: the log is append-only, and `audit verify` on a
    # downgraded database compares the columns that exist.
    with op.batch_alter_table("patients") as batch:
        batch.drop_index(batch.f("ix_patients_screening_number"))
        batch.drop_index(batch.f("ix_patients_study_id"))
    op.execute("DROP VIEW v_visit_schedule")
    with op.batch_alter_table("scheduled_events") as batch:
        batch.drop_index(batch.f("ix_scheduled_events_deviation_patient_id_first_day"))
        batch.drop_index(batch.f("ix_scheduled_events_deviation_first_day"))
        batch.drop_index(batch.f("ix_scheduled_events_patient_id_status_first_day"))
        batch.drop_index(batch.f("ix_scheduled_events_status_first_day"))
        batch.drop_index(batch.f("ix_scheduled_events_span_days"))
        batch.create_index(batch.f("ix_scheduled_events_status_latest"), ["status", "latest"])
        batch.drop_constraint(batch.f("ck_scheduled_events_span"), type_="check")
        batch.drop_column("span_days")
    op.execute(f"CREATE VIEW v_visit_schedule AS {VISIT_SCHEDULE.strip()}")
