"""A screening recorded by mistake can be voided: kept, audited, left out of the CONSORT flow.

A screening typed against the wrong patient, or with a value later found mistyped, must not
stay an "excluded" box of the CONSORT flow, yet it may never be deleted (the audit trail and an
inspector both need to see what was recorded and why it no longer counts). ``screen void``
sets four columns of ``screenings``, all NULL until then:

* ``voided_at``: when (UTC), ``voided_by``: who (on PostgreSQL the trigger below stamps the
  login, as ``sarcoma_stamp_author`` does for ``recorded_by``);
* ``void_reason``: the reason code (``vocabulary.ReasonCode``), ``void_note``: the words typed
  beside it, which stay in the database.

Site roles already hold UPDATE on ``screenings`` under its row-level security policy (migration
0006, ``access setup``): a coordinator voids only a screening of a patient at their own site,
and no new grant is needed since the grants are per table.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_COLUMNS = ("voided_at", "voided_by", "void_reason", "void_note")


def _schema() -> str:
    return str(op.get_bind().execute(sa.text("SELECT current_schema()")).scalar_one())


def upgrade() -> None:
    # SQLite 3.35+ adds a column in place; a batch rebuild would trip the analyst views.
    op.add_column("screenings", sa.Column("voided_at", sa.DateTime(), nullable=True))
    op.add_column("screenings", sa.Column("voided_by", sa.String(length=64), nullable=True))
    op.add_column("screenings", sa.Column("void_reason", sa.String(length=32), nullable=True))
    op.add_column("screenings", sa.Column("void_note", sa.Text(), nullable=True))
    if op.get_bind().dialect.name != "postgresql":
        return
    path = f'SET search_path = "{_schema()}", pg_temp'
    # Who voided is the login that set voided_at, whatever the client wrote; once set, the void
    # (and who made it) stays: a void is never undone, only audited.
    op.execute(
        f"""CREATE FUNCTION sarcoma_stamp_voider() RETURNS trigger
LANGUAGE plpgsql {path} AS $$
BEGIN
  IF OLD.voided_at IS NOT NULL THEN
    IF NEW.voided_at IS DISTINCT FROM OLD.voided_at OR NEW.voided_by IS DISTINCT FROM OLD.voided_by
       OR NEW.void_reason IS DISTINCT FROM OLD.void_reason THEN
      RAISE EXCEPTION 'screening % is already voided', OLD.id
        USING ERRCODE = 'invalid_parameter_value';
    END IF;
  ELSIF NEW.voided_at IS NOT NULL THEN
    NEW.voided_by := session_user;
  END IF;
  RETURN NEW;
END
$$"""
    )
    op.execute(
        "CREATE TRIGGER sarcoma_voider BEFORE UPDATE ON screenings "
        "FOR EACH ROW EXECUTE FUNCTION sarcoma_stamp_voider()"
    )


def downgrade() -> None:
    from sarcoma_sched.db.downgrade_guard import refuse_data_loss

    refuse_data_loss(
        op.get_bind(),
        "0010",
        {
            "screenings.voided_at": (
                "SELECT id, voided_at, voided_by, void_reason, void_note FROM screenings "
                "WHERE voided_at IS NOT NULL"
            )
        },
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS sarcoma_voider ON screenings")
        op.execute("DROP FUNCTION IF EXISTS sarcoma_stamp_voider()")
    for column in reversed(_COLUMNS):
        op.execute(f"ALTER TABLE screenings DROP COLUMN {column}")
