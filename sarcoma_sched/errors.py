"""One exception tree for every user-facing failure.

The CLI turns any ``SarcomaSchedError`` into one line per problem and exit code 1; anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Conflict",
    "IneligibleError",
    "InputFileError",
    "NotFound",
    "Problem",
    "ProtocolError",
    "SarcomaSchedError",
]


class SarcomaSchedError(Exception):
    """Base of every error a user can cause and fix."""

    def lines(self) -> list[str]:
        return [str(self)]


@dataclass(frozen=True)
class Problem:
    """One thing wrong in an input file: where (file, field path) and what."""

    source: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}: {self.path}" if self.path else self.source
        return f"{where}: {self.message}"


class InputFileError(SarcomaSchedError):
    """An input file is invalid; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


class ProtocolError(InputFileError):
    """A protocol file or definition is invalid."""


class NotFound(SarcomaSchedError):
    """A named thing (protocol, patient, site, event) does not exist."""


class Conflict(SarcomaSchedError):
    """The request contradicts what is already recorded."""


class IneligibleError(SarcomaSchedError):
    """A patient does not meet the criteria for the requested step."""
