"""A site setting: may an inpatient course run into a holiday block?

By default the planner keeps a multi-day inpatient infusion (ifosfamide D1-5) clear of a run of
three or more non-working days (Spring Festival, Golden Week, a holiday joined to a weekend): the
ward runs on a skeleton staff, pharmacy may not compound, and a problem on day 3 waits for the
holiday to end. A site whose ward runs through holidays says so with
``site set CODE --inpatient-over-holidays allow``; its stays are then placed on the target even
across a block, and not flagged.

``sites.inpatient_over_holidays`` is false unless a site relaxes the rule, so existing sites keep
the safe default.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite 3.35+ adds a column in place; a batch rebuild would trip the analyst views.
    op.add_column(
        "sites",
        sa.Column(
            "inpatient_over_holidays", sa.Boolean(), nullable=False, server_default=sa.false()
        ),
    )


def downgrade() -> None:
    from sarcoma_sched.db.downgrade_guard import refuse_data_loss

    refuse_data_loss(
        op.get_bind(),
        "0009",
        {
            "sites.inpatient_over_holidays": (
                "SELECT code, inpatient_over_holidays FROM sites WHERE inpatient_over_holidays"
            )
        },
    )
    op.execute("ALTER TABLE sites DROP COLUMN inpatient_over_holidays")
