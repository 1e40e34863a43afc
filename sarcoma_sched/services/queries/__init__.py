"""The coordinator's daily questions, read-only: a patient's schedule, visits in a date range,
what is overdue, the deviations, and enrolment counts.

Each returns plain dict rows and loads no ORM objects. At network scale (100,000 patients,
millions of event rows) each statement must read about as many index entries as it returns,
on SQLite and PostgreSQL alike (indexes: migration 0005):

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
import json
from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Select, String, Text, bindparam, cast, func, select, type_coerce
from sqlalchemy.orm import Session

from sarcoma_sched.db.models import (
    Allocation,
    Enrollment,
    ParticipationEnd,
    Patient,
    ScheduledEvent,
    Screening,
    Site,
)
from sarcoma_sched.errors import NotFound
from sarcoma_sched.services.patients import find_patient

__all__ = [
    "DEVIATION_COLUMNS",
    "ENROLLMENT_GROUPS",
    "EVENT_COLUMNS",
    "OVERDUE_COLUMNS",
    "SCHEDULE_COLUMNS",
    "deviations",
    "enrollment_columns",
    "enrollment_report",
    "overdue",
    "patient_schedule",
    "visits",
]

SCHEDULE_COLUMNS = [
    "event",
    "label",
    "kind",
    "days",
    "target",
    "window",
    "status",
    "actual",
    "deviation",
    "flags",
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
ENROLLMENT_GROUPS = ("protocol", "site", "arm", "stratum")

E = ScheduledEvent


def _iso_days(text: str) -> list[str]:
    """The stored JSON list of ISO dates. What the engine writes (``json.dumps``: '["2027-03-04",
    "2027-03-05"]', 14 characters a day) is split at C speed; anything else is decoded."""
    items = text[2:-2].split('", "')
    if text.startswith('["') and text.endswith('"]') and len(text) == 14 * len(items):
        return items
    return json.loads(text)


def _days_text(days: Sequence[str] | str, time: str | None) -> str:
    """``days`` as a list of ISO dates, or as its JSON text (the listings skip the decoding
    for one-day events, most of them, and decode here only what has several days)."""
    if isinstance(days, str):
        days = _iso_days(days)
    if len(days) == 1:
        text = days[0]
    else:
        # RT 5 fractions straddling a weekend must show which days, not just first and last.
        # Strictly increasing (ISO dates sort as text) over n - 1 days is one day apart each.
        first, last = dt.date.fromisoformat(days[0]), dt.date.fromisoformat(days[-1])
        consecutive = (last - first).days == len(days) - 1 and all(map(str.__lt__, days, days[1:]))
        text = f"{days[0]}..{days[-1]}" if consecutive else ", ".join(days)
    return f"{text} {time}" if time else text


def _window(earliest: dt.date, latest: dt.date) -> str:
    return f"{earliest}..{latest}"


def patient_schedule(session: Session, ref: str) -> tuple[Patient, list[dict[str, Any]]]:
    patient = find_patient(session, ref)
    rows = session.execute(
        select(E).where(E.patient_id == patient.id).order_by(E.first_day, E.id)
    ).scalars()
    out = []
    for r in rows:
        actual = r.actual_date.isoformat() if r.actual_date else None
        if r.status in ("missed", "skipped", "cancelled"):
            actual = r.status + (f": {r.reason}" if r.reason else "")
        out.append(
            {
                "event": r.event_id,
                "label": r.label,
                "kind": r.kind,
                "days": _days_text(r.days, r.local_time),
                "target": r.target,
                "window": _window(r.earliest, r.latest),
                "status": r.status + (" (rescheduled)" if r.pinned else ""),
                "actual": actual,
                "deviation": r.deviation,
                "flags": "; ".join(f"{f['code']}: {f['message']}" for f in r.flags) or None,
            }
        )
    return patient, out


