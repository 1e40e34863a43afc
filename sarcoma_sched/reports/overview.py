"""Every patient of a trial on one chart (``overview_figure``): a swimmer plot, one thin row per
patient grouped by site, for the HTML report.

A row runs from allocation to the end of participation (or past the chart); each event's days
are marked in its kind's colour (solid once done, pale while planned), a deviation is a red
dot on its target day, a withdrawal or exclusion a black bar. One picture of 4,000 rows draws
in seconds where 4,000 timelines took minutes; each patient's own chart is ``report timeline``.
Drawn with one collection per colour, not an artist per event, so its cost grows with the
number of events only through the rasteriser.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sarcoma_sched.reports.style import DEVIATION, KIND_COLOURS, KIND_LABELS
from sarcoma_sched.vocabulary import OFF_CALENDAR, EventStatus

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from sarcoma_sched.services.queries.timeline import PatientTimeline

__all__ = ["overview_figure"]

ONE_DAY = dt.timedelta(days=1)
# Inches per patient row: readable for a few dozen patients, three pixels at 100 dpi for
# thousands, and thinner still past 4,000 so the raster stays under 12,000 pixels tall.
ROW_MAX, ROW_MIN, CHART_MAX = 0.16, 0.03, 120.0


def overview_figure(
    timelines: Sequence[PatientTimeline],
    *,
    title: str,
    date_from: dt.date,
    date_to: dt.date,
    today: dt.date,
) -> Figure:
    import matplotlib.dates as mdates
    from matplotlib.collections import LineCollection
    from matplotlib.patches import Patch

    from sarcoma_sched.reports.style import figure
    from sarcoma_sched.reports.timeline import days_shown_locator, range_formatter

    rows = sorted(timelines, key=lambda t: (t.site, t.allocation_date or today, t.study_id))
    n = max(len(rows), 1)
    row_h = min(max(ROW_MIN, 12 / n), ROW_MAX, CHART_MAX / n)
    chart_h = row_h * n
    height = chart_h + 1.6
    fig = figure(11.5, height)
    ax = fig.add_axes((0.12, 0.9 / height, 0.86, chart_h / height))

    def x(day: dt.date) -> float:
        return float(mdates.date2num(day))

    lo, hi = x(date_from), x(date_to + ONE_DAY)
    spans: list[list[tuple[float, float]]] = []
    ends: list[list[tuple[float, float]]] = []
    by_colour: dict[tuple[str, bool], list[list[tuple[float, float]]]] = defaultdict(list)
    deviations: list[tuple[float, float]] = []
    sites: dict[str, list[int]] = defaultdict(list)
    for i, t in enumerate(rows):
        sites[t.site].append(i)
        first = t.allocation_date or min((e.first for e in t.events), default=date_from)
        last = t.ended[1] if t.ended else date_to + ONE_DAY
        spans.append([(max(x(first), lo), i), (min(x(last), hi), i)])
        if t.ended and date_from <= t.ended[1] <= date_to:
            ends.append([(x(t.ended[1]), i - 0.45), (x(t.ended[1]), i + 0.45)])
        for e in t.events:
            if e.status in OFF_CALENDAR or e.last < date_from or e.first > date_to:
                continue
            colour = KIND_COLOURS.get(e.kind, "#555555")
            done = e.status == EventStatus.DONE
            for day in e.days:
                if date_from <= day <= date_to:
                    by_colour[(colour, done)].append([(x(day), i), (x(day) + 1, i)])
            if e.deviation and date_from <= e.target <= date_to:
                deviations.append((x(e.target) + 0.5, i))

    # Line widths in points: a row's height, so consecutive days join into one bar.
    width = max(row_h * 72 * 0.7, 0.4)
    ax.add_collection(LineCollection(spans, colors="#d0d0d0", linewidths=max(width * 0.3, 0.3)))
    for (colour, done), segments in by_colour.items():
        ax.add_collection(
            LineCollection(
                segments,
                colors=colour,
                linewidths=width,
                alpha=1.0 if done else 0.4,
                capstyle="butt",
            )
        )
    if ends:
        ax.add_collection(LineCollection(ends, colors="black", linewidths=1.2))
    if deviations:
        xs, ys = zip(*deviations, strict=True)
        ax.scatter(xs, ys, s=max(width**2, 2), color=DEVIATION, zorder=5, linewidths=0)
    ax.axvline(x(today) + 0.5, color="#1f5fbf", linestyle="--", linewidth=1.0, zorder=6)

    ax.set_xlim(lo, hi)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_yticks([(min(r) + max(r)) / 2 for r in sites.values()])
    ax.set_yticklabels([f"{s} ({len(r)})" for s, r in sites.items()], fontsize=8)
    ax.tick_params(axis="y", length=0)
    for r in list(sites.values())[1:]:
        ax.axhline(min(r) - 0.5, color="#888888", linewidth=0.6)
    locator = days_shown_locator(hi)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(range_formatter(locator, date_from, date_to))
    ax.xaxis.set_ticks_position("top")
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", color="#eeeeee", linewidth=0.6)
    ax.set_axisbelow(True)

    fig.text(0.01, 1 - 0.12 / height, title, fontsize=12, fontweight="bold", va="top")
    kinds = [k for k in KIND_COLOURS if any(c == KIND_COLOURS[k] for c, _ in by_colour)]
    handles = [Patch(color=KIND_COLOURS[k], label=KIND_LABELS[k]) for k in kinds]
    handles += [
        Patch(color="#d0d0d0", label="on study"),
        Patch(color="black", label="withdrawn / excluded"),
        Patch(color=DEVIATION, label="deviation"),
        Patch(color="#1f5fbf", label=f"today {today}"),
    ]
    fig.legend(
        handles=handles,
        loc="lower left",
        bbox_to_anchor=(0.01, 0.05 / height),
        ncol=min(len(handles), 7),
        fontsize=7.5,
        frameon=False,
        handlelength=1.2,
    )
    return fig
