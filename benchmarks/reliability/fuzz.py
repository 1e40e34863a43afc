"""Fuzzed command-line input: every command, random arguments, malformed input files.

    python -m benchmarks.reliability.fuzz [--examples 5000] [--seed 1] [--command "site close"]
                                          [--expensive] [--pg-url URL]

Hypothesis draws an invocation of one command of the click tree (enumerated, so a new command
is fuzzed without touching this file): each argument and option from a strategy chosen by its
click type and name (dates valid, impossible like 2027-02-30, far past and future; known and
unknown patient, event, site and protocol ids; numbers; random and undecodable text) and input
files that are garbage, truncated, or a real protocol / screening / holiday / key file with a
field deleted, retyped or added. Hostile input is weighted into the same strategies (issue 18):
time zone names of 256+ characters or shaped like paths; Unicode digits ("²", "１２") and huge
or negative integers for every number (``--week``, ``--day tue=N``, counts); names longer than
their columns or holding control characters or NUL; date ranges from 1900-01-01 to 2199-12-31
and beyond; files nested 10,000 deep, with a byte-order mark, in UTF-16, or that are not files
at all (a FIFO nobody writes to, ``/dev/zero``). Each invocation runs in process through
``sarcoma_sched.cli.main`` against a copy of a small real history (``build_history``).

What must hold (``problems``): no exception escapes ``main`` and no output says "Traceback";
the exit status is 0, 1 or 2; a refused command (status 1 or 2) leaves the database dump
byte-identical and says why in an ``error:`` line; a named pipe given as an output file is
still a pipe afterwards (it stands for ``/dev/null``, which a command run as root must never
replace with a plain file); and the command ends within ``TIMEOUT`` seconds (a FIFO read
without a writer would block for ever: a hang is a failure, not a stuck run).
Output paths are kept inside each run's own directory, whatever the strategy drew.

With ``--pg-url`` the history lives in PostgreSQL instead (``build_pg_history``): a template
database on that server, built once, and a working database copied from it (``CREATE DATABASE
... TEMPLATE``, tens of milliseconds) before any invocation that may have written to it; a
refused command must leave the working database's dump (``tests.dumps``: every table's rows and
the audit head) equal to the template's. Both databases are dropped at the end.

``tests/reliability/test_fuzz_cli.py`` runs the same strategies with few examples per command;
this script runs many and prints the counts by command and exit status, and each distinct
failure with its smallest invocation. Commands that would run for seconds on valid input (the
whole demo, a 1000-trial simulation) get cheap variants unless ``--expensive``.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
import tomllib
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from hypothesis import strategies as st

from benchmarks.reliability._common import SECRET, create_schema, run_cli

__all__ = [
    "COMMANDS",
    "FileArg",
    "History",
    "Invocation",
    "OutArg",
    "Outcome",
    "PgHistory",
    "SpecialArg",
    "build_history",
    "build_pg_history",
    "invocations",
    "problems",
    "run_invocation",
]

ROOT = Path(__file__).resolve().parents[2]
TODAY = dt.date.today()
# Seconds an invocation may run before it counts as hung (the slowest valid ones take a few).
TIMEOUT = 60.0


# --- the command tree ---------------------------------------------------------------------------


def _leaf_commands() -> dict[tuple[str, ...], click.Command]:
    from sarcoma_sched.cli import cli

    found: dict[tuple[str, ...], click.Command] = {}

    def walk(group: click.Group, prefix: tuple[str, ...]) -> None:
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if isinstance(command, click.Group):
                walk(command, (*prefix, name))
            elif command is not None:
                found[(*prefix, name)] = command

    walk(cli, ())
    return found


COMMANDS = _leaf_commands()


# --- the history every invocation runs against ---------------------------------------------------

# What build_history creates (checked when it runs), so strategies can name real things.
PATIENTS = (
    "PKUIH-NATARS-0001",  # allocated 40 days ago, cycle 1 recorded done
    "PKUIH-NATARS-S0001",
    "PKUIH-NATARS-S0002",  # a screen failure (age 80)
    "BJFH-NATARS-0001",  # allocated 10 days ago, withdrawn today
    "PKUIH-NATARS-R-0001",  # minimization, allocated today
    "FJMUUH-TNT-STS-0001",  # allocated 20 days ago
    "FJMUUH-TNT-STS-S0002",  # screened, not enrolled
)
EVENTS = (
    "ai.1",
    "ai.2",
    "ai.9",
    "anlotinib.1",
    "rt",
    "surgery",
    "follow_up.m3",
    "follow_up.m12",
    "follow_up.m60",
    "ai",
    "",
)
SITES = ("PKUIH", "BJFH", "FJMUUH", "pkuih", "XJTU1", "WCH", "PKUXX")
PROTOCOLS = ("NATARS", "NATARS-R", "TNT-STS", "natars", "natars.toml", "NOPE")
ARMS = ("NEOADJUVANT", "SURGERY_ONLY", "TNT", "neoadjuvant", "ARM-X")


@dataclass(frozen=True)
class History:
    path: Path
    dump: str  # tests.dumps.dump of it
    content: bytes  # the file itself, for a quick comparison first


class PgHistory:
    """The history in a PostgreSQL template database, and a working copy that invocations use.

    The copy is made again from the template before an invocation only when the last one may
    have written (it exited 0, or its refusal changed the dump): most fuzzed invocations are
    refused, so most reuse the copy.
    """

    def __init__(self, admin_url: str, template: str, work: str, dump: str) -> None:
        self.admin_url = admin_url
        self.template = template
        self.work = work
        self.dump = dump
        self.dirty = True
        self.tables: list[str] = []
        self.print = ""

    def fingerprint(self, url: str) -> str:
        """Every table's rows, as text, sorted and hashed by the server: one round trip, where a
        full dump (``tests.dumps``) reflects the schema first. Equal to the template's exactly
        when the dumps are (same rows as text; the tables are the template's)."""
        from sqlalchemy import create_engine, text

        if not self.tables:
            from sqlalchemy import inspect

            engine = create_engine(self.url(self.template))
            try:
                self.tables = sorted(inspect(engine).get_table_names())
            finally:
                engine.dispose()
        parts = ", ".join(
            f"(SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) "
            f'FROM "{name}" t)'
            for name in self.tables
        )
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                return ",".join(conn.execute(text(f"SELECT {parts}")).one())
        finally:
            engine.dispose()

    def url(self, database: str) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.admin_url).set(database=database).render_as_string(False)

    def fresh(self) -> str:
        """The working database's URL, identical to the template."""
        if self.dirty:
            self._admin(
                f'DROP DATABASE IF EXISTS "{self.work}" WITH (FORCE)',
                f'CREATE DATABASE "{self.work}" TEMPLATE "{self.template}"',
            )
            self.dirty = False
        return self.url(self.work)

    def drop(self) -> None:
        """Both databases, and the roles an ``access setup`` in either made: roles are the
        cluster's, and would outlive the databases they were made for."""
        from sarcoma_sched.services.access import default_prefix

        patterns = [
            default_prefix(name).replace("_", "\\_") + "\\_%" for name in (self.work, self.template)
        ]
        self._admin(
            f'DROP DATABASE IF EXISTS "{self.work}" WITH (FORCE)',
            f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)',
            "DO $$DECLARE r text; BEGIN FOR r IN SELECT rolname FROM pg_roles WHERE "
            + " OR ".join(f"rolname LIKE '{p}'" for p in patterns)
            + " LOOP EXECUTE 'DROP OWNED BY ' || quote_ident(r);"
            " EXECUTE 'DROP ROLE ' || quote_ident(r); END LOOP; END$$",
        )

    def _admin(self, *statements: str) -> None:
        from sqlalchemy import create_engine, text

        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                for statement in statements:
                    conn.execute(text(statement))
        finally:
            engine.dispose()


