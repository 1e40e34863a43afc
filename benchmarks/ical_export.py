"""iCal export of a 1,000-patient site calendar vs the icalendar library's own serialization.

    python -m benchmarks.ical_export [--patients 4200] [--network-db PATH] [--site CODE]
                                     [--runs 5] [--quick] [--rebuild] [--profile]

Measured: what ``sarcoma-sched export ical --site SITE`` does in process, from an open
``Database`` to the bytes: the read session and query (``services.queries.site_calendar_export``),
the components (``ical.build_calendar``) and ``Calendar.to_ical()``. Not the process start-up
(``benchmarks.cli_startup`` measures that) nor writing the file.

Baseline: ``Calendar.to_ical()`` alone, on an identical calendar built before the clock starts
(a fresh one per run, so nothing a previous serialization cached is reused). Ratio = export time /
to_ical time (lower is better; the issue's target is at most 2): what the engine adds on top of
the serialization it cannot avoid. Both outputs must be byte-identical (DTSTAMP is the row's last
change, not the export's instant, so two exports of the same data are the same bytes).

The network (``benchmarks.network``, ``--patients`` allocated, default sites) is built once and
kept in the cache directory, like ``benchmarks.cli_startup``'s. The busiest site is used (it has
~24% of the patients: ~1,000 at 4,200); ``--quick`` takes the smallest site instead. Times are the
median of ``--runs``, engine and baseline alternating so both see the same machine load.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time
from collections.abc import Sequence

from benchmarks._table import header, row
from benchmarks.cli_startup import default_network_db, ensure_network

__all__ = ["main"]

TARGET = 2.0
MIN_PATIENTS = 1000


def _sites(target: str) -> list[tuple[str, int]]:
    """(site, allocated patients), busiest first."""
    from sqlalchemy import func, select

    from sarcoma_sched.db.models import Allocation, Patient
    from sarcoma_sched.db.session import Database

    db = Database(target)
    with db.read() as session:
        rows = session.execute(
            select(Patient.site_code, func.count())
            .join(Allocation, Allocation.patient_id == Patient.id)
            .group_by(Patient.site_code)
            .order_by(func.count().desc(), Patient.site_code)
        ).all()
    db.dispose()
    return [(str(site), int(count)) for site, count in rows]


def export(db: object, site: str) -> bytes:
    """The export command's work, from an open database to the iCalendar bytes."""
    from sarcoma_sched.exports.ical import build_calendar
    from sarcoma_sched.services.queries import site_calendar_export

    with db.read() as session:  # type: ignore[attr-defined]
        events, name = site_calendar_export(session, site)
    return build_calendar(events, name).to_ical()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ical_export", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--patients", type=int, default=4200, help="network size [4200]")
    parser.add_argument("--network-db", help="where the network is (or is built) [cache dir]")
    parser.add_argument("--site", help="site to export [the busiest; --quick: the smallest]")
    parser.add_argument("--runs", type=int, default=None, help="repetitions [5; --quick 3]")
    parser.add_argument("--quick", action="store_true", help="the smallest site, 3 runs")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the network")
    parser.add_argument("--profile", action="store_true", help="where the export's time goes")
    parser.add_argument("--top", type=int, default=12, help="rows of the profile")
    args = parser.parse_args(argv)
    runs = args.runs or (3 if args.quick else 5)

    from sarcoma_sched.db.session import Database
    from sarcoma_sched.exports.ical import build_calendar
    from sarcoma_sched.services.queries import site_calendar_export

    target = args.network_db or str(default_network_db(args.patients))
    ensure_network(target, args.patients, args.rebuild)
    counts = _sites(target)
    if args.site:
        site = args.site.upper()
        patients = dict(counts).get(site, 0)
    else:
        site, patients = counts[-1] if args.quick else counts[0]
    note = ""
    if not args.quick and patients < MIN_PATIENTS:
        note = f" (fewer than {MIN_PATIENTS}: build a larger network with --patients)"
    db = Database(target)
    with db.read() as session:
        events, name = site_calendar_export(session, site)
    occurrences = len(build_calendar(events, name).walk("VEVENT"))
    print(
        f"ical export: site {site}, {patients} allocated patients{note}, {len(events)} scheduled "
        f"events -> {occurrences} VEVENTs; network {target}"
    )

    export(db, site)  # warm: imports, connection, the protocols' parsed shapes
    engine_times, baseline_times = [], []
    engine_bytes = baseline_bytes = b""
    for _ in range(runs):
        t0 = time.perf_counter()
        engine_bytes = export(db, site)
        engine_times.append(time.perf_counter() - t0)
        calendar = build_calendar(events, name)  # outside the clock
        t0 = time.perf_counter()
        baseline_bytes = calendar.to_ical()
        baseline_times.append(time.perf_counter() - t0)
    engine_s = statistics.median(engine_times)
    baseline_s = statistics.median(baseline_times)
    ratio = engine_s / baseline_s

    header()
    row(
        f"export ical --site {site} ({patients} pts)",
        f"{engine_s * 1e3:.0f} ms",
        f"{baseline_s * 1e3:.0f} ms",
        ratio,
        target=f"<= {TARGET:g}",
        met=ratio <= TARGET,
    )
    size = len(engine_bytes)
    print(
        f"  {size / 1e6:.1f} MB, {occurrences} VEVENTs; median of {runs} runs "
        f"(export {min(engine_times) * 1e3:.0f}..{max(engine_times) * 1e3:.0f} ms, "
        f"to_ical {min(baseline_times) * 1e3:.0f}..{max(baseline_times) * 1e3:.0f} ms)"
    )
    print(f"  {_split(db, site, events, name)}")
    same = engine_bytes == baseline_bytes
    print(
        "  export and Calendar.to_ical() outputs byte-identical: "
        + ("yes" if same else f"NO ({_first_difference(engine_bytes, baseline_bytes)})")
    )
    verdict = "meets" if ratio <= TARGET else "misses"
    print(f"  ratio export/to_ical {ratio:.2f}: {verdict} the target of at most {TARGET:g}")
    if args.profile:
        _profile(db, site, args.top)
    db.dispose()
    if not same:
        raise SystemExit(1)


