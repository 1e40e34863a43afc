"""Site workload as stacked bars per day or week (``draw_workload``), from the counts
``services.queries.workload`` makes.

An *event-day* is one patient at the site on one day for one planned event: each RT fraction and
each inpatient infusion day counts on its own day (five fractions are five event-days, a D1-D5
infusion five ward days), a surgery or a follow-up visit one. Planned and done events count;
missed, skipped and cancelled ones do not (nobody comes). Oral dosing (anlotinib D1-D14) is
home medication, so it is not ward or clinic load and is left out; its cycle's infusion and
labs are counted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sarcoma_sched.calendar.capacity import week_of
from sarcoma_sched.reports.style import KIND_COLOURS, KIND_LABELS
from sarcoma_sched.vocabulary import WORKLOAD_KINDS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["draw_workload", "workload_figure", "workload_title"]


def _period(day: dt.date, by: str) -> dt.date:
    return week_of(day) if by == "week" else day


def workload_figure(
    rows: Sequence[dict[str, Any]],
    *,
    by: str,
    title: str,
    date_from: dt.date,
    date_to: dt.date,
    days_off: Sequence[dt.date] | None = None,
) -> Figure:
    """Stacked bars per day or week. ``days_off`` (a site's non-working days) are shaded in the
    daily chart; without them, weekends are."""
    import matplotlib.dates as mdates
    from matplotlib.patches import Patch
    from matplotlib.ticker import AutoLocator

    from sarcoma_sched.reports.style import figure

    fig = figure(11, 4.8)
    ax = fig.add_axes((0.07, 0.24, 0.91, 0.62))
    width = 0.8 if by == "day" else 5.6
    shift = 0.5 if by == "day" else 3.5  # bars sit in the middle of their day or week
    xs = [float(mdates.date2num(r[by])) + shift for r in rows]
    bottom = [0] * len(rows)
    used = [k for k in WORKLOAD_KINDS if any(r[k] for r in rows)]
    for kind in used:
        heights = [r[kind] for r in rows]
        ax.bar(
            xs,
            heights,
            width=width,
            bottom=bottom,
            color=KIND_COLOURS[kind],
            edgecolor="white",
            linewidth=0.4,
            label=KIND_LABELS[kind],
        )
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    if len(rows) <= 60:
        for x, total in zip(xs, bottom, strict=True):
            if total:
                ax.text(x, total, str(total), ha="center", va="bottom", fontsize=7)
    if by == "day":
        # Days off shaded: a site sees at a glance what lands on them (inpatient infusions do).
        if days_off is None:
            days_off = [
                date_from + dt.timedelta(days=i)
                for i in range((date_to - date_from).days + 1)
                if (date_from + dt.timedelta(days=i)).weekday() >= 5
            ]
        for off in days_off:
            start = float(mdates.date2num(off))
            ax.axvspan(start, start + 1, color="#ececec", zorder=0, linewidth=0)
    ax.set_xlim(
        float(mdates.date2num(_period(date_from, by))),
        float(mdates.date2num(_period(date_to, by))) + (1 if by == "day" else 7),
    )
    top = max(bottom, default=0)
    ax.set_ylim(0, max(top * 1.15, 1))
    counts = AutoLocator()  # the axis's default locator, on whole numbers: counts of days
    counts.set_params(integer=True)
    ax.yaxis.set_major_locator(counts)
    locator = mdates.AutoDateLocator(minticks=5, maxticks=14)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.tick_params(labelsize=8)
    ax.set_ylabel(f"event-days per {by}", fontsize=9)
    ax.grid(axis="y", color="#e3e3e3", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.text(0.01, 0.97, title, fontsize=12, fontweight="bold", va="top")
    fig.text(
        0.01,
        0.905,
        "Planned and done events; each RT fraction and infusion day counts on its own day; "
        "oral dosing at home is not counted.",
        fontsize=8.5,
        va="top",
        color="#444444",
    )
    handles = [Patch(color=KIND_COLOURS[k], label=KIND_LABELS[k]) for k in used]
    if by == "day":
        shaded = "weekend" if days_off is None else "non-working day (weekend, holiday, closure)"
        handles.append(Patch(color="#ececec", label=shaded))
    if handles:
        fig.legend(
            handles=handles,
            loc="lower left",
            bbox_to_anchor=(0.06, 0.01),
            ncol=min(len(handles), 6),
            fontsize=8,
            frameon=False,
        )
    if not top:
        ax.text(
            0.5,
            0.5,
            "no events in this period",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=10,
            color="#777777",
        )
    return fig


def workload_title(
    site: str | None, protocol: str | None, date_from: dt.date, date_to: dt.date, by: str
) -> str:
    where = f"site {site.upper()}" if site else "all sites"
    what = f"{protocol.upper()}" if protocol else "all trials"
    return f"Workload, {where}, {what}: {date_from} to {date_to}, by {by}"


def draw_workload(
    rows: Sequence[dict[str, Any]],
    path: Path,
    *,
    by: str,
    date_from: dt.date,
    date_to: dt.date,
    site: str | None = None,
    protocol: str | None = None,
    days_off: Sequence[dt.date] | None = None,
) -> Path:
    from sarcoma_sched.reports.style import save

    title = workload_title(site, protocol, date_from, date_to, by)
    fig = workload_figure(
        rows, by=by, title=title, date_from=date_from, date_to=date_to, days_off=days_off
    )
    return save(fig, path)
