"""The coordinator's daily commands, end to end: record, reschedule, schedule, visits, overdue,
deviations, report enrollment and site add/list/close.

Every behaviour under test goes through the installed ``sarcoma-sched``; the cohort it works on
is built in-process through the services (screening and allocation have their own CLI tests in
``test_patient_commands.py``), once per module on SQLite and copied per test, and afresh in a
schema of its own for each PostgreSQL test. All dates are relative to today, so expected dates
are derived from the stored rows, the protocol TOML and the site's working-day calendar, never
typed in.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import re
import shutil
import tempfile
import tomllib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.cli.conftest import actor, as_user, query
from tests.cohort import ELIGIBLE_NATARS, ELIGIBLE_TNT
from tests.databases import pg_schema_url
from tests.dumps import dump

if TYPE_CHECKING:
    from sarcoma_sched.calendar import SiteCalendar

ROOT = Path(__file__).parents[2]
DAY = dt.timedelta(days=1)

# The cohort (see build_cohort).
P1 = "PKUIH-NATARS-0001"  # NEOADJUVANT, allocated P1_DAYS_AGO days ago: cycle 1 is overdue
P2 = "PKUIH-NATARS-0002"  # NEOADJUVANT, allocated today: everything ahead
P3 = "BJFH-NATARS-0001"  # SURGERY_ONLY, surgery day passed, window still open
P4 = "FJMUUH-TNT-STS-0001"  # TNT, allocated today: baseline today
P5 = "FJMUUH-TNT-STS-0002"  # TNT, allocated and withdrawn today
R3 = "BJFH-NATARS-R-0001"  # NATARS-R, excluded after allocation
P1_DAYS_AGO = 40
SECRET = hashlib.sha256(b"sarcoma-sched test key").digest()  # NATARS-R draws: repeatable

NATARS = tomllib.loads((ROOT / "protocols" / "natars.toml").read_text(encoding="utf-8"))
NEOADJUVANT = next(arm for arm in NATARS["arms"] if arm["id"] == "NEOADJUVANT")
SURGERY_ONLY = next(arm for arm in NATARS["arms"] if arm["id"] == "SURGERY_ONLY")
AI_CYCLE = dt.timedelta(
    days=next(e for e in NEOADJUVANT["events"] if e["key"] == "ai")["repeat"]["every"]
)
ANLOTINIB_WASHOUT = next(
    c["min_days"] for c in NEOADJUVANT["constraints"] if c["id"] == "anlotinib_washout"
)
SURGERY_ONLY_TIMING = next(e for e in SURGERY_ONLY["events"] if e["key"] == "surgery")["timing"]
# Every NEOADJUVANT event timed, directly or through another, from cycle 1: what may move with
# it (a long holiday can absorb a shift of a later one: both dates land after it). Cycle 1's
# anlotinib starts on its D1 whatever the calendar, so it always moves; each cycle's labs are
# drawn in the days before it. The PFS follow-up runs on the allocation clock and never moves
# with treatment, except the first assessment, which keeps 14 days clear after surgery.
TIMED_FROM_AI_1 = {
    "anlotinib.1", "ai.2", "anlotinib.2", "ai.3", "anlotinib.3", "restaging", "surgery",
    "labs.1", "labs.2", "labs.3", "follow_up.m3",
}  # fmt: skip

VISIT_COLUMNS = [
    "date", "study_id", "site", "protocol", "arm", "event", "label", "kind", "days", "window",
    "status",
]  # fmt: skip
# The end of a table: its footer, or the deviation and warning lines printed after it.
AFTER_TABLE = re.compile(r"^(\d+ (event|overdue|deviation|done event)|deviation: |warning: )")


# --- the cohort ---------------------------------------------------------------------------------


def build_cohort(db: str) -> None:
    """Initialise ``db`` and fill it, dates relative to today:

    NATARS   P1 PKUIH NEOADJUVANT allocated -40d; P2 PKUIH NEOADJUVANT today; PKUIH-NATARS-S0003
             a screen failure (age 80); P3 BJFH SURGERY_ONLY, allocated so that the surgery day
             has passed while its window is open; SHCH-NATARS-S0001 eligible, never enrolled.
    TNT-STS  P4 FJMUUH today; P5 FJMUUH today and withdrawn today.
    NATARS-R PKUIH-NATARS-R-0001/0002 and R3 BJFH (all DDLPS: two strata), R3 excluded.
    """
    from sarcoma_sched.db.session import Database
    from sarcoma_sched.services.allocation import allocate_patient
    from sarcoma_sched.services.lookups import site_calendar
    from sarcoma_sched.services.participation import end_participation
    from sarcoma_sched.services.protocols import initialize
    from sarcoma_sched.services.screening import screen

    today = dt.date.today()
    database = Database(db, check_schema=False)
    try:
        initialize(database, "setup")
        for protocol, site, values in [
            ("NATARS", "PKUIH", ELIGIBLE_NATARS),
            ("NATARS", "PKUIH", ELIGIBLE_NATARS),
            ("NATARS", "PKUIH", {**ELIGIBLE_NATARS, "age_years": "80"}),
            ("NATARS", "BJFH", ELIGIBLE_NATARS),
            ("NATARS", "SHCH", ELIGIBLE_NATARS),
            ("TNT-STS", "FJMUUH", ELIGIBLE_TNT),
            ("TNT-STS", "FJMUUH", ELIGIBLE_TNT),
            ("NATARS-R", "PKUIH", ELIGIBLE_NATARS),
            ("NATARS-R", "PKUIH", ELIGIBLE_NATARS),
            ("NATARS-R", "BJFH", ELIGIBLE_NATARS),
        ]:
            screen(database, "setup", protocol, site, values, screened_on=today)
        with database.read() as session:
            bjfh = site_calendar(session, "BJFH")
        offset, latest = SURGERY_ONLY_TIMING["offset"], SURGERY_ONLY_TIMING["latest"]
        p3_back = next(
            k
            for k in range(offset + 1, latest)
            if bjfh.next_working_day(today - dt.timedelta(days=k - offset)) < today
        )

        def allocate(ref: str, days_ago: int = 0, **assigned: str) -> None:
            when = today - dt.timedelta(days=days_ago)
            allocate_patient(
                database, "setup", ref, today=today, allocation_date=when, consent_date=when,
                secret=SECRET, **assigned,
            )  # fmt: skip

        mdt = {"arm": "NEOADJUVANT", "basis": "mdt_decision", "reason": "MDT: borderline"}
        allocate("PKUIH-NATARS-S0001", P1_DAYS_AGO, **mdt)
        allocate("PKUIH-NATARS-S0002", 0, **mdt)
        allocate(
            "BJFH-NATARS-S0001", p3_back,
            arm="SURGERY_ONLY", basis="patient_preference", reason="declined chemotherapy",
        )  # fmt: skip
        allocate("FJMUUH-TNT-STS-S0001")
        allocate("FJMUUH-TNT-STS-S0002")
        for ref in ("PKUIH-NATARS-R-S0001", "PKUIH-NATARS-R-S0002", "BJFH-NATARS-R-S0001"):
            allocate(ref)
        end_participation(
            database, "setup", P5, "withdrawn", "withdrew consent", effective_date=today,
            today=today,
        )  # fmt: skip
        end_participation(
            database, "setup", R3, "excluded", "final pathology WDLPS", effective_date=today,
            today=today, criterion_id="EXC-02",
        )  # fmt: skip
    finally:
        database.dispose()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cohort") / "trial.db"
    build_cohort(str(path))
    return path


@pytest.fixture
def sqlite_db(built, tmp_path) -> str:
    """A copy of the module's SQLite cohort, for this test alone."""
    target = tmp_path / "trial.db"
    shutil.copyfile(built, target)
    return str(target)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def cohort_db(request, built, tmp_path):
    """The cohort on SQLite (a copy) and on PostgreSQL (built in a schema of its own)."""
    if request.param == "sqlite":
        target = tmp_path / "trial.db"
        shutil.copyfile(built, target)
        yield str(target)
    else:
        with pg_schema_url() as url:
            build_cohort(url)
            yield url


