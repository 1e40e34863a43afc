"""Rendering input-file mistakes as one line each: file, field path (named by ids), message."""

from __future__ import annotations

import re
import tomllib
from typing import Any, Protocol

from pydantic import ValidationError

from sarcoma_sched.errors import Problem

__all__ = ["toml_syntax_problem", "validation_problems"]


class GroupedProblems(Protocol):
    """An error raised inside validation carrying several (field path, message) problems,
    such as ``protocol.model.ProtocolProblems``: one line each, not one joined line."""

    problems: list[tuple[str, str]]


_LINE_COL = re.compile(r"^(?P<msg>.*?)\s*\(at line (?P<line>\d+), column (?P<col>\d+)\)$")


def toml_syntax_problem(source: str, exc: tomllib.TOMLDecodeError) -> Problem:
    match = _LINE_COL.match(str(exc))
    if match is None:
        return Problem(source, "", f"TOML syntax error: {exc}")
    where = f"line {match['line']}, column {match['col']}"
    return Problem(source, where, f"TOML syntax error: {match['msg']}")


def validation_problems(
    exc: ValidationError,
    data: Any,
    source: str,
    grouped: type[GroupedProblems] | None = None,
) -> list[Problem]:
    problems: list[Problem] = []
    for err in exc.errors():
        cause = (err.get("ctx") or {}).get("error")
        if grouped is not None and isinstance(cause, grouped):
            base = _path(err["loc"], data)
            for path, message in cause.problems:
                full = f"{base}.{path}" if base else path
                problems.append(Problem(source, full, message))
            continue
        problems.append(Problem(source, _path(err["loc"], data), _message(err)))
    return problems


def _message(err: Any) -> str:
    kind = err["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return f"unknown field (not part of the protocol format), value {_show(err['input'])}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if isinstance(err.get("input"), dict | list):
        return msg
    return f"{msg}; got {_show(err['input'])}"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _path(loc: tuple[Any, ...], data: Any) -> str:
    """Render a pydantic location against the raw data, naming list items by id or key.

    Discriminated unions put the tag (``integer``, ``minimization``) into the location; it is
    not a key of the input, so it is dropped to give the path as written in the file.
    """
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            label: str = str(part)
            if isinstance(node, list) and 0 <= part < len(node):
                item = node[part]
                if isinstance(item, dict):
                    named = item.get("id") or item.get("key") or item.get("code")
                    if isinstance(named, str):
                        label = named
                node = item
            else:
                node = None
            out += f"[{label}]"
            continue
        if isinstance(node, dict) and part not in node:
            tags = {node.get("type"), node.get("method")}
            if part in tags:
                continue
        if part == "from_":
            part = "from"
        node = node.get(part) if isinstance(node, dict) else None
        out += f".{part}" if out else str(part)
    return out