def build_history(path: Path) -> History:
    """A small real trial network, through the services: what a week of use leaves behind."""
    from tests.dumps import dump

    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.touch()
    _populate(str(path))
    return History(path, dump(path), path.read_bytes())


def build_pg_history(admin_url: str) -> PgHistory:
    """The same history in a new template database on the server of ``admin_url``."""
    import uuid

    from tests.dumps import dump

    name = f"fuzz_{uuid.uuid4().hex[:10]}"
    history = PgHistory(admin_url, f"{name}_template", f"{name}_work", "")
    history._admin(f'CREATE DATABASE "{history.template}"')
    try:
        template = history.url(history.template)
        _populate(template)
        history.dump = dump(template)
        history.print = history.fingerprint(template)
    except BaseException:
        history.drop()
        raise
    return history


def _populate(target: str) -> None:
    from sarcoma_sched.db.session import Database
    from sarcoma_sched.demo.cohort import ELIGIBLE_NATARS, ELIGIBLE_TNT
    from sarcoma_sched.services.allocation import allocate_patient
    from sarcoma_sched.services.capacity import set_capacity
    from sarcoma_sched.services.events import record_event
    from sarcoma_sched.services.participation import end_participation
    from sarcoma_sched.services.screening import screen
    from sarcoma_sched.services.sites import close_site

    day = dt.timedelta(days=1)
    create_schema(target)
    db = Database(target)
    mdt = {"arm": "NEOADJUVANT", "basis": "mdt_decision", "reason": "MDT: borderline"}
    try:

        def allocate(number: str, on: dt.date, **kwargs: Any) -> str:
            done = allocate_patient(
                db, "setup", number, today=TODAY, allocation_date=on, consent_date=on, **kwargs
            )
            return done.study_id

        early = TODAY - 40 * day
        screen(db, "setup", "NATARS", "PKUIH", ELIGIBLE_NATARS, screened_on=early)
        first = allocate("PKUIH-NATARS-S0001", early, **mdt)
        screen(
            db,
            "setup",
            "NATARS",
            "PKUIH",
            {**ELIGIBLE_NATARS, "age_years": "80"},
            screened_on=TODAY,
        )
        screen(db, "setup", "NATARS", "BJFH", ELIGIBLE_NATARS, screened_on=TODAY - 10 * day)
        withdrawn = allocate("BJFH-NATARS-S0001", TODAY - 10 * day, **mdt)
        end_participation(
            db, "setup", withdrawn, "withdrawn", "moved away", effective_date=TODAY, today=TODAY
        )
        screen(db, "setup", "NATARS-R", "PKUIH", ELIGIBLE_NATARS, screened_on=TODAY)
        allocate("PKUIH-NATARS-R-S0001", TODAY, secret=SECRET)
        screen(db, "setup", "TNT-STS", "FJMUUH", ELIGIBLE_TNT, screened_on=TODAY - 20 * day)
        allocate("FJMUUH-TNT-STS-S0001", TODAY - 20 * day)
        screen(db, "setup", "TNT-STS", "FJMUUH", ELIGIBLE_TNT, screened_on=TODAY)
        with db.read() as session:
            from sqlalchemy import select

            from sarcoma_sched.db.models import Patient, ScheduledEvent

            patient_id = session.scalar(select(Patient.id).where(Patient.study_id == first))
            ai1 = session.scalar(
                select(ScheduledEvent.first_day).where(
                    ScheduledEvent.patient_id == patient_id, ScheduledEvent.event_id == "ai.1"
                )
            )
            refs = set()
            for p in session.scalars(select(Patient)):
                refs |= {p.screening_number, p.study_id}
        record_event(db, "setup", first, "ai.1", "done", date=ai1, reason=None, today=TODAY)
        close_site(db, "setup", "PKUIH", TODAY + 30 * day, TODAY + 32 * day, "ward move")
        set_capacity(db, "setup", "PKUIH", "theatre", per_weekday={"tue": 2, "thu": 1})
    finally:
        db.dispose()
    missing = set(PATIENTS) - refs
    assert not missing, f"build_history no longer makes {missing}"


# --- what an argument can be --------------------------------------------------------------------


@dataclass(frozen=True)
class FileArg:
    """An input file, written into the invocation's directory just before it runs."""

    suffix: str
    content: bytes
    mode: int = 0o644

    def __repr__(self) -> str:
        return f"FileArg({self.suffix!r}, {self.content[:60]!r}, mode={oct(self.mode)})"