# --- reading the database and the output --------------------------------------------------------


def _date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class Event:
    """One stored row of scheduled_events, typed the same on both backends."""

    label: str
    kind: str
    status: str
    days: tuple[dt.date, ...]
    target: dt.date
    earliest: dt.date
    latest: dt.date
    actual: dt.date | None
    pinned: dt.date | None
    deviation: str | None
    reason: str | None
    flags: list[dict[str, str]]

    @property
    def first(self) -> dt.date:
        return self.days[0]

    @property
    def history(self) -> tuple[Any, ...]:
        """What a recorded event is: re-planning must never change it."""
        return self.status, self.days, self.actual


def events_of(db: str, study_id: str) -> dict[str, Event]:
    rows = query(
        db,
        "SELECT e.event_id, e.label, e.kind, e.status, e.days, e.target, e.earliest, e.latest, "
        "e.actual_date, e.pinned, e.deviation, e.reason, e.flags FROM scheduled_events e "
        "JOIN patients p ON p.id = e.patient_id WHERE p.study_id = :sid ORDER BY e.id",
        sid=study_id,
    )
    return {event: _event(*fields) for event, *fields in rows}


def _event(
    label, kind, status, days, target, earliest, latest, actual, pinned, deviation, reason, flags
) -> Event:
    dates = tuple(dt.date.fromisoformat(d) for d in _json(days))
    bounds = (_date(target), _date(earliest), _date(latest))
    return Event(
        label, kind, status, dates, *bounds, _date(actual), _date(pinned), deviation, reason,
        _json(flags),
    )  # fmt: skip


def calendar(db: str, site: str) -> SiteCalendar:
    """The site's working days as the engine sees them (holidays and recorded closures)."""
    from sarcoma_sched.db.session import Database
    from sarcoma_sched.services.lookups import site_calendar

    database = Database(db)
    try:
        with database.read() as session:
            return site_calendar(session, site)
    finally:
        database.dispose()


def working_days(cal: SiteCalendar, first: dt.date, last: dt.date) -> list[dt.date]:
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    return [d for d in days if cal.is_working_day(d)]


def table(stdout: str, first_column: str) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the table whose header starts with ``first_column``, cut at the
    header's column offsets: cells hold spaces (labels), so splitting on blanks would not do."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first_column + " "))
    names = lines[start].split()
    offsets, position = [], 0
    for name in names:
        position = lines[start].index(name, position)
        offsets.append(position)
        position += len(name)
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip() or AFTER_TABLE.match(line):
            break
        ends = [*offsets[1:], None]
        rows.append([line[a:b].strip() for a, b in zip(offsets, ends, strict=True)])
    return names, rows


