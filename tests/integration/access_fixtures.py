"""A multi-site trial on PostgreSQL with one login per role, for the access matrix tests.

``access_world()`` builds it once (a fresh schema, ``init``, ``access setup`` with a prefix of
its own, a login per role, a statistician's server-held secret, a few patients at PKUIH and
BJFH screened and allocated by their coordinators) and always removes it afterwards: the schema,
then every role it created, logins and groups alike, since roles are cluster-wide.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from tests.cli.conftest import SCRUBBED
from tests.cohort import ELIGIBLE_NATARS
from tests.databases import pg_base_url

__all__ = ["ROLE_KEYS", "World", "access_world"]

PROTOCOL = "NATARS-R"
OWN, OTHER = "PKUIH", "BJFH"
# Login keys: who each test login is. "spare" is granted and revoked by the trial admin.
ROLE_KEYS = {
    "coord_a": ("coordinator", OWN),
    "coord_b": ("coordinator", OTHER),
    "monitor": ("monitor", OWN),
    "dm": ("data_manager", None),
    "stat": ("statistician", None),
    "admin": ("trial_admin", None),
    "nogrant": (None, None),
    "spare": (None, None),
}
GROUPS = ("coordinator", "data_manager", "statistician", "monitor", "trial_admin", "owner")
FIELDS = [arg for name, value in ELIGIBLE_NATARS.items() for arg in ("--field", f"{name}={value}")]


def _command() -> str:
    """The installed console script of the environment running the tests."""
    found = shutil.which("sarcoma-sched", path=str(Path(sys.executable).parent))
    assert found, "sarcoma-sched is not installed in this environment (pip install -e .)"
    return found


def days(n: int) -> str:
    return (dt.date.today() + dt.timedelta(days=n)).isoformat()


@dataclass
class World:
    base: str  # the superuser's SQLAlchemy URL (SARCOMA_SCHED_TEST_PG_URL)
    schema: str
    prefix: str
    cwd: Path
    suffix: str
    logins: dict[str, str] = field(default_factory=dict)
    # Patient key -> how the CLI names it (study id once enrolled, else screening number).
    names: dict[str, str] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)  # patient key -> patients.id
    events: dict[str, str] = field(default_factory=dict)  # event key -> occurrence id
    created_roles: list[str] = field(default_factory=list)
    started: dt.datetime | None = None  # server time when the world was first written
    command: str = field(default_factory=_command)

    # --- connections ------------------------------------------------------------------------

    @property
    def superuser(self) -> str:
        return str(make_url(self.base).username)

    def url(self, login: str) -> str:
        """The CLI's --db for ``login``: its own connections, this schema only."""
        url = make_url(self.base).set(username=login)
        url = url.update_query_dict({"options": f"-csearch_path={self.schema}"})
        return url.render_as_string(hide_password=False)

    def conninfo(self, login: str) -> str:
        url = make_url(self.base).set(drivername="postgresql", username=login)
        return url.render_as_string(hide_password=False)

    def connect(self, login: str | None = None, autocommit: bool = False) -> psycopg.Connection:
        """A psycopg connection as ``login`` (the superuser by default) to this schema."""
        return psycopg.connect(
            self.conninfo(login or self.superuser),
            options=f"-csearch_path={self.schema}",
            autocommit=autocommit,
        )

    def admin(self, statement: str | sql.Composable, params: Any = None) -> list[tuple]:
        with self.connect(autocommit=True) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []

    # --- the installed command --------------------------------------------------------------

    def cli(self, login: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
        env["XDG_DATA_HOME"] = str(self.cwd / "xdg")
        env["XDG_CONFIG_HOME"] = str(self.cwd / "config")
        return subprocess.run(
            [self.command, "--db", self.url(login), *args],
            capture_output=True,
            text=True,
            cwd=self.cwd,
            env=env,
            timeout=120,
        )

    def ok(self, login: str, *args: str) -> subprocess.CompletedProcess[str]:
        done = self.cli(login, *args)
        assert done.returncode == 0, f"{login} {' '.join(args)}: {done.stderr}"
        return done

    # --- what the database holds ------------------------------------------------------------

    def fingerprint(self) -> str:
        """Every table of the schema, row by row as text, hashed by the server (which sees all
        rows as superuser); the draw sequences (a refused draw must not burn a number); and
        the memberships of this world's group roles (a refused grant must not give one)."""
        with self.connect() as conn:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n "
                    "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r', 'p') "
                    "ORDER BY 1",
                    (self.schema,),
                )
            ]
            parts = sql.SQL(", ").join(
                sql.SQL(
                    "{name} || ':' || (SELECT md5(coalesce(string_agg(t::text, E'\\n' "
                    "ORDER BY t::text), '')) FROM {table} t)"
                ).format(name=sql.Literal(name), table=sql.Identifier(self.schema, name))
                for name in tables
            )
            rows = list(conn.execute(sql.SQL("SELECT {}").format(parts)).fetchone() or ())
            sequences = conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind = 'S' AND c.relname LIKE 'sarcoma\\_draws\\_%%'"
                " ORDER BY 1",
                (self.schema,),
            ).fetchall()
            for (name,) in sequences:
                value = conn.execute(
                    sql.SQL("SELECT last_value, is_called FROM {}").format(
                        sql.Identifier(self.schema, name)
                    )
                ).fetchone()
                rows.append(f"{name}:{value}")
            members = conn.execute(
                "SELECT r.rolname || '>' || m.rolname FROM pg_auth_members a "
                "JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member "
                "WHERE r.rolname LIKE %s ORDER BY 1",
                (self.prefix + "\\_%",),
            ).fetchall()
            rows.append("members:" + ",".join(m[0] for m in members))
        return "\n".join(rows)

    def scalar(self, statement: str, params: Any = None) -> Any:
        rows = self.admin(statement, params)
        return rows[0][0] if rows else None

    def row_json(self, table: str, pk: int) -> dict[str, Any]:
        value = self.scalar(
            sql.SQL("SELECT to_jsonb(t) FROM {} t WHERE id = %s").format(sql.Identifier(table)),
            (pk,),
        )
        assert value is not None, f"no {table} row {pk}"
        return dict(value)

    def site_ids(self, site: str) -> list[int]:
        return [r[0] for r in self.admin("SELECT id FROM patients WHERE site_code = %s", (site,))]


