"""The exception tree: one home, standard library only, one exit status per family."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import click
import pytest

from sarcoma_sched import errors
from sarcoma_sched.cli import EXIT_STATUS, exit_status

PACKAGE = Path(errors.__file__).resolve().parent

# Raised and caught inside one module, never reaching a user; each says why where it is defined.
INTERNAL = {
    ("protocol/model.py", "ProtocolProblems"),
    ("eligibility.py", "_Bad"),
    ("calendar/planner.py", "_Unsound"),
    # Rolls a dry run's write transaction back with its outcomes; caught in the same module.
    ("services/screening_import.py", "_DryRun"),
}

TREE = [getattr(errors, name) for name in errors.__all__ if name != "Problem"]


def _exception_bases(node: ast.ClassDef) -> bool:
    names = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
    return any(n.endswith(("Error", "Exception")) or n in errors.__all__ for n in names)


def test_errors_imports_nothing_but_the_standard_library() -> None:
    tree = ast.parse((PACKAGE / "errors.py").read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}


def test_every_exception_class_of_the_package_is_defined_in_errors() -> None:
    elsewhere = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative == "errors.py" or relative.startswith("_migrations/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and _exception_bases(node):
                elsewhere.add((relative, node.name))
    assert elsewhere == INTERNAL


def test_every_error_of_the_tree_is_a_sarcoma_sched_error_listed_in_all() -> None:
    defined = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, BaseException)
    }
    assert defined == {cls.__name__ for cls in TREE}
    assert all(issubclass(cls, errors.SarcomaSchedError) for cls in TREE)


@pytest.mark.parametrize("family", TREE, ids=lambda cls: cls.__name__)
def test_every_family_of_the_tree_exits_1(family: type[errors.SarcomaSchedError]) -> None:
    assert exit_status(family.__new__(family)) == 1


def test_usage_errors_exit_2_and_click_refusals_1_as_click_itself_says() -> None:
    assert exit_status(click.UsageError("x")) == 2
    assert exit_status(click.BadParameter("x")) == 2
    assert exit_status(click.FileError("x")) == 1
    assert exit_status(click.exceptions.Abort()) == 1
    for family, code in EXIT_STATUS:
        if issubclass(family, click.ClickException):
            assert family.exit_code == code


def test_verification_failures_report_every_finding_named_by_the_command() -> None:
    audit = errors.AuditFailed(["entry 3: hash mismatch", "entry 4: broken link"])
    assert audit.lines() == [
        "audit verify: entry 3: hash mismatch",
        "audit verify: entry 4: broken link",
    ]
    assert str(audit) == "entry 3: hash mismatch"
    verify = errors.VerifyFailed(["position 2: arm A recorded, B replayed"])
    assert verify.lines() == ["allocation verify: position 2: arm A recorded, B replayed"]


def test_secret_errors_are_allocation_errors_and_database_errors_share_a_family() -> None:
    assert issubclass(errors.SecretError, errors.AllocationError)
    for cls in (errors.DatabaseUrlError, errors.SchemaMismatch, errors.DatabaseBusy):
        assert issubclass(cls, errors.DatabaseError)
    for cls in (errors.ProtocolError, errors.HolidayTableError):
        assert issubclass(cls, errors.InputFileError)
        assert issubclass(cls, errors.InputError)
