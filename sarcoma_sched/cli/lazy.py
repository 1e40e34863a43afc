"""Commands imported when they are first asked for, so ``visits`` does not pay for importing
``report`` (matplotlib), ``export`` (icalendar) or ``allocation`` (the simulator).

click reads a group's commands through one mapping (``Group.commands``): ``get_command`` asks
it for one name, ``list_commands`` and the "did you mean" of a mistyped name only iterate its
names. ``LazyCommands`` is that mapping with each command given as ``"module:attribute"``;
iterating it imports nothing, reading a value imports that command's module.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping, Sequence

import click

__all__ = ["LazyCommands"]


class LazyCommands(MutableMapping[str, click.Command]):
    """``where`` maps each command's name to ``"module:attribute"``, in the order they are
    listed; ``children`` names commands defined elsewhere that join a group once it loads
    (``audit log`` lives with the other listings)."""

    def __init__(
        self, where: Mapping[str, str], children: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        self._where = dict(where)
        self._children = dict(children or {})
        self._loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        loaded = self._loaded.get(name)
        if loaded is not None:
            return loaded
        command = _load(self._where[name])  # KeyError: no such command, as for a dict
        if command.name != name:
            # The table and the command would disagree on what the user types.
            raise RuntimeError(f"{self._where[name]} is the command {command.name!r}, not {name!r}")
        if isinstance(command, click.Group):
            for spec in self._children.get(name, ()):
                child = _load(spec)
                if child.name not in command.commands:
                    command.add_command(child)
        self._loaded[name] = command
        return command

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command
        self._where.setdefault(name, "")  # added as an object: never imported by name

    def __delitem__(self, name: str) -> None:
        del self._where[name]
        self._loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, name: object) -> bool:
        return name in self._where


def _load(spec: str) -> click.Command:
    module, _, attribute = spec.partition(":")
    command = getattr(importlib.import_module(module), attribute)
    if not isinstance(command, click.Command):  # pragma: no cover - a wrong table entry
        raise TypeError(f"{spec} is not a click command")
    return command
