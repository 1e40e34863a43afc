"""``report html`` on a 4,000-patient network: one overview per trial vs a picture per patient.

    python -m benchmarks.report_html [--patients 4000] [--network-db PATH] [--rebuild]
                                     [--jobs 2] [--skip-baseline]

Measured, in process, what the command does from an open ``Database`` to the files written:
the read (``services.queries.trial_reports``) and ``reports.html.write_html_report``. Not the
process start-up (``benchmarks.cli_startup`` measures that).

- ``report html``: the default, one overview picture of every patient per trial (the issue's
  target: at most 30 s for 4,000 patients).
- ``--timelines --jobs N``: also every patient's timeline, drawn by N processes (printed when
  ``--jobs`` is above 1).
- baseline, ``--timelines --jobs 1``: a picture per patient in one process, which is what
  ``report html`` did before the overview (399 s for 4,000 patients). Ratio = time / baseline
  (lower is better). ``--skip-baseline`` leaves it out (it takes minutes).

The network (``benchmarks.network``) is built once and kept in the cache directory, like
``benchmarks.cli_startup``'s; every run writes to a fresh temporary directory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.cli_startup import default_network_db, ensure_network

__all__ = ["main"]

TARGET_SECONDS = 30.0


def run_report(url: str, out: Path, *, timelines: bool, jobs: int) -> tuple[float, int, int]:
    """(seconds, pages, timelines) of one report written to ``out``."""
    from sarcoma_sched.db.session import Database
    from sarcoma_sched.reports.html import write_html_report
    from sarcoma_sched.services.queries.trials import trial_reports

    db = Database(url)
    start = time.perf_counter()
    try:
        with db.read() as session:
            trials = trial_reports(session, today=dt.date.today())
        written = write_html_report(
            trials, out, today=dt.date.today(), timelines=timelines, jobs=jobs
        )
    finally:
        db.dispose()
    seconds = time.perf_counter() - start
    assert written.index.is_file() and written.trials, "no report written"
    if timelines:
        assert len(written.timelines) == sum(len(t.timelines) for t in trials)
    return seconds, len(written.trials), len(written.timelines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report_html")
    parser.add_argument("--patients", type=int, default=4000)
    parser.add_argument("--network-db", help="SQLite path or URL [default: the cache]")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--jobs", type=int, default=2, help="processes for --timelines")
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args(argv)

    url = ensure_network(
        args.network_db or str(default_network_db(args.patients)), args.patients, args.rebuild
    )
    with tempfile.TemporaryDirectory(prefix="report-html-") as tmp:
        runs = [("report html (one overview per trial)", False, 1)]
        if args.jobs > 1:
            runs.append((f"report html --timelines --jobs {args.jobs}", True, args.jobs))
        if not args.skip_baseline:
            runs.append(("baseline: report html --timelines --jobs 1", True, 1))
        measured = []
        for i, (name, timelines, jobs) in enumerate(runs):
            seconds, pages, drawn = run_report(
                url, Path(tmp) / str(i), timelines=timelines, jobs=jobs
            )
            measured.append((name, seconds, pages, drawn))
            print(f"{name:<45} {seconds:8.1f} s  {pages} pages, {drawn} timelines", flush=True)
    baseline = measured[-1][1] if not args.skip_baseline else None
    print(f"\n{args.patients} patients; target for report html: <= {TARGET_SECONDS:.0f} s")
    for name, seconds, _, _ in measured:
        ratio = f"{seconds / baseline:6.3f} x baseline" if baseline else ""
        print(f"  {name:<45} {seconds:8.1f} s  {ratio}")
    return 0 if measured[0][1] <= TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
