"""The report commands (consort, timeline, workload, html) against a known cohort, end to end.

The cohort is built once per backend, with dates relative to today:

NATARS (assigned arms)
  PKUIH-S0001  eligible → NEOADJUVANT (MDT decision); ai.1 done 20 days late (a deviation)
  PKUIH-S0002  eligible → NEOADJUVANT (patient preference); withdrawn before any treatment
  PKUIH-S0003  age 80: fails INC-13
  PKUIH-S0004  age 80 and metastasis: fails INC-13 and EXC-04 (counted under both)
  BJFH-S0001   eligible → SURGERY_ONLY (MDT decision); surgery done; excluded EXC-02 afterwards
  BJFH-S0002   ASA class not recorded: screening incomplete, INC-11 undecided
  BJFH-S0003   age 80 at first, re-screened eligible (the latest screening counts); not allocated
TNT-STS (fixed arm)
  FJMUUH-S0001 eligible → TNT yesterday; RT not started yet

The cohort is typed into the command line's own click application in this process (the same
commands a coordinator types; a fresh interpreter per command would cost over a second each on
imports alone). Every report under test runs through the installed ``sarcoma-sched``; pictures
whose command path is already covered are rendered in process through the library.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import struct
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.cli.conftest import invoke
from tests.cohort import ELIGIBLE_NATARS, ELIGIBLE_TNT

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# The cohort's table output goes through cli/output.py, whose click call is deprecated in Click 8.2.
pytestmark = pytest.mark.filterwarnings("ignore:.get_text_stream. is deprecated:DeprecationWarning")

TODAY = dt.date.today()
SVG_NS = "{http://www.w3.org/2000/svg}"


def day(offset: int) -> str:
    return (TODAY + dt.timedelta(days=offset)).isoformat()


def fields(values: dict[str, str], **overrides: str | None) -> list[str]:
    args = []
    for name, value in {**values, **overrides}.items():
        if value is not None:
            args += ["--field", f"{name}={value}"]
    return args


def natars(**overrides: str | None) -> list[str]:
    return fields(ELIGIBLE_NATARS, **overrides)


ASSIGN = ["--consent-date", day(-60), "--date", day(-60), "--arm"]
PKUIH = [
    ["screen", "NATARS", "--site", "PKUIH", *natars(), "--date", day(-70)],
    ["screen", "NATARS", "--site", "PKUIH", *natars(), "--date", day(-70)],
    ["screen", "NATARS", "--site", "PKUIH", *natars(age_years="80"), "--date", day(-70)],
    [
        "screen",
        "NATARS",
        "--site",
        "PKUIH",
        *natars(age_years="80", metastasis="yes"),
        "--date",
        day(-70),
    ],
    [
        "allocate",
        "PKUIH-NATARS-S0001",
        *ASSIGN,
        "NEOADJUVANT",
        "--basis",
        "mdt_decision",
        "--reason",
        "MDT: borderline resectable",
    ],
    [
        "allocate",
        "PKUIH-NATARS-S0002",
        *ASSIGN,
        "NEOADJUVANT",
        "--basis",
        "patient_preference",
        "--reason",
        "asked for neoadjuvant treatment",
    ],
    ["withdraw", "PKUIH-NATARS-0002", "--reason", "moved abroad", "--date", day(-55)],
    [
        "record",
        "PKUIH-NATARS-0001",
        "ai.1",
        "--status",
        "done",
        "--date",
        day(-40),
        "--reason",
        "no inpatient bed",
    ],
]
BJFH = [
    ["screen", "NATARS", "--site", "BJFH", *natars(), "--date", day(-70)],
    ["screen", "NATARS", "--site", "BJFH", *natars(asa_class=None), "--date", day(-70)],
    ["screen", "NATARS", "--site", "BJFH", *natars(age_years="80"), "--date", day(-70)],
    ["screen", "NATARS", "--patient", "BJFH-NATARS-S0003", *natars(), "--date", day(-69)],
    [
        "allocate",
        "BJFH-NATARS-S0001",
        *ASSIGN,
        "SURGERY_ONLY",
        "--basis",
        "mdt_decision",
        "--reason",
        "MDT: resectable now",
    ],
    ["record", "BJFH-NATARS-0001", "surgery", "--status", "done", "--date", day(-45)],
    [
        "exclude",
        "BJFH-NATARS-0001",
        "--criterion",
        "EXC-02",
        "--reason",
        "final pathology WDLPS",
        "--date",
        day(-30),
    ],
]
FJMUUH = [
    ["screen", "TNT-STS", "--site", "FJMUUH", *fields(ELIGIBLE_TNT), "--date", day(-2)],
    ["allocate", "FJMUUH-TNT-STS-S0001", "--consent-date", day(-1), "--date", day(-1)],
]


@dataclass(frozen=True)
class Cohort:
    db: str
    cwd: Path

    def run(self, command: str, *args: str) -> str:
        return invoke(command, self.cwd, "--db", self.db, *args).stdout

    @contextmanager
    def read(self) -> Iterator[Session]:
        from sarcoma_sched.db.session import Database

        database = Database(self.db)
        try:
            with database.read() as session:
                yield session
        finally:
            database.dispose()


def _build(cwd: Path, db: str) -> Cohort:
    from click.testing import CliRunner

    from sarcoma_sched.cli import cli
    from tests.cli.conftest import SCRUBBED

    env: dict[str, str | None] = dict.fromkeys(SCRUBBED)
    env |= {"XDG_DATA_HOME": str(cwd / "xdg"), "XDG_CONFIG_HOME": str(cwd / "config")}
    runner = CliRunner()
    for step in [["init"], *PKUIH, *BJFH, *FJMUUH]:
        done = runner.invoke(cli, ["--db", db, *step], env=env, catch_exceptions=False)
        assert done.exit_code == 0, (step, done.output)
    return Cohort(db, cwd)


@pytest.fixture(scope="module")
def sqlite_cohort(command, tmp_path_factory) -> Cohort:
    cwd = tmp_path_factory.mktemp("cohort")
    return _build(cwd, str(cwd / "trial.db"))


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def cohort(request, command, tmp_path_factory) -> Cohort:
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_cohort")
        return
    from tests.databases import pg_schema_url

    with pg_schema_url() as url:
        yield _build(tmp_path_factory.mktemp("pg-cohort"), url)


def svg_texts(path: Path) -> str:
    """Every <text> of an SVG, whitespace collapsed, in drawing order, joined by one space."""
    root = ET.parse(path).getroot()
    texts = [" ".join("".join(t.itertext()).split()) for t in root.iter(f"{SVG_NS}text")]
    return " ".join(t for t in texts if t)


def between(text: str, start: str, end: str | None) -> str:
    """The part of ``text`` from ``start`` up to (not including) the next ``end``."""
    i = text.index(start)
    j = text.find(end, i + len(start)) if end else -1
    return text[i:] if j < 0 else text[i:j]


def check_png(path: Path, *, min_width: int = 600, min_height: int = 300) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert min_width <= width <= 5000 and min_height <= height <= 8000, (width, height)
    assert len(data) > 20_000, "suspiciously small: an empty picture?"
    import matplotlib.image

    pixels = matplotlib.image.imread(str(path))
    assert pixels.std() > 0.05, "the picture is (almost) one colour"
    return width, height


# --- consort ------------------------------------------------------------------------------------


def test_consort_numbers_as_a_table_follow_the_cohort(command, cohort):
    rows = json.loads(cohort.run(command, "report", "consort", "NATARS", "--format", "json"))
    got = {(r["stage"], r["arm"], r["item"]): r["n"] for r in rows}
    assert got == {
        ("enrollment", "", "assessed for eligibility"): 7,
        ("enrollment", "", "excluded"): 4,
        ("enrollment", "", "not meeting eligibility criteria"): 2,
        ("enrollment", "", "failed EXC-04"): 1,
        ("enrollment", "", "failed INC-13"): 2,
        ("enrollment", "", "screening incomplete"): 1,
        ("enrollment", "", "value missing for INC-11"): 1,
        ("enrollment", "", "eligible, not allocated"): 1,
        ("enrollment", "", "screenings voided (not counted)"): 0,
        ("allocation", "", "allocated"): 3,
        ("allocation", "SURGERY_ONLY", "allocated"): 1,
        ("allocation", "SURGERY_ONLY", "assigned by MDT decision"): 1,
        ("allocation", "SURGERY_ONLY", "received allocated intervention"): 1,
        ("allocation", "SURGERY_ONLY", "did not receive allocated intervention"): 0,
        ("follow-up", "SURGERY_ONLY", "lost to follow-up"): "not recorded",
        ("follow-up", "SURGERY_ONLY", "discontinued"): 1,
        (
            "follow-up",
            "SURGERY_ONLY",
            "excluded after allocation: EXC-02: ineligible",
        ): 1,
        ("analysis", "SURGERY_ONLY", "analysed (intention to treat)"): 1,
        ("analysis", "SURGERY_ONLY", "excluded from analysis"): 0,
        ("allocation", "NEOADJUVANT", "allocated"): 2,
        ("allocation", "NEOADJUVANT", "assigned by MDT decision"): 1,
        ("allocation", "NEOADJUVANT", "assigned by patient preference"): 1,
        ("allocation", "NEOADJUVANT", "received allocated intervention"): 1,
        ("allocation", "NEOADJUVANT", "did not receive allocated intervention"): 1,
        ("allocation", "NEOADJUVANT", "did not receive: withdrawn before treatment"): 1,
        ("follow-up", "NEOADJUVANT", "lost to follow-up"): "not recorded",
        ("follow-up", "NEOADJUVANT", "discontinued"): 1,
        ("follow-up", "NEOADJUVANT", "withdrawn: other"): 1,
        ("analysis", "NEOADJUVANT", "analysed (intention to treat)"): 2,
        ("analysis", "NEOADJUVANT", "excluded from analysis"): 0,
    }


def test_the_consort_svg_shows_every_number_and_label_of_the_cohort(command, cohort, tmp_path):
    out = tmp_path / "natars.svg"
    printed = cohort.run(
        command, "report", "consort", "NATARS", "--out", str(out), "--today", day(0)
    )
    assert printed.strip() == f"wrote {out}"
    text = svg_texts(out)
    assert text.startswith("CONSORT flow: NATARS (NCT05844813) Neoadjuvant Chemotherapy")
    assert "Enrollment Allocation Follow-up Analysis Assessed for eligibility" in text

    assert "Assessed for eligibility (n = 7)" in text
    excluded = between(text, "Excluded (n = 4)", "Allocated (n = 3)")
    for line in (
        "• Not meeting eligibility criteria (n = 2)",
        "EXC-04 (n = 1): Metastasis confirmed",
        "INC-13 (n = 2): Age 18-75 years",
        "• Screening incomplete (n = 1)",
        "INC-11 not decided, value missing (n = 1)",
        "• Eligible, not allocated (n = 1)",
    ):
        assert line in excluded, line
    assert "Allocated (n = 3) arm assigned, not randomized" in text

    surgery = between(text, "Allocated to SURGERY_ONLY (n = 1)", "Allocated to NEOADJUVANT")
    assert surgery == (
        "Allocated to SURGERY_ONLY (n = 1) Surgery only • Assigned by MDT decision (n = 1) "
        "• Received allocated intervention (n = 1) "
        "• Did not receive allocated intervention (n = 0) "
    )
    neo = between(text, "Allocated to NEOADJUVANT (n = 2)", "Lost to follow-up")
    assert neo == (
        "Allocated to NEOADJUVANT (n = 2) Neoadjuvant AI + anlotinib, then surgery "
        "• Assigned by MDT decision (n = 1) • Assigned by patient preference (n = 1) "
        "• Received allocated intervention (n = 1) "
        "• Did not receive allocated intervention (n = 1) withdrawn before treatment (n = 1) "
    )
    follow_up = between(text, "Lost to follow-up: not recorded", "Analysed")
    left, right = follow_up.split(" Lost to follow-up: not recorded ")
    assert left == (
        "Lost to follow-up: not recorded • Discontinued (n = 1) withdrawn (n = 0) "
        "excluded after allocation (n = 1) – EXC-02: ineligible (n = 1)"
    )
    assert right == (
        "• Discontinued (n = 1) withdrawn (n = 1) – other (n = 1) "
        "excluded after allocation (n = 0) "
    )
    analysis = between(text, "Analysed", "Counts from the schedule database")
    assert analysis == (
        "Analysed (n = 1) intention to treat: every allocated patient "
        "• Excluded from analysis (n = 0) "
        "Analysed (n = 2) intention to treat: every allocated patient "
        "• Excluded from analysis (n = 0) "
    )
    assert f"As of {day(0)}." in text
    # No number in the picture that the cohort does not explain.
    counts = sorted({int(n) for n in re.findall(r"\(n = (\d+)\)", text)})
    assert counts == [0, 1, 2, 3, 4, 7]


def test_a_single_arm_consort_shows_a_patient_not_yet_treated_as_not_received(
    command, sqlite_cohort, tmp_path
):
    out = tmp_path / "tnt.svg"
    sqlite_cohort.run(command, "report", "consort", "TNT-STS", "--out", str(out))
    text = svg_texts(out)
    assert "Assessed for eligibility (n = 1)" in text
    assert "Excluded (n = 0) • Not meeting eligibility criteria (n = 0)" in text
    assert "Allocated (n = 1) single arm, fixed allocation" in text
    assert (
        "• Received allocated intervention (n = 0) • Did not receive allocated intervention "
        "(n = 1) not started yet (treatment planned) (n = 1)"
    ) in text
    assert "Analysed (n = 1)" in text


def test_the_consort_diagram_renders_as_a_png(sqlite_cohort, tmp_path):
    from sarcoma_sched.reports import draw_consort
    from sarcoma_sched.services.queries import consort_flow

    with sqlite_cohort.read() as session:
        flow = consort_flow(session, "NATARS")
    width, height = check_png(draw_consort(flow, tmp_path / "natars.png"))
    assert height > width * 0.8  # a flow diagram is tall


def test_consort_refuses_an_unknown_trial_and_an_unknown_picture_format(run, sqlite_cohort):
    db = sqlite_cohort.db
    done = run("--db", db, "report", "consort", "NOPE", "--out", "x.svg")
    assert done.returncode == 1
    assert done.stderr.startswith("error: protocol 'NOPE' is not in the database")
    done = run("--db", db, "report", "consort", "NATARS", "--out", "x.pdf")
    assert done.returncode == 1
    assert done.stderr == "error: --out x.pdf: the file name must end in .svg or .png\n"
    done = run("--db", db, "report", "consort", "NATARS", "--out", "missing/x.svg")
    assert done.returncode == 1
    assert "directory missing does not exist" in done.stderr


# --- timeline -----------------------------------------------------------------------------------


def test_a_timeline_shows_events_the_deviation_and_today(command, sqlite_cohort, tmp_path):
    out = tmp_path / "0001.svg"
    sqlite_cohort.run(
        command, "report", "timeline", "PKUIH-NATARS-0001", "--out", str(out), "--today", day(0)
    )
    text = svg_texts(out)
    assert "PKUIH-NATARS-0001: schedule" in text
    assert f"NATARS, arm NEOADJUVANT, site PKUIH, allocated {day(-60)}" in text
    for row in (
        "ai.1 AI+A cycle",
        "anlotinib.1 Anlotinib 10 mg orally",
        "ai.3 AI+A cycle",
        "surgery Radical resection",
    ):
        assert row in text, row
    assert f"today {day(0)}" in text
    assert "allocation" in text
    # ai.1 done 20 days after allocation, outside its window: its row label is drawn in red.
    root = ET.parse(out).getroot()
    red = [
        " ".join("".join(t.itertext()).split())
        for t in root.iter(f"{SVG_NS}text")
        if "#d62728" in (t.get("style") or "")
    ]
    assert "ai.1 AI+A cycle" in red


def test_a_withdrawn_patient_timeline_marks_the_withdrawal_and_renders_as_png(
    command, sqlite_cohort, tmp_path
):
    from sarcoma_sched.reports import draw_timeline
    from sarcoma_sched.services.queries import patient_timeline

    with sqlite_cohort.read() as session:
        timeline = patient_timeline(session, "PKUIH-NATARS-0002")
    svg = draw_timeline(timeline, tmp_path / "0002.svg", today=TODAY)
    assert f"withdrawn {day(-55)}" in svg_texts(svg)
    png = tmp_path / "0002.png"
    sqlite_cohort.run(command, "report", "timeline", "PKUIH-NATARS-0002", "--out", str(png))
    width, height = check_png(png, min_width=1200)
    assert width > height


def test_timeline_of_an_unknown_patient_is_one_error_line(run, sqlite_cohort):
    done = run("--db", sqlite_cohort.db, "report", "timeline", "NOBODY", "--out", "x.png")
    assert done.returncode == 1
    assert done.stderr == "error: no patient with study id or screening number 'NOBODY'\n"


# --- workload -----------------------------------------------------------------------------------


def workload_rows(command: str, cohort: Cohort, *args: str) -> list[dict]:
    return json.loads(cohort.run(command, "report", "workload", *args, "--format", "json"))


def test_workload_counts_each_infusion_day_and_never_oral_or_cancelled_events(command, cohort):
    from sarcoma_sched.services.queries import workload

    # PKUIH-NATARS-0001's cycle 1 was given from day -40: five inpatient days.
    rows = workload_rows(command, cohort, "--site", "PKUIH", "--from", day(-40), "--to", day(-36))
    assert [r["infusion"] for r in rows] == [1, 1, 1, 1, 1]
    assert [r["total"] for r in rows] == [1, 1, 1, 1, 1]
    assert [r["day"] for r in rows] == [day(-40), day(-39), day(-38), day(-37), day(-36)]
    # BJFH: the surgery done on day -45.
    surgery = workload_rows(command, cohort, "--site", "BJFH", "--from", day(-45), "--to", day(-45))
    assert surgery == [{"day": day(-45), **dict.fromkeys(KINDS, 0), "surgery": 1, "total": 1}]
    with cohort.read() as session:
        # Before it, nothing: the withdrawn patient's cycle 1 is cancelled, the late one moved.
        before = workload(session, TODAY - dt.timedelta(60), TODAY - dt.timedelta(41), site="PKUIH")
        # Anlotinib runs D1-D14 at home from day -40: never ward load.
        after = workload(session, TODAY - dt.timedelta(35), TODAY - dt.timedelta(27), site="PKUIH")
    # (Only cycle 1's pre-cycle labs, drawn in the days before it.)
    assert sum(r["total"] - r["labs"] for r in before) == 0
    assert sum(r["total"] for r in after) == 0
    assert "oral" not in after[0]


KINDS = (
    "baseline",
    "radiotherapy",
    "labs",
    "infusion",
    "imaging",
    "surgery",
    "postop",
    "follow_up",
    "visit",
)


def test_weekly_workload_adds_up_the_daily_counts(command, sqlite_cohort):
    from sarcoma_sched.services.queries import workload

    weekly = workload_rows(
        command, sqlite_cohort, "--from", day(-63), "--to", day(90), "--by", "week"
    )
    with sqlite_cohort.read() as session:
        daily = workload(session, TODAY - dt.timedelta(63), TODAY + dt.timedelta(90))
    assert sum(r["total"] for r in daily) == sum(r["total"] for r in weekly) > 0
    for kind in KINDS:
        assert sum(r[kind] for r in daily) == sum(r[kind] for r in weekly)
    mondays = [dt.date.fromisoformat(r["week"]) for r in weekly]
    assert all(m.weekday() == 0 for m in mondays)
    assert mondays == sorted(mondays)


def test_workload_prints_csv_draws_a_png_and_refuses_an_unknown_site(
    command, run, sqlite_cohort, tmp_path
):
    from sarcoma_sched.reports import draw_workload
    from sarcoma_sched.services.queries import workload

    csv_text = sqlite_cohort.run(
        command, "report", "workload", "--from", day(0), "--to", day(6), "--format", "csv"
    )
    lines = csv_text.splitlines()
    assert lines[0] == "day," + ",".join(KINDS) + ",total"
    assert len(lines) == 8
    start, end = TODAY - dt.timedelta(63), TODAY + dt.timedelta(60)
    with sqlite_cohort.read() as session:
        rows = workload(session, start, end, by="week")
    out = draw_workload(rows, tmp_path / "load.png", by="week", date_from=start, date_to=end)
    width, height = check_png(out, min_width=1200)
    assert width > height
    done = run("--db", sqlite_cohort.db, "report", "workload", "--site", "NOPE")
    assert done.returncode == 1
    assert done.stderr.startswith("error: no site 'NOPE' (sites: ")


# --- html ---------------------------------------------------------------------------------------


def test_the_html_report_is_self_contained_and_links_every_timeline(
    command, sqlite_cohort, tmp_path
):
    import base64

    out = tmp_path / "report"
    sqlite_cohort.run(
        command, "report", "html", "--timelines", "--out", str(out), "--today", day(0)
    )
    index = (out / "index.html").read_text(encoding="utf-8")
    for trial in ("NATARS", "NATARS-R", "TNT-STS"):
        assert f'<a href="{trial}.html">{trial}</a>' in index
    page = (out / "NATARS.html").read_text(encoding="utf-8")
    for forbidden in ('src="http', "src='http", 'href="http', "<script", "url(", "@import"):
        assert forbidden not in page, forbidden
    images = re.findall(
        r'<img class="chart" alt="([^"]*)" src="data:image/svg\+xml;base64,'
        r'([A-Za-z0-9+/=]+)"',
        page,
    )
    assert len(images) == 2
    assert page.count('src="data:image/png;base64,') == 1  # the overview of every patient
    consort = base64.b64decode(images[0][1]).decode("utf-8")
    assert "Assessed for eligibility (n = 7)" in consort
    assert images[0][0] == "CONSORT flow of NATARS: assessed 7, excluded 4, allocated 3"
    assert "Workload" in base64.b64decode(images[1][1]).decode("utf-8")
    links = re.findall(r'<a href="(timelines/[^"]+\.svg)">', page)
    assert sorted(links) == [
        "timelines/BJFH-NATARS-0001.svg",
        "timelines/PKUIH-NATARS-0001.svg",
        "timelines/PKUIH-NATARS-0002.svg",
    ]
    for link in links:
        assert "<svg" in (out / link).read_text(encoding="utf-8")
    # The enrollment table by arm: allocated, withdrawn, excluded, on study.
    assert re.search(
        r"<tr><td>NEOADJUVANT</td><td class=\"n\">2</td><td class=\"n\">1</td>"
        r"<td class=\"n\">0</td><td class=\"n\">1</td></tr>",
        page,
    )
    assert (out / "TNT-STS.html").exists() and (out / "NATARS-R.html").exists()


def test_the_html_report_draws_one_overview_and_shows_progress_only_when_asked(
    command, run, sqlite_cohort, tmp_path
):
    import base64

    import matplotlib.image

    out = tmp_path / "report"
    args = ("--db", sqlite_cohort.db, "report", "html", "--out", str(out), "--today", day(0))
    quiet = run(*args, check=True)
    # stderr is a pipe here, not a terminal: no bar unless asked for.
    assert quiet.stderr == ""
    assert "timelines" not in quiet.stdout
    assert not (out / "timelines").exists()
    page = (out / "NATARS.html").read_text(encoding="utf-8")
    assert "timelines/" not in page
    assert "<td>PKUIH-NATARS-0001</td>" in page
    alt, data = re.findall(r'alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)[0]
    assert alt.startswith("Every patient of NATARS by site from ")
    png = tmp_path / "overview.png"
    png.write_bytes(base64.b64decode(data))
    pixels = matplotlib.image.imread(str(png))
    assert pixels.shape[1] == 1150 and pixels.std() > 0.05

    shown = run(*args, "--progress", "--timelines", "--jobs", "2", check=True)
    # The bar's last state: every picture drawn (3 per trial and the 4 timelines).
    assert "drawing pictures" in shown.stderr and "100%" in shown.stderr
    assert shown.stdout.endswith(f"wrote 4 timelines in {out / 'timelines'}\n")
    assert sorted(p.name for p in (out / "timelines").iterdir()) == [
        "BJFH-NATARS-0001.svg",
        "FJMUUH-TNT-STS-0001.svg",
        "PKUIH-NATARS-0001.svg",
        "PKUIH-NATARS-0002.svg",
    ]


def test_a_trials_timelines_read_at_once_equal_those_read_one_by_one(cohort):
    from sarcoma_sched.services.queries.timeline import patient_timeline, trial_timelines

    with cohort.read() as session:
        for trial in ("NATARS", "TNT-STS", "NATARS-R"):
            together = trial_timelines(session, trial)
            alone = [patient_timeline(session, t.study_id) for t in together]
            assert together == alone
        assert [t.study_id for t in trial_timelines(session, "NATARS")] == [
            "BJFH-NATARS-0001",
            "PKUIH-NATARS-0001",
            "PKUIH-NATARS-0002",
        ]
