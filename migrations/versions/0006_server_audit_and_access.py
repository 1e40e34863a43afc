"""Trust on PostgreSQL: the audit trail written by the server, access grants, key commitments.

Until now the engine wrote its own audit entries (``db.audit.record_flush``): an honest client's
promise, with the client's clock and a free-text actor. On PostgreSQL the server now writes them:

* an ``AFTER ... FOR EACH ROW`` trigger on every audited table appends one entry per changed row,
  whoever changed it and however (the CLI, ``psql``, a migration); the actor is
  ``session_user`` (the authenticated login, which ``SET ROLE`` cannot change) and ``at`` the
  server's clock. The action is what the engine declared for its transaction
  (``sarcoma.action``), ``sql`` when nobody did;
* the chain is extended under the head row's lock, so concurrent writers still form one chain;
* the entry's hash is computed by the server exactly as ``db.audit.entry_hash`` computes it
  (canonical JSON of the same eight fields), so one verifier checks entries from either writer;
* the log is append-only: UPDATE, DELETE and TRUNCATE of ``audit_log`` raise, TRUNCATE of any
  audited table raises (it would bypass the row triggers), and ``*_by`` columns are stamped with
  the login so a row cannot claim another author.

A table owner or superuser can still disable triggers; ``audit anchor`` (a copy of the chain head
kept outside the database) is what catches that. SQLite keeps the engine-written trail: whoever
can write the file is trusted, and the README says so.

New tables on both backends: ``installation`` (this database's id, and whether it is a demo),
``access_grants`` (who holds which role at which site; on SQLite a
record only) and ``trial_keys`` (the commitment to a trial's allocation secret, written when the
trial first allocates, so a different key is refused from then on).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Table -> its primary key column (the audit entry's entity_id), as of this revision.
AUDITED = {
    "protocol_versions": "id",
    "sites": "code",
    "site_closures": "id",
    "site_resources": "id",
    "patients": "id",
    "screenings": "id",
    "enrollments": "id",
    "allocations": "id",
    "scheduled_events": "id",
    "participation_ends": "id",
    "installation": "id",
    "access_grants": "id",
    "trial_keys": "protocol_id",
}

# Columns that name who wrote a row: the server puts the login there.
AUTHOR_COLUMNS = {
    "protocol_versions": "loaded_by",
    "screenings": "recorded_by",
    "enrollments": "enrolled_by",
    "allocations": "allocated_by",
    "participation_ends": "recorded_by",
    "access_grants": "granted_by",
    "trial_keys": "committed_by",
}


def _functions(schema: str) -> str:
    path = f'SET search_path = "{schema}", pg_temp'
    return f"""
-- Python's datetime.isoformat() of an aware UTC instant: the engine's rows and the server's
-- entries then spell one instant one way, and the verifier compares them as text.
CREATE FUNCTION sarcoma_audit_ts(ts timestamp) RETURNS text
LANGUAGE sql IMMUTABLE {path} AS $$
  SELECT to_char(ts, 'YYYY-MM-DD"T"HH24:MI:SS')
      || CASE WHEN date_part('microseconds', ts)::bigint % 1000000 = 0 THEN ''
              ELSE to_char(ts, '.US') END
      || '+00:00'
$$;

