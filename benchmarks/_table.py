"""The benchmarks' shared table: ``name measured baseline ratio``, one row per measurement.

Measured and baseline come formatted by the caller (a rate, a time) so each benchmark says what
its unit is; the ratio is whatever the benchmark defines it to be (its docstring says which way).
"""

from __future__ import annotations

__all__ = ["header", "row"]

NAME = 40
VALUE = 16


def header() -> None:
    print(f"{'name':<{NAME}} {'measured':>{VALUE}} {'baseline':>{VALUE}} {'ratio':>8}")


def row(name: str, measured: str, baseline: str, ratio: float) -> None:
    print(f"{name:<{NAME}} {measured:>{VALUE}} {baseline:>{VALUE}} {ratio:>8.2f}")
