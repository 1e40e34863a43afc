"""``sarcoma-sched export ical``, end to end, on SQLite and PostgreSQL.

One module-scoped database per backend is built with the installed command (init, screen,
allocate, withdraw) and exported once; every file is read back with icalendar and with ical.js
(Thunderbird's parser) and compared with the rows the database held at export time. Tests that
write (the round trip) work on a copy of the SQLite file, or on a patient no other test writes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from icalendar import Calendar

from tests import icaljs
from tests.cli.conftest import SCRUBBED, invoke, query
from tests.cohort import ELIGIBLE_NATARS, ELIGIBLE_TNT

A = "PKUIH-NATARS-0001"  # NEOADJUVANT: infusion D1-D5 per cycle, oral anlotinib periods
B = "PKUIH-NATARS-0002"  # SURGERY_ONLY, then withdrawn: every event cancelled
C = "PKUIH-NATARS-S0003"  # screened, never allocated
T = "FJMUUH-TNT-STS-0001"  # RT 5 fractions on working days; the round trip records on it
STATUS = {
    "planned": "CONFIRMED",
    "done": "CONFIRMED",
    "missed": "CANCELLED",
    "skipped": "CANCELLED",
    "cancelled": "CANCELLED",
}
# Protocol events shown as one period (oral anlotinib D1-D14); every other multi-day event is
# one visit per day.
PERIODS = {"anlotinib"}


def fields(values: dict[str, str]) -> list[str]:
    return [arg for name, value in values.items() for arg in ("--field", f"{name}={value}")]


def export(command: str, cwd: Path, db: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    """``export ical`` with stdout as bytes: iCalendar lines end in CRLF, text mode would hide
    them."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env["XDG_DATA_HOME"] = str(cwd / "xdg")
    env["XDG_CONFIG_HOME"] = str(cwd / "config")
    return subprocess.run(
        [command, "--db", db, "export", "ical", *args],
        capture_output=True,
        cwd=cwd,
        env=env,
        timeout=60,
    )


@dataclass(frozen=True)
class Row:
    uid: str
    event_key: str
    study_id: str
    site_code: str
    days: tuple[str, ...]
    status: str
    revision: int
    # What a calendar entry shows besides its days and status.
    shown: tuple[str | None, ...]
    # A planned date in doubt (a flag of TENTATIVE_FLAGS): exported TENTATIVE, not CONFIRMED.
    doubtful: bool = False

    @property
    def ical_status(self) -> str:
        return "TENTATIVE" if self.doubtful and self.status == "planned" else STATUS[self.status]


def stored(db: str, site: str | None = None, study_id: str | None = None) -> dict[str, Row]:
    """Scheduled events as the database holds them, by UID."""
    sql = (
        "SELECT e.uid, e.event_key, p.study_id, p.site_code, e.days, e.status, e.revision, "
        "e.target, e.earliest, e.latest, e.actual_date, e.deviation, e.reason, e.flags "
        "FROM scheduled_events e JOIN patients p ON p.id = e.patient_id WHERE 1 = 1"
    )
    params = {}
    if site is not None:
        sql += " AND p.site_code = :site"
        params["site"] = site
    if study_id is not None:
        sql += " AND p.study_id = :study_id"
        params["study_id"] = study_id
    rows = query(db, sql, **params)
    result = {}
    from sarcoma_sched.vocabulary import TENTATIVE_FLAGS

    for uid, key, study, site_code, days, status, revision, *shown, flags in rows:
        days = json.loads(days) if isinstance(days, str) else days  # SQLite: text; PG: JSON
        flags = json.loads(flags) if isinstance(flags, str) else flags or []
        result[uid] = Row(
            uid,
            key,
            study,
            site_code,
            tuple(str(d) for d in days),
            status,
            revision,
            tuple(None if v is None else str(v) for v in shown),
            any(f["code"] in TENTATIVE_FLAGS for f in flags),
        )
    return result


def expected_vevents(row: Row) -> list[tuple[str, str, str]]:
    """(UID, first day, last day) of each calendar entry the stored event must become."""
    if row.event_key not in PERIODS and len(row.days) > 1:
        local, domain = row.uid.split("@")
        return [(f"{local}.d{n}@{domain}", day, day) for n, day in enumerate(row.days, 1)]
    return [(row.uid, row.days[0], row.days[-1])]


def read(path: Path) -> dict[str, Any]:
    """icalendar's reading of a file: VEVENTs by UID, in file order."""
    calendar = Calendar.from_ical(path.read_bytes())
    return {str(v["UID"]): v for v in calendar.walk("VEVENT")}


