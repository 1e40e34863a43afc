"""The iCalendar export, read back: what a client sees must be what the schedule says.

Every property test parses the bytes with ``icalendar.Calendar.from_ical`` and recomputes the
expectation from the input events (UIDs, dates, SEQUENCE, STATUS, alarms, time zones), not from
the exporter's own helpers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import re
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from icalendar import Calendar

from sarcoma_sched import __version__
from sarcoma_sched.exports.ical import CalendarEvent, build_calendar, to_ics
from tests import icaljs

UTC = dt.UTC
ZONES = ["Asia/Shanghai", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata"]
# Days around the 2026/2027 DST changes of Berlin, New York and Sydney, where a wrong VTIMEZONE
# or naive arithmetic would show.
DST_DAYS = [
    dt.date(2026, 3, 8),
    dt.date(2026, 3, 29),
    dt.date(2026, 4, 5),
    dt.date(2026, 10, 4),
    dt.date(2026, 10, 25),
    dt.date(2026, 11, 1),
    dt.date(2027, 3, 28),
]
EXPECTED_STATUS = {
    "planned": "CONFIRMED",
    "done": "CONFIRMED",
    "missed": "CANCELLED",
    "skipped": "CANCELLED",
    "cancelled": "CANCELLED",
}
STUDY_IDS = ["PKUIH-NATARS-0001", "BJFH-NATARS-0012", "FJMUUH-TNT-STS-0003"]
# Anything a coordinator may type in a label or a reason, iCalendar's special characters too.
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(",;:\\\n"),
    max_size=40,
)

OPTIONAL_TEXT = st.none() | TEXT
LABELS = TEXT.filter(str.strip)
FIRST_DAYS = st.one_of(
    st.dates(dt.date(2024, 1, 1), dt.date(2034, 12, 31)),
    st.builds(
        lambda day, shift: day + dt.timedelta(days=shift),
        st.sampled_from(DST_DAYS),
        st.integers(-3, 3),
    ),
)
# Gaps of 1 (consecutive days) to 3 (an RT course straddling a weekend).
GAPS = st.lists(st.integers(1, 3), max_size=6)
LOCAL_TIMES = st.none() | st.times().map(lambda t: t.replace(second=0, microsecond=0))
UPDATED = st.datetimes(
    dt.datetime(2024, 1, 1),
    dt.datetime(2035, 1, 1),
    timezones=st.sampled_from([UTC, ZoneInfo("Asia/Shanghai")]),
)
# As the planner names occurrences: key, key.N (cycle N), key.mN (follow-up at month N).
EVENT_IDS = st.from_regex(r"\A[a-z][a-z_]{0,8}(\.m?[0-9]{1,2})?\Z")


@st.composite
def day_lists(draw: st.DrawFn) -> tuple[dt.date, ...]:
    first = draw(FIRST_DAYS)
    gaps = draw(GAPS)
    days = [first]
    for gap in gaps:
        days.append(days[-1] + dt.timedelta(days=gap))
    return tuple(days)


@st.composite
def calendar_events(draw: st.DrawFn) -> CalendarEvent:
    study_id = draw(st.sampled_from(STUDY_IDS))
    event_id = draw(EVENT_IDS)
    days = draw(day_lists())
    show_as = draw(st.sampled_from(["days", "period"]))
    if show_as == "period":  # a period covers every day between its ends
        days = tuple(days[0] + dt.timedelta(days=n) for n in range((days[-1] - days[0]).days + 1))
    earliest = days[0] - dt.timedelta(days=draw(st.integers(0, 7)))
    latest = days[0] + dt.timedelta(days=draw(st.integers(0, 7)))
    status = draw(st.sampled_from(sorted(EXPECTED_STATUS)))
    return CalendarEvent(
        uid=f"{study_id}.{event_id}@sarcoma-sched".lower(),
        study_id=study_id,
        protocol_id=draw(st.sampled_from(["NATARS", "TNT-STS"])),
        site_code=draw(st.sampled_from(["PKUIH", "BJFH", "FJMUUH"])),
        event_id=event_id,
        label=draw(LABELS),
        kind=draw(st.sampled_from(["radiotherapy", "infusion", "oral", "surgery", "follow_up"])),
        days=days,
        show_as=show_as,
        local_time=draw(LOCAL_TIMES),
        time_zone=draw(st.sampled_from(ZONES)),
        target=draw(st.sampled_from([earliest, days[0], latest])),
        earliest=earliest,
        latest=latest,
        status=status,
        revision=draw(st.integers(0, 10_000)),
        updated_at=draw(UPDATED),
        instructions=draw(TEXT),
        reason=draw(OPTIONAL_TEXT),
        deviation=draw(OPTIONAL_TEXT),
        actual_date=days[0] if status == "done" else None,
        span_days=draw(st.sampled_from([1, len(days), 5])),
        location=draw(st.none() | st.just("Peking University International Hospital")),
    )


EVENT_LISTS = st.lists(calendar_events(), max_size=8, unique_by=lambda e: e.uid)


def expected_vevents(event: CalendarEvent) -> list[tuple[str, dt.date, dt.date]]:
    """(UID, first day, last day) of each VEVENT the event must become."""
    if event.show_as == "days" and max(len(event.days), event.span_days) > 1:
        local, domain = event.uid.split("@")
        return [(f"{local}.d{n}@{domain}", day, day) for n, day in enumerate(event.days, 1)]
    return [(event.uid, event.days[0], event.days[-1])]


def is_timed(event: CalendarEvent) -> bool:
    return event.local_time is not None and event.show_as == "days"


def parsed(events: list[CalendarEvent]) -> tuple[bytes, Calendar]:
    data = to_ics(events, "test calendar")
    return data, Calendar.from_ical(data)


@given(EVENT_LISTS, st.randoms(use_true_random=False))
def test_the_same_events_give_the_same_bytes_in_whatever_order_they_come(events, rnd):
    shuffled = list(events)
    rnd.shuffle(shuffled)
    assert to_ics(events, "c") == to_ics(shuffled, "c")


@given(EVENT_LISTS)
def test_each_event_reads_back_as_its_days_with_stable_uids_dates_and_time_zones(events):
    data, calendar = parsed(events)
    check_uids(events, calendar)
    check_dates(events, calendar, data)
    check_time_zones(events, calendar)
    keys = [(_day(v["DTSTART"].dt), str(v["UID"])) for v in calendar.walk("VEVENT")]
    assert keys == sorted(keys), "components are ordered by first day, then UID"
    # The UIDs do not depend on what changes over an event's life: dates, time, status,
    # revision.
    later = [
        dataclasses.replace(
            e,
            days=tuple(d + dt.timedelta(days=9) for d in e.days),
            local_time=None,
            status="done",
            revision=e.revision + 1,
            updated_at=e.updated_at + dt.timedelta(days=3),
        )
        for e in events
    ]
    check_uids(later, parsed(later)[1])


@given(EVENT_LISTS)
def test_sequence_status_stamps_alarms_and_text_follow_the_stored_event(events):
    _, calendar = parsed(events)
    by_uid = {str(v["UID"]): v for v in calendar.walk("VEVENT")}
    for event in events:
        stamp = event.updated_at.astimezone(UTC).replace(microsecond=0)
        for uid, _, _ in expected_vevents(event):
            vevent = by_uid[uid]
            assert vevent["SEQUENCE"] == event.revision
            assert str(vevent["STATUS"]) == EXPECTED_STATUS[event.status]
            assert vevent["DTSTAMP"].dt == stamp
            assert vevent["LAST-MODIFIED"].dt == stamp
            assert str(vevent["SUMMARY"]).startswith(f"{event.study_id} · {event.label}")
            assert [str(c) for c in vevent["CATEGORIES"].cats] == [event.kind]
            description = str(vevent["DESCRIPTION"])
            assert event.protocol_id in description and event.event_id in description
            assert f"{event.earliest.isoformat()} … {event.latest.isoformat()}" in description
            assert event.instructions in description
            check_alarm(event, vevent.walk("VALARM"))


def check_uids(events: list[CalendarEvent], calendar: Calendar) -> None:
    """One VEVENT per day of a multi-day "days" event, else one; UIDs unique and as derived."""
    uids = [str(v["UID"]) for v in calendar.walk("VEVENT")]
    assert len(uids) == len(set(uids))
    assert sorted(uids) == sorted(uid for e in events for uid, _, _ in expected_vevents(e))


def check_dates(events: list[CalendarEvent], calendar: Calendar, data: bytes) -> None:
    """All-day: VALUE=DATE and an exclusive end; timed: TZID of the site, one hour long."""
    by_uid = {str(v["UID"]): v for v in calendar.walk("VEVENT")}
    for event in events:
        for uid, first, last in expected_vevents(event):
            start, end = by_uid[uid]["DTSTART"], by_uid[uid]["DTEND"]
            if is_timed(event):
                assert event.local_time is not None
                assert isinstance(start.dt, dt.datetime)
                assert start.params["TZID"] == end.params["TZID"] == event.time_zone
                wall = dt.datetime.combine(first, event.local_time)
                assert start.dt.replace(tzinfo=None) == wall
                # One hour of wall-clock time, whatever the day's DST change does.
                assert end.dt.replace(tzinfo=None) == wall + dt.timedelta(hours=1)
            else:
                assert type(start.dt) is dt.date and type(end.dt) is dt.date
                assert start.params.get("VALUE") == end.params.get("VALUE") == "DATE"
                assert "TZID" not in start.params
                assert (start.dt, end.dt) == (first, last + dt.timedelta(days=1))
    # The raw text a client reads, not only icalendar's interpretation of it.
    all_day = sum(len(expected_vevents(e)) for e in events if not is_timed(e))
    assert len(re.findall(rb"^DTSTART;VALUE=DATE:\d{8}\r$", data, re.M)) == all_day


def check_time_zones(events: list[CalendarEvent], calendar: Calendar) -> None:
    """A VTIMEZONE exactly for the zones of timed events, first, each once, in a fixed order."""
    tzids = [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")]
    assert tzids == sorted({e.time_zone for e in events if is_timed(e)})
    assert calendar.get_missing_tzids() == set()
    names = [c.name for c in calendar.subcomponents]
    assert names == sorted(names, key=lambda n: n != "VTIMEZONE")


def check_alarm(event: CalendarEvent, alarms: list) -> None:
    """Planned events only remind, the day before (09:00 for an all-day event)."""
    if event.status != "planned":
        assert alarms == []
        return
    [alarm] = alarms
    assert str(alarm["ACTION"]) == "DISPLAY"
    assert str(alarm["DESCRIPTION"]).strip()
    # An all-day event starts at midnight: -15 h is 09:00 the day before.
    expected = dt.timedelta(days=-1) if is_timed(event) else dt.timedelta(hours=-15)
    assert alarm["TRIGGER"].dt == expected


def _day(value: dt.date) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


# --- examples -----------------------------------------------------------------------------------


def event(**changes) -> CalendarEvent:
    base = CalendarEvent(
        uid="fjmuuh-tnt-sts-0001.rt@sarcoma-sched",
        study_id="FJMUUH-TNT-STS-0001",
        protocol_id="TNT-STS",
        site_code="FJMUUH",
        event_id="rt",
        label="Hypofractionated RT 5 x 5 Gy",
        kind="radiotherapy",
        # Thursday to Wednesday: 5 working days across a weekend.
        days=tuple(dt.date(2026, 10, d) for d in (8, 9, 12, 13, 14)),
        show_as="days",
        local_time=None,
        time_zone="Asia/Shanghai",
        target=dt.date(2026, 10, 8),
        earliest=dt.date(2026, 10, 1),
        latest=dt.date(2026, 10, 15),
        status="planned",
        revision=2,
        updated_at=dt.datetime(2026, 9, 24, 8, 30, 12, 345678, tzinfo=UTC),
        instructions="25 Gy in 5 fractions of 5 Gy",
        span_days=5,
    )
    return dataclasses.replace(base, **changes)


def test_an_rt_course_across_a_weekend_is_five_visits_and_nothing_on_the_weekend():
    calendar = build_calendar([event()], "FJMUUH-TNT-STS-0001")
    rows = [
        (str(v["UID"]), v["DTSTART"].dt, v["DTEND"].dt, str(v["SUMMARY"]))
        for v in calendar.walk("VEVENT")
    ]
    assert rows == [
        (
            f"fjmuuh-tnt-sts-0001.rt.d{n}@sarcoma-sched",
            day,
            day + dt.timedelta(days=1),
            f"FJMUUH-TNT-STS-0001 · Hypofractionated RT 5 x 5 Gy (day {n}/5)",
        )
        for n, day in enumerate(event().days, 1)
    ]


def test_a_period_is_one_all_day_event_that_does_not_mark_the_patient_busy():
    oral = event(
        uid="pkuih-natars-0001.anlotinib.2@sarcoma-sched",
        event_id="anlotinib.2",
        kind="oral",
        show_as="period",
        span_days=14,
        local_time=dt.time(8, 0),  # ignored: a two-week course has no clock time
        days=tuple(dt.date(2026, 12, 21) + dt.timedelta(days=n) for n in range(14)),
    )
    [vevent] = build_calendar([oral], "x").walk("VEVENT")
    assert str(vevent["UID"]) == "pkuih-natars-0001.anlotinib.2@sarcoma-sched"
    assert (vevent["DTSTART"].dt, vevent["DTEND"].dt) == (
        dt.date(2026, 12, 21),
        dt.date(2027, 1, 4),
    )
    assert str(vevent["TRANSP"]) == "TRANSPARENT"


def test_the_description_tells_the_window_the_instructions_the_outcome_and_any_deviation():
    done = event(
        status="done",
        actual_date=dt.date(2026, 10, 8),
        deviation="RT start 3 days late",
        reason="machine maintenance",
    )
    text = str(build_calendar([done], "x").walk("VEVENT")[0]["DESCRIPTION"])
    assert text.splitlines() == [
        "TNT-STS FJMUUH-TNT-STS-0001 · event rt · site FJMUUH",
        "Target 2026-10-08, window 2026-10-01 … 2026-10-15",
        "Day 1 of 5",
        "25 Gy in 5 fractions of 5 Gy",
        "Status: done on 2026-10-08: machine maintenance",
        "Deviation: RT start 3 days late",
    ]
    cancelled = event(status="cancelled", reason="withdrew consent")
    text = str(build_calendar([cancelled], "x").walk("VEVENT")[0]["DESCRIPTION"])
    assert "Status: cancelled: withdrew consent" in text.splitlines()


def test_the_calendar_names_the_engine_version_and_itself():
    calendar = build_calendar([], "PKUIH · trial visits")
    assert str(calendar["PRODID"]) == f"-//sarcoma-sched//{__version__}//EN"
    assert str(calendar["VERSION"]) == "2.0"
    assert str(calendar["CALSCALE"]) == "GREGORIAN"
    assert str(calendar["X-WR-CALNAME"]) == "PKUIH · trial visits"
    assert calendar.walk("VEVENT") == [] and calendar.walk("VTIMEZONE") == []


@pytest.mark.parametrize(
    "change, message",
    [
        ({"days": ()}, "at least one day"),
        ({"days": (dt.date(2026, 1, 2), dt.date(2026, 1, 1))}, "ascending"),
        ({"status": "postponed"}, "unknown status"),
        ({"updated_at": dt.datetime(2026, 1, 1)}, "timezone-aware"),
    ],
)
def test_an_impossible_event_is_refused_when_built(change, message):
    with pytest.raises(ValueError, match=message):
        event(**change)


def test_two_entries_with_one_uid_are_refused_rather_than_merged_by_a_client():
    # The row "rt" becomes rt.d1 ... rt.d5; a row whose own UID is rt.d1 would collide.
    clash = event(
        uid="fjmuuh-tnt-sts-0001.rt.d1@sarcoma-sched", days=(dt.date(2026, 10, 8),), span_days=1
    )
    with pytest.raises(ValueError, match=r"fjmuuh-tnt-sts-0001\.rt\.d1@sarcoma-sched"):
        build_calendar([event(), clash], "x")


def test_ical_js_reads_timed_events_at_the_instants_the_site_zone_gives(tmp_path):
    """Thunderbird's parser, using only the file's VTIMEZONE, lands every visit on the same UTC
    instant as the zone database: before, on and after the DST changes of both hemispheres."""
    timed = []
    for zone in ["Europe/Berlin", "Australia/Sydney", "America/New_York", "Asia/Shanghai"]:
        for day in [dt.date(2026, 3, 27), dt.date(2026, 3, 30), dt.date(2026, 4, 6)]:
            for day_ in [day, day + dt.timedelta(days=210)]:
                timed.append(
                    event(
                        uid=f"{zone.lower().replace('/', '-')}.{day_:%Y%m%d}@sarcoma-sched",
                        days=(day_,),
                        span_days=1,
                        local_time=dt.time(9, 30),
                        time_zone=zone,
                    )
                )
    timed.append(event())  # and the all-day RT course beside them
    random.Random(7).shuffle(timed)
    path = tmp_path / "timed.ics"
    path.write_bytes(to_ics(timed, "timed"))
    [result] = icaljs.parse(path).values()
    assert sorted(result["vtimezones"]) == sorted(
        ["Europe/Berlin", "Australia/Sydney", "America/New_York", "Asia/Shanghai"]
    )
    seen = {v["uid"]: v for v in result["vevents"]}
    for item in timed:
        for uid, first, _ in expected_vevents(item):
            start, end = seen[uid]["dtstart"], seen[uid]["dtend"]
            if item.local_time is None:
                assert (start["value"], start["date_only"]) == (first.isoformat(), True)
                assert end["value"] == (first + dt.timedelta(days=1)).isoformat()
                continue
            local = dt.datetime.combine(first, item.local_time, tzinfo=ZoneInfo(item.time_zone))
            assert start["tzid"] == item.time_zone
            assert start["value"] == local.replace(tzinfo=None).isoformat()
            assert start["utc"] == local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            assert end["utc"] == (local + dt.timedelta(hours=1)).astimezone(UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            )
            assert (seen[uid]["sequence"], seen[uid]["status"]) == (2, "CONFIRMED")
            assert [a["trigger"] for a in seen[uid]["alarms"]] == ["-P1D"]
