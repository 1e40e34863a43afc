"""PostgreSQL's own machinery for a multi-site trial: roles, grants, row-level security.

``setup_statements`` is what ``sarcoma-sched access setup`` runs, once, as the database owner:

* five NOLOGIN group roles, ``<prefix>_coordinator``, ``_data_manager``, ``_statistician``,
  ``_monitor`` and ``_trial_admin`` (the prefix keeps two trial databases on one server apart),
  and a NOLOGIN ``<prefix>_owner`` that owns every table, view, sequence and function, so no
  person's login owns anything and so none bypasses row-level security as an owner;
* each group granted only what its column of the access matrix needs (README, "Access");
* row-level security, ENABLEd and FORCEd, on every table that holds site or patient data: a row
  is visible (and writable, for roles that may write) when its site is one of the login's sites
  in ``access_grants``, or the login holds an all-sites role. Tables keyed by patient follow the
  patient row, whose own policy decides;
* analyst views switched to ``security_invoker`` so a view cannot read past the policies;
* ``sarcoma_access_grant`` / ``sarcoma_access_revoke``: SECURITY DEFINER functions, callable by
  trial admins, that record the grant (audited by the triggers of migration 0006) and make the
  login a member of the group; a trial admin is not a member of the groups it hands out.

Who is acting is always ``session_user``: the authenticated login, which ``SET ROLE`` does not
change. A superuser still bypasses all of this; the audit anchor is the check on them.
"""

from __future__ import annotations

import re

from sarcoma_sched.db.models import Allocation, ProtocolDefinition, ProtocolVersion
from sarcoma_sched.protocol.allocation import SITE_FACTOR
from sarcoma_sched.vocabulary import DatabasePurpose

__all__ = [
    "ALL_SITES_ROLES",
    "ROLES",
    "SITE_ROLES",
    "group_name",
    "owner_name",
    "setup_statements",
    "valid_prefix",
]

ROLES = ("coordinator", "data_manager", "statistician", "monitor", "trial_admin")
# Roles held at named sites; the others see every site.
SITE_ROLES = ("coordinator", "monitor")
ALL_SITES_ROLES = ("data_manager", "statistician", "trial_admin")

# Tables with a site_code column, and tables whose rows belong to a patient.
SITE_TABLES = ("sites", "site_closures", "site_resources", "patients")
PATIENT_TABLES = (
    "screenings",
    "enrollments",
    "allocations",
    "scheduled_events",
    "participation_ends",
    "protocol_transitions",
)
SERIAL_TABLES = (
    "protocol_versions",
    "protocol_activations",
    "protocol_transitions",
    "site_closures",
    "site_resources",
    "patients",
    "screenings",
    "enrollments",
    "allocations",
    "scheduled_events",
    "participation_ends",
    "access_grants",
)

_PREFIX = re.compile(r"[a-z][a-z0-9_]{0,39}")


def valid_prefix(prefix: str) -> bool:
    # Role names are identifiers; a tame prefix needs no quoting anywhere and leaves room for
    # the longest suffix ("_data_manager") inside PostgreSQL's 63-byte limit.
    return bool(_PREFIX.fullmatch(prefix))


def group_name(prefix: str, role: str) -> str:
    return f"{prefix}_{role}"


def owner_name(prefix: str) -> str:
    return f"{prefix}_owner"


# What a site role may not read, with the arms it sees: a randomized protocol's source (block
# sizes, probability, weights), where in the sequence a patient fell, the minimization scores.
# It reads protocol_definitions.site_definition instead (protocol.concealment).
CONCEALED_COLUMNS: dict[str, tuple[str, ...]] = {
    "protocol_versions": ("source",),
    "allocations": ("position", "detail"),
    "protocol_definitions": ("allocation",),
}
_CONCEALED_FROM = ("coordinator", "monitor")


def _visible(table: str) -> str:
    """``col, ...``: the columns of ``table`` a site role may SELECT."""
    model = {
        "protocol_versions": ProtocolVersion,
        "allocations": Allocation,
        "protocol_definitions": ProtocolDefinition,
    }[table]
    hidden = CONCEALED_COLUMNS[table]
    columns = [c.name for c in model.__table__.columns if c.name not in hidden]
    return ", ".join(columns)