def next_day(iso: str) -> str:
    return (dt.date.fromisoformat(iso) + dt.timedelta(days=1)).isoformat()


def domain(db: str) -> str:
    """What follows the study id and event in a UID: this database's installation id."""
    [(uid,)] = query(db, "SELECT uid FROM installation")
    return f"@{uid.replace('-', '')[:12]}.sarcoma-sched"


@dataclass(frozen=True)
class Trial:
    backend: str
    db: str
    cwd: Path
    files: dict[str, Path]
    stdout: dict[str, bytes]
    stderr: dict[str, str]
    # The rows at export time, so a test that writes later cannot change what others compare.
    rows: dict[str, Row]
    window: tuple[dt.date, dt.date]

    def copy(self, tmp_path: Path) -> str:
        if self.backend != "sqlite":
            return self.db
        target = tmp_path / "trial.db"
        shutil.copyfile(self.db, target)
        return str(target)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def trial(request, command, tmp_path_factory):
    from tests.databases import pg_schema_url

    cwd = tmp_path_factory.mktemp(f"export-{request.param}")
    if request.param == "sqlite":
        yield _build(request.param, command, cwd, str(cwd / "trial.db"))
    else:
        with pg_schema_url() as url:
            yield _build(request.param, command, cwd, url)


def _build(backend: str, command: str, cwd: Path, db: str) -> Trial:
    def sched(*args: str) -> subprocess.CompletedProcess[str]:
        return invoke(command, cwd, "--db", db, *args)

    sched("init")
    for _ in range(3):
        sched("screen", "NATARS", "--site", "PKUIH", *fields(ELIGIBLE_NATARS))
    # Allocated six weeks ago, so its RT course is past and can be recorded (round trip).
    sched("screen", "TNT-STS", "--site", "FJMUUH", *fields(ELIGIBLE_TNT), "--date", "-50d")
    sched(
        "allocate", "PKUIH-NATARS-S0001", "--consent-date", "today", "--arm", "NEOADJUVANT",
        "--basis", "mdt_decision", "--reason", "MDT",
    )  # fmt: skip
    sched(
        "allocate", "PKUIH-NATARS-S0002", "--consent-date", "today", "--arm", "SURGERY_ONLY",
        "--basis", "patient_preference", "--reason", "declined chemotherapy",
    )  # fmt: skip
    sched("allocate", "FJMUUH-TNT-STS-S0001", "--consent-date", "-45d", "--date", "-42d")
    sched("withdraw", B, "--reason", "withdrew consent")

    window = (dt.date.today() + dt.timedelta(days=20), dt.date.today() + dt.timedelta(days=30))
    exports = {
        "a": (A,),
        "t": (T,),
        "site": ("--site", "PKUIH"),
        "site-range": ("--site", "PKUIH", "--from", "+20d", "--to", "+30d"),
    }
    files = {name: cwd / f"{name}.ics" for name in exports}
    runs = {name: (*args, "--out", str(files[name])) for name, args in exports.items()}
    runs["a-piped"] = (A,)
    # Exports only read: run them side by side (each command spends a second importing).
    with ThreadPoolExecutor() as pool:
        futures = {name: pool.submit(export, command, cwd, db, *a) for name, a in runs.items()}
        done = {name: future.result() for name, future in futures.items()}
    for result in done.values():
        assert result.returncode == 0, result.stderr
    stdout = {name: result.stdout for name, result in done.items()}
    stderr = {name: result.stderr.decode() for name, result in done.items()}
    return Trial(backend, db, cwd, files, stdout, stderr, stored(db), window)


def rows_of(trial: Trial, *, study_id: str | None = None, site: str | None = None) -> list[Row]:
    return [
        r
        for r in trial.rows.values()
        if (study_id is None or r.study_id == study_id) and (site is None or r.site_code == site)
    ]


def check_against_rows(path: Path, rows: list[Row]) -> None:
    """The file holds exactly the rows' entries, with their days, SEQUENCE and STATUS."""
    vevents = read(path)
    expected = {
        uid: (row, first, last) for row in rows for uid, first, last in expected_vevents(row)
    }
    assert sorted(vevents) == sorted(expected)
    for uid, (row, first, last) in expected.items():
        vevent = vevents[uid]
        assert vevent["DTSTART"].params.get("VALUE") == "DATE"
        assert vevent["DTSTART"].dt.isoformat() == first
        assert vevent["DTEND"].dt.isoformat() == next_day(last)  # exclusive end
        assert vevent["SEQUENCE"] == row.revision
        assert str(vevent["STATUS"]) == row.ical_status
        assert str(vevent["SUMMARY"]).startswith(f"{row.study_id} · ")
        assert len(vevent.walk("VALARM")) == (1 if row.status == "planned" else 0)


