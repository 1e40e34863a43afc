"""The daily queries list exactly what a brute-force filter over every event row lists, and a
patient's schedule, read by Core statements with its protocol's facts kept on disk, is what the
ORM, the parsed protocol and the site's calendar say of it.

``visits``, ``overdue`` and ``deviations`` are written for the indexes of migration 0005: a lower
bound ``first_day >= from - max(span_days)`` the rows do not need but the index does, one
statement per shape of filters. Here they are compared, on a small random network (the
benchmark builder's, through the services' ORM path), with Python filters over every event that
read only the JSON ``days`` list, never the derived columns: a wrong span, bound or filter
shows as a missing or extra row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from benchmarks.network import build_network
from sarcoma_sched.db.models import Allocation, Enrollment, Patient, ScheduledEvent
from sarcoma_sched.db.quick_open import reading
from sarcoma_sched.db.reader import CoreReader
from sarcoma_sched.db.session import Database
from sarcoma_sched.errors import NotFound
from sarcoma_sched.notices import Notice, notices_of
from sarcoma_sched.protocol.occurrences import occurrences
from sarcoma_sched.services import lookups
from sarcoma_sched.services import queries as q
from sarcoma_sched.vocabulary import EVENT_STATUSES, EventStatus, ReasonCode
from tests.databases import pg_schema_url

AS_OF = dt.date(2026, 11, 21)
DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Event:
    first: dt.date  # from ``days``, not the first_day column
    last: dt.date
    status: str
    deviation: str | None
    kind: str
    over_capacity: bool
    latest: dt.date
    study_id: str
    site: str
    protocol: str
    arm: str
    event: str


@dataclass(frozen=True)
class Network:
    db: Database
    events: list[Event]
    sites: list[str]

    def days(self) -> list[dt.date]:
        return sorted({d for e in self.events for d in (e.first, e.last)})


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def network(request, tmp_path_factory) -> Iterator[Network]:
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = str(tmp_path_factory.mktemp("queries") / "network.db")
        else:
            url = stack.enter_context(pg_schema_url())
        build_network(
            url, 60, sites=10, as_of=AS_OF, batch=30, writer="orm", progress=lambda _: None
        )
        db = Database(url)
        stack.callback(db.dispose)
        with db.read() as session:
            rows = session.execute(
                select(ScheduledEvent, Patient, Allocation.arm)
                .join(Patient, Patient.id == ScheduledEvent.patient_id)
                .join(Allocation, Allocation.patient_id == Patient.id)
            ).all()
        events = [
            Event(
                dt.date.fromisoformat(e.days[0]),
                dt.date.fromisoformat(e.days[-1]),
                e.status,
                e.deviation,
                e.kind,
                any(f["code"] == "over_capacity" for f in e.flags),
                e.latest,
                p.study_id,
                p.site_code,
                p.protocol_id,
                arm,
                e.event_id,
            )
            for e, p, arm in rows
        ]
        # The sample must hold what the bounds and filters are about.
        assert max((e.last - e.first).days for e in events) > 0
        assert any(e.deviation for e in events)
        assert {e.status for e in events} >= {"planned", "done", "cancelled"}
        yield Network(db, events, sorted({e.site for e in events}))


@pytest.fixture(scope="module", params=["session", "driver"])
def reader(request):
    """Where the listings run: a session (``EngineRows``, as a use case or a test holds one),
    or a read command's own driver connection (``quick_open.reading``, no SQLAlchemy)."""

    def read(network: Network):
        if request.param == "session":
            return network.db.read()
        return reading(network.db.url, user=None)

    return read


def _listed(rows: list[dict], *extra: str) -> list[tuple]:
    # Dates in order (ORDER BY first_day); ties are ordered by study id in the database's
    # collation, which need not be Python's, so rows are compared as sorted lists.
    assert [r["date"] for r in rows] == sorted(r["date"] for r in rows)
    return sorted(
        (
            *(r[c] for c in ("date", "study_id", "site", "protocol", "arm", "event", "kind")),
            *(r[x] for x in extra),
        )
        for r in rows
    )


def _expected(events: list[Event], *extra: tuple) -> list[tuple]:
    return sorted(
        (e.first, e.study_id, e.site, e.protocol, e.arm, e.event, e.kind, *x)
        for e, x in zip(events, extra or [()] * len(events), strict=True)
    )


