"""Site resources: which events use what, how much a site has, and what is already booked.

Three resources, each used by one kind of event:

- ``theatre``: operating-theatre sessions; a surgery takes one session on its day.
- ``infusion``: day-ward infusion chairs (or beds); an infusion cycle takes one on every day
  it spans (D1-D5 needs room on all five).
- ``rt_course``: new radiotherapy courses; a course takes one in the week its first fraction
  falls in (linac slots are planned per new course, not per fraction).

A site declares a capacity per weekday (theatre: 2 on Tuesday, 1 on Thursday — no session on
the other days) or per week (RT: 4 new courses). A resource the site has not declared is not
limited. Pure: the services load the limits and everyone else's bookings from the database.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sarcoma_sched.vocabulary import EventKind, Resource

__all__ = [
    "RESOURCES",
    "WEEKDAYS",
    "Capacity",
    "Limit",
    "resource_units",
    "week_of",
]

# resource → (the event kind that uses it, "each" day of the event or its "first" day, period)
RESOURCES: dict[str, tuple[str, str, str]] = {
    Resource.THEATRE: (EventKind.SURGERY, "first", "day"),
    Resource.INFUSION: (EventKind.INFUSION, "each", "day"),
    Resource.RT_COURSE: (EventKind.RADIOTHERAPY, "first", "week"),
}
_BY_KIND = {kind: resource for resource, (kind, _, _) in RESOURCES.items()}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def week_of(day: dt.date) -> dt.date:
    """The Monday of the day's ISO week: the key of weekly capacities."""
    return day - dt.timedelta(days=day.weekday())


def resource_units(kind: str, days: Iterable[dt.date]) -> list[tuple[str, dt.date]]:
    """The (resource, slot) units an event of this kind on these days takes; a slot is the
    day, or the Monday of the week for weekly resources."""
    resource = _BY_KIND.get(kind)
    if resource is None:
        return []
    _, use, period = RESOURCES[resource]
    days = list(days)
    used = days[:1] if use == "first" else days
    return [(resource, week_of(d) if period == "week" else d) for d in used]


@dataclass(frozen=True)
class Limit:
    """A resource's capacity at one site: per weekday (Monday = 0) or per week."""

    resource: str
    per_weekday: Mapping[int, int] | None = None
    per_week: int | None = None

    def __post_init__(self) -> None:
        if (self.per_weekday is None) == (self.per_week is None):
            raise ValueError("a limit is per weekday or per week, not both")

    def at(self, slot: dt.date) -> int:
        if self.per_week is not None:
            return self.per_week
        assert self.per_weekday is not None
        return self.per_weekday.get(slot.weekday(), 0)

    def describe(self) -> str:
        if self.per_week is not None:
            return f"{self.per_week} per week"
        assert self.per_weekday is not None
        return ", ".join(f"{WEEKDAYS[d]} {n}" for d, n in sorted(self.per_weekday.items()))


@dataclass
class Capacity:
    """Limits of one site plus what other patients have booked there."""

    limits: Mapping[str, Limit]
    booked: Counter[tuple[str, dt.date]] = field(default_factory=Counter)

    def room(self, resource: str, slot: dt.date) -> int | None:
        """Free units in the slot, or None when the resource is not limited."""
        limit = self.limits.get(resource)
        if limit is None:
            return None
        return limit.at(slot) - self.booked[(resource, slot)]

    def fits(self, kind: str, days: Iterable[dt.date]) -> bool:
        need = Counter(resource_units(kind, days))
        return all(
            (free := self.room(resource, slot)) is None or free >= n
            for (resource, slot), n in need.items()
        )

    def full(self, kind: str, days: Iterable[dt.date]) -> list[tuple[str, dt.date]]:
        """The units an event would need that have no room left."""
        return [
            (resource, slot)
            for resource, slot in dict.fromkeys(resource_units(kind, days))
            if (free := self.room(resource, slot)) is not None and free < 1
        ]

    def book(self, kind: str, days: Iterable[dt.date]) -> None:
        self.booked.update(resource_units(kind, days))

    def limited(self, kind: str) -> bool:
        resource = _BY_KIND.get(kind)
        return resource is not None and resource in self.limits
