"""An offline HTML report: an index page and one self-contained page per trial.

Each trial page carries its enrolment tables, the CONSORT diagram and the workload chart as
inline data (SVG in a ``data:`` URI: nothing is fetched, no script runs), and a patient table
whose study ids link to per-patient timeline pictures written beside it (``timelines/*.svg``).
The directory can be zipped, mailed or opened from a USB stick. The data is what
``services.queries.trial_reports`` reads; nothing here touches the database.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sarcoma_sched.errors import Conflict
from sarcoma_sched.files import write_atomic
from sarcoma_sched.vocabulary import WORKLOAD_KINDS, PatientStatus

if TYPE_CHECKING:
    from sarcoma_sched.services.queries.trials import TrialReport

__all__ = ["HtmlReport", "write_html_report"]

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


def write_html_report(
    trials: Sequence[TrialReport], out_dir: Path, *, today: dt.date
) -> HtmlReport:
    """Write ``index.html``, ``<TRIAL>.html`` per trial and ``timelines/<STUDY-ID>.svg``."""
    from sarcoma_sched.reports.consort import consort_figure
    from sarcoma_sched.reports.style import svg_text
    from sarcoma_sched.reports.timeline import timeline_figure
    from sarcoma_sched.reports.workload import workload_figure, workload_title

    try:
        (out_dir / "timelines").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Conflict(f"cannot create {out_dir}: {exc.strerror}") from None

    pages: list[Path] = []
    timelines: list[Path] = []
    summaries = []
    for trial in trials:
        flow, date_from, date_to = trial.flow, trial.date_from, trial.date_to
        pid = flow.protocol_id
        consort_svg = svg_text(consort_figure(flow, as_of=str(today)))
        title = workload_title(None, pid, date_from, date_to, "week")
        chart = svg_text(
            workload_figure(
                trial.weekly, by="week", title=title, date_from=date_from, date_to=date_to
            )
        )
        for tl in trial.timelines:
            path = out_dir / "timelines" / f"{tl.study_id}.svg"
            _write(path, svg_text(timeline_figure(tl, today)))
            timelines.append(path)
        body = _trial_body(
            flow=flow,
            consort_svg=consort_svg,
            chart_svg=chart,
            tables=trial.enrollment,
            site_load=trial.site_load,
            patients=trial.patients,
            date_from=date_from,
            date_to=date_to,
        )
        page = _write(out_dir / f"{pid}.html", _page(f"{pid}: trial report", body, today))
        pages.append(page)
        summaries.append((pid, flow, page.name))
    index = _write(out_dir / "index.html", _page("sarcoma-sched report", _index(summaries), today))
    return HtmlReport(index, pages, timelines)


def _trial_body(
    *,
    flow: Any,
    consort_svg: str,
    chart_svg: str,
    tables: dict[str, tuple[list[dict[str, Any]], list[str]]],
    site_load: list[dict[str, Any]],
    patients: list[dict[str, Any]],
    date_from: dt.date,
    date_to: dt.date,
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
    parts.append(
        "<p>Each study id opens the patient's timeline (planned events, windows, actual dates, "
        "deviations).</p>"
    )
    head = ["study_id", "site", "arm", "allocated", "status", "next_planned", "deviations"]
    trs: list[str] = []
    for p in patients:
        link = f'<a href="timelines/{_e(p["study_id"])}.svg">{_e(p["study_id"])}</a>'
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