@st.composite
def filters(draw, network: Network, *, kind: bool = True) -> dict:
    events = network.events
    chosen = {
        "site": draw(st.none() | st.sampled_from(network.sites)),
        "protocol": draw(st.none() | st.sampled_from(sorted({e.protocol for e in events}))),
        "arm": draw(st.none() | st.sampled_from(sorted({e.arm for e in events}))),
    }
    if kind:
        chosen["kind"] = draw(st.none() | st.sampled_from(sorted({e.kind for e in events})))
    # Lower case too: the services upper-case site, protocol and arm.
    if chosen["site"] and draw(st.booleans()):
        chosen["site"] = chosen["site"].lower()
    return chosen


def _matches(e: Event, f: dict) -> bool:
    return (
        (f["site"] is None or e.site == f["site"].upper())
        and (f["protocol"] is None or e.protocol == f["protocol"].upper())
        and (f["arm"] is None or e.arm == f["arm"].upper())
        and (f.get("kind") is None or e.kind == f["kind"])
    )


def _near_a_boundary(network: Network) -> st.SearchStrategy[dt.date]:
    # Ranges starting or ending next to events' first and last days are where a bound that is
    # a day off, or a span too short, would lose a row.
    return st.builds(
        lambda day, shift: day + shift * DAY,
        st.sampled_from(network.days()),
        st.integers(-3, 3),
    )


@given(data=st.data())
def test_visits_lists_every_event_touching_the_range_and_nothing_else(network, reader, data):
    date_from = data.draw(_near_a_boundary(network))
    date_to = date_from + data.draw(st.integers(0, 45)) * DAY
    statuses = data.draw(st.sets(st.sampled_from(EVENT_STATUSES), min_size=1))
    over_capacity = data.draw(st.booleans())
    f = data.draw(filters(network))
    with reader(network) as session:
        rows = q.visits(
            session,
            date_from,
            date_to,
            statuses=sorted(statuses),
            over_capacity=over_capacity,
            **f,
        )
    expected = [
        e
        for e in network.events
        if e.first <= date_to
        and e.last >= date_from
        and e.status in statuses
        and (e.over_capacity or not over_capacity)
        and _matches(e, f)
    ]
    assert _listed(rows, "status") == _expected(expected, *[(e.status,) for e in expected])


@given(data=st.data())
def test_overdue_lists_every_planned_event_started_before_today_and_nothing_else(
    network, reader, data
):
    today = data.draw(_near_a_boundary(network))
    f = data.draw(filters(network))
    with reader(network) as session:
        rows = q.overdue(session, today, **f)
    expected = [
        e for e in network.events if e.status == "planned" and e.first < today and _matches(e, f)
    ]
    extra = [
        ((today - e.first).days, "window closed" if e.latest < today else "record due")
        for e in expected
    ]
    assert _listed(rows, "days_overdue", "state") == _expected(expected, *extra)


@given(data=st.data())
def test_deviations_lists_every_deviation_touching_the_range_and_nothing_else(
    network, reader, data
):
    date_from = data.draw(st.none() | _near_a_boundary(network))
    date_to = data.draw(st.none() | _near_a_boundary(network))
    f = data.draw(filters(network, kind=False))
    with reader(network) as session:
        rows = q.deviations(session, date_from=date_from, date_to=date_to, **f)
    expected = [
        e
        for e in network.events
        if e.deviation is not None
        and (date_to is None or e.first <= date_to)
        and (date_from is None or e.last >= date_from)
        and _matches(e, f)
    ]
    assert _listed(rows, "deviation") == _expected(expected, *[(e.deviation,) for e in expected])


def test_a_mistyped_site_is_named_by_every_query_not_answered_with_an_empty_list(network, reader):
    with reader(network) as session:
        for ask in (
            lambda: q.visits(session, AS_OF, AS_OF + 6 * DAY, site="NOPE"),
            lambda: q.overdue(session, AS_OF, site="NOPE"),
            lambda: q.deviations(session, site="NOPE"),
        ):
            with pytest.raises(NotFound, match=r"no site 'NOPE' \(sites: .*PKUIH"):
                ask()