def run_all(run: Callable[..., Any], *commands: Sequence[str]) -> list[Any]:
    """Independent read-only commands, run side by side (each is a fresh interpreter)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda args: run(*args), commands))


def moved_rows(stdout: str) -> dict[str, tuple[str, str, int, str]]:
    """``record``/``reschedule`` output: event → (old, new, shift_days, status)."""
    header, rows = table(stdout, "event")
    assert header == ["event", "old", "new", "shift_days", "status"]
    return {event: (old, new, int(shift), status) for event, old, new, shift, status in rows}


def changes(before: dict[str, Event], after: dict[str, Event], but: str) -> dict[str, tuple]:
    """What the database says moved, in the shape ``moved_rows`` reads from the output."""
    return {
        event: (str(was.first), str(now.first), (now.first - was.first).days, now.status)
        for event, was in before.items()
        if event != but and ((now := after[event]).days != was.days or now.status != was.status)
    }


# --- record -------------------------------------------------------------------------------------


def test_recording_cycle_1_late_moves_what_is_timed_from_it_exactly_as_printed(run, cohort_db):
    db = cohort_db
    cal = calendar(db, "PKUIH")
    before = events_of(db, P1)
    ai1 = before["ai.1"]
    late = cal.next_working_day(ai1.latest + 2 * DAY)  # after the window: a deviation
    result = run(
        "--db", db, *as_user(db, "erin"), "record", P1, "ai.1", "--status", "done",
        "--date", late.isoformat(), check=True,
    )  # fmt: skip
    after = events_of(db, P1)

    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"{P1} ai.1: done {late} (target {ai1.target}, window {ai1.earliest} … {ai1.latest})"
    )
    printed = moved_rows(result.stdout)
    assert lines[1] == f"re-planned, {len(printed)} event(s) moved:"
    assert printed == changes(before, after, but="ai.1")
    assert "anlotinib.1" in printed and set(printed) <= TIMED_FROM_AI_1
    assert all(
        after[e] == before[e] for e in before if e.startswith("follow_up.") and e != "follow_up.m3"
    )
    # The done cycle occupies its five infusion days from the actual D1; the next cycle is timed
    # from that actual D1 (the protocol's cycle length), on the first working day from there.
    assert after["ai.1"].history == ("done", tuple(late + n * DAY for n in range(5)), late)
    assert after["anlotinib.1"].first == late
    assert after["ai.2"].target == late + AI_CYCLE
    assert after["ai.2"].first == cal.next_working_day(late + AI_CYCLE)
    assert after["ai.3"].target == after["ai.2"].first + AI_CYCLE

    days_late = (late - ai1.latest).days
    deviation = (
        f"{ai1.label} done {late}, {days_late} days after its window closed "
        f"({ai1.earliest} … {ai1.latest})"
    )
    assert f"deviation: ai.1: {deviation}" in lines
    assert after["ai.1"].deviation == deviation

    schedule, deviations = run_all(
        run,
        ("--db", db, "schedule", P1, "--format", "json"),
        ("--db", db, "deviations", "--format", "json"),
    )
    shown = {row["event"]: row for row in json.loads(schedule.stdout)["events"]}
    assert {e: row["days"][0] for e, row in shown.items()} == {
        e: str(event.first) for e, event in after.items()
    }
    assert (shown["ai.1"]["status"], shown["ai.1"]["actual"]) == ("done", str(late))
    assert [
        (row["study_id"], row["event"], row["date"], row["deviation"])
        for row in json.loads(deviations.stdout)
    ] == [(P1, "ai.1", str(late), deviation)]
    assert query(db, "SELECT DISTINCT actor FROM audit_log WHERE action = 'record done'") == [
        (actor(db, "erin"),)
    ]


def test_a_correction_replaces_the_record_and_the_audit_log_keeps_what_it_replaced(run, cohort_db):
    from sarcoma_sched.db.session import Database
    from sarcoma_sched.services.events import record_event

    db = cohort_db
    cal = calendar(db, "PKUIH")
    ai1 = events_of(db, P1)["ai.1"]
    wrong, right = ai1.first, cal.next_working_day(ai1.first + DAY)
    database = Database(db)
    try:
        record_event(
            database, "erin", P1, "ai.1", "done", date=wrong, reason=None, today=dt.date.today()
        )
    finally:
        database.dispose()
    base = ("--db", db, "record", P1, "ai.1", "--status", "done")

    unexplained = run(*base, "--date", right.isoformat(), "--correct")
    assert unexplained.returncode == 1
    assert unexplained.stderr == "error: a correction needs --reason (what was wrong)\n"
    fixed = run(
        *as_user(db, "frank"), *base, "--date", right.isoformat(), "--correct",
        "--reason", "typed the wrong day", check=True,
    )  # fmt: skip
    assert fixed.stdout.splitlines()[0] == (
        f"{P1} ai.1: done {right} (target {ai1.target}, window {ai1.earliest} … {ai1.latest})"
    )
    after = events_of(db, P1)
    assert after["ai.1"].history == ("done", tuple(right + n * DAY for n in range(5)), right)
    # The code leaves the database; the words stay in it, as the note.
    assert after["ai.1"].reason == "data_error"
    assert query(db, "SELECT note FROM scheduled_events WHERE note LIKE 'corrected:%'") == [
        ("corrected: typed the wrong day",)
    ]
    assert after["ai.2"].target == right + AI_CYCLE

    [(row_id,)] = query(
        db,
        "SELECT e.id FROM scheduled_events e JOIN patients p ON p.id = e.patient_id "
        "WHERE p.study_id = :sid AND e.event_id = 'ai.1'",
        sid=P1,
    )
    trail = [
        (who, json.loads(change))
        for who, change in query(
            db,
            "SELECT actor, change FROM audit_log WHERE entity = 'scheduled_events' "
            "AND entity_id = :id ORDER BY seq",
            id=str(row_id),
        )
    ]
    # The replaced record survives in the log, as the "before" of frank's correction.
    assert any(
        who == actor(db, "frank")
        and (change["before"] or {}).get("status") == "done"
        and change["before"]["actual_date"] == str(wrong)
        for who, change in trail
    )
    assert trail[-1][1]["after"]["actual_date"] == str(right)
    verified = run("--db", db, "audit", "verify", check=True)
    assert verified.stdout.startswith("audit log intact: ")


def test_recording_missed_moves_nothing_and_is_a_recorded_deviation(run, sqlite_db):
    db = sqlite_db
    before = events_of(db, P1)
    ai1 = before["ai.1"]
    missed = run("--db", db, "record", P1, "ai.1", "--status", "missed", check=True)
    window = f"window {ai1.earliest} … {ai1.latest}"
    assert missed.stdout.splitlines() == [
        f"{P1} ai.1: missed (target {ai1.target}, {window})",
        "re-planned: no other event moved",
        f"deviation: ai.1: {ai1.label} was missed ({window})",
    ]
    after = events_of(db, P1)
    assert after["ai.1"].history == ("missed", ai1.days, None)
    assert after["ai.1"].deviation == f"{ai1.label} was missed ({window})"
    assert {e: ev for e, ev in after.items() if e != "ai.1"} == {
        e: ev for e, ev in before.items() if e != "ai.1"
    }


@settings(max_examples=20, deadline=None)  # each example re-plans three times on a real file
@given(
    ai1_delay=st.integers(min_value=-7, max_value=5),
    ai2_delay=st.integers(min_value=-3, max_value=7),
    correction=st.integers(min_value=-2, max_value=2),
)
def test_any_recorded_delays_chain_into_the_next_cycle_and_never_move_a_done_event(
    built, ai1_delay, ai2_delay, correction
):
    """Services directly, for speed: record cycle 1 then cycle 2 with any delay, then correct
    cycle 1. Each next cycle's target is the actual D1 plus the cycle length, and no re-plan
    ever changes a recorded event."""
    from sarcoma_sched.db.session import Database
    from sarcoma_sched.services.events import record_event

    today = dt.date.today()
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "trial.db")
        shutil.copyfile(built, db)
        cal = calendar(db, "PKUIH")
        database = Database(db)
        try:
            ai1 = events_of(db, P1)["ai.1"]
            a1 = ai1.first + ai1_delay * DAY
            record_event(database, "t", P1, "ai.1", "done", date=a1, reason=None, today=today)
            once = events_of(db, P1)
            assert once["ai.2"].target == a1 + AI_CYCLE
            assert once["ai.2"].first == cal.next_working_day(a1 + AI_CYCLE)

            a2 = min(once["ai.2"].first + ai2_delay * DAY, today)
            record_event(database, "t", P1, "ai.2", "done", date=a2, reason=None, today=today)
            twice = events_of(db, P1)
            assert twice["ai.1"].history == once["ai.1"].history
            assert twice["ai.3"].target == a2 + AI_CYCLE

            fixed = max(a1 + correction * DAY, today - P1_DAYS_AGO * DAY)  # not before allocation
            record_event(
                database, "t", P1, "ai.1", "done", date=fixed, reason="typo", today=today,
                correct=True,
            )  # fmt: skip
            thrice = events_of(db, P1)
            assert thrice["ai.1"].actual == fixed
            assert thrice["ai.2"].history == twice["ai.2"].history  # done: it never moves
            assert thrice["ai.3"].target == a2 + AI_CYCLE
        finally:
            database.dispose()


# --- reschedule ---------------------------------------------------------------------------------


def test_rescheduling_inside_the_window_moves_the_event_and_everything_timed_from_it(
    run, sqlite_db
):
    db = sqlite_db
    cal = calendar(db, "PKUIH")
    before = events_of(db, P2)
    ai1 = before["ai.1"]
    today = dt.date.today()
    to = [d for d in working_days(cal, max(today, ai1.earliest), ai1.latest) if d != ai1.first][-1]
    result = run("--db", db, "reschedule", P2, "ai.1", "--to", to.isoformat(), check=True)
    after = events_of(db, P2)

    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"{P2} ai.1: rescheduled to {to} (target {ai1.target}, "
        f"window {ai1.earliest} … {ai1.latest})"
    )
    printed = moved_rows(result.stdout)
    assert lines[1] == f"re-planned, {len(printed)} event(s) moved:"
    assert printed == changes(before, after, but="ai.1")
    assert "anlotinib.1" in printed and set(printed) <= TIMED_FROM_AI_1
    assert not [line for line in lines if line.startswith("deviation:")]
    assert (after["ai.1"].first, after["ai.1"].pinned, after["ai.1"].status) == (to, to, "planned")
    assert after["ai.1"].deviation is None
    assert after["ai.2"].target == to + AI_CYCLE
    assert all(
        after[e] == before[e] for e in before if e.startswith("follow_up.") and e != "follow_up.m3"
    )


def test_rescheduling_outside_the_window_needs_a_reason_and_then_is_a_recorded_deviation(
    run, cohort_db
):
    db = cohort_db
    cal = calendar(db, "PKUIH")
    before = events_of(db, P2)
    ai1 = before["ai.1"]
    to = cal.next_working_day(ai1.latest + DAY)
    untouched = dump(db)
    refused = run("--db", db, "reschedule", P2, "ai.1", "--to", to.isoformat())
    assert refused.returncode == 1
    assert refused.stderr == (
        f"error: {to} is outside ai.1's window ({ai1.earliest} … {ai1.latest}); "
        "give --reason to move it there as a recorded deviation\n"
    )
    assert dump(db) == untouched

    moved = run(
        "--db", db, "reschedule", P2, "ai.1", "--to", to.isoformat(),
        "--reason", "no bed on the ward", check=True,
    )  # fmt: skip
    after = events_of(db, P2)
    [deviation_line] = [line for line in moved.stdout.splitlines() if line.startswith("deviation:")]
    deviation = after["ai.1"].deviation
    assert deviation_line == f"deviation: ai.1: {deviation}"
    assert deviation.startswith(f"{ai1.label} rescheduled to {to}")
    assert f"({ai1.earliest} … {ai1.latest})" in deviation
    # The deviation names the reason's code, never the words typed beside it.
    assert deviation.endswith(": other") and "no bed" not in deviation
    assert (after["ai.1"].first, after["ai.1"].pinned) == (to, to)
    assert after["ai.2"].target == to + AI_CYCLE
    listed = json.loads(run("--db", db, "deviations", "--format", "json", check=True).stdout)
    assert [(row["study_id"], row["event"], row["date"], row["deviation"]) for row in listed] == [
        (P2, "ai.1", str(to), deviation)
    ]


def test_a_working_day_event_is_never_moved_onto_a_weekend_or_holiday_even_with_a_reason(
    run, sqlite_db
):
    db = sqlite_db
    cal = calendar(db, "PKUIH")
    ai1 = events_of(db, P2)["ai.1"]
    today = dt.date.today()
    days = [today + n * DAY for n in range((ai1.latest - today).days + 1)]
    day_off = next(d for d in days if not cal.is_working_day(d))
    untouched = dump(db)
    result = run(
        "--db", db, "reschedule", P2, "ai.1", "--to", day_off.isoformat(), "--reason", "asked"
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"error: {day_off} is not a working day at PKUIH ({cal.why_not_working(day_off)}); "
        "ai.1 needs one\n"
    )
    assert dump(db) == untouched


def test_a_move_that_breaks_a_hard_constraint_is_refused_naming_the_constraint(run, sqlite_db):
    db = sqlite_db
    cal = calendar(db, "PKUIH")
    events = events_of(db, P2)
    last_dose = events["anlotinib.3"].days[-1]
    # A working day within the anti-angiogenic washout after the last anlotinib dose.
    too_soon = working_days(cal, last_dose + DAY, last_dose + (ANLOTINIB_WASHOUT - 1) * DAY)[0]
    untouched = dump(db)
    result = run(
        "--db", db, "reschedule", P2, "surgery", "--to", too_soon.isoformat(),
        "--reason", "theatre list",
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: cannot move surgery to {too_soon}: ")
    assert "anlotinib_washout" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert dump(db) == untouched


# --- visits, overdue, deviations ----------------------------------------------------------------


def expected_visits(
    db: str,
    first: dt.date,
    last: dt.date,
    statuses: Sequence[str] = ("planned", "done"),
    where: str = "",
    **params: object,
) -> list[tuple[str, ...]]:
    """What ``visits`` must list, straight from scheduled_events."""
    as_param = (lambda d: d) if "://" in db else dt.date.isoformat
    names = {f"s{i}": status for i, status in enumerate(statuses)}
    rows = query(
        db,
        "SELECT e.first_day, p.study_id, p.site_code, p.protocol_id, a.arm, e.event_id, e.kind, "
        "e.status FROM scheduled_events e JOIN patients p ON p.id = e.patient_id "
        "JOIN allocations a ON a.patient_id = p.id "
        "WHERE e.first_day <= :last AND e.last_day >= :first "
        f"AND e.status IN ({', '.join(':' + n for n in names)}) {where} "
        "ORDER BY e.first_day, p.study_id, e.event_id",
        first=as_param(first),
        last=as_param(last),
        **names,
        **params,
    )
    return [tuple(str(v) for v in row) for row in rows]


def listed_visits(stdout: str) -> list[tuple[str, ...]]:
    keys = ("date", "study_id", "site", "protocol", "arm", "event", "kind", "status")
    return [tuple(row[k] for k in keys) for row in json.loads(stdout)]


def test_visits_cover_this_week_by_default_and_every_filter_filters(run, cohort_db):
    db = cohort_db
    today = dt.date.today()
    monday = today - today.weekday() * DAY
    first, last = today - 45 * DAY, today + 60 * DAY
    span = ("--db", db, "visits", "--from", first.isoformat(), "--to", last.isoformat())
    # option, the same filter in SQL, the column of listed_visits() it fixes
    filters = {
        "site": (("--site", "PKUIH"), "AND p.site_code = 'PKUIH'", 2),
        "protocol": (("--protocol", "TNT-STS"), "AND p.protocol_id = 'TNT-STS'", 3),
        "arm": (("--arm", "SURGERY_ONLY"), "AND a.arm = 'SURGERY_ONLY'", 4),
        "kind": (("--kind", "infusion"), "AND e.kind = 'infusion'", 6),
    }
    if "://" in db:  # PostgreSQL runs a smaller set: the date range, a joined column, a status
        filters = {"arm": filters["arm"]}
    week, *filtered, cancelled = run_all(
        run,
        ("--db", db, "visits", "--format", "json"),
        *[(*span, *option, "--format", "json") for option, _, _ in filters.values()],
        (*span, "--status", "cancelled", "--format", "json"),
    )
    this_week = listed_visits(week.stdout)
    assert this_week == expected_visits(db, monday, monday + 6 * DAY)
    assert (P4, "baseline") in [(row[1], row[5]) for row in this_week]  # today, by design

    everything = expected_visits(db, first, last)
    for (name, (_, where, column)), out in zip(filters.items(), filtered, strict=True):
        rows = listed_visits(out.stdout)
        assert rows == expected_visits(db, first, last, where=where), name
        assert rows and len(rows) < len(everything), name
        assert rows == [row for row in everything if row[column] == rows[0][column]], name
    cancelled_rows = listed_visits(cancelled.stdout)
    assert cancelled_rows == expected_visits(db, first, last, statuses=("cancelled",))
    assert {row[1] for row in cancelled_rows} == {P5, R3}  # withdrawn, excluded


def test_a_listing_carries_the_same_columns_and_rows_as_table_csv_and_json(run, sqlite_db):
    db = sqlite_db
    today = dt.date.today()
    span = ("--from", (today - 45 * DAY).isoformat(), "--to", (today + 30 * DAY).isoformat())
    table_out, csv_out, json_out = run_all(
        run, *[("--db", db, "visits", *span, "--format", fmt) for fmt in ("table", "csv", "json")]
    )
    header, table_rows = table(table_out.stdout, "date")
    csv_header, *csv_rows = list(csv.reader(csv_out.stdout.splitlines()))
    records = json.loads(json_out.stdout)
    assert header == csv_header == VISIT_COLUMNS
    assert all(list(record) == VISIT_COLUMNS for record in records)
    json_rows = [["" if v is None else str(v) for v in record.values()] for record in records]
    assert len(json_rows) > 10
    assert table_rows == csv_rows == json_rows


def test_deviations_show_a_reason_in_brackets_the_same_in_table_csv_and_json(run, sqlite_db):
    """A coordinator's free text (a reason) is data, whatever characters it holds."""
    from sarcoma_sched.db.session import Database
    from sarcoma_sched.services.events import reschedule_event

    db = sqlite_db
    cal = calendar(db, "PKUIH")
    ai1 = events_of(db, P2)["ai.1"]
    to = cal.next_working_day(ai1.latest + DAY)
    database = Database(db)
    try:
        reason = "no bed on [ward 3] until [red]Monday[/red]"
        reschedule_event(database, "t", P2, "ai.1", to, reason=reason, today=dt.date.today())
    finally:
        database.dispose()
    table_out, json_out = run_all(
        run,
        *[
            ("--db", db, "deviations", "--include-notes", "--format", fmt)
            for fmt in ("table", "json")
        ],
    )
    records = json.loads(json_out.stdout)
    assert records[0]["deviation"].endswith(": other")
    assert records[0]["note"] == reason
    _, table_rows = table(table_out.stdout, "date")
    assert table_rows == [[str(v) for v in record.values()] for record in records]


