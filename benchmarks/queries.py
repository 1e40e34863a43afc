"""The daily queries in process: time, query plans, and which indexes would help.

    python -m benchmarks.queries --db PATH_OR_URL [--site CODE] [--runs 15] [--no-try]
                                 [--plans first|all|none]

Times ``services.queries`` (``visits``, ``overdue``, ``deviations``) on a network database
(``benchmarks.network``) with a warm connection: the query alone, no process start-up. The
baseline is ``SELECT 1`` on the same session, so the ratio reads as "round trips' worth".
Prints each query's plan (``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN (ANALYZE, BUFFERS)`` on
PostgreSQL) as the database runs it today.

Then, unless ``--no-try``, the same queries under candidate changes, each adding to the one
before, inside a transaction that is rolled back (both backends have transactional DDL): the
database is left as it was. Every configuration must return the same rows (checked).

* ``analyze``: planner statistics only (SQLite never has them unless someone runs ANALYZE);
* ``+status_first_day``: an index on ``scheduled_events (status, first_day)``: "planned and
  started before today" becomes one short range instead of every planned event;
* ``+deviation_partial``: ``(first_day) WHERE deviation IS NOT NULL`` for the deviation list;
* ``+visits_lower_bound``: ``visits`` also saying ``first_day >= from - longest span`` (a
  query change, not an index), so the index on ``first_day`` reads a few weeks instead of all
  history; the longest span here is read from the data, a service would take it from the
  protocols.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, event, func, select, text
from sqlalchemy.orm import Session, with_loader_criteria

from sarcoma_sched.db.models import Allocation, Patient, ScheduledEvent
from sarcoma_sched.db.session import Database
from sarcoma_sched.services import queries as q

__all__ = ["CONFIGS", "main"]

E = ScheduledEvent


@dataclass(frozen=True)
class Config:
    name: str
    ddl: tuple[str, ...] = ()
    bounded_visits: bool = False


STATUS_FIRST_DAY = (
    "CREATE INDEX bench_ix_events_status_first_day ON scheduled_events (status, first_day)"
)
DEVIATION_PARTIAL = (
    "CREATE INDEX bench_ix_events_deviation ON scheduled_events (first_day) "
    "WHERE deviation IS NOT NULL"
)

CONFIGS = (
    Config("as is"),
    Config("analyze", ("ANALYZE",)),
    Config("+status_first_day", (STATUS_FIRST_DAY, "ANALYZE")),
    Config("+deviation_partial", (STATUS_FIRST_DAY, DEVIATION_PARTIAL, "ANALYZE")),
    Config(
        "+visits_lower_bound",
        (STATUS_FIRST_DAY, DEVIATION_PARTIAL, "ANALYZE"),
        bounded_visits=True,
    ),
)


def _bounded(span: int, date_from: dt.date) -> Callable[[Any], None]:
    """A hook adding ``first_day >= from - span`` to the service's own ``visits`` statement.

    Through ``with_loader_criteria`` so the statement stays whatever ``services.queries`` builds;
    an event ends at most ``span`` days after it starts, so the rows are the same.
    """
    bound = date_from - dt.timedelta(days=span)

    def add(state: Any) -> None:
        if state.is_select:
            state.statement = state.statement.options(
                with_loader_criteria(E, E.first_day >= bound, include_aliases=True)
            )

    return add


Query = Callable[[Session, Config], list[dict[str, Any]]]


def _queries(site: str, today: dt.date, span: int) -> list[tuple[str, Query]]:
    monday = today - dt.timedelta(days=today.weekday())
    sunday = monday + dt.timedelta(days=6)
    week = today + dt.timedelta(days=7)
    month_ago = today - dt.timedelta(days=30)

    def visits(a: dt.date, b: dt.date, where: str | None) -> Query:
        def run(session: Session, config: Config) -> list[dict[str, Any]]:
            if not config.bounded_visits:
                return q.visits(session, a, b, site=where)
            hook = _bounded(span, a)
            event.listen(session, "do_orm_execute", hook)
            try:
                return q.visits(session, a, b, site=where)
            finally:
                event.remove(session, "do_orm_execute", hook)

        return run

    return [
        (f"visits --site {site} (this week)", visits(monday, sunday, site)),
        (f"visits --site {site} today..+7d", visits(today, week, site)),
        (f"overdue --site {site}", lambda s, _c: q.overdue(s, today, site=site)),
        (
            f"deviations --site {site} -30d..",
            lambda s, _c: q.deviations(s, date_from=month_ago, site=site),
        ),
        ("visits (all sites, this week)", visits(monday, sunday, None)),
        ("overdue (all sites)", lambda s, _c: q.overdue(s, today)),
    ]


def _median_ms(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm: statement cache, pages
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def _plan(conn: Connection, statement: str, params: Any) -> list[str]:
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
        depth = {0: -1}
        lines = []
        for node, parent, _unused, detail in rows:
            depth[node] = depth.get(parent, -1) + 1
            lines.append("  " * depth[node] + detail)
        return lines
    rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params).all()
    return [r[0] for r in rows]


@dataclass
class Result:
    config: str
    query: str
    rows: int
    ms: float
    plan: list[str]
    digest: int  # of the rows: every configuration must return the same ones


def run_config(
    db: Database, config: Config, queries: list[tuple[str, Query]], runs: int
) -> tuple[list[Result], float]:
    """Every query under ``config``, inside one transaction that is rolled back."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn, _cursor, statement, params, _context, _many) -> None:  # type: ignore[no-untyped-def]
        captured.append((statement, params))

    results = []
    with db.engine.connect() as conn:
        outer = conn.begin()
        try:
            for ddl in config.ddl:
                conn.exec_driver_sql(ddl)
            session = Session(bind=conn)  # joins the outer transaction, never commits it
            baseline = _median_ms(lambda: session.execute(text("SELECT 1")).scalar(), runs)
            for name, query in queries:
                rows = query(session, config)
                event.listen(db.engine, "before_cursor_execute", capture)
                try:
                    query(session, config)
                finally:
                    event.remove(db.engine, "before_cursor_execute", capture)
                statement, params = captured[-1]
                ms = _median_ms(lambda query=query: query(session, config), runs)
                plan = _plan(conn, statement, params)
                digest = hash(repr(rows))
                results.append(Result(config.name, name, len(rows), ms, plan, digest))
            session.close()
        finally:
            outer.rollback()
    return results, baseline