def test_the_database_refuses_an_event_whose_span_disagrees_with_its_days(network):
    """``visits`` trusts max(span_days) as a bound: a row with too short a span would drop out
    of the listings silently, so the database itself refuses one."""
    with network.db.engine.connect() as conn:
        row = conn.execute(
            text("SELECT id, span_days FROM scheduled_events WHERE span_days > 0 LIMIT 1")
        ).one()
        with pytest.raises(IntegrityError, match=r"(?i)check"):
            conn.execute(
                text("UPDATE scheduled_events SET span_days = 0 WHERE id = :id"), {"id": row.id}
            )
        conn.rollback()
        with pytest.raises(IntegrityError, match=r"(?i)check"):
            conn.execute(
                text("UPDATE scheduled_events SET last_day = first_day WHERE id = :id"),
                {"id": row.id},
            )
        conn.rollback()


def _parsed_schedule(session, ref: str) -> q.PatientSchedule:
    """The schedule as it was read before issue 24: the ORM's rows, the protocol version parsed,
    the site's whole calendar."""
    patient = lookups.find_patient(session, ref)
    allocated = session.execute(
        select(Allocation.arm, Allocation.allocation_date).where(
            Allocation.patient_id == patient.id
        )
    ).first()
    rows = list(
        session.scalars(
            select(ScheduledEvent)
            .where(ScheduledEvent.patient_id == patient.id)
            .order_by(ScheduledEvent.first_day, ScheduledEvent.id)
        )
    )
    steps = {}
    if allocated and rows:
        version = session.scalar(
            select(Enrollment.protocol_version_id).where(Enrollment.patient_id == patient.id)
        )
        protocol = lookups.protocol_version(session, version).protocol
        steps = {o.id: o for o in occurrences(protocol.arm(allocated.arm))}
    events = []
    for r in rows:
        step = steps.get(r.event_id)
        events.append(
            q.StoredEvent(
                id=r.event_id,
                label=r.label,
                kind=r.kind,
                cycle=r.cycle,
                status=EventStatus(r.status),
                pinned=r.pinned is not None,
                target=r.target,
                earliest=r.earliest,
                latest=r.latest,
                days=tuple(dt.date.fromisoformat(d) for d in r.days),
                time=r.local_time,
                show_as=step.span.show_as if step else "days",
                working_days_only=step is not None and step.day_rule == "working_day",
                actual=r.actual_date,
                reason=ReasonCode.of(r.reason),
                deviation=r.deviation,
                flags=tuple(Notice(f["code"], f["message"], (r.event_id,)) for f in r.flags or ()),
            )
        )
    written = [e for _, e in sorted(zip([r.id for r in rows], events, strict=True))]
    calendar = lookups.site_calendar(session, patient.site_code)
    return q.PatientSchedule(
        ref=patient.study_id or patient.screening_number,
        protocol_id=patient.protocol_id,
        site_code=patient.site_code,
        time_zone=lookups.site_zone(session, patient.site_code),
        arm=allocated.arm if allocated else None,
        allocation_date=allocated.allocation_date if allocated else None,
        events=tuple(events),
        warnings=notices_of(written, calendar) if rows else (),
    )


def test_every_schedule_read_by_core_is_what_the_orm_and_the_parsed_protocol_say(
    network, tmp_path, monkeypatch
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # cold first, then kept
    reader = CoreReader(network.db.url)
    try:
        studies = sorted({e.study_id for e in network.events})
        with (
            network.db.read() as session,
            reader.read() as connection,
            reading(network.db.url, user=None) as own,
        ):
            expected = {ref: _parsed_schedule(session, ref) for ref in studies}
            for _ in range(2):
                for ref in studies:
                    assert q.patient_schedule(connection, ref.lower()) == expected[ref], ref
                    # A read command's own connection (the driver alone).
                    assert q.patient_schedule(own, ref) == expected[ref], ref
                    # A use case reads it on its session's connection (services.events).
                    assert q.patient_schedule(session.connection(), ref) == expected[ref], ref
        assert any(s.warnings for s in expected.values())
        assert any(e.working_days_only for s in expected.values() for e in s.events)
        assert any(e.show_as == "period" for s in expected.values() for e in s.events)
        with reader.read() as connection, pytest.raises(NotFound) as found:
            q.patient_schedule(connection, "PKUIH-NOPE-0001")
        assert str(found.value) == "no patient with study id or screening number 'PKUIH-NOPE-0001'"
    finally:
        reader.dispose()