def test_overdue_lists_past_planned_events_with_their_state_and_recording_one_removes_it(
    run, sqlite_db
):
    db = sqlite_db
    today = dt.date.today()
    listed = json.loads(run("--db", db, "overdue", "--format", "json", check=True).stdout)
    stored = query(
        db,
        "SELECT p.study_id, e.event_id, e.first_day, e.latest FROM scheduled_events e "
        "JOIN patients p ON p.id = e.patient_id "
        "WHERE e.status = 'planned' AND e.first_day < :today "
        "ORDER BY e.first_day, p.study_id, e.event_id",
        today=today.isoformat(),
    )
    assert [(r["study_id"], r["event"], r["days_overdue"], r["state"]) for r in listed] == [
        (
            study_id,
            event,
            (today - _date(first)).days,
            "window closed" if _date(latest) < today else "record due",
        )
        for study_id, event, first, latest in stored
    ]
    states = {(r["study_id"], r["event"]): r["state"] for r in listed}
    assert states[(P1, "ai.1")] == "window closed"
    assert states[(P3, "surgery")] == "record due"
    assert all(r["status"] == "planned" for r in listed)
    assert list(listed[0]) == [*VISIT_COLUMNS, "days_overdue", "state"]

    run("--db", db, "record", P3, "surgery", "--status", "done", "--date", "today", check=True)
    again = json.loads(run("--db", db, "overdue", "--format", "json", check=True).stdout)
    assert again == [r for r in listed if (r["study_id"], r["event"]) != (P3, "surgery")]


