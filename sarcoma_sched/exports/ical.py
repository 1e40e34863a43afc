"""iCalendar (RFC 5545) export of scheduled events, through the ``icalendar`` library only.

Pure: no database. ``sarcoma_sched.services.queries.calendars`` turns stored rows into
``CalendarEvent`` values; this module turns those into a calendar a client (Thunderbird,
Outlook, Apple, Google) imports or subscribes to, and replaces on the next export.

How one scheduled event becomes calendar components:

- ``show_as = "period"`` (oral anlotinib D1-D14 at home): one all-day VEVENT from the first to the
  last day, always all-day even if the event has a time, since a two-week course has no clock.
- ``show_as = "days"`` with more than one day (RT 5 fractions on consecutive working days, maybe
  across a weekend; inpatient infusion D1-D5): one VEVENT per day, each its own visit, with UIDs
  derived from the row's UID by day number
  (``pkuih-natars-0001.rt.d3@<installation>.sarcoma-sched``).
- otherwise one VEVENT with the row's UID.

Dates by kind: without a local time an event is all-day (``DTSTART;VALUE=DATE``, ``DTEND`` the
day after the last day, exclusive as RFC 5545 3.6.1 requires). With a local time it is timed in
the site's zone (``DTSTART;TZID=...``, the VTIMEZONE included) and lasts ``TIMED_DURATION``.

Where this departs from a plain reading of RFC 5545, and why:

- ``DTSTAMP`` is the row's last change, not the moment of export. Without a ``METHOD`` property
  RFC 5545 3.8.7.2 lets DTSTAMP be the last revision of the information; it also makes two
  exports of an unchanged schedule byte-identical, so a subscription diff is empty.
- A "days" event whose number of days later shrinks leaves its old extra day UIDs in a client
  that imported the earlier file: nothing in the new file names them. Spans come from the
  protocol, so this only happens when fewer days than planned are recorded as done.
- Missed and skipped events are exported as ``STATUS:CANCELLED``: the appointment will not take
  place, and a client then shows it struck through instead of as a pending visit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from icalendar import Alarm, Calendar, Event

from sarcoma_sched import __version__
from sarcoma_sched.vocabulary import OFF_CALENDAR, EventStatus

__all__ = [
    "ALL_DAY_ALARM",
    "STATUS",
    "TIMED_ALARM",
    "TIMED_DURATION",
    "CalendarEvent",
    "Occurrence",
    "build_calendar",
    "day_uid",
    "occurrences",
    "to_ics",
]

# A timed event has no end in the protocol; one hour is a clinic slot. Clients let a patient
# see the start, which is what matters; the end only shapes the block in a day view.
TIMED_DURATION = dt.timedelta(hours=1)
# All-day events start at local midnight: -15 h is 09:00 the day before, office hours, when a
# patient can still arrange transport or fasting. Timed events: the same time the day before.
ALL_DAY_ALARM = dt.timedelta(hours=-15)
TIMED_ALARM = dt.timedelta(days=-1)

# STATUS per stored status. Missed and skipped will not happen: shown cancelled (see above).
STATUS: dict[str, str] = {s: "CANCELLED" if s in OFF_CALENDAR else "CONFIRMED" for s in EventStatus}

PRODID = f"-//sarcoma-sched//{__version__}//EN"


@dataclass(frozen=True)
class CalendarEvent:
    """One exportable scheduled event: what a calendar may show, and nothing identifying beyond
    the pseudonymous study id (no name, no birth date)."""

    uid: str
    study_id: str
    protocol_id: str
    site_code: str
    event_id: str
    label: str
    kind: str
    # The scheduled days, or the actual days once done; ascending.
    days: tuple[dt.date, ...]
    show_as: Literal["days", "period"]
    # A wall-clock time in ``time_zone`` makes the event timed; None: all-day.
    local_time: dt.time | None
    time_zone: str
    target: dt.date
    earliest: dt.date
    latest: dt.date
    status: str
    revision: int
    updated_at: dt.datetime
    instructions: str = ""
    reason: str | None = None
    deviation: str | None = None
    actual_date: dt.date | None = None
    # Days one occurrence spans in the protocol: a "days" event spanning more than one gets one
    # VEVENT per day even when fewer days are recorded, so its UIDs never change form.
    span_days: int = 1
    location: str | None = None
    # Why a planned date is in doubt (flags): exported TENTATIVE with the reasons, never
    # CONFIRMED. Empty: the date is sound.
    unconfirmed: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.days:
            raise ValueError(f"{self.uid}: an event needs at least one day")
        if list(self.days) != sorted(self.days):
            raise ValueError(f"{self.uid}: days must be in ascending order")
        if self.status not in STATUS:
            raise ValueError(f"{self.uid}: unknown status {self.status!r}")
        if self.updated_at.tzinfo is None:
            raise ValueError(f"{self.uid}: updated_at must be timezone-aware")

    @property
    def per_day(self) -> bool:
        return self.show_as == "days" and max(self.span_days, len(self.days)) > 1

    @property
    def timed(self) -> bool:
        # A period is a course of days, never a clock time (see the module docstring).
        return self.local_time is not None and self.show_as == "days"


def day_uid(uid: str, number: int) -> str:
    """The UID of day ``number`` (1-based) of a multi-day event: ``.dN`` before the domain."""
    local, at, domain = uid.rpartition("@")
    if not at:
        return f"{uid}.d{number}"
    return f"{local}.d{number}@{domain}"


@dataclass(frozen=True)
class Occurrence:
    """One VEVENT to write: its UID, first and last day, and day n of m (per-day events)."""

    uid: str
    first: dt.date
    last: dt.date
    number: int | None = None
    of: int | None = None


def occurrences(event: CalendarEvent) -> list[Occurrence]:
    """The VEVENTs an event becomes (see the module docstring)."""
    if event.per_day:
        total = max(event.span_days, len(event.days))
        return [
            Occurrence(day_uid(event.uid, n), day, day, n, total)
            for n, day in enumerate(event.days, start=1)
        ]
    return [Occurrence(event.uid, event.days[0], event.days[-1])]


def _summary(event: CalendarEvent, occurrence: Occurrence) -> str:
    day = f" (day {occurrence.number}/{occurrence.of})" if occurrence.number else ""
    return f"{event.study_id} · {event.label}{day}"


def _status_line(event: CalendarEvent) -> str:
    because = f": {event.reason}" if event.reason else ""
    if event.status == EventStatus.DONE:
        return f"Status: done on {(event.actual_date or event.days[0]).isoformat()}{because}"
    return f"Status: {event.status}{because}"


def _description(event: CalendarEvent, occurrence: Occurrence) -> str:
    lines = [
        f"{event.protocol_id} {event.study_id} · event {event.event_id} · site {event.site_code}",
        f"Target {event.target.isoformat()}, window "
        f"{event.earliest.isoformat()} … {event.latest.isoformat()}",
    ]
    if occurrence.number:
        lines.append(f"Day {occurrence.number} of {occurrence.of}")
    elif event.show_as == "period":
        lines.append(f"Every day from {event.days[0].isoformat()} to {event.days[-1].isoformat()}")
    if event.instructions:
        lines.append(event.instructions)
    lines.append(_status_line(event))
    if event.deviation:
        lines.append(f"Deviation: {event.deviation}")
    lines.extend(f"Not confirmed: {why}" for why in event.unconfirmed)
    return "\n".join(lines)


def _start_end(
    event: CalendarEvent, occurrence: Occurrence
) -> tuple[dt.date | dt.datetime, dt.date | dt.datetime]:
    if not event.timed:
        return occurrence.first, occurrence.last + dt.timedelta(days=1)
    assert event.local_time is not None
    zone = ZoneInfo(event.time_zone)
    # Wall-clock arithmetic: a 09:00 visit ends at 10:00 local time whatever the DST offset.
    start = dt.datetime.combine(occurrence.first, event.local_time)
    end = start + TIMED_DURATION
    return start.replace(tzinfo=zone), end.replace(tzinfo=zone)


def _at(event: CalendarEvent) -> str:
    return f" at {event.local_time:%H:%M}" if event.timed and event.local_time else ""


def _utc(moment: dt.datetime) -> dt.datetime:
    # Whole seconds: iCalendar has no fractions, and the bytes must not depend on them.
    return moment.astimezone(dt.UTC).replace(microsecond=0)


def _vevent(event: CalendarEvent, occurrence: Occurrence) -> Event:
    start, end = _start_end(event, occurrence)
    summary = _summary(event, occurrence)
    vevent = Event()
    vevent.add("uid", occurrence.uid)
    vevent.add("dtstamp", _utc(event.updated_at))
    vevent.add("last-modified", _utc(event.updated_at))
    vevent.add("sequence", event.revision)
    vevent.add("dtstart", start)
    vevent.add("dtend", end)
    vevent.add("summary", summary)
    vevent.add("description", _description(event, occurrence))
    vevent.add("categories", [event.kind])
    vevent.add("status", "TENTATIVE" if event.unconfirmed else STATUS[event.status])
    # A 14-day oral course at home must not mark the patient busy for two weeks.
    vevent.add("transp", "TRANSPARENT" if event.show_as == "period" else "OPAQUE")
    if event.location:
        vevent.add("location", event.location)
    if event.status == EventStatus.PLANNED:
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", f"Tomorrow{_at(event)}: {summary}")
        alarm.add("trigger", TIMED_ALARM if event.timed else ALL_DAY_ALARM)
        vevent.add_component(alarm)
    return vevent


def build_calendar(events: Iterable[CalendarEvent], name: str) -> Calendar:
    """A calendar of every event, components in a fixed order (first day, then UID)."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", name)
    items = sorted(
        ((event, occurrence) for event in events for occurrence in occurrences(event)),
        key=lambda pair: (pair[1].first, pair[1].uid),
    )
    seen: set[str] = set()
    for event, occurrence in items:
        # A client keeps one entry per UID: a second one would silently replace the first.
        if occurrence.uid in seen:
            raise ValueError(f"two calendar entries have the UID {occurrence.uid}")
        seen.add(occurrence.uid)
        calendar.add_component(_vevent(event, occurrence))
    timed_years = [occurrence.first.year for event, occurrence in items if event.timed]
    if timed_years:
        # Transitions from the year before the first timed day to a year past the last keep the
        # VTIMEZONE short and the same for the same events (the default spans 1970-2038).
        calendar.add_missing_timezones(
            first_date=dt.date(min(timed_years) - 1, 1, 1),
            last_date=dt.date(max(timed_years) + 2, 1, 1),
        )
        missing = calendar.get_missing_tzids()
        if missing:
            raise ValueError(f"no time zone definition for {', '.join(sorted(missing))}")
        # add_missing_timezones inserts them in set order, which varies between runs.
        timezones = sorted(calendar.walk("VTIMEZONE"), key=lambda tz: str(tz["TZID"]))
        others = [c for c in calendar.subcomponents if c.name != "VTIMEZONE"]
        calendar.subcomponents[:] = [*timezones, *others]
    return calendar


def to_ics(events: Iterable[CalendarEvent], name: str) -> bytes:
    """The calendar as iCalendar bytes (UTF-8, CRLF line ends, folded at 75 octets)."""
    return build_calendar(events, name).to_ical()
