"""The coordinator's listings across patients: visits in a date range, what is overdue, the
deviations. Plain dict rows from SQL text the driver runs (``db.rows``): a read command needs
no SQLAlchemy, and a use case or a test runs the same text on its SQLAlchemy connection.

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
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sarcoma_sched.db.rows import day, rows_of
from sarcoma_sched.services.names import no_site
from sarcoma_sched.services.queries.days import days_text, window_text
from sarcoma_sched.vocabulary import BOOKED_STATUSES, EventStatus, FlagCode

if TYPE_CHECKING:
    from typing import TypeAlias

    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

    from sarcoma_sched.db.rows import Rows

    # A read command's driver connection, or an SQLAlchemy one a use case or a test holds.
    Where: TypeAlias = Rows | Session | Connection

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

# The columns in the order _event_row unpacks them. ``days`` is the JSON text as stored,
# decoded only for events of several days (see _event_row); psycopg hands PostgreSQL's json
# over decoded, which days_text takes too.
_SELECT = (
    "SELECT e.first_day, e.days, e.span_days, e.local_time, e.event_id, e.label, e.kind, "
    "e.earliest, e.latest, e.status, e.deviation, p.study_id, p.site_code, p.protocol_id, "
    "a.arm, e.note "
    "FROM scheduled_events AS e "
    "JOIN patients AS p ON p.id = e.patient_id "
    "JOIN allocations AS a ON a.patient_id = p.id"
)
_QUESTION = {
    "overdue": f"e.status = '{EventStatus.PLANNED}' AND e.first_day < :today",
    "deviations": "e.deviation IS NOT NULL",
}
_CONDITIONS = (
    ("date_to", "e.first_day <= :date_to"),
    # An event touching [from, ...] started at most the longest span before ``from``: the
    # second bound makes the date range two-sided (see the module docstring).
    ("date_from", "e.last_day >= :date_from AND e.first_day >= :earliest_start"),
    ("site", "p.site_code = :site"),
    ("protocol", "p.protocol_id = :protocol"),
    ("arm", "a.arm = :arm"),
    ("kind", "e.kind = :kind"),
    # The flag list is JSON; its text form is the same on both backends.
    (FlagCode.OVER_CAPACITY, f"CAST(e.flags AS VARCHAR) LIKE '%\"{FlagCode.OVER_CAPACITY}\"%'"),
)


@lru_cache(maxsize=128)
def _listing(question: str, shape: frozenset[str], statuses: int = 0) -> str:
    """The statement for ``question`` with the conditions named in ``shape`` (the names of its
    parameters), and for ``visits`` ``statuses`` placeholders ``:status_0`` …: one text per
    shape, so each database can keep its plan (``benchmarks.queries`` prints them)."""
    if question == "visits":
        where = [f"e.status IN ({', '.join(f':status_{i}' for i in range(statuses))})"]
    else:
        where = [_QUESTION[question]]
    where += [condition for name, condition in _CONDITIONS if name in shape]
    return f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY e.first_day, p.study_id, e.event_id"


def _events(
    where: Where,
    question: str,
    *,
    site: str | None,
    protocol: str | None,
    arm: str | None = None,
    kind: str | None = None,
    over_capacity: bool = False,
    statuses: Sequence[str] = (),
    **values: Any,
) -> list[tuple[Any, ...]]:
    rows = rows_of(where)
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
        span = rows.all("SELECT max(span_days) FROM scheduled_events")[0][0] or 0
        params["earliest_start"] = params["date_from"] - dt.timedelta(days=span)
    shape = frozenset(params) | ({FlagCode.OVER_CAPACITY} if over_capacity else set())
    params.update({f"status_{i}": str(status) for i, status in enumerate(statuses)})
    found = rows.all(_listing(question, shape, len(statuses)), params)
    if site and not found:
        # A mistyped site is a mistake to name, not an empty list. Asked only when nothing was
        # found: a site with rows exists (patients reference their site).
        _refuse_unknown_site(rows, site)
    return found


def _refuse_unknown_site(rows: Rows, code: str) -> None:
    # The words of services.lookups.get_site (services.names).
    if rows.all("SELECT code FROM sites WHERE code = :code", {"code": code.upper()}):
        return
    raise no_site(code, (c for (c,) in rows.all("SELECT code FROM sites ORDER BY code")))


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
    first_day, earliest, latest = day(first_day), day(earliest), day(latest)
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
    session: Where,
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
    session: Where,
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
        row["days_overdue"] = (today - row["date"]).days
        row["state"] = "window closed" if day(r[8]) < today else "record due"
        out.append(row)
    return out


def deviations(
    session: Where,
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
