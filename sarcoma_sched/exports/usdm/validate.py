# usdm4 ships no type information (no py.typed): its classes are Any here, on purpose.
# mypy: disable-error-code="import-untyped"
"""The usdm4 package's own validation of a USDM file: its library of DDF rules."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["UsdmFindings", "validate_usdm"]


@dataclass(frozen=True)
class UsdmFindings:
    rules_run: int
    failed: tuple[str, ...]  # one line per error: rule id and message
    warnings: int  # findings the rules raise as expectations, not errors
    report: str  # usdm4's own text report

    @property
    def passed(self) -> bool:
        return not self.failed


def validate_usdm(path: Path) -> UsdmFindings:
    from usdm4 import USDM4

    results = USDM4().validate(str(path))
    failed: list[str] = []
    warnings = 0
    for rule, outcome in sorted(results.outcomes.items()):
        status = str(outcome.status.value)
        if status in ("Failure", "Exception"):
            if outcome.exception:
                failed.append(f"{rule}: {outcome.exception}")
                continue
            # to_dict() keeps the Error level and above; a rule's "is expected to" is a warning.
            errors = outcome.errors.to_dict()
            failed.extend(f"{rule}: {e.get('message', '')}" for e in errors)
            warnings += outcome.errors.count() - len(errors)
    return UsdmFindings(results.count(), tuple(failed), warnings, results.format_text())