# --- report enrollment --------------------------------------------------------------------------


def test_report_enrollment_counts_the_hand_built_cohort(run, cohort_db):
    db = cohort_db
    by_site, by_arm, by_stratum = (
        json.loads(out.stdout)
        for out in run_all(
            run,
            ("--db", db, "report", "enrollment", "--by", "protocol,site", "--format", "json"),
            ("--db", db, "report", "enrollment", "--format", "json"),
            (
                "--db", db, "report", "enrollment", "--protocol", "NATARS-R",
                "--by", "site,stratum", "--format", "json",
            ),
        )
    )  # fmt: skip
    counts = ("screened", "eligible", "enrolled", "allocated", "withdrawn", "excluded", "on_study")
    assert [(r["protocol"], r["site"], *(r[c] for c in counts)) for r in by_site] == [
        ("NATARS", "BJFH", 1, 1, 1, 1, 0, 0, 1),
        ("NATARS", "PKUIH", 3, 2, 2, 2, 0, 0, 2),  # one screen failure
        ("NATARS", "SHCH", 1, 1, 0, 0, 0, 0, 0),  # eligible, never enrolled
        ("NATARS-R", "BJFH", 1, 1, 1, 1, 0, 1, 0),  # excluded after allocation
        ("NATARS-R", "PKUIH", 2, 2, 2, 2, 0, 0, 2),
        ("TNT-STS", "FJMUUH", 2, 2, 2, 2, 1, 0, 1),  # one withdrawn
    ]
    randomized = dict(
        query(
            db,
            "SELECT arm, count(*) FROM allocations WHERE protocol_id = 'NATARS-R' GROUP BY arm",
        )
    )
    assert sum(randomized.values()) == 3
    arm_counts = ("allocated", "withdrawn", "excluded", "on_study")
    assert [
        (r["protocol"], r["arm"], r["allocated"]) for r in by_arm if r["protocol"] != "NATARS-R"
    ] == [
        ("NATARS", "NEOADJUVANT", 2),
        ("NATARS", "SURGERY_ONLY", 1),
        ("TNT-STS", "TNT", 2),
    ]
    assert {r["arm"]: r["allocated"] for r in by_arm if r["protocol"] == "NATARS-R"} == randomized
    assert [r[c] for r in by_arm if r["protocol"] == "TNT-STS" for c in arm_counts] == [2, 1, 0, 1]
    assert [(r["site"], r["stratum"], *(r[c] for c in arm_counts)) for r in by_stratum] == [
        ("BJFH", "histology=DDLPS|site=BJFH", 1, 0, 1, 0),
        ("PKUIH", "histology=DDLPS|site=PKUIH", 2, 0, 0, 2),
    ]


