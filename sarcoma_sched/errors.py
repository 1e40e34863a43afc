"""One exception tree for every user-facing failure.

Every error a user can cause and fix is a ``SarcomaSchedError``; the families under it say what
kind of thing went wrong, so a caller (the CLI's exit-status table, a service, a test) can catch
a whole family. The CLI turns any of them into one line per problem; anything else is a bug and
keeps its traceback.

Standard library only: the command line imports this module on start-up, and the pure core
(protocol, calendar, allocation, eligibility) raises these without depending on an adapter.

    SarcomaSchedError
    ├── InputError                  what was handed in cannot be used as given
    │   └── InputFileError          an input file (or --field values), every problem listed
    │       ├── ProtocolError       a protocol file or definition
    │       └── HolidayTableError   an official holiday table file
    ├── NotFound                    a named protocol, patient, site, event does not exist
    ├── Conflict                    the request contradicts what is already recorded
    │   └── AlreadyExists           a file is already where a new one was to be made
    ├── IneligibleError             a patient does not meet the criteria for the step
    ├── AllocationError             an allocation request cannot be honoured as given
    │   └── SecretError             the trial secret is missing, malformed or exposed
    ├── FileWriteError              a file cannot be written (directory, permission, disk)
    ├── AccessDenied                the login may not do this (role, site, PostgreSQL's refusal)
    │   └── ActorMismatch           --user names someone other than the PostgreSQL login
    ├── DatabaseError               the database cannot be used (not SQLAlchemy's DatabaseError)
    │   ├── DatabaseUrlError        the URL or path
    │   ├── SchemaMismatch          at another migration than this code
    │   └── DatabaseBusy            another transaction held the lock too long
    └── VerificationFailed          recorded history does not verify, one line per finding
        ├── AuditFailed             the audit log's hash chain (``audit verify``)
        └── VerifyFailed            the allocation replay (``allocation verify``)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AccessDenied",
    "ActorMismatch",
    "AllocationError",
    "AlreadyExists",
    "AuditFailed",
    "Conflict",
    "DatabaseBusy",
    "DatabaseError",
    "DatabaseUrlError",
    "FileWriteError",
    "HolidayTableError",
    "IneligibleError",
    "InputError",
    "InputFileError",
    "NotFound",
    "Problem",
    "ProtocolError",
    "SarcomaSchedError",
    "SchemaMismatch",
    "SecretError",
    "VerificationFailed",
    "VerifyFailed",
]


class SarcomaSchedError(Exception):
    """Base of every error a user can cause and fix."""

    def lines(self) -> list[str]:
        return [str(self)]


# --- input ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong in an input file: where (file, field path) and what."""

    source: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}: {self.path}" if self.path else self.source
        return f"{where}: {self.message}"


class InputError(SarcomaSchedError):
    """What the user handed in (a file, field values) cannot be used as given."""


class InputFileError(InputError):
    """An input file is invalid; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


class ProtocolError(InputFileError):
    """A protocol file or definition is invalid."""


class HolidayTableError(InputFileError):
    """A holiday table file is invalid."""


# --- the trial's records -------------------------------------------------------------------------


class NotFound(SarcomaSchedError):
    """A named thing (protocol, patient, site, event) does not exist."""


class Conflict(SarcomaSchedError):
    """The request contradicts what is already recorded."""


class IneligibleError(SarcomaSchedError):
    """A patient does not meet the criteria for the requested step."""


# --- files written -------------------------------------------------------------------------------


class FileWriteError(SarcomaSchedError):
    """A file could not be written (no such directory, no permission, disk full)."""


class AlreadyExists(Conflict):
    """``write_new`` found something at its target; nothing was changed."""


# --- who may act ---------------------------------------------------------------------------------


class AccessDenied(SarcomaSchedError):
    """The login's roles or sites do not allow this; on PostgreSQL the server itself refused."""


class ActorMismatch(AccessDenied):
    """``--user`` names someone other than the PostgreSQL login the server authenticated."""


# --- allocation ----------------------------------------------------------------------------------


class AllocationError(SarcomaSchedError):
    """An allocation request cannot be honoured as given (missing factor, unknown arm, …)."""


class SecretError(AllocationError):
    """The trial secret is missing, malformed or insufficiently protected."""


# --- the database --------------------------------------------------------------------------------


class DatabaseError(SarcomaSchedError):
    """The database cannot be used as asked.

    Not SQLAlchemy's ``DatabaseError``: that one is the driver's, and the CLI reports only an
    unreachable server or a damaged file among them (see ``sarcoma_sched.cli``).
    """


class DatabaseUrlError(DatabaseError):
    """The database URL or path cannot be used."""


class SchemaMismatch(DatabaseError):
    """The database is not at the revision this code was written for."""


class DatabaseBusy(DatabaseError):
    """Another transaction held the database longer than the busy timeout."""


# --- verification of recorded history ------------------------------------------------------------


class VerificationFailed(SarcomaSchedError):
    """Recorded history does not verify; every finding is reported, one line each, named by the
    command that checked it."""

    check = "verify"

    def __init__(self, findings: list[str]) -> None:
        self.findings = findings
        super().__init__(findings[0])

    def lines(self) -> list[str]:
        return [f"{self.check}: {finding}" for finding in self.findings]


class AuditFailed(VerificationFailed):
    """The audit log's hash chain does not verify."""

    check = "audit verify"


class VerifyFailed(VerificationFailed):
    """Replaying the allocations does not give the recorded arms."""

    check = "allocation verify"