# --- what a file holds --------------------------------------------------------------------------


def test_a_patient_calendar_holds_each_stored_event_with_its_days_sequence_and_status(trial):
    for name, study_id in (("a", A), ("t", T)):
        rows = rows_of(trial, study_id=study_id)
        assert rows
        check_against_rows(trial.files[name], rows)
    uids = read(trial.files["a"])
    # NATARS neoadjuvant: infusion D1-D5 is five visits, anlotinib D1-D14 one period.
    local, at = A.lower(), domain(trial.db)
    assert f"{local}.ai.1.d5{at}" in uids
    assert f"{local}.ai.1{at}" not in uids
    anlotinib = uids[f"{local}.anlotinib.1{at}"]
    assert (anlotinib["DTEND"].dt - anlotinib["DTSTART"].dt).days == 14
    # TNT-STS: 5 RT fractions, each a visit on a working day.
    rt = [v for uid, v in read(trial.files["t"]).items() if ".rt.d" in uid]
    assert len(rt) == 5
    assert all(v["DTSTART"].dt.weekday() < 5 for v in rt)


def test_the_site_calendar_holds_every_event_of_its_allocated_patients_cancelled_included(trial):
    rows = rows_of(trial, site="PKUIH")
    check_against_rows(trial.files["site"], rows)
    assert {r.study_id for r in rows} == {A, B}  # not the screened-only patient
    withdrawn = rows_of(trial, study_id=B)
    assert withdrawn and {r.status for r in withdrawn} == {"cancelled"}
    assert all(r.revision >= 1 for r in withdrawn)
    text = trial.files["site"].read_text(encoding="utf-8")
    assert T not in text and "FJMUUH" not in text


def test_the_site_calendar_from_to_keeps_the_events_with_a_day_in_the_range(trial):
    low, high = (d.isoformat() for d in trial.window)

    def touches(row: Row) -> bool:
        if row.event_key in PERIODS:  # a period covers every day between its ends
            return row.days[0] <= high and row.days[-1] >= low
        return any(low <= day <= high for day in row.days)

    site = rows_of(trial, site="PKUIH")
    inside = [r for r in site if touches(r)]
    assert 0 < len(inside) < len(site)
    check_against_rows(trial.files["site-range"], inside)


def test_ical_js_reads_every_export_as_icalendar_does(trial):
    names = ["a", "t", "site", "site-range"]
    parsed = icaljs.parse(*(trial.files[n] for n in names))
    for name in names:
        path = trial.files[name]
        mozilla = parsed[str(path)]
        assert mozilla["version"] == "2.0" and mozilla["prodid"].startswith("-//sarcoma-sched//")
        assert mozilla["vtimezones"] == []  # no protocol event has a clock time yet
        ours = read(path)
        assert [v["uid"] for v in mozilla["vevents"]] == list(ours)
        for seen in mozilla["vevents"]:
            vevent = ours[seen["uid"]]
            assert seen["dtstart"] == {
                "value": vevent["DTSTART"].dt.isoformat(),
                "date_only": True,
                "tzid": None,
                "utc": None,
            }
            assert seen["dtend"]["value"] == vevent["DTEND"].dt.isoformat()
            assert seen["sequence"] == vevent["SEQUENCE"]
            assert seen["status"] == str(vevent["STATUS"])
            assert seen["summary"] == str(vevent["SUMMARY"])
            assert len(seen["alarms"]) == len(vevent.walk("VALARM"))


def test_an_export_is_the_same_bytes_every_time_in_a_file_or_on_stdout(trial):
    data = trial.files["a"].read_bytes()
    assert data.startswith(b"BEGIN:VCALENDAR\r\n") and data.endswith(b"END:VCALENDAR\r\n")
    # Two runs of the command, one to a file and one to a pipe.
    assert data == trial.stdout["a-piped"]
    assert trial.stderr["a-piped"] == ""


def test_out_prints_how_many_calendar_entries_it_wrote_on_stderr_only(trial):
    for name, path in trial.files.items():
        count = len(read(path))
        assert trial.stdout[name] == b""
        assert trial.stderr[name] == f"wrote {count} event{'' if count == 1 else 's'} to {path}\n"
    assert not list(trial.cwd.glob(".*.tmp"))  # the temporary file was renamed, not left