@dataclass(frozen=True)
class OutArg:
    """An output path, always inside the invocation's directory (see ``_materialise``)."""

    path: str


@dataclass(frozen=True)
class SpecialArg:
    """An input path that is not a regular file: ``"fifo"`` (a named pipe made in the
    invocation's directory, that nobody writes to), ``"dir"`` (a directory), or a device
    (``"/dev/zero"``). Only for options a command reads, never for one it writes."""

    kind: str


Arg = str | FileArg | OutArg | SpecialArg


@dataclass(frozen=True)
class Invocation:
    command: tuple[str, ...]
    args: tuple[Arg, ...]
    # The global --db: the history's copy, or a database that cannot be used.
    db: str = "history"
    user: str | None = None
    secret: str | None = None  # $SARCOMA_SCHED_SECRET, hex

    def __str__(self) -> str:
        shown = " ".join(repr(a) if not isinstance(a, str) else _quote(a) for a in self.args)
        extra = f" [db={self.db}, user={self.user!r}, secret={self.secret is not None}]"
        return f"sarcoma-sched {' '.join(self.command)} {shown}{extra}"


def _quote(text: str) -> str:
    return text if text and all(c.isalnum() or c in "-_.=:+/" for c in text) else repr(text)


# Text a shell can pass: no NUL; sometimes bytes that are not UTF-8 (decoded as Python does).
_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")


def _mostly(
    valid: st.SearchStrategy[str], invalid: st.SearchStrategy[str], ratio: int = 5
) -> st.SearchStrategy[str]:
    """``valid`` ``ratio`` times as often as ``invalid``: an invocation has several arguments,
    and if each were often invalid, nearly every run would stop at the first usage error."""
    return st.one_of(*[valid] * ratio, invalid)


# Longer than a column (a login holds 64, a site name 200, a note 2000), or holding what a
# terminal or a log line must not be handed raw.
_LONG_OR_CONTROL = st.sampled_from(
    [
        "u" * 65,
        "s" * 201,
        "n" * 2001,
        "x" * 5000,
        "a\x07b",
        "\x1b[31mred\x1b[0m",
        "a\rb",
        "tab\there",
        "two\nlines",
        "\u202eevil",
        "\x7f",
    ]
)
TEXT = st.one_of(
    st.text(_CHARS, max_size=24),
    st.text(_CHARS, max_size=24),
    st.sampled_from(["", " ", "-", "--", "-x", "'", '"', "%s", "\\", "é", "患者", "\n", "../x"]),
    st.binary(max_size=12).filter(lambda b: b"\x00" not in b).map(os.fsdecode),
    _LONG_OR_CONTROL,
)
# A name the database stores (--user, a site's code and name, a login, a reason): TEXT, and
# also a NUL, which no shell can pass but a field file can (\u0000), SQLite stores and
# PostgreSQL refuses.
NAMES = st.one_of(TEXT, st.sampled_from(["a\x00b", "\x00", "u" * 64 + "\x00", "PKUIH\x00"]))
# Time zone names zoneinfo must never be handed as a path (issue 18: a 256-character name
# raised OSError), or that name a directory or something below a zone file.
HOSTILE_ZONES = st.sampled_from(
    [
        "A" * 256,
        "Asia/" + "S" * 300,
        "Z" * 65,
        "../../etc/passwd",
        "/etc/localtime",
        "Asia/Shanghai/x",
        "Asia",
        "Asia/Shanghai/../Shanghai",
        "Asia/Shanghai\n",
        "UTC\x00",
    ]
)
ZONES = st.one_of(
    st.sampled_from(["Asia/Shanghai", "UTC", "Mars/Olympus", "../../etc/passwd", ""]),
    HOSTILE_ZONES,
)

_FAR = st.sampled_from(
    [
        "0001-01-01",
        "0001-01-03",
        "1899-12-31",
        "1900-01-01",
        "2099-12-31",
        "2199-12-31",
        "2200-01-01",
        "9999-12-31",
    ]
)
# Both ends of a range at once (``invocations`` draws them as a pair): a report over three
# centuries ran for minutes in gigabytes, a closure that long moved events to 1899.
EXTREME_RANGES = (
    ("1900-01-01", "2199-12-31"),
    ("0001-01-01", "9999-12-31"),
    ("2199-12-31", "1900-01-01"),
    ("1900-01-01", "1900-01-01"),
    ("2199-12-31", "2199-12-31"),
)
_NEAR = st.integers(-800, 800).map(lambda n: (TODAY + dt.timedelta(days=n)).isoformat())
DATES = _mostly(
    st.one_of(
        _NEAR,
        _NEAR,
        st.dates().map(dt.date.isoformat),
        _FAR,
        st.builds(lambda s, n: f"{s}{n}d", st.sampled_from("+-"), st.integers(0, 9999)),
        st.sampled_from(["today", "TODAY", " 2026-11-02 ", "-0d"]),
    ),
    st.one_of(
        st.sampled_from(
            [
                "2027-02-30",
                "2026-13-01",
                "2026-00-10",
                "0000-01-01",
                "2026-2-3",
                "20261102",
                "2026-11-02T10:00",
                "+10000d",
                "+d",
                "yesterday",
                "1e9",
                "",
            ]
        ),
        TEXT,
    ),
)
# Numbers no option takes: Unicode digits (int() reads "٣" and "１２", str.isdigit() lets "²"
# through), wider than PostgreSQL's integer or Python's int() (4,300 digits), or negative.
HOSTILE_INTS = st.sampled_from(
    [
        "²",
        "٣",
        "１２",
        "1_000",
        " 12 ",
        "99999999999",
        "9" * 5000,
        "0" * 5000 + "1",
        "-1",
        "-99999999999",
        "-" + "9" * 5000,
        "2147483648",
        "9223372036854775808",
        str(10**9),
        str(10**12),
    ]
)
INTS = _mostly(
    st.one_of(st.integers(-5, 50), st.integers(0, 10)).map(str),
    st.one_of(
        st.integers(-(10**30), 10**30).map(str),
        st.sampled_from(["", "1.5", "0x10", "1e3", "NaN", "-0", "٣"]),
        HOSTILE_INTS,
        HOSTILE_INTS,
        TEXT,
    ),
)


