"""Reading protocol files: TOML → validated model, with every problem named by file and path."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sarcoma_sched.errors import NotFound, Problem, ProtocolError
from sarcoma_sched.input_errors import validation_problems
from sarcoma_sched.input_files import parse_toml, read_text
from sarcoma_sched.protocol.model import Protocol, ProtocolProblems

__all__ = [
    "PROTOCOLS_ENV",
    "LoadedProtocol",
    "bundled_protocol_dir",
    "find_protocol",
    "list_protocols",
    "load_protocol",
    "parse_protocol",
    "validate_protocol",
]

PROTOCOLS_ENV = "SARCOMA_SCHED_PROTOCOLS"


@dataclass(frozen=True)
class LoadedProtocol:
    """A validated protocol together with the exact source text it was read from."""

    protocol: Protocol
    source: str
    path: Path | None

    @property
    def id(self) -> str:
        return self.protocol.id


def load_protocol(path: str | Path) -> LoadedProtocol:
    path = Path(path)
    # A regular UTF-8 file of bounded size: see sarcoma_sched.input_files.
    text = read_text(path, ProtocolError)
    return LoadedProtocol(parse_protocol(text, str(path)), text, path)


def parse_protocol(text: str, source: str = "<protocol>") -> Protocol:
    data = parse_toml(text, source, ProtocolError)
    allocation = data.get("allocation")
    if isinstance(allocation, dict) and allocation.get("method") == "concealed":
        # Only the database writes that view, for roles that may not read the method itself.
        raise ProtocolError(
            [
                Problem(
                    source,
                    "allocation.method",
                    "'concealed' is not a method: name the method (fixed, assigned, "
                    "stratified_blocks, minimization)",
                )
            ]
        )
    return validate_protocol(data, source)


def validate_protocol(data: dict[str, Any], source: str = "<protocol>") -> Protocol:
    try:
        return Protocol.model_validate(data)
    except ValidationError as exc:
        raise ProtocolError(validation_problems(exc, data, source, ProtocolProblems)) from None


def bundled_protocol_dir() -> Path:
    """Where the bundled protocol files are: an override, the wheel's copy, or the checkout."""
    override = os.environ.get(PROTOCOLS_ENV)
    if override:
        return Path(override)
    package = Path(__file__).resolve().parents[1]
    inside = package / "_bundled_protocols"
    if inside.is_dir():
        return inside
    return package.parent / "protocols"


def list_protocols(directory: Path | None = None) -> list[LoadedProtocol]:
    """Every protocol file in the directory, validated; any invalid file is an error."""
    directory = directory or bundled_protocol_dir()
    if not directory.is_dir():
        raise NotFound(f"protocol directory {directory} does not exist (set {PROTOCOLS_ENV})")
    loaded: list[LoadedProtocol] = []
    problems: list[Problem] = []
    for path in sorted(directory.glob("*.toml")):
        try:
            loaded.append(load_protocol(path))
        except ProtocolError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ProtocolError(problems)
    seen: dict[str, Path | None] = {}
    for item in loaded:
        if item.id in seen:
            where = str(item.path)
            message = f"{item.id!r} is also defined in {seen[item.id]}"
            raise ProtocolError([Problem(where, "study.id", message)])
        seen[item.id] = item.path
    return loaded


def find_protocol(name: str, directory: Path | None = None) -> LoadedProtocol:
    """A bundled protocol by study id (case-insensitive) or file name; a path also works."""
    if name.endswith(".toml") or os.sep in name:
        return load_protocol(name)
    candidates = list_protocols(directory)
    wanted = name.casefold()
    for item in candidates:
        stem = item.path.stem.casefold() if item.path else ""
        if wanted in (item.id.casefold(), stem):
            return item
    known = ", ".join(item.id for item in candidates) or "none"
    raise NotFound(f"no protocol {name!r} (known: {known})")
