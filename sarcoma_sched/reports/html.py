"""An offline HTML report: an index page and one self-contained page per trial.

Each trial page carries its enrolment tables, the CONSORT diagram, the workload chart and an
overview of every patient as inline data (SVG or PNG in a ``data:`` URI: nothing is fetched, no
script runs), and a patient table; with ``timelines``, its study ids link to per-patient
timeline pictures written beside it (``timelines/*.svg``).
The directory can be zipped, mailed or opened from a USB stick. The data is what
``services.queries.trial_reports`` reads; nothing here touches the database.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sarcoma_sched.errors import Conflict
from sarcoma_sched.files import write_atomic
from sarcoma_sched.vocabulary import WORKLOAD_KINDS, PatientStatus

if TYPE_CHECKING:
    from sarcoma_sched.services.queries.timeline import PatientTimeline
    from sarcoma_sched.services.queries.trials import TrialReport

__all__ = ["HtmlReport", "Progress", "write_html_report"]

CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 2em auto; max-width: 70em;
       color: #222; line-height: 1.4; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 2em;
     border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
.sub { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #eef3f8; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.ended td { color: #777; } .dev { color: #c62828; font-weight: bold; }
img.chart { max-width: 100%; height: auto; border: 1px solid #eee; }
nav a { margin-right: 1em; } footer { color: #777; font-size: 0.8em; margin-top: 3em; }
"""


@dataclass(frozen=True)
class HtmlReport:
    index: Path
    trials: list[Path]
    timelines: list[Path]


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str], numeric: set[str]) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = "".join(
            f'<td class="n">{_e(r.get(c))}</td>' if c in numeric else f"<td>{_e(r.get(c))}</td>"
            for c in columns
        )
        body.append(f"<tr>{cells}</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(columns)}">none</td></tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _page(title: str, body: str, today: dt.date) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"{body}\n<footer>sarcoma-sched report, data as of {today}. Made offline: this page "
        "loads nothing from the network.</footer>\n</body>\n</html>\n"
    )


def _write(path: Path, text: str) -> Path:
    return write_atomic(path, text)


Progress = Callable[[int, int], None]
"""Told (pictures drawn, pictures to draw) after each one."""