def _screen(world: World, login: str, site: str, key: str) -> None:
    world.ok(login, "screen", PROTOCOL, "--site", site, "--date", days(-410), *FIELDS)
    number = world.scalar(
        "SELECT screening_number, id FROM patients WHERE site_code = %s ORDER BY id DESC LIMIT 1",
        (site,),
    )
    world.names[key] = number
    world.ids[key] = world.scalar("SELECT id FROM patients WHERE screening_number = %s", (number,))


def _allocate(world: World, login: str, key: str, when: int = -400) -> None:
    name = world.names[key]
    world.ok(login, "allocate", name, "--consent-date", days(when - 2), "--date", days(when))
    world.names[key] = world.scalar(
        "SELECT study_id FROM patients WHERE id = %s", (world.ids[key],)
    )


def _build(world: World) -> None:
    world.admin(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(world.schema)))
    world.started = world.scalar("SELECT now()")
    world.ok(world.superuser, "init")
    world.ok(world.superuser, "access", "setup", "--prefix", world.prefix)
    world.created_roles.extend(f"{world.prefix}_{g}" for g in GROUPS)
    for key, (role, site) in ROLE_KEYS.items():
        login = f"am_{key}_{world.suffix}"
        world.admin(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(login)))
        world.created_roles.append(login)
        world.logins[key] = login
        if role is not None:
            world.admin("SELECT sarcoma_access_grant(%s, %s, %s)", (login, role, site))
    world.ok(world.logins["stat"], "allocation", "init-secret", "--server", PROTOCOL)
    a, b = world.logins["coord_a"], world.logins["coord_b"]
    # PKUIH: p1 allocated with one event recorded (the data manager corrects it), p2 to enrol,
    # p3 to allocate, p4 to withdraw, p5 screened and left alone (the target of refusals).
    for key in ("p1", "p2", "p3", "p4", "p5"):
        _screen(world, a, OWN, key)
    # BJFH: b1 allocated, b2 screened; both only ever the targets of refusals.
    for key in ("b1", "b2"):
        _screen(world, b, OTHER, key)
    _allocate(world, a, "p1")
    _allocate(world, a, "p4")
    _allocate(world, b, "b1")
    # p1's events in the past: one recorded (the data manager corrects it), one for the
    # coordinator to record, one left planned (the target of refused records).
    past = _past_events(world, "p1")
    assert len(past) >= 3, f"p1 has too few past events: {past}"
    (recorded, recorded_on), (to_record, _), (untouched, _) = past[:3]
    world.ok(a, "record", world.names["p1"], recorded, "--status", "done", "--date", recorded_on)
    world.events.update(recorded=recorded, recorded_on=recorded_on, to_record=to_record)
    world.events["untouched"] = untouched
    # p1's last event moves inside its window (nothing is timed from it): to one weekday for
    # the coordinator, another for refused attempts (never the day it is on).
    world.events["to_move"], (moved_to, alt_to) = _movable(world, "p1")
    world.events.update(moved_to=moved_to, alt_to=alt_to)
    # b1: a past event the data manager records, its last event the data manager moves.
    world.events["b1_past"] = _past_events(world, "b1")[0][0]
    world.events["b1_move"], (b1_to, _) = _movable(world, "b1")
    world.events["b1_to"] = b1_to


