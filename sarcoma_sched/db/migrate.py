"""Runs the alembic migrations programmatically, and the schema guard.

A database at another revision than this code expects is refused with the command that fixes
it: an older one needs ``sarcoma-sched db upgrade``; a newer one needs a newer sarcoma-sched
(never a downgrade behind the data manager's back).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

from sarcoma_sched.db.revision import SCHEMA_REVISION
from sarcoma_sched.errors import AccessDenied, SchemaMismatch

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

__all__ = [
    "SCHEMA_REVISION",
    "Revision",
    "check_schema",
    "current_revision",
    "downgrade",
    "head_revision",
    "history",
    "migrations_dir",
    "upgrade",
]


@dataclass(frozen=True)
class Revision:
    id: str
    down: str | None
    message: str
    current: bool = False


def migrations_dir() -> Path:
    """The wheel's copy inside the package, or the checkout's ``migrations/``."""
    package = Path(__file__).resolve().parents[1]
    inside = package / "_migrations"
    return inside if inside.is_dir() else package.parent / "migrations"


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    return config


def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    head = _script().get_current_head()
    assert head is not None, "no migrations found"
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrades in one transaction; returns (revision before, revision after)."""
    from alembic import command

    before = current_revision(engine)
    if before is not None and before not in {rev.revision for rev in _script().walk_revisions()}:
        where = engine.url.render_as_string(hide_password=True)
        raise SchemaMismatch(
            f"database {where} is at revision {before}, newer than this sarcoma-sched "
            f"(expects {SCHEMA_REVISION}): upgrade sarcoma-sched"
        )
    config = _config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    return before, current_revision(engine)


def downgrade(
    engine: Engine, revision: str, *, force: bool = False, dump: str | Path | None = None
) -> None:
    """Migrate down to ``revision``. A step that would drop recorded rows refuses unless
    ``force``, which needs ``dump``: where those rows are written first (db.downgrade_guard)."""
    from alembic import command

    from sarcoma_sched.db.downgrade_guard import DUMP_KEY, FORCE_KEY

    config = _config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        config.attributes[FORCE_KEY] = force
        config.attributes[DUMP_KEY] = str(dump) if dump else None
        command.downgrade(config, revision)


def history(engine: Engine | None = None) -> list[Revision]:
    current = current_revision(engine) if engine is not None else None
    return [
        Revision(rev.revision, _down(rev.down_revision), rev.doc or "", rev.revision == current)
        for rev in _script().walk_revisions()
    ]


def _down(down: str | Sequence[str] | None) -> str | None:
    # Alembic allows a merge revision several parents; this history is linear, but say so if
    # one ever appears rather than print a tuple.
    return down if down is None or isinstance(down, str) else ", ".join(down)


def _stored_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _refuse_unusable_schema(engine: Engine) -> None:
    """On PostgreSQL a login without a role has no USAGE on the trial's schema, so its tables
    are invisible: say that, not that the database is empty (which invites an `init`)."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT n.nspname, session_user FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relname = 'alembic_version' AND c.relkind = 'r' "
                "AND NOT has_schema_privilege(n.oid, 'USAGE') ORDER BY 1 LIMIT 1"
            )
        ).first()
    if row is not None:
        raise AccessDenied(
            f"login {row[1]} may not use the sarcoma-sched schema {row[0]}: a trial admin "
            f"grants it a role (`sarcoma-sched access grant {row[1]} --role ROLE`)"
        )


def check_schema(engine: Engine) -> None:
    current = _stored_revision(engine)
    if current == SCHEMA_REVISION:
        return
    head = head_revision()
    where = engine.url.render_as_string(hide_password=True)
    if current is None:
        _refuse_unusable_schema(engine)
        raise SchemaMismatch(
            f"database {where} has no sarcoma-sched schema: run `sarcoma-sched init` "
            "(or `sarcoma-sched db upgrade`)"
        )
    known = {rev.revision for rev in _script().walk_revisions()}
    if current not in known:
        raise SchemaMismatch(
            f"database {where} is at revision {current}, newer than this sarcoma-sched "
            f"(expects {head}): upgrade sarcoma-sched"
        )
    raise SchemaMismatch(
        f"database {where} is at revision {current}, older than this sarcoma-sched "
        f"(expects {SCHEMA_REVISION}): run `sarcoma-sched db upgrade`"
    )