def _select_grants() -> dict[str, dict[str, tuple[str, ...]]]:
    """Table privileges per group: {group: {privileges: tables}}. A site role's SELECT on the
    tables of CONCEALED_COLUMNS is granted column by column (``_column_grants``)."""
    reference = (
        "protocol_versions",
        "protocol_definitions",
        "protocol_activations",
        "trial_keys",
        "installation",
        "alembic_version",
    )
    site_data = SITE_TABLES
    patient_data = ("patients", *PATIENT_TABLES)
    everything = (*reference, *site_data, *patient_data, "access_grants")
    return {
        "coordinator": {
            "SELECT": (*reference, *site_data, *patient_data, "access_grants"),
            # No DELETE: nothing clinical is ever deleted (withdrawals and cancellations are
            # rows of their own). Allocations only through the engine's checks (see below).
            "INSERT, UPDATE": patient_data,
        },
        "data_manager": {
            "SELECT": (*everything, "audit_log", "audit_head"),
            "UPDATE": patient_data,
        },
        "monitor": {"SELECT": everything},
        "statistician": {"SELECT": (*everything, "audit_log", "audit_head")},
        "trial_admin": {
            "SELECT": (*everything, "audit_log", "audit_head"),
            "INSERT, UPDATE, DELETE": ("sites", "site_closures", "site_resources"),
            "INSERT, UPDATE": ("protocol_versions", "trial_keys"),
            # Which version a site runs from its ethics approval (``protocol activate``).
            "INSERT": ("protocol_definitions", "protocol_activations"),
        },
    }


def _grant_statements(groups: dict[str, str]) -> list[str]:
    out = []
    for role, grants in _select_grants().items():
        for privileges, tables in grants.items():
            chosen = set(tables)
            if role in _CONCEALED_FROM and privileges == "SELECT":
                for table in sorted(chosen & set(CONCEALED_COLUMNS)):
                    out.append(f"GRANT SELECT ({_visible(table)}) ON {table} TO {groups[role]}")
                chosen -= set(CONCEALED_COLUMNS)
            out.append(f"GRANT {privileges} ON {', '.join(sorted(chosen))} TO {groups[role]}")
    return out