# --- sites --------------------------------------------------------------------------------------


def test_site_add_shows_in_site_list_and_a_bad_calendar_is_refused(run, sqlite_db):
    db = sqlite_db
    untouched = dump(db)
    add = ("--db", db, "site", "add", "WCH", "--name", "West China Hospital")
    bad_zone, bad_country = run_all(
        run,
        (*add, "--time-zone", "Asia/Chengdoo", "--holiday-country", "CN"),
        (*add, "--time-zone", "Asia/Shanghai", "--holiday-country", "XX"),
    )
    assert (bad_zone.returncode, bad_zone.stderr) == (
        1, "error: --time-zone: 'Asia/Chengdoo' is not an IANA time zone\n",
    )  # fmt: skip
    assert (bad_country.returncode, bad_country.stderr) == (
        1, "error: --holiday-country: 'XX' is not a country the holidays package has\n",
    )  # fmt: skip
    assert dump(db) == untouched

    added = run(*add, "--time-zone", "Asia/Shanghai", "--holiday-country", "cn", check=True)
    assert added.stdout == "site WCH added (West China Hospital, Asia/Shanghai)\n"
    sites = {
        row["site"]: row
        for row in json.loads(run("--db", db, "site", "list", "--format", "json").stdout)
    }
    assert sites["WCH"] == {
        "site": "WCH",
        "name": "West China Hospital",
        "time_zone": "Asia/Shanghai",
        "holidays": "CN",
        "inpatient_over_holidays": "avoid",
        "allocated": 0,
        "closures": "",
    }
    assert {code: row["allocated"] for code, row in sites.items() if row["allocated"]} == {
        "PKUIH": 4,
        "BJFH": 2,
        "FJMUUH": 2,
    }