def _longest_span(db: Database) -> int:
    with db.read() as session:
        if db.backend == "sqlite":
            days = func.julianday(E.last_day) - func.julianday(E.first_day)
        else:
            days = E.last_day - E.first_day
        return int(session.scalar(select(func.max(days))) or 0)


def _busiest_site(db: Database) -> str:
    with db.read() as session:
        return str(
            session.scalar(
                select(Patient.site_code)
                .join(Allocation, Allocation.patient_id == Patient.id)
                .group_by(Patient.site_code)
                .order_by(func.count().desc())
                .limit(1)
            )
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.queries", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--db", required=True, help="a network database (benchmarks.network)")
    parser.add_argument("--site", help="site for the queries [the busiest]")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--no-try", action="store_true", help="only the database as it is")
    parser.add_argument("--plans", choices=("first", "all", "none"), default="first")
    args = parser.parse_args(argv)

    db = Database(args.db)
    try:
        site = args.site or _busiest_site(db)
        span = _longest_span(db)
        with db.read() as session:
            events = session.scalar(select(func.count()).select_from(E))
            patients = session.scalar(select(func.count()).select_from(Allocation))
        today = dt.date.today()
        queries = _queries(site, today, span)
        print(
            f"queries on {db.backend}: {patients} patients, {events} events, site {site}, "
            f"today {today}, longest event span {span} days; median of {args.runs} runs"
        )
        configs = CONFIGS[:1] if args.no_try else CONFIGS
        table: dict[str, dict[str, Result]] = {}
        baselines = {}
        for config in configs:
            start = time.perf_counter()
            results, baselines[config.name] = run_config(db, config, queries, args.runs)
            print(f"  {config.name}: {time.perf_counter() - start:.1f} s", flush=True)
            for r in results:
                table.setdefault(r.query, {})[config.name] = r
    finally:
        db.dispose()

    base = baselines[configs[0].name]
    print(f"baseline SELECT 1: {base:.2f} ms")
    header = "".join(f"{c.name:>20}" for c in configs)
    print(f"{'query':<40}{'rows':>6}{header}")
    for name, by_config in table.items():
        first = by_config[configs[0].name]
        cells = "".join(
            f"{by_config[c.name].ms:.1f} ms x{by_config[c.name].ms / base:.0f}".rjust(20)
            for c in configs
        )
        print(f"{name:<40}{first.rows:>6}{cells}")
        differ = [c.name for c in configs if by_config[c.name].digest != first.digest]
        if differ:
            print(f"  !! rows differ from '{configs[0].name}' under: {', '.join(differ)}")
    if args.plans == "none":
        return
    shown = configs[:1] if args.plans == "first" else configs
    if args.plans == "first" and len(configs) > 1:
        shown = (configs[0], configs[-1])
    for config in shown:
        print(f"\nquery plans ({config.name}):")
        for name, by_config in table.items():
            r = by_config[config.name]
            print(f"  {name}  [{r.rows} rows, {r.ms:.1f} ms]")
            for line in r.plan:
                print(f"      {line}")


if __name__ == "__main__":
    main()