def setup_statements(prefix: str, schema: str, crypto_schema: str = "public") -> list[str]:
    """The DDL of ``access setup`` for ``schema``; idempotent, so it may be run again after a
    migration added a table (new tables must be handed to the owner and granted too)."""
    if not valid_prefix(prefix):
        raise ValueError(f"invalid role prefix {prefix!r}")
    owner = owner_name(prefix)
    groups = {role: group_name(prefix, role) for role in ROLES}
    # Fixed for every function the setup makes: a caller's search_path cannot redirect them.
    path = f'SET search_path = "{schema}", "{crypto_schema}", pg_temp'
    out: list[str] = []
    for role in (owner, *groups.values()):
        out.append(
            "DO $$ BEGIN "
            f"IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN "
            f"CREATE ROLE {role} NOLOGIN; END IF; END $$"
        )
    for group in groups.values():
        # The owner hands out memberships through sarcoma_access_grant (SECURITY DEFINER).
        out.append(f"GRANT {group} TO {owner} WITH ADMIN OPTION")
    out.append(f'REVOKE CREATE ON SCHEMA "{schema}" FROM PUBLIC')
    out.append(f'GRANT USAGE ON SCHEMA "{schema}" TO {", ".join(groups.values())}, {owner}')
    # The owner's functions create each randomized trial's draw sequence.
    out.append(f'GRANT CREATE ON SCHEMA "{schema}" TO {owner}')
    out.extend(_functions(prefix, schema, owner, groups, path))
    out.extend(_server_allocation(prefix, groups, path))
    out.append(
        "DO $$ DECLARE r record; BEGIN "
        "FOR r IN SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n "
        f"ON n.oid = c.relnamespace WHERE n.nspname = '{schema}' AND c.relkind IN "
        "('r', 'v', 'p') LOOP "
        "EXECUTE format('ALTER %s %I OWNER TO "
        f"{owner}', CASE r.relkind WHEN 'v' THEN 'VIEW' ELSE 'TABLE' END, r.relname); "
        "END LOOP; "
        "FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p JOIN pg_namespace n "
        f"ON n.oid = p.pronamespace WHERE n.nspname = '{schema}' "
        "AND p.proname LIKE 'sarcoma\\_%' LOOP "
        f"EXECUTE format('ALTER FUNCTION %s OWNER TO {owner}', r.f); END LOOP; END $$"
    )
    everyone = ", ".join(groups.values())
    out.append(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{schema}" FROM PUBLIC, {everyone}')
    out.append(f'REVOKE ALL ON ALL FUNCTIONS IN SCHEMA "{schema}" FROM PUBLIC')
    out.extend(_grant_statements(groups))
    writers = ", ".join(groups[r] for r in ("coordinator", "data_manager", "trial_admin"))
    out.append(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA "{schema}" TO {writers}')
    for function in (
        "sarcoma_begin_write(text)",
        "sarcoma_audit_note(text, text, jsonb)",
        "sarcoma_sees_all_sites()",
        "sarcoma_my_sites()",
        "sarcoma_access_prefix()",
        "sarcoma_has_server_secret(text)",
    ):
        out.append(f"GRANT EXECUTE ON FUNCTION {function} TO {everyone}")
    for function in (
        "sarcoma_access_grant(text, text, text)",
        "sarcoma_access_revoke(text, text, text)",
    ):
        out.append(f"GRANT EXECUTE ON FUNCTION {function} TO {groups['trial_admin']}")
    out.append(
        "GRANT EXECUTE ON FUNCTION sarcoma_allocate(integer, jsonb, date) "
        f"TO {groups['coordinator']}"
    )
    out.append(
        "GRANT EXECUTE ON FUNCTION sarcoma_trial_secret_init(text, bytea) "
        f"TO {groups['statistician']}, {groups['trial_admin']}"
    )
    out.append(f"GRANT EXECUTE ON FUNCTION sarcoma_trial_secret(text) TO {groups['statistician']}")
    # Every analyst view reads as the person querying it, so the policies hold through it.
    out.append(
        "DO $$ DECLARE r record; BEGIN "
        "FOR r IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE n.nspname = '{schema}' AND c.relkind = 'v' LOOP "
        "EXECUTE format('ALTER VIEW %I SET (security_invoker = true)', r.relname); "
        f"EXECUTE format('GRANT SELECT ON %I TO {everyone}', r.relname); END LOOP; END $$"
    )
    out.extend(_policies(owner))
    return out


def _functions(
    prefix: str, schema: str, owner: str, groups: dict[str, str], path: str
) -> list[str]:
    all_sites = " OR ".join(
        f"pg_has_role(session_user, '{groups[r]}', 'MEMBER')" for r in ALL_SITES_ROLES
    )
    site_roles = ", ".join(f"'{r}'" for r in SITE_ROLES)
    roles = ", ".join(f"'{r}'" for r in ROLES)
    return [
        f"""CREATE OR REPLACE FUNCTION sarcoma_access_prefix() RETURNS text
LANGUAGE sql IMMUTABLE {path} AS $$ SELECT '{prefix}'::text $$""",
        # An all-sites role counts only with its grant recorded and its membership held: a
        # membership given by hand outside `access grant` shows nothing (fail closed).
        f"""CREATE OR REPLACE FUNCTION sarcoma_sees_all_sites() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER {path} AS $$
  SELECT EXISTS (
    SELECT 1 FROM access_grants g
    WHERE g.login = session_user AND g.site_code IS NULL
      AND g.role IN ({", ".join(f"'{r}'" for r in ALL_SITES_ROLES)})
  ) AND ({all_sites})
$$""",
        f"""CREATE OR REPLACE FUNCTION sarcoma_my_sites() RETURNS text[]
LANGUAGE sql STABLE SECURITY DEFINER {path} AS $$
  SELECT coalesce(array_agg(DISTINCT g.site_code), '{{}}')
  FROM access_grants g
  WHERE g.login = session_user AND g.site_code IS NOT NULL AND g.role IN ({site_roles})
    AND pg_has_role(session_user, '{prefix}_' || g.role, 'MEMBER')
$$""",
        f"""CREATE OR REPLACE FUNCTION sarcoma_access_grant(p_login text, p_role text, p_site text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER {path} AS $$
BEGIN
  IF NOT (pg_has_role(session_user, '{groups["trial_admin"]}', 'MEMBER')
          OR (SELECT rolsuper FROM pg_roles WHERE rolname = session_user)) THEN
    RAISE EXCEPTION 'only a trial admin may grant access' USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF p_role NOT IN ({roles}) THEN
    RAISE EXCEPTION 'unknown role %', p_role USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p_login AND rolcanlogin) THEN
    RAISE EXCEPTION 'no login role named % on this server (create it first: CREATE ROLE % LOGIN)',
      p_login, p_login USING ERRCODE = 'undefined_object';
  END IF;
  IF (p_role IN ({site_roles})) <> (p_site IS NOT NULL) THEN
    RAISE EXCEPTION 'role % is held %', p_role,
      CASE WHEN p_site IS NULL THEN 'at named sites: give --site'
           ELSE 'at every site: no --site' END
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF p_site IS NOT NULL AND NOT EXISTS (SELECT 1 FROM sites WHERE code = p_site) THEN
    RAISE EXCEPTION 'no site %', p_site USING ERRCODE = 'foreign_key_violation';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM access_grants WHERE login = p_login AND role = p_role
                 AND site_code IS NOT DISTINCT FROM p_site) THEN
    INSERT INTO access_grants (login, role, site_code, granted_at, granted_by)
    VALUES (p_login, p_role, p_site, (clock_timestamp() AT TIME ZONE 'UTC'), session_user);
  END IF;
  EXECUTE format('GRANT %I TO %I', '{prefix}_' || p_role, p_login);
END
$$""",
        f"""CREATE OR REPLACE FUNCTION sarcoma_access_revoke(p_login text, p_role text, p_site text)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER {path} AS $$
DECLARE
  n integer;
  r text;
BEGIN
  IF NOT (pg_has_role(session_user, '{groups["trial_admin"]}', 'MEMBER')
          OR (SELECT rolsuper FROM pg_roles WHERE rolname = session_user)) THEN
    RAISE EXCEPTION 'only a trial admin may revoke access' USING ERRCODE = 'insufficient_privilege';
  END IF;
  DELETE FROM access_grants
  WHERE login = p_login AND (p_role IS NULL OR role = p_role)
    AND (p_site IS NULL OR site_code = p_site);
  GET DIAGNOSTICS n = ROW_COUNT;
  FOR r IN SELECT unnest(ARRAY[{roles}]) LOOP
    IF NOT EXISTS (SELECT 1 FROM access_grants WHERE login = p_login AND role = r)
       AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p_login)
       AND pg_has_role(p_login, '{prefix}_' || r, 'MEMBER') THEN
      EXECUTE format('REVOKE %I FROM %I', '{prefix}_' || r, p_login);
    END IF;
  END LOOP;
  RETURN n;
END
$$""",
    ]


def _policies(owner: str) -> list[str]:
    # Inside the engine's SECURITY DEFINER functions current_user is the owner, which must see
    # everything (the audit trigger, a grant check); people are told apart by session_user.
    engine = f"current_user = '{owner}'"
    site = (
        f"({engine} OR (SELECT sarcoma_sees_all_sites())"
        " OR {col} IN (SELECT unnest(sarcoma_my_sites())))"
    )
    out = []
    tables = {
        "sites": site.format(col="code"),
        "site_closures": site.format(col="site_code"),
        "site_resources": site.format(col="site_code"),
        "patients": site.format(col="site_code"),
        # A grant row: one's own, or all of them for trial admins and other all-sites roles.
        "access_grants": f"({engine} OR login = session_user OR (SELECT sarcoma_sees_all_sites()))",
    }
    for table in PATIENT_TABLES:
        tables[table] = (
            f"({engine} OR EXISTS (SELECT 1 FROM patients p WHERE p.id = {table}.patient_id))"
        )
    for table, predicate in tables.items():
        out.append(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        out.append(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        out.append(f"DROP POLICY IF EXISTS sarcoma_site ON {table}")
        out.append(
            f"CREATE POLICY sarcoma_site ON {table} USING {predicate} WITH CHECK {predicate}"
        )
    return out


# The published demo key (``allocation.secret.DEMO_SECRET``): bytes 0..31.
_DEMO_KEY_HEX = bytes(range(32)).hex()


def _server_allocation(prefix: str, groups: dict[str, str], path: str) -> list[str]:
    """The trial secret held by the server and the draw made there.

    ``trial_secrets`` has no grant at all: only the owner's functions read it. Coordinators
    call ``sarcoma_allocate`` for a randomized trial's patient; it reads the whole history (which
    row-level security hides from them), decides with ``sarcoma_decide`` (``db.pg_allocation``,
    bit for bit the Python allocator) with the method of the patient's protocol version
    (``protocol_definitions.allocation``, never the caller's) and writes the allocation. They
    get back the arm and the stratum. A direct INSERT of a randomized allocation by anyone else
    is refused.

    Every draw takes a number from the trial's own sequence, which a rollback does not give
    back: an arm looked at and rolled back (a preview) leaves a gap that ``allocation verify``
    reports.
    """
    coordinator = groups["coordinator"]
    statistician = groups["statistician"]
    admin = groups["trial_admin"]
    superuser = "(SELECT rolsuper FROM pg_roles WHERE rolname = session_user)"
    return [
        """CREATE TABLE IF NOT EXISTS trial_secrets (
  protocol_id varchar(32) PRIMARY KEY,
  secret bytea NOT NULL,
  created_at timestamp NOT NULL,
  created_by varchar(64) NOT NULL
)""",
        f"""CREATE OR REPLACE FUNCTION sarcoma_key_fingerprint(p_secret bytea, p_trial text)
RETURNS text LANGUAGE sql IMMUTABLE {path} AS $$
  SELECT encode(hmac(convert_to('sarcoma-sched/key-commitment/v1' || p_trial, 'UTF8'),
                     p_secret, 'sha256'), 'hex')
$$""",
        f"""CREATE OR REPLACE FUNCTION sarcoma_draw_sequence(p_protocol text)
RETURNS text LANGUAGE sql IMMUTABLE {path} AS $$
  SELECT 'sarcoma_draws_' || left(md5(p_protocol), 16)
$$""",
        f"""CREATE OR REPLACE FUNCTION sarcoma_has_server_secret(p_protocol text)
RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER {path} AS $$
  SELECT EXISTS (SELECT 1 FROM trial_secrets WHERE protocol_id = p_protocol)
$$""",
        f"""CREATE OR REPLACE FUNCTION sarcoma_trial_secret_init(p_protocol text, p_secret bytea)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER {path} AS $$
DECLARE
  key bytea := coalesce(p_secret, gen_random_bytes(32));
  fp text;
  committed text;
  demo boolean := EXISTS (SELECT 1 FROM installation WHERE purpose = '{DatabasePurpose.DEMO}');
BEGIN
  IF NOT (pg_has_role(session_user, '{statistician}', 'MEMBER')
          OR pg_has_role(session_user, '{admin}', 'MEMBER') OR {superuser}) THEN
    RAISE EXCEPTION 'only a statistician or trial admin may set a trial secret'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF EXISTS (SELECT 1 FROM trial_secrets WHERE protocol_id = p_protocol) THEN
    RAISE EXCEPTION '% already has its secret; a trial secret is never replaced', p_protocol;
  END IF;
  IF length(key) < 32 THEN
    RAISE EXCEPTION 'the trial secret has % bytes; at least 32 are needed', length(key);
  END IF;
  IF ltrim(encode(key, 'hex'), substr(encode(key, 'hex'), 1, 2)) = '' THEN
    RAISE EXCEPTION 'the trial secret is one byte repeated: not a key';
  END IF;
  IF encode(key, 'hex') = '{_DEMO_KEY_HEX}' AND NOT demo THEN
    RAISE EXCEPTION 'this is the demo''s published key, not a trial''s';
  END IF;
  fp := sarcoma_key_fingerprint(key, p_protocol);
  SELECT fingerprint INTO committed FROM trial_keys WHERE protocol_id = p_protocol;
  IF committed IS NULL THEN
    INSERT INTO trial_keys (protocol_id, fingerprint, committed_at, committed_by)
    VALUES (p_protocol, fp, clock_timestamp() AT TIME ZONE 'UTC', session_user);
  ELSIF committed <> fp THEN
    RAISE EXCEPTION 'this is not the key % committed to at its first allocation', p_protocol;
  END IF;
  INSERT INTO trial_secrets VALUES (p_protocol, key, clock_timestamp() AT TIME ZONE 'UTC',
                                    session_user);
  -- This trial's draws are numbered by a sequence, which a rollback does not give back.
  EXECUTE format('CREATE SEQUENCE IF NOT EXISTS %I', sarcoma_draw_sequence(p_protocol));
  RETURN fp;
END
$$""",
        f"""CREATE OR REPLACE FUNCTION sarcoma_trial_secret(p_protocol text)
RETURNS bytea LANGUAGE plpgsql STABLE SECURITY DEFINER {path} AS $$
DECLARE
  key bytea;
BEGIN
  IF NOT (pg_has_role(session_user, '{statistician}', 'MEMBER') OR {superuser}) THEN
    RAISE EXCEPTION 'only a statistician may read a trial secret'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  SELECT secret INTO key FROM trial_secrets WHERE protocol_id = p_protocol;
  RETURN key;
END
$$""",
        # The client once passed the method: a coordinator could have drawn with p = 1.
        "DROP FUNCTION IF EXISTS sarcoma_allocate(integer, jsonb, text[], jsonb, date)",
        f"""CREATE OR REPLACE FUNCTION sarcoma_allocate(p_patient integer, p_factors jsonb,
  p_date date)
RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER {path} AS $$
DECLARE
  pat record;
  key bytea;
  hist jsonb;
  pos integer;
  d jsonb;
  call bigint;
  spec jsonb;
  p_method jsonb;
  p_arms text[];
  wanted text[];
BEGIN
  SELECT id, site_code, protocol_id INTO pat FROM patients WHERE id = p_patient;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no patient %', p_patient;
  END IF;
  IF NOT ({superuser} OR (pg_has_role(session_user, '{coordinator}', 'MEMBER')
          AND pat.site_code IN (SELECT unnest(sarcoma_my_sites())))) THEN
    RAISE EXCEPTION 'only a coordinator of % may allocate its patients', pat.site_code
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  SELECT secret INTO key FROM trial_secrets WHERE protocol_id = pat.protocol_id;
  IF key IS NULL THEN
    RAISE EXCEPTION 'no server-held secret for %: a statistician runs %',
      pat.protocol_id, '`sarcoma-sched allocation init-secret --server ' || pat.protocol_id || '`';
  END IF;
  IF EXISTS (SELECT 1 FROM allocations WHERE patient_id = p_patient) THEN
    RAISE EXCEPTION 'patient % is already allocated', p_patient;
  END IF;
  -- The method of the version the patient enrolled under, as derived from its source.
  SELECT d.allocation::jsonb INTO spec FROM enrollments e
    JOIN protocol_definitions d ON d.version_id = e.protocol_version_id
   WHERE e.patient_id = p_patient;
  IF spec IS NULL THEN
    RAISE EXCEPTION 'patient % is not enrolled', p_patient;
  END IF;
  p_method := spec -> 'method';
  p_arms := ARRAY(SELECT jsonb_array_elements_text(spec -> 'arms'));
  wanted := ARRAY(
    SELECT x FROM (
      SELECT jsonb_array_elements_text(p_method -> 'strata') AS x
      UNION ALL SELECT f ->> 'field' FROM jsonb_array_elements(
        coalesce(p_method -> 'factors', '[]'::jsonb)) AS f) s ORDER BY x);
  IF wanted IS DISTINCT FROM ARRAY(SELECT jsonb_object_keys(p_factors) ORDER BY 1) THEN
    RAISE EXCEPTION 'the factors given (%) are not the method''s (%)',
      (SELECT string_agg(k, ', ' ORDER BY k) FROM jsonb_object_keys(p_factors) k),
      array_to_string(wanted, ', ');
  END IF;
  IF p_factors ? '{SITE_FACTOR}' AND p_factors ->> '{SITE_FACTOR}' <> pat.site_code THEN
    RAISE EXCEPTION 'the site factor must be the patient''s site, %', pat.site_code;
  END IF;
  call := nextval(sarcoma_draw_sequence(pat.protocol_id));
  SELECT coalesce(jsonb_agg(jsonb_build_object('position', a.position, 'arm', a.arm,
                                               'factors', a.factors::jsonb)
                            ORDER BY a.position), '[]'::jsonb),
         coalesce(max(a.position), 0) + 1
    INTO hist, pos
    FROM allocations a WHERE a.protocol_id = pat.protocol_id;
  d := sarcoma_decide(p_method, p_arms, hist, p_factors, pos,
                      sarcoma_trial_key(key, pat.protocol_id));
  INSERT INTO allocations (patient_id, protocol_id, position, arm, method, stratum, factors,
                           detail, basis, reason, allocation_date, allocated_at, allocated_by)
  VALUES (p_patient, pat.protocol_id, pos, d ->> 'arm', p_method ->> 'method',
          d ->> 'stratum', (d -> 'factors')::json,
          ((d -> 'detail') || jsonb_build_object('draw_call', call))::json, NULL, NULL,
          p_date, clock_timestamp() AT TIME ZONE 'UTC', session_user);
  -- Only the arm and the stratum: not the position, nor whether the draw was forced.
  RETURN jsonb_build_object('arm', d -> 'arm', 'stratum', d -> 'stratum');
END
$$""",
        f"""CREATE OR REPLACE FUNCTION sarcoma_guard_allocation() RETURNS trigger
LANGUAGE plpgsql {path} AS $$
BEGIN
  -- A randomized trial is known by its method, by the secret the server holds for it, by the
  -- key it committed to, or by a drawn allocation: a row may not just call itself "assigned".
  IF TG_OP = 'INSERT' AND current_user <> '{prefix}_owner' AND NOT {superuser}
     AND (NEW.method IN ('stratified_blocks', 'minimization')
          OR sarcoma_has_server_secret(NEW.protocol_id)
          OR EXISTS (SELECT 1 FROM trial_keys k WHERE k.protocol_id = NEW.protocol_id)) THEN
    RAISE EXCEPTION 'a randomized allocation is drawn by the server (sarcoma_allocate), not written'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF TG_OP = 'UPDATE' AND current_user <> '{prefix}_owner' AND NOT {superuser}
     AND (NEW.arm, NEW.position, NEW.protocol_id, NEW.patient_id, NEW.method,
          NEW.stratum, NEW.factors::jsonb)
         IS DISTINCT FROM (OLD.arm, OLD.position, OLD.protocol_id, OLD.patient_id, OLD.method,
                           OLD.stratum, OLD.factors::jsonb) THEN
    RAISE EXCEPTION 'an allocation''s arm, position, method and factors are never changed'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$$""",
        # A site role sees its own sites' allocations only, and no position: the server numbers
        # every allocation (the write lock of sarcoma_begin_write keeps two from sharing one).
        f"""CREATE OR REPLACE FUNCTION sarcoma_allocation_position() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER {path} AS $$
BEGIN
  SELECT coalesce(max(position), 0) + 1 INTO NEW.position
    FROM allocations WHERE protocol_id = NEW.protocol_id;
  RETURN NEW;
END
$$""",
        "DROP TRIGGER IF EXISTS sarcoma_position ON allocations",
        "CREATE TRIGGER sarcoma_position BEFORE INSERT ON allocations "
        "FOR EACH ROW EXECUTE FUNCTION sarcoma_allocation_position()",
        "DROP TRIGGER IF EXISTS sarcoma_guard ON allocations",
        "CREATE TRIGGER sarcoma_guard BEFORE INSERT OR UPDATE ON allocations "
        "FOR EACH ROW EXECUTE FUNCTION sarcoma_guard_allocation()",
    ]
