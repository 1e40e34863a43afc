"""The coordinators' daily queries in process: the services against the raw driver, with plans.

    python -m benchmarks.queries --db PATH_OR_URL [--runs 30] [--site CODE] [--as-of DATE]
                                 [--extra] [--plans]

On a network database (``benchmarks.network``), for each query:

* measured: the service function (``services.queries.visits``, ``overdue``, ``deviations``)
  on the read command's own connection (``db.quick_open``), exactly what the command runs
  after opening the database: every statement it issues (the site check, ``max(span_days)``,
  the query) plus building its rows;
* baseline: the same statements with the same parameters (captured from the engine's cursor
  on a session, which runs the same text), run through the bare driver (``sqlite3`` /
  ``psycopg``) on a connection of its own, fetching every row and nothing more.

Ratio = service p50 / driver p50: what the service's Python and its row building add to the
database's own work (target <= 1.5; p95 target <= 50 ms). Runs alternate between
the two so both see the same machine. Then the indexes each plan uses (name and columns, from
the database's catalogue) and the plan itself (``EXPLAIN QUERY PLAN``; on PostgreSQL
``EXPLAIN (ANALYZE, BUFFERS)``).

The three targets, at the busiest site (most allocated patients) and the network's as-of date
(``benchmarks.network --as-of``, default today: the network's latest allocation date, which is
its as-of date whenever a patient was allocated that day, as is near-certain from a few
thousand patients on):

* ``visits SITE next 7 days``: ``visits(as_of, as_of + 6 days, site=SITE)``;
* ``overdue SITE``: ``overdue(as_of, site=SITE)``;
* ``deviations this month``: ``deviations(1st .. last of as_of's month)``, every site.

``--extra`` adds the same questions the other way round (deviations at the site, visits and
overdue at every site), which the coordinators ask too but which are not targets.
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from benchmarks._table import header, row
from sarcoma_sched.db.models import Allocation, ScheduledEvent
from sarcoma_sched.db.quick_open import reading
from sarcoma_sched.db.session import Database
from sarcoma_sched.services import queries as q

__all__ = ["Measured", "main", "measure", "targets"]

Query = Callable[[Any], list[dict[str, Any]]]  # a session, or a read command's Rows
Statement = tuple[str, Any]


@dataclass(frozen=True)
class Target:
    name: str
    run: Query
    target: bool = True  # one of the three the issue sets targets for


def targets(site: str, as_of: dt.date, *, extra: bool = False) -> list[Target]:
    week_end = as_of + dt.timedelta(days=6)
    month_first = as_of.replace(day=1)
    month_last = as_of.replace(day=calendar.monthrange(as_of.year, as_of.month)[1])
    found = [
        Target(
            f"visits {site} next 7 days",
            lambda s: q.visits(s, as_of, week_end, site=site),
        ),
        Target(f"overdue {site}", lambda s: q.overdue(s, as_of, site=site)),
        Target(
            "deviations this month",
            lambda s: q.deviations(s, date_from=month_first, date_to=month_last),
        ),
    ]
    if extra:
        found += [
            Target(
                f"deviations {site} this month",
                lambda s: q.deviations(s, date_from=month_first, date_to=month_last, site=site),
                target=False,
            ),
            Target("visits next 7 days", lambda s: q.visits(s, as_of, week_end), target=False),
            Target("overdue", lambda s: q.overdue(s, as_of), target=False),
        ]
    return found


@dataclass
class Measured:
    name: str
    rows: int
    statements: list[Statement]
    engine_ms: list[float] = field(default_factory=list)
    raw_ms: list[float] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)
    indexes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return statistics.median(self.engine_ms) / statistics.median(self.raw_ms)


def _p(times: list[float], pct: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def _capture(engine: Engine, run: Callable[[], object]) -> list[Statement]:
    captured: list[Statement] = []

    def listen(_conn, _cursor, statement, params, _context, _many) -> None:  # type: ignore[no-untyped-def]
        captured.append((statement, params))

    event.listen(engine, "before_cursor_execute", listen)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    return captured


class RawDriver:
    """A bare DBAPI connection to the same database, inside one read transaction (as the
    engine's session is), running captured statements."""

    def __init__(self, db: Database) -> None:
        self.backend = db.backend
        url = db.engine.url
        if self.backend == "sqlite":
            import sqlite3

            self.conn: Any = sqlite3.connect(url.database or "", isolation_level=None)
            self.conn.execute("BEGIN")
        else:
            import psycopg

            self.conn = psycopg.connect(
                url.set(drivername="postgresql").render_as_string(hide_password=False)
            )

    def run(self, statements: Sequence[Statement]) -> list[int]:
        """Rows fetched by each statement."""
        rows = []
        cursor = self.conn.cursor()
        for statement, params in statements:
            cursor.execute(statement, params)
            rows.append(len(cursor.fetchall()))
        cursor.close()
        return rows

    def query(self, statement: str, params: Any = ()) -> list[tuple]:
        cursor = self.conn.cursor()
        cursor.execute(statement, params)
        found = cursor.fetchall()
        cursor.close()
        return found

    def close(self) -> None:
        self.conn.rollback()
        self.conn.close()


def measure(db: Database, raw: RawDriver, target: Target, runs: int, warmup: int = 3) -> Measured:
    with db.read() as session:
        session.connection()  # BEGIN now, so that only the query's own statements are captured
        statements = _capture(db.engine, lambda: target.run(session))
        result = Measured(target.name, len(target.run(session)), statements)
        # The query itself is the longest statement; the others are look-ups (longest span,
        # the site when nothing was found).
        main = max(range(len(statements)), key=lambda i: len(statements[i][0]))
        if raw.run(statements)[main] != result.rows:
            raise SystemExit(f"{target.name}: the driver returns another number of rows")
    # Timed as the read commands run it: on their own driver connection (db.quick_open).
    with reading(db.url, user=None) as own:
        if len(target.run(own)) != result.rows:
            raise SystemExit(f"{target.name}: the read command's connection lists other rows")
        for i in range(warmup + runs):
            t0 = time.perf_counter()
            target.run(own)
            t1 = time.perf_counter()
            raw.run(statements)
            t2 = time.perf_counter()
            if i >= warmup:
                result.engine_ms.append((t1 - t0) * 1e3)
                result.raw_ms.append((t2 - t1) * 1e3)
    statement, params = statements[main]
    result.plan = _plan(raw, statement, params)
    result.indexes = _indexes_used(raw, result.plan)
    return result


def _plan(raw: RawDriver, statement: str, params: Any) -> list[str]:
    if raw.backend == "sqlite":
        rows = raw.query("EXPLAIN QUERY PLAN " + statement, params)
        depth = {0: -1}
        lines = []
        for node, parent, _unused, detail in rows:
            depth[node] = depth.get(parent, -1) + 1
            lines.append("  " * depth[node] + detail)
        return lines
    return [r[0] for r in raw.query("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)]


PLAN_INDEX = re.compile(
    r"(?:USING (?:COVERING )?INDEX|Index (?:Only )?Scan using|Index Scan on) (\w+)"
)


def _indexes_used(raw: RawDriver, plan: list[str]) -> list[str]:
    """Each index the plan names, with its columns (and WHERE of a partial index)."""
    names = list(dict.fromkeys(m.group(1) for line in plan for m in PLAN_INDEX.finditer(line)))
    found = []
    for name in names:
        if raw.backend == "sqlite":
            columns = [r[2] for r in raw.query(f"PRAGMA index_info({name})")]
            table, sql = raw.query(
                "SELECT tbl_name, sql FROM sqlite_master WHERE type = 'index' AND name = ?",
                (name,),
            )[0]
            where = sql.split(" WHERE ", 1)[1] if sql and " WHERE " in sql else None
            text = f"{name} ON {table} ({', '.join(columns)})"
            found.append(text + (f" WHERE {where}" if where else ""))
        else:
            definition = raw.query(
                "SELECT indexdef FROM pg_indexes WHERE indexname = %s "
                "AND schemaname = ANY (current_schemas(false))",
                (name,),
            )
            found.append(re.sub(r"^CREATE (UNIQUE )?INDEX ", "", definition[0][0]))
    return found


def _busiest_site(session: Session) -> str:
    from sarcoma_sched.db.models import Patient

    return str(
        session.scalar(
            select(Patient.site_code)
            .join(Allocation, Allocation.patient_id == Patient.id)
            .group_by(Patient.site_code)
            .order_by(func.count().desc(), Patient.site_code)
            .limit(1)
        )
    )


def _ms(times: list[float]) -> str:
    return f"{statistics.median(times):.2f}/{_p(times, 95):.2f} ms"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.queries", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--db", required=True, help="a network database (benchmarks.network)")
    parser.add_argument("--runs", type=int, default=30, help="timed runs of each [30]")
    parser.add_argument("--site", help="site for the site's queries [the busiest]")
    parser.add_argument(
        "--as-of", type=dt.date.fromisoformat, help="the network's today [latest allocation]"
    )
    parser.add_argument("--extra", action="store_true", help="also the non-target variants")
    parser.add_argument("--no-plans", action="store_true", help="only the table")
    args = parser.parse_args(argv)

    db = Database(args.db)
    raw = RawDriver(db)
    try:
        with db.read() as session:
            site = args.site or _busiest_site(session)
            as_of = args.as_of or session.scalar(select(func.max(Allocation.allocation_date)))
            events = session.scalar(select(func.count()).select_from(ScheduledEvent))
            patients = session.scalar(select(func.count()).select_from(Allocation))
        if as_of is None:
            raise SystemExit("error: the database has no allocated patient")
        print(
            f"queries on {db.backend}: {patients} patients, {events} events, site {site}, "
            f"as of {as_of}; p50/p95 of {args.runs} runs each, service and driver alternating"
        )
        results = [measure(db, raw, t, args.runs) for t in targets(site, as_of, extra=args.extra)]
    finally:
        raw.close()
        db.dispose()

    print("measured = service p50/p95, baseline = driver p50/p95, ratio = service/driver p50")
    header()
    for r in results:
        row(r.name, _ms(r.engine_ms), _ms(r.raw_ms), r.ratio)
    for r in results:
        print(
            f"\n{r.name}: {r.rows} rows, {len(r.statements)} statements "
            f"(service p95 {_p(r.engine_ms, 95):.1f} ms)"
        )
        for index in r.indexes:
            print(f"  index {index}")
        if not args.no_plans:
            for line in r.plan:
                print(f"    {line}")


if __name__ == "__main__":
    main()
