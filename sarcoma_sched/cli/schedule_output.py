"""A patient's calendar in the three output formats, one place for ``plan``, ``schedule``,
``allocate`` and ``record`` (and ``reschedule``, which prints as ``record`` does).

Every format carries the same warnings (``notices``): each event's flags (a code and a
message) and the notices about the calendar as a whole (``estimated_holidays``).

* table: one line per event, its flags in the last column; the notices about the whole calendar
  under ``Warnings:``. Dates of a multi-day event may be abbreviated (``02-24, 02-25``).
* csv: one row per event, every date ISO (``days`` joined by ", ", ``earliest``/``latest``), the
  flags as ``code: message`` joined by "; "; then one row per notice about the whole calendar,
  its ``event`` blank and its ``code: message`` in ``flags``.
* xlsx (``schedule``, ``plan``): the CSV's rows and columns with typed cells, dates as dates.
* json: one object: the calendar's facts, ``events`` (ISO dates, ``window`` as ``earliest`` and
  ``latest``, ``flags`` as ``{code, message}``) and ``warnings`` (every flag and notice, each
  ``{code, message, events}``). ``docs/schemas/*.schema.json`` document the shape.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from sarcoma_sched.cli.output import echo_wrapped, emit_json, emit_rows
from sarcoma_sched.vocabulary import OFF_CALENDAR, EventStatus, ReasonCode

if TYPE_CHECKING:
    from sarcoma_sched.calendar import Notice, Plan
    from sarcoma_sched.notices import Coded
    from sarcoma_sched.services.queries import StoredEvent

__all__ = [
    "CSV_COLUMNS",
    "PREVIEW_COLUMNS",
    "STORED_COLUMNS",
    "Row",
    "emit_calendar",
    "event_json",
    "notice_json",
    "notice_text",
    "plan_rows",
    "stored_rows",
]

# The table of a plan (``plan``, ``allocate``) and of a stored schedule (``schedule``).
PREVIEW_COLUMNS = ["event", "label", "status", "target", "window", "date", "weekday", "days"]
PREVIEW_COLUMNS += ["flags"]
STORED_COLUMNS = [*PREVIEW_COLUMNS[:-1], "actual", "deviation", "flags"]
# Every command's CSV: a spreadsheet sorts and filters on these, so dates are whole and plain.
CSV_COLUMNS = [
    "event",
    "label",
    "kind",
    "cycle",
    "status",
    "pinned",
    "target",
    "earliest",
    "latest",
    "date",
    "days",
    "time",
    "actual",
    "reason",
    "deviation",
    "flags",
]


@dataclass(frozen=True)
class Row:
    """One event as every format shows it, from a plan or from the stored rows."""

    event: str
    label: str
    kind: str
    cycle: int | None
    status: str
    pinned: bool
    target: dt.date
    earliest: dt.date
    latest: dt.date
    days: tuple[dt.date, ...]
    show_as: str  # "days" (each a visit) or "period" (one span, e.g. oral dosing)
    time: str | None  # local "HH:MM"
    flags: tuple[Coded, ...]
    actual: dt.date | None = None
    reason: str | None = None  # a ReasonCode: the note beside it never leaves the database
    deviation: str | None = None


def plan_rows(plan: Plan) -> list[Row]:
    deviations: dict[str, list[str]] = {}
    for d in plan.deviations:
        deviations.setdefault(d.event, []).append(d.message)
    return [
        Row(
            event=e.id,
            label=e.label,
            kind=e.kind,
            cycle=e.cycle,
            status=e.status,
            pinned=e.pinned,
            target=e.target,
            earliest=e.earliest,
            latest=e.latest,
            days=e.days,
            show_as=e.show_as,
            time=e.time.strftime("%H:%M") if e.time else None,
            flags=e.flags,
            actual=e.start if e.status == EventStatus.DONE else None,
            reason=ReasonCode.of(e.reason),
            # As ``services.schedules`` stores it: one text per event.
            deviation="; ".join(deviations[e.id]) if e.id in deviations else None,
        )
        for e in plan.events
    ]


def stored_rows(events: Iterable[StoredEvent]) -> list[Row]:
    return [
        Row(
            event=e.id,
            label=e.label,
            kind=e.kind,
            cycle=e.cycle,
            status=e.status,
            pinned=e.pinned,
            target=e.target,
            earliest=e.earliest,
            latest=e.latest,
            days=e.days,
            show_as=e.show_as,
            time=e.time,
            flags=e.flags,
            actual=e.actual,
            reason=e.reason,
            deviation=e.deviation,
        )
        for e in events
    ]


# --- the pieces ---------------------------------------------------------------------------------


def _flags_text(flags: Iterable[Coded]) -> str:
    return "; ".join(f"{f.code}: {f.message}" for f in flags)


def notice_text(notice: Notice) -> str:
    """``ai.2: over_capacity: …``; a notice about several events names none (the message says)."""
    where = f"{notice.events[0]}: " if len(notice.events) == 1 else ""
    return f"{where}{notice.code}: {notice.message}"


def notice_json(notice: Notice) -> dict[str, Any]:
    return {"code": notice.code, "message": notice.message, "events": list(notice.events)}


def _whole_calendar(rows: Sequence[Row], warnings: Iterable[Notice]) -> list[Notice]:
    """The warnings that no event's line carries: what the table and the CSV add after them."""
    on_rows = {(r.event, f.code, f.message) for r in rows for f in r.flags}
    return [
        n
        for n in warnings
        if not (len(n.events) == 1 and (n.events[0], n.code, n.message) in on_rows)
    ]