def _pick(known: Sequence[str]) -> st.SearchStrategy[str]:
    """Mostly a value the history knows (else nearly every run stops at "not found")."""
    return _mostly(st.sampled_from(known), TEXT, ratio=4)


def _protocol_source(name: str) -> str:
    return (ROOT / "protocols" / name).read_text(encoding="utf-8")


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path of a TOML document, tables and list items included."""
    out: list[tuple[Any, ...]] = []
    items = data.items() if isinstance(data, dict) else enumerate(data)
    for key, value in items:
        out.append((*prefix, key))
        if isinstance(value, dict | list):
            out.extend(_paths(value, (*prefix, key)))
    return out


# Values a protocol validates and then cannot be planned or allocated with (a block of two
# billion patients), and text no column or zoneinfo takes.
_HOSTILE_TOML_INTS = st.sampled_from([2_000_000_000, 2**31, 2**63 - 1, -1, -(2**31) - 1, 10**6])
_HOSTILE_TOML_TEXT = st.one_of(HOSTILE_ZONES, st.sampled_from(["a\x00b", "s" * 201, "\x1b[2J"]))
_TOML_VALUES = st.one_of(
    _HOSTILE_TOML_INTS,
    _HOSTILE_TOML_TEXT,
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
    st.text(_CHARS, max_size=12),
    st.dates(),
    st.lists(st.integers(-3, 3), max_size=3),
    st.lists(st.text(_CHARS, max_size=4), max_size=3),
    st.dictionaries(st.text("abcxyz_", min_size=1, max_size=5), st.integers(-3, 3), max_size=2),
    st.just([]),
    st.just({}),
)


@st.composite
def _mutated_toml(draw: st.DrawFn, source: str) -> bytes:
    """A real document with one key deleted, one value replaced, or one key added."""
    import tomli_w

    data = tomllib.loads(source)
    paths = _paths(data)
    where = draw(st.sampled_from(paths))
    parent: Any = data
    for key in where[:-1]:
        parent = parent[key]
    last = where[-1]
    how = draw(st.sampled_from(["delete", "replace", "add"]))
    if how == "delete":
        del parent[last]
    elif how == "replace":
        parent[last] = draw(_TOML_VALUES)
    elif isinstance(parent, dict):
        parent[draw(st.text("abcdefgh_", min_size=1, max_size=8))] = draw(_TOML_VALUES)
    else:
        parent.append(draw(_TOML_VALUES))
    try:
        return tomli_w.dumps(data).encode()
    except (TypeError, ValueError):  # a value tomli_w cannot write (e.g. a mixed array)
        return source.encode()


# Keys whose values a protocol's sanity limits bound, or that name a zone or a column's text.
_BOUNDED_KEYS = frozenset(
    {
        "time_zone",
        "name",
        "code",
        "id",
        "version",
        "label",
        "block_sizes",
        "count",
        "every",
        "offset",
        "earliest",
        "latest",
        "days",
        "min_days",
        "every_months",
        "until_months",
        "window_days",
        "landmarks_months",
    }
)


@st.composite
def _hostile_toml(draw: st.DrawFn, source: str) -> bytes:
    """A real document with one bounded value made hostile: a zone name of 256 characters or
    shaped like a path (the study's or a site's), a count or offset of two billion, a name
    longer than its column or holding a NUL, or a block of two billion patients."""
    import tomli_w

    data = tomllib.loads(source)
    paths = [p for p in _paths(data) if p[-1] in _BOUNDED_KEYS]
    how = draw(st.sampled_from(["value", "value", "site zone", "blocks"]))
    if how == "site zone" and data.get("sites"):
        site = draw(st.integers(0, len(data["sites"]) - 1))
        data["sites"][site]["time_zone"] = draw(HOSTILE_ZONES)
    elif how == "blocks" and isinstance(data.get("allocation"), dict):
        data["allocation"]["block_sizes"] = [draw(_HOSTILE_TOML_INTS)]
    elif paths:
        where = draw(st.sampled_from(paths))
        parent: Any = data
        for key in where[:-1]:
            parent = parent[key]
        old = parent[where[-1]]
        if where[-1] == "time_zone":
            new: Any = draw(HOSTILE_ZONES)
        elif isinstance(old, str):
            new = draw(_HOSTILE_TOML_TEXT)
        elif isinstance(old, list):
            new = [draw(_HOSTILE_TOML_INTS)]
        else:
            new = draw(_HOSTILE_TOML_INTS)
        parent[where[-1]] = new
    try:
        return tomli_w.dumps(data).encode()
    except (TypeError, ValueError):
        return source.encode()


# Tables and arrays 33 (one past limits.MAX_NESTING), 10,000 and 100,000 deep: the parsers
# recurse, and RecursionError escaped them.
NESTED_TOML = tuple(
    doc
    for depth in (33, 10_000, 100_000)
    for doc in (
        b"a = " + b"[" * depth + b"]" * depth + b"\n",
        b"a = " + b"{b = " * depth + b"1" + b"}" * depth + b"\n",
        b"[" + b".".join([b"t"] * min(depth, 5000)) + b"]\nx = 1\n",
    )
)
NESTED_JSON = tuple(
    doc
    for depth in (33, 10_000, 100_000)
    for doc in (b"[" * depth + b"]" * depth, b'{"a": ' * depth + b"1" + b"}" * depth)
)


def _encodings(source: str) -> list[bytes]:
    """``source`` as a Windows editor may save it: with a byte-order mark, in UTF-16 (with and
    without one), in UTF-32."""
    return [
        codecs.BOM_UTF8 + source.encode(),
        source.encode("utf-16"),
        source.encode("utf-16-le"),
        source.encode("utf-16-be"),
        source.encode("utf-32"),
    ]


def _broken_files(source: str) -> st.SearchStrategy[bytes]:
    """Garbage, a truncation, undecodable bytes, or a one-field mutation of ``source``; one
    hostile value in it, nesting past the limit, or another encoding."""
    raw = source.encode()
    return st.one_of(
        _mutated_toml(source),
        _mutated_toml(source),
        _hostile_toml(source),
        st.integers(0, len(raw)).map(lambda n: raw[:n]),
        st.binary(max_size=64),
        st.text(_CHARS, max_size=64).map(str.encode),
        st.just(raw.replace(b"=", b"", 1)),
        st.just(b"\xff\xfe" + raw[:200]),
        st.sampled_from([*_encodings(source), *NESTED_TOML]),
        st.just(raw),
    )


# An input path that is no regular file: a FIFO that would block a reader for ever, a device
# that never ends, a directory.
SPECIAL_INPUTS = st.sampled_from(
    [SpecialArg("fifo"), SpecialArg("/dev/zero"), SpecialArg("/dev/urandom"), SpecialArg("dir")]
)


def _protocol_files() -> st.SearchStrategy[FileArg]:
    sources = [
        _protocol_source(n) for n in ("natars.toml", "natars-randomized.toml", "tnt-sts.toml")
    ]
    return st.one_of(
        st.builds(
            FileArg,
            st.sampled_from([".toml", ".toml", ".txt", ""]),
            st.one_of(*(_broken_files(s) for s in sources)),
        ),
        # Rarely: each draw of a protocol file is one of these one time in 15.
        *[st.builds(FileArg, st.just(".toml"), st.one_of(*(_broken_files(s) for s in sources)))]
        * 13,
        SPECIAL_INPUTS,
    )


def _screening_values() -> st.SearchStrategy[FileArg]:
    import tomli_w

    from sarcoma_sched.demo.cohort import ELIGIBLE_NATARS, ELIGIBLE_TNT

    tomls = [tomli_w.dumps(ELIGIBLE_NATARS), tomli_w.dumps(ELIGIBLE_TNT)]

    @st.composite
    def as_json(draw: st.DrawFn) -> bytes:
        values: dict[str, Any] = dict(draw(st.sampled_from([ELIGIBLE_NATARS, ELIGIBLE_TNT])))
        if values and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(values)))
            values[key] = draw(
                st.one_of(
                    st.none(),
                    st.integers(),
                    st.floats(),
                    st.booleans(),
                    st.lists(st.integers(), max_size=2),
                    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                    st.text(max_size=8),
                    # NUL (written \u0000), longer than any column, a number past int4.
                    st.sampled_from(["a\x00b", "x" * 5000, 2**31, 10**400, "²"]),
                )
            )
        whole = draw(st.sampled_from(["table", "list", "scalar"]))
        doc: Any = values if whole == "table" else [values] if whole == "list" else 42
        text = json.dumps(doc)
        return draw(st.sampled_from([text.encode()] * 6 + _encodings(text)))

    return st.one_of(
        st.builds(FileArg, st.just(".toml"), st.one_of(*(_broken_files(t) for t in tomls))),
        st.builds(FileArg, st.just(".json"), st.one_of(as_json(), st.binary(max_size=40))),
        st.builds(FileArg, st.just(".json"), st.sampled_from(NESTED_JSON)),
        SPECIAL_INPUTS,
    )


def _holiday_tables() -> st.SearchStrategy[FileArg]:
    source = (ROOT / "tests" / "calendars" / "cn-2027-illustrative.toml").read_text()
    return st.one_of(
        *[st.builds(FileArg, st.just(".toml"), _broken_files(source))] * 9, SPECIAL_INPUTS
    )


def _secret_files() -> st.SearchStrategy[FileArg]:
    good = SECRET.hex().encode() + b"\n"
    return st.builds(
        FileArg,
        st.just(".key"),
        st.one_of(
            st.just(good),
            st.just(good[:20]),
            st.just(b"zz" + good[2:]),
            st.just(b""),
            st.binary(max_size=40),
            st.just(codecs.BOM_UTF8 + good),
            st.just(good.decode().encode("utf-16")),
            st.just(good * 20_000),
        ),
        st.sampled_from([0o600, 0o600, 0o644, 0o000]),
    )


OUT_NAMES = st.one_of(
    st.builds(
        lambda stem, ext: f"{stem}{ext}",
        st.sampled_from(["out", "a/b/out", "x y", "über", ".hidden", "existing-file/x"]),
        st.sampled_from([".svg", ".png", ".ics", ".html", ".pdf", "", ".SVG", ".csv"]),
    ),
    st.sampled_from(["existing-file", "existing-dir", "existing-fifo", ".", ""]),
)
# Never a raw string for a path a command writes: random text can be "/" or "../..", and these
# commands run as whoever runs the fuzzer. _materialise keeps every OutArg inside the run's
# directory, where a FIFO stands in for the special files (/dev/null) a user might name.
OUTS = st.one_of(OUT_NAMES, TEXT).map(OutArg)


def _fields() -> st.SearchStrategy[str]:
    from sarcoma_sched.demo.cohort import ELIGIBLE_NATARS, ELIGIBLE_TNT

    names = sorted({*ELIGIBLE_NATARS, *ELIGIBLE_TNT, "sft_risk_score"})
    return st.one_of(
        st.builds(lambda n, v: f"{n}={v}", st.sampled_from(names), st.one_of(INTS, NAMES)),
        st.builds(lambda n, v: f"{n}={v}", TEXT, TEXT),
        TEXT,
    )


# Strategies by parameter name, where a name says more than its click type.
def _by_name() -> dict[str, st.SearchStrategy[Arg]]:
    weekday = st.sampled_from(["mon", "tue", "sun", "MON", "monday", "xyz", ""])
    return {
        "patient": _pick(PATIENTS),
        "patient_ref": _pick(PATIENTS),
        "event": _pick(EVENTS),
        "code": _pick(SITES),
        "site": _pick(SITES),
        "site_code": _pick(SITES),
        "protocol": _pick(PROTOCOLS),
        "protocol_id": _pick(PROTOCOLS),
        "protocols": _pick(PROTOCOLS),
        "protocol_name": st.one_of(_pick(PROTOCOLS), _protocol_files()),
        "name": st.one_of(_pick(PROTOCOLS), _protocol_files()),
        "arm": _pick(ARMS),
        "basis": _pick(("mdt_decision", "patient_preference", "other", "coin")),
        "criterion": _pick(("EXC-02", "INC-13", "EXC-99")),
        "fields": _fields(),
        "from_file": _screening_values(),
        "files": _protocol_files(),
        "tables": _holiday_tables(),
        "secret_file": st.one_of(_secret_files(), OUTS),
        "time_zone": ZONES,
        "login": _mostly(st.sampled_from(("coordinator_1", "postgres", "PUBLIC")), NAMES, ratio=2),
        "holiday_country": _pick(("CN", "US", "XX", "cn", "CHN", "")),
        "holiday_subdivision": _pick(("BJ", "GD", "XX", "")),
        "days": st.one_of(st.builds(lambda d, n: f"{d}={n}", weekday, INTS), TEXT),
        "by": st.one_of(
            st.lists(
                st.sampled_from(["protocol", "site", "arm", "stratum", "nope", ""]), max_size=4
            ).map(",".join),
            TEXT,
        ),
        "closure": st.one_of(
            st.builds(lambda a, b: f"{a}..{b}", DATES, DATES),
            DATES,
            st.sampled_from([f"{a}..{b}" for a, b in EXTREME_RANGES]),
        ),
        "done": st.one_of(st.builds(lambda e, d: f"{e}={d}", _pick(EVENTS), DATES), TEXT),
        "missed": _pick(EVENTS),
        "skipped": _pick(EVENTS),
        "anchor": DATES,
        "revision": _pick(("head", "0001", "0004", "base", "heads", "-1", "+1", "0099")),
        "reason": st.one_of(TEXT, TEXT, NAMES),
        "out": OUTS,
        "out_dir": OUTS,
        "db_path": st.one_of(OUTS, st.just(FileArg(".db", b"not a database"))),
    }


# Where one command's parameter means something else than the same name elsewhere.
def _by_command() -> dict[tuple[tuple[str, ...], str], st.SearchStrategy[Arg]]:
    new_code = _mostly(st.sampled_from(("ZZ1", "NEWSITE", "PKUIH")), NAMES, ratio=3)
    return {
        (("site", "add"), "code"): new_code,
        (("site", "add"), "name"): _mostly(st.sampled_from(("Ward 2", "总院")), NAMES, ratio=2),
        # Inputs only: never a special file where a command writes (init-secret).
        (("screen",), "from_file"): _screening_values(),
        (("protocol", "validate"), "files"): _protocol_files(),
    }


_NAMED: dict[str, st.SearchStrategy[Arg]] = {}
_COMMAND_NAMED: dict[tuple[tuple[str, ...], str], st.SearchStrategy[Arg]] = {}


def _value(param: click.Parameter, command: tuple[str, ...] = ()) -> st.SearchStrategy[Arg]:
    from sarcoma_sched.cli.dates import DateParam

    if not _NAMED:
        _NAMED.update(_by_name())
        _COMMAND_NAMED.update(_by_command())
    if (command, param.name) in _COMMAND_NAMED:
        return _COMMAND_NAMED[command, param.name or ""]
    kind = param.type
    if isinstance(kind, DateParam):
        return DATES
    if isinstance(kind, click.Choice):
        return _mostly(st.sampled_from([str(c) for c in kind.choices]), TEXT)
    if isinstance(kind, click.IntRange) or kind is click.INT:
        return INTS
    if param.name in _NAMED:
        return _NAMED[param.name]
    return TEXT


# Cheap variants: valid input to these runs for seconds (the whole demo; a simulation of
# 1000 trials by default), which a fuzz example per command cannot afford every time.
def _cheap(command: tuple[str, ...], args: list[list[Arg]]) -> list[list[Arg]]:
    if command == ("demo",):
        # An existing --db without --replace is refused before anything runs.
        kept = [a for a in args if a[0] not in ("--db", "--replace")]
        return [["--db", FileArg(".db", b"an earlier demo")], *kept]
    if command == ("allocation", "simulate"):
        # A count the command refuses (10**12 patients, "²") is cheap and kept; a valid one is
        # replaced by a small one.
        cheap = {"--trials": "3", "--patients": "20"}
        for option in list(cheap):
            drawn = [a for a in args if a[0] == option]
            if drawn and all(len(a) == 2 and _refused(command, option, a[1]) for a in drawn):
                del cheap[option]
        kept = [a for a in args if a[0] not in cheap]
        small: list[list[Arg]] = [[o, v] for o, v in cheap.items()]
        return [*small, *kept]
    return args


def _refused(command: tuple[str, ...], option: str, value: Arg) -> bool:
    """Whether ``option`` of ``command`` refuses ``value`` as a number outside its bounds."""
    from sarcoma_sched.limits import parse_whole

    if not isinstance(value, str):
        return True
    param = next(p for p in COMMANDS[command].params if option in p.opts)
    assert isinstance(param.type, click.IntRange)
    low = -(2**63) if param.type.min is None else int(param.type.min)
    high = 2**63 - 1 if param.type.max is None else int(param.type.max)
    try:
        parse_whole(value, low, high)
    except ValueError:
        return True
    return False


# The names of a date range's two ends, drawn together now and then (``EXTREME_RANGES``).
_RANGES = (("date_from", "date_to"), ("first_day", "last_day"))


@st.composite
def invocations(
    draw: st.DrawFn, command: tuple[str, ...], *, expensive: bool = False
) -> Invocation:
    """One invocation of ``command``: each option and argument present or not, in any order."""
    cmd = COMMANDS[command]
    options: list[list[Arg]] = []
    positional: list[Arg] = []
    for param in cmd.params:
        if isinstance(param, click.Argument):
            wanted = draw(st.integers(0, 19)) > 0 if param.required else draw(st.booleans())
            if wanted:
                count = draw(st.integers(1, 3)) if param.nargs == -1 else 1
                positional.extend(draw(_value(param, command)) for _ in range(count))
            continue
        assert isinstance(param, click.Option)
        wanted = draw(st.integers(0, 9)) > 0 if param.required else draw(st.integers(0, 9)) < 4
        if not wanted:
            continue
        name = draw(st.sampled_from(param.opts))
        if param.is_flag:
            options.append([name])
            continue
        for _ in range(draw(st.integers(1, 3)) if param.multiple else 1):
            options.append([name, draw(_value(param, command))])
    by_name = {p.name: p for p in cmd.params if isinstance(p, click.Option)}
    for first, last in _RANGES:
        if first in by_name and last in by_name and draw(st.integers(0, 7)) == 0:
            ends = (by_name[first].opts, by_name[last].opts)
            options = [o for o in options if o[0] not in (*ends[0], *ends[1])]
            low, high = draw(st.sampled_from(EXTREME_RANGES))
            options += [[ends[0][0], low], [ends[1][0], high]]
    if not expensive:
        options = _cheap(command, options)
    order = draw(st.permutations(range(len(options)))) if options else []
    tokens: list[Arg] = [t for i in order for t in options[i]]
    tokens = positional + tokens if draw(st.integers(0, 9)) == 0 else tokens + positional
    if draw(st.integers(0, 19)) == 0:  # a stray argument or an unknown option
        tokens.insert(draw(st.integers(0, len(tokens))), draw(st.one_of(TEXT, st.just("--bogus"))))
    db = draw(
        st.sampled_from(["history"] * 16 + ["missing", "directory", "garbage", "unsupported"])
    )
    user = draw(st.one_of(st.none(), st.none(), st.none(), st.just("dr. 王"), TEXT, NAMES))
    secret = draw(st.sampled_from([None, SECRET.hex(), "zz", "00" * 4]))
    return Invocation(command, tuple(tokens), db, user, secret)


# --- running one --------------------------------------------------------------------------------


@dataclass
class Outcome:
    invocation: Invocation
    code: int | None  # None: an exception escaped main()
    stdout: str
    stderr: str
    traceback: str | None = None
    db_changed: bool = False
    special_replaced: bool = False  # the FIFO standing for /dev/null became a plain file
    seconds: float = 0.0
    hung: bool = False  # still running after the timeout: stopped, and a failure


def _materialise(arg: Arg, directory: Path, n: int) -> str:
    if isinstance(arg, str):
        return arg
    if isinstance(arg, FileArg):
        path = directory / f"input-{n}{arg.suffix}"
        path.write_bytes(arg.content)
        path.chmod(arg.mode)
        return str(path)
    if isinstance(arg, SpecialArg):
        if arg.kind == "fifo":
            path = directory / f"input-{n}.fifo"
            os.mkfifo(path)
            return str(path)
        if arg.kind == "dir":
            return str(directory / "existing-dir")
        return arg.kind
    inside = os.path.normpath(directory / arg.path.lstrip("/"))
    if os.path.commonpath([inside, directory]) != str(directory):
        inside = str(directory / "escaped")
    return inside + ("/" if arg.path.endswith("/") else "")


def _db_arg(kind: str, directory: Path, copy: Path) -> str:
    if kind == "history":
        return str(copy)
    if kind == "missing":
        return str(directory / "no-such.db")
    if kind == "directory":
        return str(directory)
    if kind == "garbage":
        garbage = directory / "garbage.db"
        garbage.write_bytes(b"this is not an SQLite database\n" * 40)
        return str(garbage)
    return "mysql://user@localhost/trial"


@contextlib.contextmanager
def _chdir(path: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


class _Hung(BaseException):
    """Raised in the invocation by the timer: not an ``Exception``, so ``main`` cannot take it
    for an error of its own and print one line."""


@contextlib.contextmanager
def _deadline(seconds: float | None) -> Iterator[list[bool]]:
    """Interrupt the block after ``seconds`` (a blocking read of a FIFO included: the signal
    ends the system call); the list it yields holds True if it did. Only in the main thread,
    where signals are delivered; elsewhere the block runs unbounded."""
    fired = [False]
    usable = (
        seconds is not None
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable or seconds is None:
        yield fired
        return

    def expire(_signum: int, _frame: object) -> None:
        fired[0] = True
        raise _Hung(f"no exit after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_invocation(
    invocation: Invocation,
    history: History | PgHistory,
    work: Path,
    *,
    timeout: float | None = TIMEOUT,
) -> Outcome:
    """Run one invocation on a fresh copy of the history inside a directory of its own; one
    still running after ``timeout`` seconds is stopped and reported as hung."""
    from tests.dumps import dump

    directory = Path(tempfile.mkdtemp(prefix="ex-", dir=work))
    try:
        (directory / "existing-file").write_text("already here\n")
        (directory / "existing-dir").mkdir()
        fifo = directory / "existing-fifo"
        os.mkfifo(fifo)
        # Group-readable, so a command that takes it for a key file refuses it (mode check)
        # instead of blocking on reading a pipe nobody writes.
        fifo.chmod(0o644)
        copy = directory / "trial.db"
        pg = isinstance(history, PgHistory) and invocation.db == "history"
        if isinstance(history, PgHistory):
            target = history.fresh() if pg else ""
        else:
            shutil.copyfile(history.path, copy)
            target = str(copy)
        args = [_materialise(a, directory, n) for n, a in enumerate(invocation.args)]
        db_arg = target if invocation.db == "history" else _db_arg(invocation.db, directory, copy)
        argv = ["--db", db_arg]
        if invocation.user is not None:
            argv += ["--user", invocation.user]
        argv += [*invocation.command, *args]
        env: dict[str, str | None] = {
            "SARCOMA_SCHED_DB": None,
            "SARCOMA_SCHED_USER": None,
            "SARCOMA_SCHED_DEBUG": None,
            "SARCOMA_SCHED_SECRET_FILE": None,
            "SARCOMA_SCHED_SECRET": invocation.secret,
            "XDG_DATA_HOME": str(directory / "xdg-data"),
            "XDG_CONFIG_HOME": str(directory / "xdg-config"),
        }
        start = time.perf_counter()
        with _chdir(directory), _deadline(timeout) as fired:
            try:
                code, out, err, escaped = run_cli(argv, env)
            except _Hung:  # the timer fired outside main() (e.g. flushing the streams)
                code, out, err, escaped = None, "", "", None
        outcome = Outcome(invocation, code, out, err, None if fired[0] else escaped)
        outcome.hung = fired[0]
        outcome.seconds = time.perf_counter() - start
        try:
            outcome.special_replaced = not stat.S_ISFIFO(fifo.lstat().st_mode)
        except FileNotFoundError:
            outcome.special_replaced = True
        if pg:
            assert isinstance(history, PgHistory)
            # A command that succeeded may have written: the next one gets a new copy.
            history.dirty = code == 0 or history.fingerprint(target) != history.print
            outcome.db_changed = code != 0 and history.dirty
        elif code != 0 and isinstance(history, History):
            # Identical bytes are an identical dump; only a file that differs (SQLite may
            # rewrite a page without changing content) needs the dump compared.
            wal = Path(f"{copy}-wal")
            same = copy.read_bytes() == history.content and (
                not wal.exists() or wal.stat().st_size == 0
            )
            outcome.db_changed = not same and dump(copy) != history.dump
        return outcome
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def problems(outcome: Outcome) -> list[str]:
    """What must never happen, whatever the input."""
    found = []
    if outcome.hung:
        found.append(f"hung: still running after {outcome.seconds:.0f} s, stopped")
        return found
    if outcome.traceback is not None:
        found.append(f"uncaught exception:\n{outcome.traceback}")
    if "Traceback" in outcome.stdout or "Traceback" in outcome.stderr:
        found.append(f"a traceback in the output:\n{outcome.stderr[-3000:]}")
    if outcome.code is not None and outcome.code not in (0, 1, 2):
        found.append(f"exit status {outcome.code}")
    if outcome.db_changed:
        found.append(f"exit status {outcome.code} but the database changed")
    if outcome.code in (1, 2) and not error_lines(outcome.stderr):
        found.append(f"exit status {outcome.code} without an error line: {outcome.stderr!r}")
    if outcome.special_replaced:
        found.append(
            "a named pipe given as --out was replaced by a plain file (/dev/null would be)"
        )
    return found


def error_lines(stderr: str) -> list[str]:
    """The lines saying why a command was refused: ours (``error: ...``), click's usage errors
    (``Error: ...``, after its Usage and Try lines)."""
    return [line for line in stderr.splitlines() if line.startswith(("error: ", "Error: "))]


def signature(outcome: Outcome) -> str:
    """One line naming a failure, to group the same bug found by many inputs."""
    if outcome.hung:
        return f"{' '.join(outcome.invocation.command)}: hung"
    if outcome.traceback:
        last = outcome.traceback.strip().splitlines()[-1]
        return f"{' '.join(outcome.invocation.command)}: {last.split(':')[0]}"
    return f"{' '.join(outcome.invocation.command)}: {problems(outcome)[0].splitlines()[0]}"


# --- the long run -------------------------------------------------------------------------------


@dataclass
class Tally:
    codes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    seconds: Counter[str] = field(default_factory=Counter)
    failures: dict[str, Outcome] = field(default_factory=dict)
    failure_counts: Counter[str] = field(default_factory=Counter)

    def add(self, outcome: Outcome) -> None:
        name = " ".join(outcome.invocation.command)
        self.codes[name]["exception" if outcome.code is None else str(outcome.code)] += 1
        self.seconds[name] += outcome.seconds
        if problems(outcome):
            key = signature(outcome)
            self.failure_counts[key] += 1
            best = self.failures.get(key)
            if best is None or len(str(outcome.invocation)) < len(str(best.invocation)):
                self.failures[key] = outcome


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.reliability.fuzz", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--examples", type=int, default=5000, help="in all, over the commands")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--command", action="append", help="only this command (repeatable)")
    parser.add_argument("--expensive", action="store_true", help="no cheap variants")
    parser.add_argument(
        "--pg-url", help="keep the history in PostgreSQL on this server (a database of its own)"
    )
    args = parser.parse_args(argv)

    selected = [tuple(c.split()) for c in args.command] if args.command else list(COMMANDS)
    unknown = [c for c in selected if c not in COMMANDS]
    if unknown:
        parser.error(f"unknown command(s): {unknown}")
    work = Path(tempfile.mkdtemp(prefix="fuzz-"))
    start = time.perf_counter()
    history: History | PgHistory
    if args.pg_url:
        history = build_pg_history(args.pg_url)
        print(f"history in PostgreSQL: {history.template}; work files in {work}", flush=True)
    else:
        print(f"building the history in {work} ...", flush=True)
        history = build_history(work / "history.db")
    try:
        tally = _fuzz(args, selected, history, work)
    finally:
        if isinstance(history, PgHistory):
            history.drop()
    elapsed = time.perf_counter() - start
    total = Counter[str]()
    for codes in tally.codes.values():
        total.update(codes)
    print(
        f"\n{sum(total.values())} invocations in {elapsed:.0f} s: "
        + ", ".join(f"exit {k}: {v}" for k, v in sorted(total.items()))
    )
    for key, outcome in tally.failures.items():
        print(f"\nFAILURE ({tally.failure_counts[key]}x) {key}\n  {outcome.invocation}")
        for problem in problems(outcome):
            print("  " + problem.replace("\n", "\n  "))
    shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if tally.failures else 0)


def _fuzz(
    args: argparse.Namespace,
    selected: list[tuple[str, ...]],
    history: History | PgHistory,
    work: Path,
) -> Tally:
    from hypothesis import HealthCheck, Phase, given, seed, settings

    tally = Tally()
    per_command = max(1, args.examples // len(selected))
    for command in selected:

        @settings(
            max_examples=per_command,
            deadline=None,
            database=None,
            derandomize=False,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @seed(args.seed)
        @given(invocations(command, expensive=args.expensive))
        def fuzz_one(invocation: Invocation) -> None:
            tally.add(run_invocation(invocation, history, work))

        fuzz_one()
        codes = tally.codes[" ".join(command)]
        print(
            f"{' '.join(command):<24} {sum(codes.values()):>5} runs  "
            + "  ".join(f"exit {k}: {v}" for k, v in sorted(codes.items()))
            + f"  ({tally.seconds[' '.join(command)]:.1f} s)",
            flush=True,
        )
    return tally


if __name__ == "__main__":
    main()