def _split(db: object, site: str, events: list, name: str) -> str:
    """One more export, timed part by part: where the time goes."""
    from sarcoma_sched.exports.ical import build_calendar
    from sarcoma_sched.services.queries import site_calendar_export

    t0 = time.perf_counter()
    with db.read() as session:  # type: ignore[attr-defined]
        events, name = site_calendar_export(session, site)
    t1 = time.perf_counter()
    calendar = build_calendar(events, name)
    t2 = time.perf_counter()
    calendar.to_ical()
    t3 = time.perf_counter()
    total = t3 - t0
    parts = [
        ("read + rows to events", t1 - t0),
        ("build components", t2 - t1),
        ("to_ical", t3 - t2),
    ]
    return "one export, part by part: " + ", ".join(
        f"{label} {s * 1e3:.0f} ms ({s / total:.0%})" for label, s in parts
    )


def _first_difference(a: bytes, b: bytes) -> str:
    i = next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return (
        f"{len(a)} vs {len(b)} bytes, first difference at byte {i}: "
        f"{a[i : i + 60]!r} vs {b[i : i + 60]!r}"
    )


def _profile(db: object, site: str, top: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    export(db, site)
    profiler.disable()
    stats = pstats.Stats(profiler)
    print(f"\nexport under cProfile, top {top} by own time:")
    entries = stats.stats  # type: ignore[attr-defined]
    for (path, line, func), (_cc, calls, own, cum, _callers) in sorted(
        entries.items(), key=lambda kv: -kv[1][2]
    )[:top]:
        where = func if path == "~" else f"{path.rsplit('site-packages/', 1)[-1]}:{line}({func})"
        print(f"  {own * 1e3:8.1f} ms own {cum * 1e3:8.1f} ms cum {calls:>9} calls  {where}")


if __name__ == "__main__":
    main()
