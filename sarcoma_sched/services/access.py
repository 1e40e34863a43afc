"""Who may do what: ``access setup``, ``grant``, ``revoke`` and ``list`` (PostgreSQL only).

The rules live in the database (``db.access``): these calls only run them, inside the engine's
one unit of work so that each grant and revocation is an audited change like any other. SQLite
has no logins to tell apart; there, whoever can write the file is trusted, and these refuse.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, text

from sarcoma_sched.db.access import (
    ALL_SITES_ROLES,
    ROLES,
    SITE_ROLES,
    group_name,
    owner_name,
    setup_statements,
    valid_prefix,
)
from sarcoma_sched.db.audit import note
from sarcoma_sched.db.models import AccessGrant
from sarcoma_sched.db.pg_allocation import ensure_pgcrypto
from sarcoma_sched.db.pg_allocation import install as install_decide
from sarcoma_sched.db.session import Database
from sarcoma_sched.errors import Conflict, InputError

__all__ = [
    "ROLES",
    "GrantRow",
    "SetupOutcome",
    "grant_access",
    "list_access",
    "revoke_access",
    "setup_access",
]

SQLITE_REFUSAL = (
    "access control needs PostgreSQL: on SQLite there are no logins to tell apart, and whoever "
    "can write the database file is trusted (see the README, 'Access')"
)
# PostgreSQL's identifier limit; a longer name would be truncated into someone else's.
_LOGIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.@-]{0,62}")


@dataclass(frozen=True)
class SetupOutcome:
    prefix: str
    owner: str
    groups: tuple[str, ...]
    statements: int


@dataclass(frozen=True)
class GrantRow:
    login: str
    role: str
    site: str | None
    granted_at: dt.datetime
    granted_by: str


def _require_postgresql(db: Database) -> None:
    if db.backend != "postgresql":
        raise Conflict(SQLITE_REFUSAL)


def _prefix(db: Database) -> str:
    with db.read() as session:
        # The function exists only once `access setup` ran in this schema.
        if session.scalar(text("SELECT to_regprocedure('sarcoma_access_prefix()')")) is None:
            raise Conflict(
                "access is not set up on this database: run `sarcoma-sched access setup`"
            )
        return str(session.scalar(text("SELECT sarcoma_access_prefix()")))


def default_prefix(database: str) -> str:
    cleaned = re.sub(r"[^a-z0-9_]", "_", database.lower()).strip("_") or "trial"
    if not cleaned[0].isalpha():
        cleaned = f"t_{cleaned}"
    return cleaned[:40]


def setup_access(db: Database, actor: str, prefix: str | None = None) -> SetupOutcome:
    """Create the group roles and the owner, hand the schema to the owner, grant each group its
    column of the matrix, and switch on row-level security. Run again after `db upgrade`."""
    _require_postgresql(db)
    with db.write(actor, "access setup") as session:
        database, schema = session.execute(
            text("SELECT current_database(), current_schema()")
        ).one()
        chosen = prefix or default_prefix(database)
        if not valid_prefix(chosen):
            raise InputError(
                f"--prefix {chosen!r}: lower-case letters, digits and _, starting with a letter, "
                "at most 40 characters"
            )
        conn = session.connection()
        # The server draws randomized allocations (db.pg_allocation): pgcrypto's HMAC.
        crypto = ensure_pgcrypto(conn)
        install_decide(conn, schema)
        statements = setup_statements(chosen, schema, crypto)
        for statement in statements:
            # DO blocks use format('%I'), which the driver would read as a placeholder.
            conn.exec_driver_sql(statement, execution_options={"no_parameters": True})
        note(session, "access", chosen, {"setup": schema, "roles": list(ROLES)})
    return SetupOutcome(
        prefix=chosen,
        owner=owner_name(chosen),
        groups=tuple(group_name(chosen, r) for r in ROLES),
        statements=len(statements),
    )


def _check(login: str, role: str | None) -> None:
    if not _LOGIN.fullmatch(login):
        raise InputError(f"login {login[:70]!r}: not a PostgreSQL role name this engine accepts")
    if role is not None and role not in ROLES:
        raise InputError(f"--role {role!r}: one of {', '.join(ROLES)}")


def grant_access(
    db: Database, actor: str, login: str, role: str, sites: Sequence[str] = ()
) -> list[GrantRow]:
    """Give ``login`` ``role`` (at each of ``sites`` for a site role); returns their grants."""
    _require_postgresql(db)
    _check(login, role)
    if role in SITE_ROLES and not sites:
        raise InputError(f"--role {role} is held at named sites: give --site CODE")
    if role in ALL_SITES_ROLES and sites:
        raise InputError(f"--role {role} sees every site: leave out --site")
    _prefix(db)
    with db.write(actor, "access grant") as session:
        targets: Sequence[str | None] = sites or [None]  # None: an all-sites role
        for site in targets:
            session.execute(
                text("SELECT sarcoma_access_grant(:login, :role, :site)"),
                {"login": login, "role": role, "site": site.upper() if site else None},
            )
    return list_access(db, login=login)


def revoke_access(
    db: Database, actor: str, login: str, role: str | None = None, site: str | None = None
) -> int:
    """Remove ``login``'s grants (all, or of one role, or at one site); returns how many."""
    _require_postgresql(db)
    _check(login, role)
    _prefix(db)
    with db.write(actor, "access revoke") as session:
        removed = int(
            session.scalar(
                text("SELECT sarcoma_access_revoke(:login, :role, :site)"),
                {"login": login, "role": role, "site": site.upper() if site else None},
            )
            or 0
        )
        if removed == 0:
            raise Conflict(f"{login} holds no such grant; nothing was changed")
    return removed


def list_access(db: Database, login: str | None = None) -> list[GrantRow]:
    """Grants the caller may see: all of them for all-sites roles, else their own."""
    _require_postgresql(db)
    with db.read() as session:
        query = select(AccessGrant).order_by(
            AccessGrant.login, AccessGrant.role, AccessGrant.site_code
        )
        if login is not None:
            query = query.where(AccessGrant.login == login)
        return [
            GrantRow(g.login, g.role, g.site_code, g.granted_at, g.granted_by)
            for g in session.scalars(query)
        ]
