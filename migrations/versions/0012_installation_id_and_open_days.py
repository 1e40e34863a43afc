"""Every database has an installation id; a site may record an extra working day.

* ``installation``: the row ``init`` writes (migration 0006) is written here for a trial's
  database that has none (one upgraded with ``db upgrade`` and never re-initialised; an empty
  database gets it from ``init``, which sets its purpose): its ``uid`` goes into
  the iCalendar UID of every event stored from now on (``services.schedules.event_uid``), so two
  trial databases' calendars never collide in one client. It is made once and never changed: a
  UID must stay the same for the life of its event. Its purpose is ``trial``: a database that
  was never initialised as the demo is not one.
* ``site_closures.kind``: ``closed`` (every row so far: days a site cannot treat) or ``open``
  (``site open``: a Sunday or a public holiday on which the site works, e.g. a make-up day the
  holiday tables miss). The table holds every day a coordinator set apart from the site's
  holiday calendar; its grants, row-level security and audit triggers (0006) serve both kinds.

The installation row is audited: on SQLite this migration chains its entry (actor
``migration``); on PostgreSQL the triggers of 0006 write it.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

ACTION = "migrate 0012"


def upgrade() -> None:
    # SQLite adds a column in place; a batch rebuild (for a CHECK) would trip the analyst
    # views. The kinds are checked on PostgreSQL, and by the one service that writes them.
    op.add_column(
        "site_closures",
        sa.Column("kind", sa.String(length=8), nullable=False, server_default="closed"),
    )
    bind = op.get_bind()
    postgresql = bind.dialect.name == "postgresql"
    if postgresql:
        op.execute(
            "ALTER TABLE site_closures ADD CONSTRAINT ck_site_closures_kind "
            "CHECK (kind IN ('closed', 'open'))"
        )
        bind.execute(sa.text("SELECT set_config('sarcoma.action', :a, true)"), {"a": ACTION})
    _installation(bind, audit_here=not postgresql)


def _installation(bind: sa.Connection, *, audit_here: bool) -> None:
    from sarcoma_sched.db.audit import canonical, entry_hash
    from sarcoma_sched.db.types import UtcDateTime

    if bind.execute(sa.text("SELECT count(*) FROM installation")).scalar_one():
        return
    # A trial's database (it has sites) gets its id here; an empty one being set up gets it
    # from `init`, which chooses its purpose (a trial or the demo).
    if not bind.execute(sa.text("SELECT count(*) FROM sites")).scalar_one():
        return
    now = dt.datetime.now(dt.UTC)
    row = {"id": 1, "uid": str(uuid.uuid4()), "purpose": "trial", "created_at": now}
    installation = sa.table(
        "installation",
        sa.column("id", sa.Integer),
        sa.column("uid", sa.String),
        sa.column("purpose", sa.String),
        sa.column("created_at", UtcDateTime()),
    )
    bind.execute(installation.insert(), [row])
    if not audit_here:
        return
    head = sa.table("audit_head", sa.column("id"), sa.column("seq"), sa.column("hash"))
    log = sa.table(
        "audit_log",
        *(sa.column(c) for c in ("seq", "at", "actor", "action", "entity", "entity_id")),
        sa.column("change"),
        sa.column("prev_hash"),
        sa.column("hash"),
    )
    found = bind.execute(sa.select(head.c.seq, head.c.hash).where(head.c.id == 1)).first()
    if found is None:  # pragma: no cover - every database since 0001 has its head row
        return
    seq, prev = found
    seq += 1
    at = now.isoformat(timespec="microseconds")
    change = canonical({"op": "insert", "before": None, "after": row})
    digest = entry_hash(seq, at, "migration", ACTION, "installation", "1", change, prev)
    bind.execute(
        log.insert(),
        [
            {
                "seq": seq,
                "at": at,
                "actor": "migration",
                "action": ACTION,
                "entity": "installation",
                "entity_id": "1",
                "change": change,
                "prev_hash": prev,
                "hash": digest,
            }
        ],
    )
    bind.execute(head.update().where(head.c.id == 1).values(seq=seq, hash=digest))


def downgrade() -> None:
    from sarcoma_sched.db.downgrade_guard import refuse_data_loss

    # Open days are a site's record; the installation row stays (0006 made its table, and the
    # UIDs stored with it stay what they are).
    refuse_data_loss(
        op.get_bind(),
        "0012",
        {"site_closures.kind": "SELECT * FROM site_closures WHERE kind = 'open' ORDER BY id"},
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE site_closures DROP CONSTRAINT IF EXISTS ck_site_closures_kind")
    op.execute("ALTER TABLE site_closures DROP COLUMN kind")