def test_a_site_that_allows_stays_over_holidays_is_re_planned_under_it_and_audited(run, cohort_db):
    from sarcoma_sched.calendar import SiteCalendar

    db = cohort_db
    before = {sid: events_of(db, sid) for sid in (P1, P2, P3)}
    refused = run("--db", db, "site", "set", "NOWHERE", "--inpatient-over-holidays", "allow")
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused.stderr
    assert "NOWHERE" in refused.stderr
    bad = run("--db", db, "site", "set", "PKUIH", "--inpatient-over-holidays", "sometimes")
    assert bad.returncode == 2 and "sometimes" in bad.stderr

    done = run(
        "--db", db, "site", "set", "PKUIH", "--inpatient-over-holidays", "allow",
        "--format", "json", check=True,
    )  # fmt: skip
    outcome = json.loads(done.stdout)
    assert (outcome["site"], outcome["changed"]) == ("PKUIH", True)
    sites = {
        r["site"]: r for r in json.loads(run("--db", db, "site", "list", "--format", "json").stdout)
    }
    assert sites["PKUIH"]["inpatient_over_holidays"] == "allow"
    assert sites["BJFH"]["inpatient_over_holidays"] == "avoid"
    cal = calendar(db, "PKUIH")
    assert isinstance(cal, SiteCalendar) and cal.inpatient_over_holidays
    # Every PKUIH patient was re-planned under the rule: what moved is what the output says;
    # no stored flag speaks of a holiday block; other sites are untouched.
    moved = {(m["study_id"], m["event"]) for m in outcome["moved"]}
    for sid in (P1, P2):
        after = events_of(db, sid)
        for event, e in after.items():
            assert (e.days != before[sid][event].days) == ((sid, event) in moved), (sid, event)
            assert not any(f.get("code") == "holiday_block" for f in e.flags or []), e.flags
    assert events_of(db, P3) == before[P3]
    [(change,)] = query(
        db, "SELECT change FROM audit_log WHERE entity = 'sites' AND action = 'site set'"
    )
    change = json.loads(change)
    assert change["before"]["inpatient_over_holidays"] in (False, 0)
    assert change["after"]["inpatient_over_holidays"] in (True, 1)

    trail = len(query(db, "SELECT seq FROM audit_log WHERE action = 'site set'"))
    again = run(
        "--db", db, "site", "set", "PKUIH", "--inpatient-over-holidays", "allow", check=True
    )
    assert "(unchanged); 0 event(s)" in again.stdout
    assert len(query(db, "SELECT seq FROM audit_log WHERE action = 'site set'")) == trail


