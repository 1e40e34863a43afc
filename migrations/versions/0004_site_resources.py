"""Site resources: theatre sessions, infusion chairs and RT course slots per weekday or week.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "site_resources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_code", sa.String(length=16), nullable=False),
        sa.Column("resource", sa.String(length=32), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("capacity >= 0", name=op.f("ck_site_resources_capacity")),
        sa.CheckConstraint(
            "weekday IS NULL OR (weekday >= 0 AND weekday <= 6)",
            name=op.f("ck_site_resources_weekday"),
        ),
        sa.ForeignKeyConstraint(
            ["site_code"], ["sites.code"], name=op.f("fk_site_resources_site_code_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site_resources")),
        sa.UniqueConstraint(
            "site_code",
            "resource",
            "weekday",
            name=op.f("uq_site_resources_site_code_resource_weekday"),
        ),
    )
    with op.batch_alter_table("site_resources") as batch:
        batch.create_index(batch.f("ix_site_resources_site_code"), ["site_code"], unique=False)


def downgrade() -> None:
    from sarcoma_sched.db.downgrade_guard import refuse_data_loss

    refuse_data_loss(
        op.get_bind(), "0004", {"site_resources": "SELECT * FROM site_resources ORDER BY id"}
    )
    with op.batch_alter_table("site_resources") as batch:
        batch.drop_index(batch.f("ix_site_resources_site_code"))
    op.drop_table("site_resources")
