"""Amendments site by site: which protocol version a site runs from which date, and each
patient's moves from one version to another.

A trial's amendment is approved by each site's ethics committee on its own date, and a patient
moves to it only when re-consenting. Two tables record that:

* ``protocol_activations``: version ``version_id`` of trial ``protocol_id`` is active at site
  ``site_code`` from its ethics approval date ``approved_on`` (``protocol activate``, trial admin
  only). A row with neither site nor date is the trial's *baseline*: the version every site runs
  from the beginning, until an activation there says otherwise. ``protocol load`` writes it for a
  trial's first version; later versions run nowhere until activated;
* ``protocol_transitions``: a patient moved from one version to another on a re-consent date
  (``transition``); the enrolment then names the new version.

Back-fill: each trial already loaded gets its newest version as baseline, which is what every
site screened new patients under until now (the newest version was "current" everywhere), so
nothing changes for a database that never activates anything. Patients keep the version they
were enrolled under. The rows are audited: on SQLite this migration chains their entries
(actor ``migration``); on PostgreSQL the triggers it adds write them.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ACTION = "migrate 0011"
_AUTHORS = {"protocol_activations": "activated_by", "protocol_transitions": "recorded_by"}


def upgrade() -> None:
    op.create_table(
        "protocol_activations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("protocol_id", sa.String(length=32), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("site_code", sa.String(length=16), nullable=True),
        sa.Column("approved_on", sa.Date(), nullable=True),
        sa.Column("activated_at", sa.DateTime(), nullable=False),
        sa.Column("activated_by", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            "(site_code IS NULL AND approved_on IS NULL) "
            "OR (site_code IS NOT NULL AND approved_on IS NOT NULL)",
            name=op.f("ck_protocol_activations_baseline"),
        ),
        sa.ForeignKeyConstraint(
            ["site_code"], ["sites.code"], name=op.f("fk_protocol_activations_site_code_sites")
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["protocol_versions.id"],
            name=op.f("fk_protocol_activations_version_id_protocol_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_protocol_activations")),
        sa.UniqueConstraint(
            "version_id", "site_code", name=op.f("uq_protocol_activations_version_id_site_code")
        ),
    )
    op.create_index(
        op.f("ix_protocol_activations_protocol_id_site_code_approved_on"),
        "protocol_activations",
        ["protocol_id", "site_code", "approved_on"],
    )
    # One baseline per trial (NULLs are distinct in the unique constraint above).
    op.create_index(
        "ix_protocol_activations_baseline",
        "protocol_activations",
        ["protocol_id"],
        unique=True,
        sqlite_where=sa.text("site_code IS NULL"),
        postgresql_where=sa.text("site_code IS NULL"),
    )
    op.create_table(
        "protocol_transitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("from_version_id", sa.Integer(), nullable=False),
        sa.Column("to_version_id", sa.Integer(), nullable=False),
        sa.Column("reconsent_date", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_protocol_transitions_patient_id_patients"),
        ),
        sa.ForeignKeyConstraint(
            ["from_version_id"],
            ["protocol_versions.id"],
            name=op.f("fk_protocol_transitions_from_version_id_protocol_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["to_version_id"],
            ["protocol_versions.id"],
            name=op.f("fk_protocol_transitions_to_version_id_protocol_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_protocol_transitions")),
    )
    op.create_index(
        op.f("ix_protocol_transitions_patient_id"), "protocol_transitions", ["patient_id"]
    )
    bind = op.get_bind()
    postgresql = bind.dialect.name == "postgresql"
    if postgresql:
        # The triggers of migration 0006 on the new tables: the server audits them and stamps
        # who wrote a row with the login.
        for table, author in _AUTHORS.items():
            op.execute(
                f"CREATE TRIGGER sarcoma_audit AFTER INSERT OR UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION sarcoma_audit_trigger('id')"
            )
            op.execute(
                f"CREATE TRIGGER sarcoma_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION sarcoma_refuse_rewrite()"
            )
            op.execute(
                f"CREATE TRIGGER sarcoma_author BEFORE INSERT OR UPDATE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION sarcoma_stamp_author('{author}')"
            )
        bind.execute(sa.text("SELECT set_config('sarcoma.action', :a, true)"), {"a": ACTION})
    _backfill(bind, audit_here=not postgresql)


def _backfill(bind: sa.Connection, *, audit_here: bool) -> None:
    from sarcoma_sched.db.audit import canonical, entry_hash
    from sarcoma_sched.db.types import UtcDateTime

    activations = sa.table(
        "protocol_activations",
        sa.column("id", sa.Integer),
        sa.column("protocol_id", sa.String),
        sa.column("version_id", sa.Integer),
        sa.column("site_code", sa.String),
        sa.column("approved_on", sa.Date),
        sa.column("activated_at", UtcDateTime()),
        sa.column("activated_by", sa.String),
    )
    newest = bind.execute(
        sa.text(
            "SELECT protocol_id, max(id) AS version_id FROM protocol_versions "
            "GROUP BY protocol_id ORDER BY protocol_id"
        )
    ).all()
    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            "id": n,
            "protocol_id": row.protocol_id,
            "version_id": row.version_id,
            "site_code": None,
            "approved_on": None,
            "activated_at": now,
            "activated_by": "migration",
        }
        for n, row in enumerate(newest, start=1)
    ]
    if not rows:
        return
    bind.execute(activations.insert(), rows)
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
    seq, prev = bind.execute(sa.select(head.c.seq, head.c.hash).where(head.c.id == 1)).one()
    at = now.isoformat(timespec="microseconds")
    entries = []
    for row in rows:
        seq += 1
        change = canonical({"op": "insert", "before": None, "after": row})
        entity_id = str(row["id"])
        digest = entry_hash(
            seq, at, "migration", ACTION, "protocol_activations", entity_id, change, prev
        )
        entries.append(
            {
                "seq": seq,
                "at": at,
                "actor": "migration",
                "action": ACTION,
                "entity": "protocol_activations",
                "entity_id": entity_id,
                "change": change,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    bind.execute(log.insert(), entries)
    bind.execute(head.update().where(head.c.id == 1).values(seq=seq, hash=prev))


def downgrade() -> None:
    from sarcoma_sched.db.downgrade_guard import refuse_data_loss

    # Site activations and re-consents are trial records; a baseline is derived from what was
    # loaded (the newest version), which is what the older code runs everywhere anyway.
    refuse_data_loss(
        op.get_bind(),
        "0011",
        {
            "protocol_activations": (
                "SELECT * FROM protocol_activations WHERE site_code IS NOT NULL ORDER BY id"
            ),
            "protocol_transitions": "SELECT * FROM protocol_transitions ORDER BY id",
        },
    )
    op.drop_index("ix_protocol_transitions_patient_id", table_name="protocol_transitions")
    op.drop_table("protocol_transitions")
    op.drop_index("ix_protocol_activations_baseline", table_name="protocol_activations")
    op.drop_index(
        "ix_protocol_activations_protocol_id_site_code_approved_on",
        table_name="protocol_activations",
    )
    op.drop_table("protocol_activations")