def write_html_report(
    trials: Sequence[TrialReport],
    out_dir: Path,
    *,
    today: dt.date,
    timelines: bool = False,
    jobs: int = 1,
    progress: Progress | None = None,
) -> HtmlReport:
    """Write ``index.html`` and ``<TRIAL>.html`` per trial, each with an overview of every
    patient; with ``timelines``, also ``timelines/<STUDY-ID>.svg`` per patient, drawn by
    ``jobs`` processes."""
    from sarcoma_sched.reports.consort import consort_figure
    from sarcoma_sched.reports.overview import overview_figure
    from sarcoma_sched.reports.style import png_data, svg_text
    from sarcoma_sched.reports.workload import workload_figure, workload_title

    try:
        (out_dir / "timelines" if timelines else out_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Conflict(f"cannot create {out_dir}: {exc.strerror}") from None

    total = sum(3 + (len(t.timelines) if timelines else 0) for t in trials)
    done = 0

    def step(n: int = 1) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    if progress is not None:
        progress(0, total)
    pages: list[Path] = []
    written: list[Path] = []
    summaries = []
    for trial in trials:
        flow, date_from, date_to = trial.flow, trial.date_from, trial.date_to
        pid = flow.protocol_id
        consort_svg = svg_text(consort_figure(flow, as_of=str(today)))
        step()
        title = workload_title(None, pid, date_from, date_to, "week")
        chart = svg_text(
            workload_figure(
                trial.weekly, by="week", title=title, date_from=date_from, date_to=date_to
            )
        )
        step()
        start, end = _overview_range(trial, today)
        overview = png_data(
            overview_figure(
                trial.timelines,
                title=f"{pid}: every patient, by site ({len(trial.timelines)})",
                date_from=start,
                date_to=end,
                today=today,
            )
        )
        step()
        if timelines:
            jobs_of = [
                (tl, out_dir / "timelines" / f"{tl.study_id}.svg", today) for tl in trial.timelines
            ]
            for path in _draw_timelines(jobs_of, jobs):
                written.append(path)
                step()
        body = _trial_body(
            flow=flow,
            consort_svg=consort_svg,
            chart_svg=chart,
            overview_png=overview,
            overview_range=(start, end),
            tables=trial.enrollment,
            site_load=trial.site_load,
            patients=trial.patients,
            date_from=date_from,
            date_to=date_to,
            linked=timelines,
        )
        page = _write(out_dir / f"{pid}.html", _page(f"{pid}: trial report", body, today))
        pages.append(page)
        summaries.append((pid, flow, page.name))
    index = _write(out_dir / "index.html", _page("sarcoma-sched report", _index(summaries), today))
    return HtmlReport(index, pages, written)


def _overview_range(trial: TrialReport, today: dt.date) -> tuple[dt.date, dt.date]:
    """From the first allocation to 12 weeks after today: the treatment phase of everyone."""
    starts = [t.allocation_date for t in trial.timelines if t.allocation_date]
    start = min(starts, default=trial.date_from) - dt.timedelta(days=7)
    return start, max(today, trial.date_to)


def _draw_timeline(job: tuple[PatientTimeline, Path, dt.date]) -> Path:
    from sarcoma_sched.reports.style import svg_text
    from sarcoma_sched.reports.timeline import timeline_figure

    timeline, path, today = job
    return _write(path, svg_text(timeline_figure(timeline, today)))


def _draw_timelines(
    jobs_of: list[tuple[PatientTimeline, Path, dt.date]], jobs: int
) -> Iterator[Path]:
    """Each timeline drawn and written, in order; by ``jobs`` processes when more than one.

    Drawing is matplotlib in Python, bound by one core each; processes are started fresh
    (spawn), never forked from a parent that may run a progress bar's thread.
    """
    if jobs <= 1 or len(jobs_of) < 2:
        yield from map(_draw_timeline, jobs_of)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        yield from pool.map(_draw_timeline, jobs_of, chunksize=8)


def _trial_body(
    *,
    flow: Any,
    consort_svg: str,
    chart_svg: str,
    overview_png: bytes,
    overview_range: tuple[dt.date, dt.date],
    tables: dict[str, tuple[list[dict[str, Any]], list[str]]],
    site_load: list[dict[str, Any]],
    patients: list[dict[str, Any]],
    date_from: dt.date,
    date_to: dt.date,
    linked: bool,
) -> str:
    counts: set[str] = set(PatientStatus)
    parts = [
        '<nav><a href="index.html">all trials</a></nav>',
        f"<h1>{_e(flow.protocol_id)}: {_e(flow.title)}</h1>",
        f'<p class="sub">{_e(flow.registry_id)} · assessed {flow.assessed} · allocated '
        f"{flow.allocated}</p>",
        "<h2>Enrollment</h2>",
    ]
    for name, (rows, columns) in tables.items():
        parts.append(f"<h3>{_e(name)}</h3>")
        parts.append(_table(rows, columns, counts))
    parts.append("<h2>CONSORT flow</h2>")
    alt = (
        f"CONSORT flow of {flow.protocol_id}: assessed {flow.assessed}, excluded "
        f"{flow.excluded}, allocated {flow.allocated}"
    )
    parts.append(f'<img class="chart" alt="{_e(alt)}" src="{_data_uri(consort_svg)}">')
    parts.append("<h2>Workload</h2>")
    parts.append(
        f"<p>Event-days per week from {date_from} to {date_to}, every site of the trial "
        "(planned and done; oral dosing at home not counted).</p>"
    )
    alt = f"Weekly workload of {flow.protocol_id} from {date_from} to {date_to}"
    parts.append(f'<img class="chart" alt="{_e(alt)}" src="{_data_uri(chart_svg)}">')
    used = [k for k in WORKLOAD_KINDS if any(r[k] for r in site_load)]
    parts.append("<h3>by site, whole period</h3>")
    parts.append(_table(site_load, ["site", *used, "total"], {*used, "total"}))
    parts.append("<h2>Patients</h2>")
    start, end = overview_range
    parts.append(
        f"<p>Every allocated patient from {start} to {end}, one row each, grouped by site: "
        "event days in their kind's colour (pale while planned), deviations in red, "
        "withdrawals and exclusions in black.</p>"
    )
    overview = base64.b64encode(overview_png).decode("ascii")
    alt = f"Every patient of {flow.protocol_id} by site from {start} to {end}"
    parts.append(f'<img class="chart" alt="{_e(alt)}" src="data:image/png;base64,{overview}">')
    parts.append(
        "<p>Each study id opens the patient's timeline (planned events, windows, actual dates, "
        "deviations).</p>"
        if linked
        else "<p>One patient's timeline: <code>sarcoma-sched report timeline STUDY-ID --out "
        "FILE.svg</code>, or every patient's with <code>report html --timelines</code>.</p>"
    )
    head = ["study_id", "site", "arm", "allocated", "status", "next_planned", "deviations"]
    trs: list[str] = []
    for p in patients:
        sid = _e(p["study_id"])
        link = f'<a href="timelines/{sid}.svg">{sid}</a>' if linked else sid
        dev = f'<span class="dev">{p["deviations"]}</span>' if p["deviations"] else "0"
        cls = ' class="ended"' if p["status"] != "on study" else ""
        cells = [
            link,
            _e(p["site"]),
            _e(p["arm"]),
            _e(p["allocated"]),
            _e(p["status"]),
            _e(p["next_planned"] or "none"),
            dev,
        ]
        tds = "".join(
            f'<td class="n">{c}</td>' if i == len(cells) - 1 else f"<td>{c}</td>"
            for i, c in enumerate(cells)
        )
        trs.append(f"<tr{cls}>{tds}</tr>")
    if not trs:
        trs.append(f'<tr><td colspan="{len(head)}">nobody allocated yet</td></tr>')
    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    parts.append(f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(trs)}</tbody></table>")
    return "\n".join(parts)


def _index(summaries: list[tuple[str, Any, str]]) -> str:
    rows = []
    for pid, flow, page in summaries:
        arms = ", ".join(f"{a.arm} {a.allocated}" for a in flow.arms)
        rows.append(
            f'<tr><td><a href="{_e(page)}">{_e(pid)}</a></td><td>{_e(flow.registry_id)}</td>'
            f'<td>{_e(flow.title)}</td><td class="n">{flow.assessed}</td>'
            f'<td class="n">{flow.allocated}</td><td>{_e(arms)}</td></tr>'
        )
    head = "".join(
        f"<th>{h}</th>" for h in ("trial", "registry", "title", "assessed", "allocated", "by arm")
    )
    return (
        "<h1>Trial reports</h1>\n"
        '<p class="sub">One page per trial: enrollment, CONSORT flow, workload and patient '
        "timelines.</p>\n"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