-- A row as the engine's snapshot() spells it: to_jsonb, with naive-UTC timestamps rewritten.
CREATE FUNCTION sarcoma_audit_row(rel regclass, r jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE {path} AS $$
DECLARE
  col name;
BEGIN
  FOR col IN
    SELECT attname FROM pg_attribute
    WHERE attrelid = rel AND attnum > 0 AND NOT attisdropped
      AND atttypid = 'timestamp'::regtype
  LOOP
    IF r ->> col IS NOT NULL THEN
      r := jsonb_set(r, ARRAY[col::text], to_jsonb(sarcoma_audit_ts((r ->> col)::timestamp)));
    END IF;
  END LOOP;
  RETURN r;
END
$$;

-- Appends one entry. The head row's lock orders concurrent writers into one chain; the hash is
-- db.audit.entry_hash: sha256 of the canonical JSON array of the eight fields.
CREATE FUNCTION sarcoma_audit_append(p_entity text, p_entity_id text, p_change text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER {path} AS $$
DECLARE
  s integer;
  prev text;
  stamp text := sarcoma_audit_ts((clock_timestamp() AT TIME ZONE 'UTC')::timestamp);
  who text := session_user;
  act text := left(coalesce(nullif(current_setting('sarcoma.action', true), ''), 'sql'), 64);
  digest text;
BEGIN
  SELECT seq, hash INTO s, prev FROM audit_head WHERE id = 1 FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'audit head row is missing';
  END IF;
  s := s + 1;
  digest := encode(sha256(convert_to(
    '[' || s || ',' || to_json(stamp)::text || ',' || to_json(who)::text || ','
        || to_json(act)::text || ',' || to_json(p_entity)::text || ','
        || to_json(p_entity_id)::text || ',' || to_json(p_change)::text || ','
        || to_json(prev)::text || ']',
    'UTF8')), 'hex');
  INSERT INTO audit_log (seq, at, actor, action, entity, entity_id, change, prev_hash, hash)
  VALUES (s, stamp, who, act, p_entity, p_entity_id, p_change, prev, digest);
  UPDATE audit_head SET seq = s, hash = digest WHERE id = 1;
END
$$;

CREATE FUNCTION sarcoma_audit_trigger() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER {path} AS $$
DECLARE
  before jsonb;
  after jsonb;
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    before := sarcoma_audit_row(TG_RELID, to_jsonb(OLD));
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    after := sarcoma_audit_row(TG_RELID, to_jsonb(NEW));
  END IF;
  IF TG_OP = 'UPDATE' AND before = after THEN
    RETURN NULL;  -- the engine records no entry for a row written back unchanged either
  END IF;
  PERFORM sarcoma_audit_append(
    TG_TABLE_NAME,
    coalesce(after, before) ->> TG_ARGV[0],
    jsonb_build_object('op', lower(TG_OP), 'before', before, 'after', after)::text
  );
  RETURN NULL;
END
$$;

-- A note changes no row (an unblinding); the engine calls this instead of writing the log.
CREATE FUNCTION sarcoma_audit_note(p_entity text, p_entity_id text, p_what jsonb)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER {path} AS $$
BEGIN
  IF p_entity IN ({", ".join(f"'{t}'" for t in AUDITED)}) THEN
    RAISE EXCEPTION '% rows are audited by their changes, not by notes', p_entity;
  END IF;
  PERFORM sarcoma_audit_append(
    p_entity, p_entity_id,
    jsonb_build_object('op', 'note', 'before', NULL, 'after', p_what)::text
  );
END
$$;

-- The engine's write lock (the head row, taken first in every write transaction) and its
-- declared action, for roles that may not touch the head row themselves. Returns the login.
CREATE FUNCTION sarcoma_begin_write(p_action text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER {path} AS $$
BEGIN
  PERFORM 1 FROM audit_head WHERE id = 1 FOR UPDATE;
  PERFORM set_config('sarcoma.action', left(p_action, 64), true);
  RETURN session_user;
END
$$;

CREATE FUNCTION sarcoma_refuse_rewrite() RETURNS trigger
LANGUAGE plpgsql {path} AS $$
BEGIN
  RAISE EXCEPTION 'the audit trail is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE FUNCTION sarcoma_stamp_author() RETURNS trigger
LANGUAGE plpgsql {path} AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    NEW := jsonb_populate_record(NEW, jsonb_build_object(TG_ARGV[0], session_user));
  ELSE
    -- Who wrote a row stays who wrote it; a correction is attributed by its audit entry.
    NEW := jsonb_populate_record(NEW, jsonb_build_object(TG_ARGV[0], to_jsonb(OLD) -> TG_ARGV[0]));
  END IF;
  RETURN NEW;
END
$$;
"""


def _triggers() -> list[str]:
    statements = []
    for table, pk in AUDITED.items():
        statements.append(
            f"CREATE TRIGGER sarcoma_audit AFTER INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION sarcoma_audit_trigger('{pk}')"
        )
        statements.append(
            f"CREATE TRIGGER sarcoma_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION sarcoma_refuse_rewrite()"
        )
    for table, column in AUTHOR_COLUMNS.items():
        statements.append(
            f"CREATE TRIGGER sarcoma_author BEFORE INSERT OR UPDATE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION sarcoma_stamp_author('{column}')"
        )
    statements += [
        "CREATE TRIGGER sarcoma_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION sarcoma_refuse_rewrite()",
        "CREATE TRIGGER sarcoma_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION sarcoma_refuse_rewrite()",
        "CREATE TRIGGER sarcoma_head_stays BEFORE DELETE ON audit_head "
        "FOR EACH ROW EXECUTE FUNCTION sarcoma_refuse_rewrite()",
        "CREATE TRIGGER sarcoma_no_truncate BEFORE TRUNCATE ON audit_head "
        "FOR EACH STATEMENT EXECUTE FUNCTION sarcoma_refuse_rewrite()",
    ]
    return statements


FUNCTIONS = (
    "sarcoma_audit_ts(timestamp)",
    "sarcoma_audit_row(regclass, jsonb)",
    "sarcoma_audit_append(text, text, text)",
    "sarcoma_audit_trigger()",
    "sarcoma_audit_note(text, text, jsonb)",
    "sarcoma_begin_write(text)",
    "sarcoma_refuse_rewrite()",
    "sarcoma_stamp_author()",
)


def upgrade() -> None:
    # Its one row is written by the engine (`init`, `demo`), through the audited write path.
    op.create_table(
        "installation",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("uid", sa.String(length=36), nullable=False),
        sa.Column("purpose", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_installation_single_row")),
        sa.CheckConstraint("purpose IN ('trial', 'demo')", name=op.f("ck_installation_purpose")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installation")),
    )
    op.create_table(
        "access_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("login", sa.String(length=63), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("site_code", sa.String(length=16), nullable=True),
        sa.Column("granted_at", sa.DateTime(), nullable=False),
        sa.Column("granted_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_code"], ["sites.code"], name=op.f("fk_access_grants_site_code_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_grants")),
        sa.UniqueConstraint(
            "login", "role", "site_code", name=op.f("uq_access_grants_login_role_site_code")
        ),
    )
    op.create_table(
        "trial_keys",
        sa.Column("protocol_id", sa.String(length=32), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("committed_at", sa.DateTime(), nullable=False),
        sa.Column("committed_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("protocol_id", name=op.f("pk_trial_keys")),
    )
    # Reasons become codes (vocabulary.ReasonCode); what a coordinator typed goes to `note`,
    # which stays in the database. Plain ALTER TABLE: a batch rebuild would trip the view.
    for table in NOTED:
        op.add_column(table, sa.Column("note", sa.Text(), nullable=True))
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        _move_notes(bind, audit_here=True)
        return
    schema = bind.execute(sa.text("SELECT current_schema()")).scalar_one()
    # Through the driver without parameters: the function bodies use % (format, modulo),
    # which a parameterised execute would read as placeholders.
    raw = bind.connection.driver_connection
    raw.execute(_functions(schema))
    for statement in _triggers():
        raw.execute(statement)
    # From here the server audits every change, this migration's own included.
    bind.execute(sa.text("SELECT set_config('sarcoma.action', :a, true)"), {"a": ACTION})
    _move_notes(bind, audit_here=False)


ACTION = "migrate 0006"
NOTED = ("site_closures", "scheduled_events", "participation_ends")
# The codes as of this revision (vocabulary.ReasonCode); a stored reason not among them is
# free text, moved to `note`.
CODES = (
    "patient_request",
    "toxicity",
    "progression",
    "intercurrent_illness",
    "clinician_decision",
    "site_closed",
    "capacity",
    "logistics",
    "data_error",
    "ineligible",
    "other",
)


def _move_notes(bind: sa.Connection, *, audit_here: bool) -> None:
    """Free-text reasons to `note`, `other` in their place; a deviation that quoted the text
    quotes the code. On SQLite the entries are chained here, as 0005 did; on PostgreSQL the
    triggers write them."""
    import datetime as dt
    import json

    from sarcoma_sched.db.audit import canonical, entry_hash

    codes = ", ".join(f"'{c}'" for c in CODES)
    changes = []
    for table in NOTED:
        extra = ", deviation" if table == "scheduled_events" else ""
        rows = bind.execute(
            sa.text(
                f"SELECT id, reason{extra} FROM {table} "
                f"WHERE reason IS NOT NULL AND reason <> '' AND reason NOT IN ({codes}) "
                "ORDER BY id"
            )
        ).all()
        for row in rows:
            new = {"reason": "other", "note": row.reason}
            if extra and row.deviation:
                new["deviation"] = row.deviation.replace(f": {row.reason}", ": other")
            sets = ", ".join(f"{k} = :{k}" for k in new)
            bind.execute(
                sa.text(f"UPDATE {table} SET {sets} WHERE id = :id"), {**new, "id": row.id}
            )
            changes.append((table, str(row.id), new))
    if not audit_here or not changes:
        return
    seq, prev = bind.execute(sa.text("SELECT seq, hash FROM audit_head WHERE id = 1")).one()
    at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    for table, entity_id, new in changes:
        last = bind.execute(
            sa.text(
                "SELECT change FROM audit_log WHERE entity = :e AND entity_id = :i "
                "ORDER BY seq DESC LIMIT 1"
            ),
            {"e": table, "i": entity_id},
        ).scalar()
        before = json.loads(last).get("after") if last else None
        if before is None:
            continue  # a row with no history is reported by `audit verify` as it was before
        seq += 1
        change = canonical({"op": "update", "before": before, "after": before | new})
        digest = entry_hash(seq, at, "migration", ACTION, table, entity_id, change, prev)
        bind.execute(
            sa.text(
                "INSERT INTO audit_log (seq, at, actor, action, entity, entity_id, change, "
                "prev_hash, hash) VALUES (:seq, :at, 'migration', :action, :entity, :id, "
                ":change, :prev, :hash)"
            ),
            {
                "seq": seq,
                "at": at,
                "action": ACTION,
                "entity": table,
                "id": entity_id,
                "change": change,
                "prev": prev,
                "hash": digest,
            },
        )
        prev = digest
    bind.execute(
        sa.text("UPDATE audit_head SET seq = :seq, hash = :hash WHERE id = 1"),
        {"seq": seq, "hash": prev},
    )


def downgrade() -> None:
    from sarcoma_sched.db.downgrade_guard import refuse_data_loss

    bind = op.get_bind()
    # Grants, key commitments and the installation's id are trial records: refused unless
    # forced, and then written to the named file first.
    refuse_data_loss(
        bind,
        "0006",
        {
            "access_grants": "SELECT * FROM access_grants ORDER BY id",
            "trial_keys": "SELECT * FROM trial_keys ORDER BY protocol_id",
            "installation": "SELECT * FROM installation",
            **{
                f"{table}.note": f"SELECT id, note FROM {table} WHERE note IS NOT NULL"
                for table in NOTED
            },
        },
    )
    if bind.dialect.name == "postgresql":
        for table in (*AUDITED, "audit_log", "audit_head"):
            for trigger in (
                "sarcoma_audit",
                "sarcoma_no_truncate",
                "sarcoma_author",
                "sarcoma_append_only",
                "sarcoma_head_stays",
            ):
                bind.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        for function in FUNCTIONS:
            bind.exec_driver_sql(f"DROP FUNCTION IF EXISTS {function}")
    op.drop_table("trial_keys")
    op.drop_table("access_grants")
    op.drop_table("installation")
    for table in NOTED:
        # SQLite 3.35+ drops a column in place; a batch rebuild would trip the view.
        op.execute(f"ALTER TABLE {table} DROP COLUMN note")