def test_closing_a_site_moves_planned_events_off_the_closure_and_never_a_done_one(run, cohort_db):
    from sarcoma_sched.db.session import Database
    from sarcoma_sched.services.events import record_event

    db = cohort_db
    today = dt.date.today()
    database = Database(db)
    try:  # P4's baseline is done today; its RT course is ahead
        record_event(database, "t", P4, "baseline", "done", date=today, reason=None, today=today)
    finally:
        database.dispose()
    before = {sid: events_of(db, sid) for sid in (P1, P2, P4, P5)}
    rt = before[P4]["rt"]
    last = rt.first  # closed from today through the first RT fraction

    result = run(
        "--db", db, "site", "close", "FJMUUH", "--from", "today", "--to", last.isoformat(),
        "--reason", "linac replacement", check=True,
    )  # fmt: skip
    after = {sid: events_of(db, sid) for sid in before}
    header, rows = table(result.stdout, "study_id")
    assert header == ["study_id", "event", "old", "new", "shift_days"]
    moved = changes(before[P4], after[P4], but="")
    assert result.stdout.splitlines()[0] == (
        f"FJMUUH closed {today} … {last}; {len(rows)} event(s) of 1 patient(s) moved"
    )
    assert {(sid, e): (old, new, shift) for sid, e, old, new, shift in rows} == {
        (P4, e): (old, new, str(shift)) for e, (old, new, shift, _) in moved.items()
    }
    assert "rt" in moved
    # The baseline, done today, is on the closure: kept as recorded and said so after the table.
    assert (
        f"1 done event falls on the new closure, kept as recorded: {P4} baseline ({today})"
        in result.stdout.splitlines()
    )

    closed = {today + n * DAY for n in range((last - today).days + 1)}
    fjmuuh = calendar(db, "FJMUUH")  # now with the closure
    assert all(not fjmuuh.is_working_day(d) for d in closed)
    # P4 was allocated today: fraction 1 from the 5th working day after it, counted past the
    # closure, targeted at allocation + 7 days when that is later.
    new_start = fjmuuh.next_working_day(max(today + 7 * DAY, fjmuuh.working_day_after(today, 5)))
    assert after[P4]["rt"].days == fjmuuh.working_days_from(new_start, 5)
    assert not closed & set(after[P4]["rt"].days)
    assert after[P4]["baseline"].history == before[P4]["baseline"].history == (
        "done", (today,), today,
    )  # fmt: skip
    # The withdrawn patient's cancelled events and other sites' patients are left alone.
    assert after[P5] == before[P5]
    assert (after[P1], after[P2]) == (before[P1], before[P2])

    sites = json.loads(run("--db", db, "site", "list", "--format", "json", check=True).stdout)
    assert next(s for s in sites if s["site"] == "FJMUUH")["closures"] == f"{today}..{last}"


def test_a_closure_on_a_rescheduled_event_s_day_moves_it_or_warns(run, sqlite_db):
    """A coordinator's pin must not sit silently on a day the site has since closed."""
    from sarcoma_sched.db.session import Database
    from sarcoma_sched.services.events import reschedule_event

    db = sqlite_db
    cal = calendar(db, "PKUIH")
    today = dt.date.today()
    ai1 = events_of(db, P2)["ai.1"]
    pinned = [d for d in working_days(cal, max(today, ai1.earliest), ai1.latest) if d != ai1.first]
    database = Database(db)
    try:
        reschedule_event(database, "t", P2, "ai.1", pinned[0], reason=None, today=today)
    finally:
        database.dispose()

    result = run(
        "--db", db, "site", "close", "PKUIH", "--from", pinned[0].isoformat(),
        "--reason", "strike", check=True,
    )  # fmt: skip
    after = events_of(db, P2)["ai.1"]
    warned = [
        line for line in result.stderr.splitlines() if line.startswith(f"warning: {P2} ai.1:")
    ]
    assert after.first != pinned[0] or (warned and after.flags), (
        f"ai.1 stays pinned on the closed day {pinned[0]} with no warning and no flag"
    )
