"""What an amendment changes: two versions of a protocol compared field by field.

Both versions are compared as their normalised definitions (what ``protocol show --format json``
prints), so a reordered or reformatted file that means the same shows no change. Lists of named
items (arms, events, components, constraints, criteria, fields, sites, series phases) are matched
by their id or key, so an event added in the middle is one addition, not a shifted list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sarcoma_sched.protocol.model import Protocol

__all__ = ["ProtocolChange", "diff_protocols"]

# The field naming each item of a list, in the order tried.
_IDENTITY = ("id", "key", "code")
# What each top-level part is to a trial team, for grouping the changes.
_AREAS = {
    "study": "study",
    "sites": "sites",
    "fields": "screening fields",
    "criteria": "eligibility",
    "allocation": "allocation",
    "arms": "schedule",
}


@dataclass(frozen=True)
class ProtocolChange:
    area: str  # study, sites, screening fields, eligibility, allocation, schedule, constraints
    path: str  # arms[NEOADJUVANT].events[surgery].timing.latest
    change: str  # added, removed, changed
    old: Any = None
    new: Any = None

    def __str__(self) -> str:
        if self.change == "added":
            return f"{self.path} added: {_shown(self.new)}"
        if self.change == "removed":
            return f"{self.path} removed (was {_shown(self.old)})"
        return f"{self.path}: {_shown(self.old)} → {_shown(self.new)}"

    def as_json(self) -> dict[str, Any]:
        return {
            "area": self.area,
            "path": self.path,
            "change": self.change,
            "old": self.old,
            "new": self.new,
        }


def diff_protocols(old: Protocol, new: Protocol) -> list[ProtocolChange]:
    """Every difference from ``old`` to ``new``, in the order of the definition."""
    found: list[ProtocolChange] = []
    _walk(_normalised(old), _normalised(new), "", found)
    return found


def _normalised(protocol: Protocol) -> dict[str, Any]:
    data: dict[str, Any] = protocol.model_dump(mode="json", by_alias=True)
    return data


def _area(path: str) -> str:
    head = path.split(".", 1)[0].split("[", 1)[0]
    if ".constraints" in path:
        return "constraints"
    return _AREAS.get(head, head)


def _identity(item: Any) -> str | None:
    if isinstance(item, dict):
        for name in _IDENTITY:
            value = item.get(name)
            if isinstance(value, str):
                return value
    return None


def _walk(old: Any, new: Any, path: str, found: list[ProtocolChange]) -> None:
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for name in [*old, *(k for k in new if k not in old)]:
            here = f"{path}.{name}" if path else name
            if name not in new:
                found.append(ProtocolChange(_area(here), here, "removed", old=old[name]))
            elif name not in old:
                found.append(ProtocolChange(_area(here), here, "added", new=new[name]))
            else:
                _walk(old[name], new[name], here, found)
        return
    if isinstance(old, list) and isinstance(new, list):
        olds = {_identity(x): x for x in old}
        news = {_identity(x): x for x in new}
        if (
            None not in olds
            and None not in news
            and len(olds) == len(old)
            and len(news) == len(new)
        ):
            for name in [*olds, *(k for k in news if k not in olds)]:
                here = f"{path}[{name}]"
                if name not in news:
                    found.append(ProtocolChange(_area(here), here, "removed", old=olds[name]))
                elif name not in olds:
                    found.append(ProtocolChange(_area(here), here, "added", new=news[name]))
                else:
                    _walk(olds[name], news[name], here, found)
            return
    found.append(ProtocolChange(_area(path), path, "changed", old=old, new=new))


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        name = _identity(value)
        label = value.get("label") or value.get("text") or value.get("description")
        if name and isinstance(label, str):
            return f"{name} ({label})"
        if name:
            return name
        return (
            "{"
            + ", ".join(f"{k} = {_shown(v)}" for k, v in value.items() if v not in (None, [], ""))
            + "}"
        )
    if isinstance(value, list):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    if value is None:
        return "none"
    return str(value)