def test_no_birth_date_screening_value_or_screening_number_reaches_a_calendar(trial):
    birth_dates = [d for (d,) in query(trial.db, "SELECT birth_date FROM patients") if d]
    for path in trial.files.values():
        text = path.read_text(encoding="utf-8").lower()
        assert "birth" not in text
        for born in birth_dates:
            assert str(born) not in text and str(born).replace("-", "") not in text
        # Study ids only: no screening number, no screening answer (histology, age).
        assert "-s000" not in text
        assert "ddlps" not in text and "myxofibrosarcoma" not in text and "age_years" not in text


# --- mistakes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (("NOBODY",), "error: no patient with study id or screening number 'NOBODY'\n"),
        ((C,), f"error: {C} has no calendar: the patient is not allocated\n"),
        (("--site", "NOWHERE"), "error: no site 'NOWHERE' (sites: "),
    ],
)
def test_an_unknown_patient_or_site_exits_1_with_one_line_and_writes_no_file(
    trial, command, tmp_path, args, message
):
    out = tmp_path / "out.ics"
    done = export(command, tmp_path, trial.db, *args, "--out", str(out))
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    assert done.stdout == b""
    assert len(stderr.splitlines()) == 1 and stderr.startswith(message)
    assert not out.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        ((), "give exactly one of PATIENT and --site"),
        ((A, "--site", "PKUIH"), "give exactly one of PATIENT and --site"),
        ((A, "--from", "today"), "use them with --site"),
        (("--site", "PKUIH", "--from", "+9d", "--to", "+1d"), "is before --from"),
        (("--site", "PKUIH", "--from", "someday"), "'someday' is not a date"),
    ],
)
def test_a_usage_mistake_exits_2_before_opening_the_database(command, tmp_path, args, message):
    out = tmp_path / "out.ics"
    never_opened = str(tmp_path / "no-such.db")
    done = export(command, tmp_path, never_opened, *args, "--out", str(out))
    stderr = done.stderr.decode()
    assert done.returncode == 2, stderr
    assert done.stdout == b""
    assert stderr.startswith("Usage: ") and message in stderr.splitlines()[-1]
    assert "Traceback" not in stderr
    assert not out.exists() and not Path(never_opened).exists()


# --- the round trip (last: it writes) -----------------------------------------------------------


def test_re_export_after_a_recorded_delay_keeps_uids_and_raises_sequence_only_where_it_changed(
    trial, command, tmp_path
):
    db = trial.copy(tmp_path)  # PostgreSQL: the shared schema; only this test writes on T
    before = stored(db, study_id=T)
    first = tmp_path / "before.ics"
    assert export(command, tmp_path, db, T, "--out", str(first)).returncode == 0
    assert first.read_bytes() == trial.files["t"].read_bytes()

    # RT started two working days late: the first fraction on the third planned day.
    rt = before[f"{T.lower()}.rt{domain(db)}"]
    started = rt.days[2]
    invoke(command, tmp_path, "--db", db, "record", T, "rt", "--status", "done", "--date", started)
    after = stored(db, study_id=T)
    second = tmp_path / "after.ics"
    assert export(command, tmp_path, db, T, "--out", str(second)).returncode == 0
    check_against_rows(second, list(after.values()))

    old, new = read(first), read(second)
    assert set(old) <= set(new)  # a client finds every entry it has, by UID
    changed = {uid for uid in before if (before[uid].days, before[uid].status, before[uid].shown)
               != (after[uid].days, after[uid].status, after[uid].shown)}  # fmt: skip
    assert rt.uid in changed and changed != set(before)
    for uid, row in before.items():
        for entry, _, _ in expected_vevents(row):
            if uid in changed:
                assert after[uid].revision > row.revision
                assert new[entry]["SEQUENCE"] > old[entry]["SEQUENCE"]
            else:
                # Untouched: byte for byte what the client already has.
                assert after[uid].revision == row.revision
                assert new[entry].to_ical() == old[entry].to_ical()
    fraction = new[f"{T.lower()}.rt.d1{domain(db)}"]
    assert fraction["DTSTART"].dt.isoformat() == started
    assert str(fraction["STATUS"]) == "CONFIRMED" and fraction.walk("VALARM") == []

    mozilla = icaljs.parse(second)[str(second)]
    assert {v["uid"]: v["sequence"] for v in mozilla["vevents"]} == {
        uid: v["SEQUENCE"] for uid, v in new.items()
    }
