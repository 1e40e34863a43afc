"""Run every benchmark: ``python -m benchmarks [--quick] [--reuse] [--pg-url URL | --no-pg]``.

In the order of issue 7 (BENCHMARKS.md holds the figures):

1. ``allocation_floor``: enroll+allocate+schedule+audit transactions vs ``sqlite3`` writing the
   same rows;
2. ``concurrency``: 8 processes allocating on PostgreSQL vs 1; ``mix``: 8 coordinators doing
   the realistic mix (allocations, records, reads) vs 1, with the time each holds the lock;
3. ``network`` then ``queries``: a 100,000-patient, 50-site network (2,000 patients, 20 sites
   with ``--quick``), built by the bulk path into SQLite and PostgreSQL, and the daily queries
   through the engine vs the raw driver;
4. ``cli_startup``: command start-up vs the bare interpreter, on the SQLite network;
5. ``planner``: full NATARS neoadjuvant plans per second;
6. ``ical_export``: a 1,000-patient site calendar vs ``icalendar``'s own serialization;
7. ``simulation``: ``allocation simulate`` vs the ``smallerize`` package (``pip install
   '.[bench]'``);
8. ``predictability``: how often the next arm is guessed right from what a coordinator reads
   (own site) and from the whole database, for minimization and permuted blocks (issue 19).

Networks are cached (``~/.cache/sarcoma-sched-benchmarks/``, and the PostgreSQL schema
``bench_network_N``); ``--reuse`` keeps one built before instead of rebuilding it. Each
benchmark runs in its own process and prints its ratios against a baseline measured in the same
run; this exits non-zero if any of them failed to run (never because a target was missed).
At the end, a summary: every ratio on one line (benchmark, figure, measured, baseline, ratio,
target, met), and the run's wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks._table import BENCHMARK_ENV, SUMMARY_ENV
from benchmarks.cli_startup import default_network_db

ROOT = Path(__file__).resolve().parents[1]
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
QUICK_PATIENTS, QUICK_SITES = 2_000, 20


def _run(module: str, *args: str) -> bool:
    print(f"\n=== python -m benchmarks.{module} {' '.join(args)}", flush=True)
    start = time.perf_counter()
    env = {**os.environ, BENCHMARK_ENV: module}
    done = subprocess.run([sys.executable, "-m", f"benchmarks.{module}", *args], cwd=ROOT, env=env)
    print(f"=== {module}: {time.perf_counter() - start:.1f} s, exit {done.returncode}", flush=True)
    return done.returncode == 0


def _pg_network(base: str, patients: int, reuse: bool) -> tuple[str, bool]:
    """(URL of the schema holding the PostgreSQL network, whether it must be built)."""
    from benchmarks._pg import kept_schema

    return kept_schema(base, f"bench_network_{patients}", rebuild=not reuse)


def _sqlite_network(patients: int, reuse: bool) -> tuple[str, bool]:
    target = default_network_db(patients)
    build = not (reuse and target.exists())
    if build:
        target.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
    return str(target), build


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, fewer repetitions")
    parser.add_argument(
        "--reuse", action="store_true", help="keep networks built before (--quick always does)"
    )
    parser.add_argument("--rebuild", action="store_true", help="--quick: build the networks anew")
    parser.add_argument("--pg-url", default=PG_URL, help=f"PostgreSQL server [{PG_URL}]")
    parser.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL benchmarks")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sarcoma-bench-") as where:
        summary = Path(where) / "summary.jsonl"
        os.environ[SUMMARY_ENV] = str(summary)
        ok = _all(args)
        print_summary(summary, time.perf_counter() - started)
    sys.exit(0 if ok else 1)


def print_summary(path: Path, seconds: float) -> None:
    """Every ratio the benchmarks recorded, one line each, so a regression shows at a glance."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    rows = [json.loads(line) for line in lines]
    print(f"\n=== summary: {len(rows)} figures in {seconds:.1f} s")
    width = max([len(r["figure"]) for r in rows] + [6])
    print(
        f"{'benchmark':<17} {'figure':<{width}} {'measured':>14} {'baseline':>14} "
        f"{'ratio':>8} {'target':>16} met"
    )
    for r in rows:
        met = {True: "yes", False: "NO", None: "-"}[r["met"]]
        print(
            f"{r['benchmark']:<17} {r['figure']:<{width}} {r['measured']:>14} "
            f"{r['baseline']:>14} {r['ratio']:>8.2f} {r['target'] or '-':>16} {met}"
        )


def _all(args: argparse.Namespace) -> bool:
    quick = ["--quick"] if args.quick else []
    # --quick: the same benchmarks, methods and baselines at smaller sizes (issue 24 item 6: it
    # fits a check), and its networks kept between runs, since building one is set-up, not a
    # measurement (the first quick run builds them; --rebuild builds them again).
    patients, sites = (QUICK_PATIENTS, QUICK_SITES) if args.quick else (100_000, 50)
    runs = "3" if args.quick else "30"
    reuse = args.reuse or (args.quick and not args.rebuild)
    ok = _run("allocation_floor", *(["--patients", "50"] if args.quick else []))
    if not args.no_pg:
        ok &= _run(
            "concurrency", "--pg-url", args.pg_url, *(["--per-worker", "5"] if args.quick else [])
        )
        ok &= _run("mix", "--pg-url", args.pg_url, *quick)

    networks = [_sqlite_network(patients, reuse)]
    if not args.no_pg:
        networks.append(_pg_network(args.pg_url, patients, reuse))
    for target, build in networks:
        if build:
            ok &= _run(
                "network", "--db", target, "--patients", str(patients), "--sites", str(sites)
            )
        ok &= _run("queries", "--db", target, "--runs", runs)

    sqlite_network = networks[0][0]
    ok &= _run(
        "cli_startup",
        "--network-db",
        sqlite_network,
        "--patients",
        str(patients),
        "--runs",
        "5" if args.quick else "15",
        "--warmup",
        "1" if args.quick else "2",
        *(["--no-importtime"] if args.quick else []),
    )
    ok &= _run("planner", *(["--plans", "200", "--rounds", "3"] if args.quick else []))
    ok &= _run(
        "ical_export",
        *([*quick, "--network-db", sqlite_network, "--patients", str(patients)] if quick else []),
    )
    ok &= _run("simulation", *([*quick, "--trials", "20"] if quick else []))
    ok &= _run("predictability", *([*quick, "--trials", "10"] if quick else []))
    return ok


if __name__ == "__main__":
    main()