def _past_events(world: World, key: str) -> list[tuple[str, str]]:
    rows = world.admin(
        "SELECT event_id, target FROM scheduled_events WHERE patient_id = %s "
        "AND status = 'planned' AND last_day < current_date ORDER BY first_day, event_id",
        (world.ids[key],),
    )
    return [(event, target.isoformat()) for event, target in rows]


def _movable(world: World, key: str) -> tuple[str, tuple[str, str]]:
    """The patient's last planned event and the two Tuesdays to Thursdays of its window nearest
    to its day (which they are not)."""
    event, first, earliest, latest = world.admin(
        "SELECT event_id, first_day, earliest, latest FROM scheduled_events "
        "WHERE patient_id = %s AND status = 'planned' AND first_day > current_date "
        "ORDER BY target DESC, event_id LIMIT 1",
        (world.ids[key],),
    )[0]
    window = [earliest + dt.timedelta(days=i) for i in range((latest - earliest).days + 1)]
    choices = sorted(
        (d for d in window if d != first and d.weekday() in (1, 2, 3)),
        key=lambda d: (abs((d - first).days), d),
    )
    assert len(choices) >= 2, f"{key} {event}: too few weekdays in {earliest} .. {latest}"
    return event, (choices[0].isoformat(), choices[1].isoformat())


def _teardown(world: World) -> list[str]:
    problems: list[str] = []
    try:
        world.admin(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(world.schema))
        )
    except psycopg.Error as exc:
        problems.append(f"DROP SCHEMA {world.schema}: {exc}")
    # The group roles exist from `access setup` on, even when it failed half-way.
    roles = list(dict.fromkeys([*world.created_roles, *(f"{world.prefix}_{g}" for g in GROUPS)]))
    for role in roles:
        try:
            if not world.admin("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)):
                continue
            with world.connect(autocommit=True) as conn:
                conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(role)))
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
        except psycopg.Error as exc:
            problems.append(f"DROP ROLE {role}: {exc}")
    return problems


@contextmanager
def access_world() -> Iterator[World]:
    base = pg_base_url()
    suffix = uuid.uuid4().hex[:10]
    with tempfile.TemporaryDirectory(prefix="access-matrix-") as tmp:
        world = World(
            base=base, schema=f"am_{suffix}", prefix=f"am{suffix}", cwd=Path(tmp), suffix=suffix
        )
        try:
            _build(world)
            yield world
        finally:
            problems = _teardown(world)
            assert not problems, problems
