"""The benchmarks' shared table: ``name measured baseline ratio``, one row per measurement.

Measured and baseline come formatted by the caller (a rate, a time) so each benchmark says what
its unit is; the ratio is whatever the benchmark defines it to be (its docstring says which way).

Run by ``python -m benchmarks``, every row is also appended to the run's summary file (named by
``SUMMARY_ENV``, with the benchmark's name in ``BENCHMARK_ENV``), which the runner prints at the
end as one line per ratio; ``target`` and ``met`` say what the figure should be and whether it is.
"""

from __future__ import annotations

import json
import os

__all__ = ["BENCHMARK_ENV", "SUMMARY_ENV", "header", "record", "row"]

NAME = 40
VALUE = 16

SUMMARY_ENV = "SARCOMA_SCHED_BENCH_SUMMARY"
BENCHMARK_ENV = "SARCOMA_SCHED_BENCH_NAME"


def header() -> None:
    print(f"{'name':<{NAME}} {'measured':>{VALUE}} {'baseline':>{VALUE}} {'ratio':>8}")


def row(
    name: str,
    measured: str,
    baseline: str,
    ratio: float,
    *,
    target: str | None = None,
    met: bool | None = None,
) -> None:
    print(f"{name:<{NAME}} {measured:>{VALUE}} {baseline:>{VALUE}} {ratio:>8.2f}")
    record(name, measured, baseline, ratio, target=target, met=met)


def record(
    figure: str,
    measured: str,
    baseline: str,
    ratio: float,
    *,
    target: str | None = None,
    met: bool | None = None,
) -> None:
    """Add one figure to the summary of ``python -m benchmarks`` (nothing when run alone)."""
    path = os.environ.get(SUMMARY_ENV)
    if not path:
        return
    line = {
        "benchmark": os.environ.get(BENCHMARK_ENV, "?"),
        "figure": figure,
        "measured": measured,
        "baseline": baseline,
        "ratio": ratio,
        "target": target,
        "met": met,
    }
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")