_EVENTS = ScheduledEvent.__table__
_PATIENTS = Patient.__table__
_ALLOCATIONS = Allocation.__table__
OVERDUE_COLUMNS = [*EVENT_COLUMNS, "days_overdue", "state"]
DEVIATION_COLUMNS = [*EVENT_COLUMNS, "deviation"]


@cache
def _listing(question: str, shape: frozenset[str]) -> Select[Any]:
    """The statement for ``question`` with the conditions named in ``shape`` (the names of its
    parameters): built and compiled once per shape, Core only, so a call costs the database's
    work and little more (``benchmarks.queries`` compares it with the bare driver)."""
    e, p, a = _EVENTS.c, _PATIENTS.c, _ALLOCATIONS.c
    query = select(
        e.first_day,
        # The JSON text as stored, decoded only for events of several days (see _event_row);
        # psycopg hands PostgreSQL's json over decoded, which _days_text takes too.
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
    ).select_from(
        _EVENTS.join(_PATIENTS, p.id == e.patient_id).join(_ALLOCATIONS, a.patient_id == p.id)
    )
    if question == "visits":
        query = query.where(e.status.in_(bindparam("statuses", expanding=True)))
    elif question == "overdue":
        query = query.where(e.status == "planned", e.first_day < bindparam("today"))
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
    if "over_capacity" in shape:
        # The flag list is JSON; its text form is the same on both backends.
        query = query.where(cast(e.flags, String).like('%"over_capacity"%'))
    return query.order_by(e.first_day, p.study_id, e.event_id)


_LONGEST_SPAN = select(func.max(_EVENTS.c.span_days))


def _events(
    session: Session,
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
    shape = frozenset(params) | ({"over_capacity"} if over_capacity else set())
    rows = session.execute(_listing(question, shape), params).all()
    if site and not rows:
        _check_site(session, site)
    return rows


def _check_site(session: Session, site: str) -> None:
    # A mistyped site is a mistake to name, not an empty list. Asked only when nothing was
    # found: a site with rows exists (patients reference their site).
    if session.scalar(select(Site.code).where(Site.code == site.upper())) is None:
        known = ", ".join(session.scalars(select(Site.code).order_by(Site.code)))
        raise NotFound(f"no site {site!r} (sites: {known or 'none'})")


def _event_row(r: Any, *, deviation: bool = False) -> dict[str, Any]:
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
    ) = r
    if span_days:
        days_text = _days_text(days, local_time)
    else:
        # span_days is kept equal to the days by a check constraint: 0 is one day, first_day.
        days_text = f"{first_day} {local_time}" if local_time else first_day.isoformat()
    row = {
        "date": first_day,
        "study_id": study_id,
        "site": site_code,
        "protocol": protocol_id,
        "arm": arm,
        "event": event_id,
        "label": label,
        "kind": kind,
        "days": days_text,
        "window": _window(earliest, latest),
        "status": status,
    }
    if deviation:
        row["deviation"] = deviation_text
    return row


def visits(
    session: Session,
    date_from: dt.date,
    date_to: dt.date,
    *,
    site: str | None = None,
    protocol: str | None = None,
    arm: str | None = None,
    kind: str | None = None,
    statuses: Sequence[str] = ("planned", "done"),
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
    session: Session,
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
    session: Session,
    *,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    site: str | None = None,
    protocol: str | None = None,
    arm: str | None = None,
) -> list[dict[str, Any]]:
    """Every recorded deviation (late, early, missed, skipped, rescheduled outside the window,
    a broken constraint), optionally for events touching [from, to]."""
    rows = _events(
        session,
        "deviations",
        site=site,
        protocol=protocol,
        arm=arm,
        date_from=date_from,
        date_to=date_to,
    )
    return [_event_row(r, deviation=True) for r in rows]


