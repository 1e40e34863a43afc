"""What a coordinator's pin does when a later re-plan makes its date unsafe.

A pinned event (``reschedule``) keeps its date through re-plans. When a delay upstream makes
that date break a hard constraint (surgery inside the anlotinib washout), the planner now
releases the pin and moves the event to the first valid day, unless the coordinator said the
date must stand (``reschedule --pin-policy keep``: a theatre slot that cannot move): then the
event keeps it, flagged ``pin_breaks_constraint``, and calendars show it TENTATIVE.

``scheduled_events.pin_policy`` is NULL for the default (release) and ``keep`` otherwise, so
existing rows need no value and their audit entries stay as they are (a NULL column absent
from a recorded state is no change).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite 3.35+ adds a column in place; a batch rebuild would trip the analyst views.
    op.add_column("scheduled_events", sa.Column("pin_policy", sa.String(8), nullable=True))


def downgrade() -> None:
    from sarcoma_sched.db.downgrade_guard import refuse_data_loss

    refuse_data_loss(
        op.get_bind(),
        "0008",
        {
            "scheduled_events.pin_policy": (
                "SELECT id, pin_policy FROM scheduled_events WHERE pin_policy IS NOT NULL"
            )
        },
    )
    op.execute("ALTER TABLE scheduled_events DROP COLUMN pin_policy")
