"""A read command's own connection (``db.quick_open``) opens what the engine opens, as the engine
reads its URL, and refuses what the engine refuses in the engine's words; its statements give
the rows an SQLAlchemy connection gives for the same text (``db.rows``).

The quick path is worth having only if it is the engine's path with SQLAlchemy left out: every
case it does not take for granted is handed to ``CoreReader``, so an unhappy case is compared
here outcome for outcome with what ``CoreReader`` alone does.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg import sql
from sqlalchemy.dialects.postgresql import psycopg as pg_dialect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DatabaseError as SqlDatabaseError
from sqlalchemy.exc import DBAPIError, OperationalError

from sarcoma_sched.db.engine import resolve_url
from sarcoma_sched.db.quick_open import reading, target_of, through_the_engine
from sarcoma_sched.db.refusals import server_refusal
from sarcoma_sched.db.rows import DriverRows
from sarcoma_sched.db.session import Database
from sarcoma_sched.errors import AccessDenied, ActorMismatch, SarcomaSchedError
from sarcoma_sched.services.protocols import initialize
from tests.databases import pg_base_url, pg_schema_url

# --- how a URL is read ---------------------------------------------------------------------

_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12
)
_host = st.sampled_from(["127.0.0.1", "localhost", "db.example.org", "[::1]"])


@given(
    driver=st.sampled_from(["postgresql", "postgresql+psycopg"]),
    user=st.none() | _text,
    password=st.none() | _text,
    host=st.none() | _host,
    port=st.none() | st.integers(1, 65535),
    database=st.none() | _text,
    options=st.none() | _text,
)
def test_a_postgresql_url_gives_the_connection_arguments_sqlalchemy_gives(
    driver, user, password, host, port, database, options
):
    if password is not None and user is None:
        password = None  # no password without a user in a URL
    if port is not None and host is None:
        port = None
    url = URL.create(
        driver,
        username=user,
        password=password,
        host=host.strip("[]") if host else None,
        port=port,
        database=database,
        query={"options": options} if options is not None else {},
    ).render_as_string(hide_password=False)
    expected = pg_dialect.dialect().create_connect_args(make_url(resolve_url(url, env={})))[1]
    found = target_of(url, env={})
    # Served as SQLAlchemy reads it, or left to SQLAlchemy; a plain URL is always served.
    assert found is None or found == expected, url
    plain = all(t is None or (t.isascii() and t.isalnum()) for t in (user, password, database))
    if plain and (options is None or (options.isascii() and options.isalnum())):
        assert found == expected, url


@given(name=_text.filter(lambda t: "/" not in t and "\0" not in t and t not in (".", "..")))
def test_an_sqlite_path_or_url_names_the_file_sqlalchemy_opens(tmp_path_factory, name):
    where = tmp_path_factory.mktemp("names")
    path = where / name
    for value in (str(path), URL.create("sqlite", database=str(path)).render_as_string()):
        found = target_of(value, env={})
        assert found == Path(make_url(resolve_url(value, env={})).database), value


@pytest.mark.parametrize(
    "value",
    [
        "sqlite:/x.db",  # a slash missing: the engine says so
        "postgres://u@h/db",
        "mysql://u@h/db",
        "sqlite:///:memory:",
        "sqlite:///x.db?mode=ro",
        "postgresql://u@h1,h2/db",
        "postgresql://u@h/db?options=a&options=b",
        "postgresql://u@h:99999/db",
        # What libpq would read as another login, server or database than SQLAlchemy does:
        "postgresql://alice@db.example.org/t?user=&host=",
        "postgresql://alice@db.example.org/t?user=bob",
        "postgresql://alice@db.example.org:15432/t?port=",
        "postgresql://alice@h/t?service=other",
        "postgresql://alice@h/t?dbname=other",
        "postgresql://postgres@%2Fvar%2Frun%2Fpostgresql/test",
        "postgresql://postgres:pw@x@127.0.0.1:5432/test",
        "postgresql://postgres@127.0.0.1:/test",
    ],
)
def test_a_url_in_another_form_is_left_to_the_engine(value):
    assert target_of(value, env={}) is None


@given(value=st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60))
def test_any_text_is_read_as_a_target_or_left_to_the_engine_never_a_crash(value):
    value = value.replace("\0", "")
    try:
        resolve_url(value, env={})
    except Exception:
        engine_refuses = True
    else:
        engine_refuses = False
    try:
        found = target_of(value, env={})
    except Exception:
        assert engine_refuses, value  # only what the engine refuses too may fail here
        return
    assert found is None or isinstance(found, (Path, dict))


def test_a_relative_sqlite_url_names_a_file_not_a_sqlite_uri(sqlite_db, tmp_path, monkeypatch):
    # SQLite reads a name starting "file:" as a URI: "file:trial.db" would open trial.db.
    monkeypatch.chdir(tmp_path)
    other = _copy(sqlite_db, tmp_path / "trial.db")
    with sqlite3.connect(other) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'other'")
    _copy(sqlite_db, tmp_path / "file:trial.db")
    assert target_of("sqlite:///file:trial.db", env={}) == tmp_path / "file:trial.db"
    with reading("sqlite:///file:trial.db", user=None) as rows:
        assert isinstance(rows, DriverRows)  # the named file, at this code's revision
    (tmp_path / "file:trial.db").unlink()
    other.unlink()
    assert _outcome(lambda: reading("sqlite:///file:trial.db", user=None)).startswith("error: ")
    assert not (tmp_path / "trial.db").exists()  # nothing created
    assert not (tmp_path / "file:trial.db").exists()


def test_no_url_means_the_default_file_or_the_environments():
    env = {"XDG_DATA_HOME": "/data"}
    assert target_of(None, env=env) == Path("/data/sarcoma-sched/schedule.db")
    assert target_of(None, env={**env, "SARCOMA_SCHED_DB": "/x/y.db"}) == Path("/x/y.db")


# --- what is refused, and in which words ------------------------------------------------------


def _outcome(open_reading) -> str:
    """What the block saw: the kind of connection, or the line the command would print (as
    ``cli.main`` turns the engine's own errors into one), or else the traceback's error."""
    try:
        with open_reading() as rows:
            rows.all("SELECT count(*) FROM sites")
            return type(rows).__name__
    except SarcomaSchedError as exc:
        return f"error: {exc}"
    except DBAPIError as exc:
        refusal = server_refusal(exc)
        if refusal is not None:
            return f"error: {refusal}"
        if isinstance(exc, OperationalError) or type(exc) is SqlDatabaseError:
            return "error: database: " + str(exc.orig).strip().splitlines()[0]
        return f"traceback: {type(exc).__name__}: {exc}".split("\n[SQL")[0]
    except Exception as exc:
        return f"traceback: {type(exc).__name__}: {exc}"


def _core(url: str, user: str | None = None, read_only: bool = False):
    """What ``CoreReader`` alone does with ``url``."""
    return through_the_engine(url, user, read_only)


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("quick") / "trial.db"
    db = Database(str(path), check_schema=False)
    initialize(db, "setup")
    db.dispose()
    return path


def _copy(source: Path, to: Path) -> Path:
    with sqlite3.connect(source) as src, sqlite3.connect(to) as dst:
        src.backup(dst)
    return to


def test_a_healthy_file_is_read_by_the_driver_alone(sqlite_db):
    with reading(str(sqlite_db), user="nurse") as rows:
        assert isinstance(rows, DriverRows)
        assert rows.dialect == "sqlite"
        assert rows.all("SELECT count(*) FROM sites")[0][0] > 0
        # One snapshot, and nothing written: a read command's statements cannot change the file.
        assert rows.connection.in_transaction


def _cases(tmp_path: Path, healthy: Path) -> dict[str, str]:
    missing = tmp_path / "missing.db"
    directory = tmp_path / "a-directory"
    directory.mkdir()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not an SQLite database, only text" * 100)
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    older = _copy(healthy, tmp_path / "older.db")
    newer = _copy(healthy, tmp_path / "newer.db")
    for file, revision in ((older, "0011"), (newer, "9999")):
        with sqlite3.connect(file) as conn:
            conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    return {
        "missing": str(missing),
        "directory": str(directory),
        "garbage": str(garbage),
        "empty": str(empty),
        "older": str(older),
        "newer": str(newer),
        "url without its slashes": "sqlite:" + str(healthy),
    }


def test_a_file_the_engine_refuses_is_refused_in_the_engines_words(sqlite_db, tmp_path):
    for case, url in _cases(tmp_path, sqlite_db).items():
        quick = _outcome(lambda url=url: reading(url, user=None))
        engine = _outcome(lambda url=url: _core(url))
        assert quick == engine, case
        assert quick != "EngineRows", f"{case}: {quick}"  # each case is refused


def test_a_file_this_user_may_not_write_is_refused_unless_read_only(sqlite_db, tmp_path):
    folder = tmp_path / "archive"
    folder.mkdir()
    archived = _copy(sqlite_db, folder / "trial.db")
    archived.chmod(0o444)
    folder.chmod(0o555)
    try:
        if _outcome(lambda: reading(str(archived), user=None)) == "DriverRows":
            pytest.skip("this user writes read-only files (root)")
        for read_only in (False, True):
            quick = _outcome(lambda ro=read_only: reading(str(archived), user=None, read_only=ro))
            assert quick == _outcome(lambda ro=read_only: _core(str(archived), read_only=ro))
        with reading(str(archived), user=None, read_only=True) as rows:
            assert isinstance(rows, DriverRows)
    finally:
        folder.chmod(0o755)


def test_a_file_this_user_may_not_write_is_opened_read_only_by_sqlite_itself(
    sqlite_db, monkeypatch
):
    # As root every file is writable; the branch for one that is not is taken by pretending.
    monkeypatch.setattr("sarcoma_sched.db.quick_open.writable", lambda _file: False)
    with reading(str(sqlite_db), user=None, read_only=True) as rows:
        assert rows.all("SELECT count(*) FROM sites")[0][0] > 0
        with pytest.raises(SarcomaSchedError, match=r"attempt to write a readonly database"):
            rows.all("PRAGMA query_only=OFF")  # mode=ro holds even without the pragma
            rows.all("UPDATE sites SET name = name")


def test_a_read_only_reader_cannot_write_and_an_actor_too_long_is_refused_first(sqlite_db):
    with (
        reading(str(sqlite_db), user=None, read_only=True) as rows,
        pytest.raises(SarcomaSchedError, match=r"attempt to write a readonly database"),
    ):
        rows.all("DELETE FROM sites")
    with reading(str(sqlite_db), user=None) as rows:
        assert rows.all("SELECT count(*) FROM sites")[0][0] > 0  # nothing was deleted
    long = "u" * 65
    assert _outcome(lambda: reading(str(sqlite_db), user=long)) == _outcome(
        lambda: _core(str(sqlite_db), user=long)
    )


# --- the same text, the same rows --------------------------------------------------------------

_values = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20).map(
        lambda t: t.replace("\0", "")
    ),
    st.integers(-(2**62), 2**62),
    st.dates(dt.date(1900, 1, 1), dt.date(2200, 12, 31)),
    st.none(),
)
# Literal text with what a parameter style could mistake for its own: colons, percent signs,
# quotes (doubled inside the literal, as SQL spells them).
_literals = st.text(st.sampled_from("ab:%'\" _x1"), max_size=12)


def _statement(literal: str) -> str:
    quoted = "'" + literal.replace("'", "''") + "'"
    return (
        f"SELECT CAST(:a AS TEXT), CAST(:b AS TEXT), {quoted}, '100%:x', "
        "CASE WHEN CAST(:a AS TEXT) IS NULL THEN 'none' ELSE 'some' END"
    )


@settings(max_examples=40, deadline=None)
@given(a=_values, b=_values, literal=_literals)
def test_the_driver_and_sqlalchemy_give_the_same_rows_for_the_same_text(sqlite_db, a, b, literal):
    params = {"a": a, "b": b, "unused": "ignored"}
    statement = _statement(literal)
    with reading(str(sqlite_db), user=None) as own, _core(str(sqlite_db)) as engine:
        found = own.all(statement, params)
        assert found == engine.all(statement, params)
        assert found[0][2:4] == (literal, "100%:x")
        if isinstance(a, dt.date):
            assert own.all("SELECT CAST(:a AS TEXT)", {"a": a}) == [(a.isoformat(),)]


# --- PostgreSQL: the login, its grants, a read-only session -----------------------------------


@pytest.fixture(scope="module")
def pg_trial() -> Iterator[str]:
    with pg_schema_url() as url:
        db = Database(url, check_schema=False)
        initialize(db, "setup")
        db.dispose()
        yield url


@pytest.fixture
def login(pg_trial) -> Iterator[tuple[str, str]]:
    """A login that may use the schema and read the sites and its revision, nothing else; its
    URL. Dropped afterwards (roles are cluster-wide)."""
    name = f"quick_{uuid.uuid4().hex[:10]}"
    schema = dict(make_url(pg_trial).query)["options"].split("=", 1)[1]
    admin = psycopg.connect(
        make_url(pg_base_url()).set(drivername="postgresql").render_as_string(hide_password=False),
        autocommit=True,
    )
    role = sql.Identifier(name)
    try:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(role))
        admin.execute(
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), role)
        )
        for table in ("alembic_version", "sites"):
            admin.execute(
                sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(schema, table), role)
            )
        yield name, make_url(pg_trial).set(username=name).render_as_string(hide_password=False)
    finally:
        admin.execute(sql.SQL("DROP OWNED BY {}").format(role))
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))
        admin.close()


@pytest.mark.postgres
def test_postgresql_is_read_by_the_driver_alone_as_the_login(login):
    name, url = login
    with reading(url, user=name) as rows:
        assert isinstance(rows, DriverRows) and rows.dialect == "postgresql"
        assert rows.all("SELECT session_user, current_user")[0] == (name, name)
    with (
        pytest.raises(
            ActorMismatch, match=f"--user someone_else is not the PostgreSQL login {name}"
        ),
        reading(url, user="someone_else"),
    ):
        pass


@pytest.mark.postgres
def test_what_the_login_may_not_read_is_refused_in_one_line(login):
    _, url = login
    with reading(url, user=None) as rows, pytest.raises(AccessDenied) as refused:
        rows.all("SELECT count(*) FROM scheduled_events")
    assert (
        str(refused.value)
        == "refused by the database: permission denied for table scheduled_events"
    )


@pytest.mark.postgres
def test_a_read_only_session_is_refused_any_write_by_the_server(pg_trial):
    with reading(pg_trial, user=None, read_only=True) as rows:
        assert rows.all("SHOW default_transaction_read_only") == [("on",)]
        with pytest.raises(Exception, match="read-only transaction"):
            rows.all("DELETE FROM sites")
    with reading(pg_trial, user=None) as rows:
        assert rows.all("SELECT count(*) FROM sites")[0][0] > 0


@pytest.mark.postgres
def test_a_login_without_the_schema_or_a_wrong_database_is_refused_in_the_engines_words(
    pg_trial, login
):
    _, url = login
    stranger = f"quick_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(
        make_url(pg_base_url()).set(drivername="postgresql").render_as_string(hide_password=False),
        autocommit=True,
    )
    try:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(stranger)))
        cases = {
            "no usage": make_url(pg_trial)
            .set(username=stranger)
            .render_as_string(hide_password=False),
            "no such database": make_url(url)
            .set(database="no_such_db_here")
            .render_as_string(hide_password=False),
            "no such login": make_url(url)
            .set(username="no_such_login_here")
            .render_as_string(hide_password=False),
        }
        for case, where in cases.items():
            quick = _outcome(lambda where=where: reading(where, user=None))
            assert quick == _outcome(lambda where=where: _core(where)), case
            assert quick != "EngineRows", case
    finally:
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(stranger)))
        admin.close()


@pytest.mark.postgres
@settings(max_examples=30, deadline=None)
@given(a=_values, b=_values, literal=_literals)
def test_postgresql_gives_the_same_rows_to_the_driver_and_to_sqlalchemy(pg_trial, a, b, literal):
    params = {"a": a, "b": b}
    statement = _statement(literal).replace("CAST(:a AS TEXT)", ":a::text")  # PostgreSQL's cast
    with reading(pg_trial, user=None) as own, _core(pg_trial) as engine:
        found = own.all(statement, params)
        assert found == engine.all(statement, params)
        assert found[0][2:4] == (literal, "100%:x")
        if a is not None:
            assert found[0][0] == (a.isoformat() if isinstance(a, dt.date) else str(a))


@pytest.mark.postgres
def test_a_server_that_refuses_the_connection_is_asked_once_and_said_in_one_line(pg_trial):
    where = make_url(pg_trial).set(port=1).render_as_string(hide_password=False)
    tried = []
    real = psycopg.connect

    def counted(*args, **kwargs):
        tried.append(kwargs or args)
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(psycopg, "connect", counted)
        quick = _outcome(lambda: reading(where, user=None))
    assert len(tried) == 1  # not a second login through the engine
    assert quick == _outcome(lambda: _core(where))
    assert quick.startswith("error: database: connection failed")


@pytest.mark.postgres
def test_a_connection_the_server_drops_mid_command_is_one_line_not_a_traceback(pg_trial):
    admin = psycopg.connect(
        make_url(pg_base_url()).set(drivername="postgresql").render_as_string(hide_password=False),
        autocommit=True,
    )
    try:
        with pytest.raises(SarcomaSchedError) as said, reading(pg_trial, user=None) as rows:
            pid = rows.all("SELECT pg_backend_pid()")[0][0]
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            rows.all("SELECT count(*) FROM sites")
        assert str(said.value).startswith("database: terminating connection")
    finally:
        admin.close()


@pytest.mark.postgres
def test_colons_and_percent_signs_in_comments_and_quoted_strings_are_not_parameters(pg_trial):
    statement = (
        "SELECT 1 /* :a ' % */, $$:b %$$, E'it\\'s :c %', :d, 'x''y:z', $t$ :q $t$ -- :e '\n"
        ", CAST(:f AS TEXT)::text"
    )
    with reading(pg_trial, user=None) as rows:
        assert rows.all(statement, {"d": 5, "f": "%:f"}) == [
            (1, ":b %", "it's :c %", 5, "x'y:z", " :q ", "%:f")
        ]
