"""Scheduled events get their first and last day as indexed columns, and a coordinator's pin.

``visits --from --to`` and ``overdue`` ask "which events touch these days": with the days only in
a JSON list, every such query read every row. ``pinned`` holds the date a coordinator chose with
``reschedule``; the planner keeps it through later re-plans.

Existing rows are back-filled from their ``days``. That is a change to audited rows, so each one
gets an audit entry (actor ``migration``) extending its last recorded state with the new
columns: ``audit verify`` keeps passing on upgraded data, and tampering from before the upgrade
is still caught because the other columns are compared as before.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa
from alembic import op

from sarcoma_sched.db.audit import canonical, entry_hash

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

VISIT_SCHEDULE_0002 = """
    SELECT p.protocol_id, p.site_code, p.study_id, a.arm,
           e.event_id, e.event_key, e.kind, e.label, e.cycle,
           e.target, e.earliest, e.latest, e.local_time,
           e.status, e.actual_date, e.deviation, e.reason, e.revision,
           pe.kind AS participation_end
    FROM scheduled_events e
    JOIN patients p ON p.id = e.patient_id
    JOIN allocations a ON a.patient_id = p.id
    LEFT JOIN participation_ends pe ON pe.patient_id = p.id
"""

VISIT_SCHEDULE_0003 = """
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
    sa.column("days", sa.JSON),
    sa.column("first_day", sa.Date),
    sa.column("last_day", sa.Date),
)


def upgrade() -> None:
    op.execute("DROP VIEW v_visit_schedule")
    with op.batch_alter_table("scheduled_events") as batch:
        batch.add_column(sa.Column("first_day", sa.Date(), nullable=True))
        batch.add_column(sa.Column("last_day", sa.Date(), nullable=True))
        batch.add_column(sa.Column("pinned", sa.Date(), nullable=True))
    conn = op.get_bind()
    added: dict[str, dict[str, str | None]] = {}
    for row in conn.execute(sa.select(events.c.id, events.c.days)):
        days = row.days if isinstance(row.days, list) else json.loads(row.days)
        added[str(row.id)] = {"first_day": days[0], "last_day": days[-1], "pinned": None}
    if added:
        conn.execute(
            events.update().where(events.c.id == sa.bindparam("row_id")),
            [
                {
                    "row_id": int(i),
                    "first_day": dt.date.fromisoformat(v["first_day"]),
                    "last_day": dt.date.fromisoformat(v["last_day"]),
                }
                for i, v in added.items()
            ],
        )
        _audit_backfill(conn, added)
    with op.batch_alter_table("scheduled_events") as batch:
        batch.alter_column("first_day", existing_type=sa.Date(), nullable=False)
        batch.alter_column("last_day", existing_type=sa.Date(), nullable=False)
        batch.create_index(batch.f("ix_scheduled_events_first_day"), ["first_day"])
        batch.create_index(batch.f("ix_scheduled_events_last_day"), ["last_day"])
    op.execute(f"CREATE VIEW v_visit_schedule AS {VISIT_SCHEDULE_0003.strip()}")


def _audit_backfill(conn: sa.Connection, added: dict[str, dict[str, str | None]]) -> None:
    log = sa.table(
        "audit_log",
        *(sa.column(c) for c in ("seq", "at", "actor", "action", "entity", "entity_id")),
        sa.column("change"),
        sa.column("prev_hash"),
        sa.column("hash"),
    )
    head = sa.table("audit_head", sa.column("id"), sa.column("seq"), sa.column("hash"))
    last: dict[str, dict] = {}
    query = (
        sa.select(log.c.entity_id, log.c.change)
        .where(log.c.entity == "scheduled_events")
        .order_by(log.c.seq)
    )
    for entry in conn.execute(query):
        after = json.loads(entry.change).get("after")
        if after is not None:
            last[entry.entity_id] = after
    seq, prev = conn.execute(sa.select(head.c.seq, head.c.hash).where(head.c.id == 1)).one()
    at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    entries = []
    for entity_id in sorted(added, key=int):
        before = last.get(entity_id)
        if before is None:
            continue  # a row with no history is reported by `audit verify` as it was before
        seq += 1
        change = canonical({"op": "update", "before": before, "after": before | added[entity_id]})
        digest = entry_hash(
            seq, at, "migration", "migrate 0003", "scheduled_events", entity_id, change, prev
        )
        entries.append(
            {
                "seq": seq,
                "at": at,
                "actor": "migration",
                "action": "migrate 0003",
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


def downgrade() -> None:
    # The audit entries of the upgrade stay: the log is append-only, and `audit verify` on a
    # downgraded database compares the columns that exist. A coordinator's pins are recorded
    # decisions (first_day/last_day are derived from days): refused unless forced and dumped.
    from sarcoma_sched.db.downgrade_guard import refuse_data_loss

    refuse_data_loss(
        op.get_bind(),
        "0003",
        {
            "scheduled_events.pinned": "SELECT id, patient_id, event_id, pinned "
            "FROM scheduled_events WHERE pinned IS NOT NULL ORDER BY id"
        },
    )
    op.execute("DROP VIEW v_visit_schedule")
    with op.batch_alter_table("scheduled_events") as batch:
        batch.drop_index(batch.f("ix_scheduled_events_last_day"))
        batch.drop_index(batch.f("ix_scheduled_events_first_day"))
        batch.drop_column("pinned")
        batch.drop_column("last_day")
        batch.drop_column("first_day")
    op.execute(f"CREATE VIEW v_visit_schedule AS {VISIT_SCHEDULE_0002.strip()}")