def _days_text(r: Row) -> str:
    if len(r.days) == 1:
        text = r.days[0].isoformat()
    elif r.show_as == "period":
        text = f"{r.days[0]} … {r.days[-1]} (one {len(r.days)}-day period)"
    else:
        text = ", ".join(d.strftime("%m-%d") for d in r.days)
    return f"{text} {r.time}" if r.time else text


def _table_row(r: Row) -> dict[str, Any]:
    actual: str | None = r.actual.isoformat() if r.actual else None
    if r.status in OFF_CALENDAR:
        actual = r.status + (f": {r.reason}" if r.reason else "")
    return {
        "event": r.event,
        "label": r.label,
        "status": r.status + (" (rescheduled)" if r.pinned else ""),
        "target": r.target.isoformat(),
        "window": f"{r.earliest} … {r.latest}",
        "date": r.days[0].isoformat(),
        "weekday": r.days[0].strftime("%a"),
        "days": _days_text(r),
        "actual": actual,
        "deviation": r.deviation,
        "flags": _flags_text(r.flags),
    }


def _csv_row(r: Row) -> dict[str, Any]:
    return {
        "event": r.event,
        "label": r.label,
        "kind": r.kind,
        "cycle": r.cycle,
        "status": r.status,
        "pinned": "true" if r.pinned else "false",
        "target": r.target.isoformat(),
        "earliest": r.earliest.isoformat(),
        "latest": r.latest.isoformat(),
        "date": r.days[0].isoformat(),
        "days": ", ".join(d.isoformat() for d in r.days),
        "time": r.time,
        "actual": r.actual.isoformat() if r.actual else None,
        "reason": r.reason,
        "deviation": r.deviation,
        "flags": _flags_text(r.flags),
    }


def _sheet_row(r: Row) -> dict[str, Any]:
    # The CSV's columns, each date a date and the cycle a number: what a spreadsheet sorts by.
    return _csv_row(r) | {
        "cycle": r.cycle,
        "pinned": r.pinned,
        "target": r.target,
        "earliest": r.earliest,
        "latest": r.latest,
        "date": r.days[0],
        "actual": r.actual,
    }


def event_json(r: Row) -> dict[str, Any]:
    return {
        "event": r.event,
        "label": r.label,
        "kind": r.kind,
        "cycle": r.cycle,
        "status": r.status,
        "pinned": r.pinned,
        "target": r.target.isoformat(),
        "window": {"earliest": r.earliest.isoformat(), "latest": r.latest.isoformat()},
        "days": [d.isoformat() for d in r.days],
        "show_as": r.show_as,
        "time": r.time,
        "actual": r.actual.isoformat() if r.actual else None,
        "reason": r.reason,
        "deviation": r.deviation,
        "flags": [{"code": f.code, "message": f.message} for f in r.flags],
    }


# --- the whole calendar -------------------------------------------------------------------------


def emit_calendar(
    fmt: str,
    *,
    title: str,
    facts: Mapping[str, Any],
    rows: Sequence[Row],
    warnings: Sequence[Notice],
    columns: Sequence[str] = PREVIEW_COLUMNS,
    extra: Mapping[str, Any] | None = None,
    sections: Sequence[tuple[str, Sequence[str]]] = (),
) -> None:
    """Print a calendar: ``facts`` lead the JSON document (``title`` says them in a table),
    ``extra`` follows its warnings (``plan``'s deviations and what moved), ``sections`` are the
    table's lists before its warnings (the same, for a reader)."""
    if fmt == "json":
        emit_json(
            {
                **facts,
                "events": [event_json(r) for r in rows],
                "warnings": [notice_json(n) for n in warnings],
                **(extra or {}),
            }
        )
        return
    whole = _whole_calendar(rows, warnings)
    if fmt in ("csv", "xlsx"):
        lines = [(_csv_row if fmt == "csv" else _sheet_row)(r) for r in rows]
        lines += [{"event": "", "flags": f"{n.code}: {n.message}"} for n in whole]
        emit_rows(lines, CSV_COLUMNS, fmt, sheet=str(facts.get("study_id") or "plan"))
        return
    echo_wrapped(title)
    emit_rows([_table_row(r) for r in rows], columns, "table")
    for heading, items in [*sections, ("Warnings", [f"{n.code}: {n.message}" for n in whole])]:
        if items:
            click.echo("")
            click.echo(f"{heading}:")
            for item in items:
                echo_wrapped(f"  - {item}", indent="    ")
