"""The coordinator's listings across patients: visits in a date range, what is overdue, the
deviations. Plain dict rows, Core statements only, no ORM objects.

At network scale (100,000 patients, millions of event rows) each statement must read about as
many index entries as it returns, on SQLite and PostgreSQL alike (indexes: migration 0005):

* "events touching [from, to]" says ``first_day <= to AND first_day >= from - longest span``
  as well as ``last_day >= from``: a two-sided range on ``first_day`` (weeks) instead of every
  event that started before ``to`` (all history). The longest span is ``max(span_days)``, one
  index lookup, and exact (a check constraint keeps ``span_days`` equal to the days), so the
  bound never drops a row;
* a site's question walks the site's patients and reads each one's events by ``(patient_id,
  status, first_day)``; the whole network's by ``(status, first_day)`` or ``first_day``;
  deviations by small partial indexes ``WHERE deviation IS NOT NULL``. Both planners choose
  between them from their statistics (``benchmarks.queries`` prints the plans).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, String, Text, bindparam, cast, func, select, type_coerce

from sarcoma_sched.db.tables import ALLOCATIONS, PATIENTS, SCHEDULED_EVENTS, SITES
from sarcoma_sched.errors import NotFound
from sarcoma_sched.services.queries.days import days_text, window_text
from sarcoma_sched.vocabulary import BOOKED_STATUSES, EventStatus, FlagCode

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

__all__ = [
    "DEVIATION_COLUMNS",
    "EVENT_COLUMNS",
    "OVERDUE_COLUMNS",
    "deviations",
    "overdue",
    "visits",
]

EVENT_COLUMNS = [
    "date",
    "study_id",
    "site",
    "protocol",
    "arm",
    "event",
    "label",
    "kind",
    "days",
    "window",
    "status",
]
OVERDUE_COLUMNS = [*EVENT_COLUMNS, "days_overdue", "state"]
DEVIATION_COLUMNS = [*EVENT_COLUMNS, "deviation"]


# Core clauses, not the models: a listing is what a coordinator waits for each morning, and
# importing the ORM cost more than the query (db.tables). Either an ORM session or a Core
# connection (``db.reader``) runs these statements.
_EVENTS = SCHEDULED_EVENTS
_PATIENTS = PATIENTS
_ALLOCATIONS = ALLOCATIONS


@cache
def _listing(question: str, shape: frozenset[str]) -> Select[Any]:
    """The statement for ``question`` with the conditions named in ``shape`` (the names of its
    parameters): built and compiled once per shape, Core only, so a call costs the database's
    work and little more (``benchmarks.queries`` compares it with the bare driver)."""
    e, p, a = _EVENTS.c, _PATIENTS.c, _ALLOCATIONS.c
    query = select(
        e.first_day,
        # The JSON text as stored, decoded only for events of several days (see _event_row);
        # psycopg hands PostgreSQL's json over decoded, which days_text takes too.
        type_coerce(e.days, Text).label("days"),
        e.span_days,
        e.local_time,
        e.event_id,
        e.label,
        e.kind,
        e.earliest,
        e.latest,
        e.status,
        e.deviation,
        p.study_id,
        p.site_code,
        p.protocol_id,
        a.arm,
        e.note,
    ).select_from(
        _EVENTS.join(_PATIENTS, p.id == e.patient_id).join(_ALLOCATIONS, a.patient_id == p.id)
    )
    if question == "visits":
        query = query.where(e.status.in_(bindparam("statuses", expanding=True)))
    elif question == "overdue":
        query = query.where(e.status == EventStatus.PLANNED, e.first_day < bindparam("today"))
    else:
        query = query.where(e.deviation.is_not(None))
    if "date_to" in shape:
        query = query.where(e.first_day <= bindparam("date_to"))
    if "date_from" in shape:
        # An event touching [from, ...] started at most the longest span before ``from``: the
        # second bound makes the date range two-sided (see the module docstring).
        query = query.where(
            e.last_day >= bindparam("date_from"), e.first_day >= bindparam("earliest_start")
        )
    if "site" in shape:
        query = query.where(p.site_code == bindparam("site"))
    if "protocol" in shape:
        query = query.where(p.protocol_id == bindparam("protocol"))
    if "arm" in shape:
        query = query.where(a.arm == bindparam("arm"))
    if "kind" in shape:
        query = query.where(e.kind == bindparam("kind"))
    if FlagCode.OVER_CAPACITY in shape:
        # The flag list is JSON; its text form is the same on both backends.
        query = query.where(cast(e.flags, String).like(f'%"{FlagCode.OVER_CAPACITY}"%'))
    return query.order_by(e.first_day, p.study_id, e.event_id)


_LONGEST_SPAN = select(func.max(_EVENTS.c.span_days))


def _events(
    session: Session | Connection,
    question: str,
    *,
    site: str | None,
    protocol: str | None,
    arm: str | None = None,
    kind: str | None = None,
    over_capacity: bool = False,
    **values: Any,
) -> Sequence[Any]:
    params = {name: value for name, value in values.items() if value is not None}
    if site:
        params["site"] = site.upper()
    if protocol:
        params["protocol"] = protocol.upper()
    if arm:
        params["arm"] = arm.upper()
    if kind:
        params["kind"] = kind
    if "date_from" in params:
        # max(span_days) is one index lookup, and exact: a check constraint keeps each row's
        # span equal to its days, so the bound never drops a row that touches the range.
        span = session.execute(_LONGEST_SPAN).scalar() or 0
        params["earliest_start"] = params["date_from"] - dt.timedelta(days=span)
    shape = frozenset(params) | ({FlagCode.OVER_CAPACITY} if over_capacity else set())
    rows = session.execute(_listing(question, shape), params).all()
    if site and not rows:
        # A mistyped site is a mistake to name, not an empty list. Asked only when nothing was
        # found: a site with rows exists (patients reference their site).
        _refuse_unknown_site(session, site)
    return rows


def _refuse_unknown_site(session: Session | Connection, code: str) -> None:
    # The words of services.lookups.get_site, which needs the ORM models this module avoids.
    s = SITES.c
    if session.execute(select(s.code).where(s.code == code.upper())).first() is not None:
        return
    known = ", ".join(session.execute(select(s.code).order_by(s.code)).scalars())
    raise NotFound(f"no site {code!r} (sites: {known or 'none; run `sarcoma-sched init`'})")


def _event_row(r: Any, *, deviation: bool = False, notes: bool = False) -> dict[str, Any]:
    # Unpacked by position (the select's order in _listing): a Row's attribute look-ups were a
    # third of a listing's own time at a few thousand rows.
    (
        first_day,
        days,
        span_days,
        local_time,
        event_id,
        label,
        kind,
        earliest,
        latest,
        status,
        deviation_text,
        study_id,
        site_code,
        protocol_id,
        arm,
        note,
    ) = r
    if span_days:
        shown = days_text(days, local_time)
    else:
        # span_days is kept equal to the days by a check constraint: 0 is one day, first_day.
        shown = f"{first_day} {local_time}" if local_time else first_day.isoformat()
    row = {
        "date": first_day,
        "study_id": study_id,
        "site": site_code,
        "protocol": protocol_id,
        "arm": arm,
        "event": event_id,
        "label": label,
        "kind": kind,
        "days": shown,
        "window": window_text(earliest, latest),
        "status": status,
    }
    if deviation:
        row["deviation"] = deviation_text
    if notes:
        # Asked for by name (--include-notes): what the coordinator typed, inside the database.
        row["note"] = note
    return row


def visits(
    session: Session | Connection,
    date_from: dt.date,
    date_to: dt.date,
    *,
    site: str | None = None,
    protocol: str | None = None,
    arm: str | None = None,
    kind: str | None = None,
    statuses: Sequence[str] = BOOKED_STATUSES,
    over_capacity: bool = False,
) -> list[dict[str, Any]]:
    """Events with at least one day in [from, to], in date order."""
    rows = _events(
        session,
        "visits",
        site=site,
        protocol=protocol,
        arm=arm,
        kind=kind,
        over_capacity=over_capacity,
        statuses=list(statuses),
        date_from=date_from,
        date_to=date_to,
    )
    return [_event_row(r) for r in rows]


def overdue(
    session: Session | Connection,
    today: dt.date,
    *,
    site: str | None = None,
    protocol: str | None = None,
    arm: str | None = None,
    kind: str | None = None,
) -> list[dict[str, Any]]:
    """Planned events that should have started before today and have nothing recorded.

    ``window closed`` means the protocol window has passed too: a deviation is now certain and
    the coordinator records it as done late, missed or skipped; ``record due`` is still in time.
    """
    out = []
    for r in _events(
        session, "overdue", site=site, protocol=protocol, arm=arm, kind=kind, today=today
    ):
        row = _event_row(r)
        row["days_overdue"] = (today - r.first_day).days
        row["state"] = "window closed" if r.latest < today else "record due"
        out.append(row)
    return out


def deviations(
    session: Session | Connection,
    *,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    site: str | None = None,
    protocol: str | None = None,
    arm: str | None = None,
    include_notes: bool = False,
) -> list[dict[str, Any]]:
    """Every recorded deviation (late, early, missed, skipped, rescheduled outside the window,
    a broken constraint), optionally for events touching [from, to]. The deviation names the
    reason's code; ``include_notes`` adds the coordinator's note."""
    rows = _events(
        session,
        "deviations",
        site=site,
        protocol=protocol,
        arm=arm,
        date_from=date_from,
        date_to=date_to,
    )
    return [_event_row(r, deviation=True, notes=include_notes) for r in rows]