def enrollment_report(
    session: Session, *, protocol: str | None = None, by: Sequence[str] = ("protocol", "arm")
) -> list[dict[str, Any]]:
    """Allocated patients grouped ``by`` protocol, site, arm and/or stratum, with withdrawals
    and exclusions (who stay in the intention-to-treat counts), plus screening counts when the
    grouping has no arm or stratum (screening happens before either exists)."""
    unknown = [b for b in by if b not in ENROLLMENT_GROUPS]
    if unknown or not by:
        from sarcoma_sched.errors import Conflict

        raise Conflict(
            f"--by: {', '.join(unknown) or 'nothing'}; choose from {', '.join(ENROLLMENT_GROUPS)}"
        )
    columns = {
        "protocol": Allocation.protocol_id,
        "site": Patient.site_code,
        "arm": Allocation.arm,
        "stratum": Allocation.stratum,
    }
    keys = [columns[b].label(b) for b in by]
    query = (
        select(
            *keys,
            func.count(Allocation.id).label("allocated"),
            func.count(ParticipationEnd.id).filter(ParticipationEnd.kind == "withdrawn"),
            func.count(ParticipationEnd.id).filter(ParticipationEnd.kind == "excluded"),
        )
        .join(Patient, Patient.id == Allocation.patient_id)
        .outerjoin(ParticipationEnd, ParticipationEnd.patient_id == Patient.id)
        .group_by(*keys)
        .order_by(*keys)
    )
    if protocol:
        query = query.where(Allocation.protocol_id == protocol.upper())
    rows = []
    for r in session.execute(query):
        row = {b: r[i] for i, b in enumerate(by)}
        allocated, withdrawn, excluded = r[len(by)], r[len(by) + 1], r[len(by) + 2]
        row.update(
            allocated=allocated,
            withdrawn=withdrawn,
            excluded=excluded,
            on_study=allocated - withdrawn - excluded,
        )
        rows.append(row)
    if not {"arm", "stratum"} & set(by):
        _add_screening_counts(session, rows, by, protocol)
    return rows


def _add_screening_counts(
    session: Session, rows: list[dict[str, Any]], by: Sequence[str], protocol: str | None
) -> None:
    columns = {"protocol": Patient.protocol_id, "site": Patient.site_code}
    keys = [columns[b].label(b) for b in by]
    latest = (
        select(Screening.patient_id, func.max(Screening.id).label("id"))
        .group_by(Screening.patient_id)
        .subquery()
    )
    query = (
        select(
            *keys,
            func.count(Patient.id).label("screened"),
            func.count(Patient.id).filter(Screening.eligible.is_(True)).label("eligible"),
            func.count(Enrollment.id).label("enrolled"),
        )
        .join(latest, latest.c.patient_id == Patient.id)
        .join(Screening, Screening.id == latest.c.id)
        .outerjoin(Enrollment, Enrollment.patient_id == Patient.id)
        .group_by(*keys)
    )
    if protocol:
        query = query.where(Patient.protocol_id == protocol.upper())
    counts = {tuple(r[: len(by)]): r[len(by) :] for r in session.execute(query)}
    by_key = {tuple(row[b] for b in by): row for row in rows}
    for key, (screened, eligible, enrolled) in counts.items():
        row = by_key.get(key)
        if row is None:  # screened but nobody allocated yet
            row = {b: key[i] for i, b in enumerate(by)}
            row.update(allocated=0, withdrawn=0, excluded=0, on_study=0)
            rows.append(row)
        row.update(screened=screened, eligible=eligible, enrolled=enrolled)
    for row in rows:
        for name in ("screened", "eligible", "enrolled"):
            row.setdefault(name, 0)
    rows.sort(key=lambda row: tuple(str(row[b]) for b in by))


def enrollment_columns(by: Sequence[str]) -> list[str]:
    counts = ["allocated", "withdrawn", "excluded", "on_study"]
    if not {"arm", "stratum"} & set(by):
        counts = ["screened", "eligible", "enrolled", *counts]
    return [*by, *counts]
