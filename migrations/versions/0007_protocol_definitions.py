"""What a site role and the server's draw read of a protocol, derived from its source.

Coordinators and monitors may not read a randomized protocol's source: its block sizes (or
minimization probability and weights), with the arms they see, help predict the next arm. They
read ``site_definition`` instead (the definition as JSON, the method reduced to its design,
ratio and factors), and the server's draw function reads ``allocation`` (the method and the
arms), so no client passes the method it wants to be drawn with.

Existing versions get both from their sources, parsed by the engine's own parser; the table is
derived data, not audited (``audit verify`` derives it again), so a downgrade drops nothing
that cannot be rebuilt.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "protocol_definitions",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("site_definition", sa.Text(), nullable=False),
        sa.Column("allocation", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["protocol_versions.id"],
            name="fk_protocol_definitions_version_id_protocol_versions",
        ),
        sa.PrimaryKeyConstraint("version_id", name="pk_protocol_definitions"),
    )
    from sarcoma_sched.protocol.concealment import server_allocation, site_definition
    from sarcoma_sched.protocol.loader import parse_protocol

    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, source, source_name FROM protocol_versions")).all()
    for row in rows:
        protocol = parse_protocol(row.source, row.source_name)
        bind.execute(
            sa.text(
                "INSERT INTO protocol_definitions (version_id, site_definition, allocation) "
                "VALUES (:id, :site, :allocation)"
            ),
            {
                "id": row.id,
                "site": site_definition(protocol),
                "allocation": server_allocation(protocol),
            },
        )


def downgrade() -> None:
    op.drop_table("protocol_definitions")
