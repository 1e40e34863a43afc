"""Run every benchmark: ``python -m benchmarks [--quick] [--db PATH_OR_URL] [--reuse]``.

In order: the planner (``benchmarks.planner``); building a network (``benchmarks.network``,
10,000 patients, or 1,000 with ``--quick``) into ``--db`` (default: a file in the cache
directory, replaced), with the audit chain verified; command start-up and the daily queries as
processes (``benchmarks.cli_startup``) and in process with their plans (``benchmarks.queries``)
on that network. ``--quick`` also runs fewer repetitions. Each benchmark prints its ratios
against a baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.cli_startup import default_network_db

ROOT = Path(__file__).resolve().parents[1]


def _run(module: str, *args: str) -> bool:
    print(f"\n=== python -m benchmarks.{module} {' '.join(args)}", flush=True)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", f"benchmarks.{module}", *args], cwd=ROOT)
    print(f"=== {module}: {time.perf_counter() - start:.1f} s, exit {done.returncode}", flush=True)
    return done.returncode == 0


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="1,000 patients, fewer runs")
    parser.add_argument("--db", help="network database (an empty PostgreSQL schema, or a file)")
    parser.add_argument("--reuse", action="store_true", help="keep a network built before")
    args = parser.parse_args(argv)

    patients = 1_000 if args.quick else 10_000
    runs = "5" if args.quick else "15"
    target = args.db or str(default_network_db(patients))
    ok = _run("planner", *(["--plans", "300"] if args.quick else []))
    if not args.reuse:
        if "://" not in target:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            for suffix in ("", "-wal", "-shm"):
                Path(target + suffix).unlink(missing_ok=True)
        ok &= _run("network", "--db", target, "--patients", str(patients), "--verify")
    ok &= _run(
        "cli_startup",
        "--network-db",
        target,
        "--patients",
        str(patients),
        "--runs",
        runs,
        "--warmup",
        "1" if args.quick else "2",
    )
    ok &= _run("queries", "--db", target, "--runs", runs)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
