"""One patient's schedule as a Gantt chart (``draw_timeline``), from the data
``services.queries.patient_timeline`` reads.

One row per planned occurrence (``rt``, ``ai.2``, ``follow_up.m12``) in date order. The
protocol window is the pale band, the days the event occupies are the bar (solid once done,
light while planned, hollow when missed or skipped, grey when cancelled), the recorded actual
date is a black diamond, a deviation is outlined in red with its row label in red, and dashed
lines mark allocation, a withdrawal or exclusion, and today.

A five-year follow-up would squash the treatment months into a sliver, so by default the chart
covers the treatment phase and what is due soon: from the first event to 120 days after the
later of today and the last event that is not a follow-up visit. Later events are counted in
a note; ``date_from``/``date_to`` choose another range.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sarcoma_sched.reports.style import DEVIATION, KIND_COLOURS, KIND_LABELS
from sarcoma_sched.vocabulary import NOT_HAPPENED, EventStatus

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from sarcoma_sched.services.queries.timeline import PatientTimeline, TimelineEvent

__all__ = [
    "days_shown_locator",
    "draw_timeline",
    "months_shown",
    "range_formatter",
    "timeline_figure",
]

ONE_DAY = dt.timedelta(days=1)


def _runs(days: tuple[dt.date, ...]) -> list[tuple[dt.date, int]]:
    """Consecutive days as (first day, length): RT over a weekend is two bars, not one."""
    runs: list[tuple[dt.date, int]] = []
    for day in sorted(days):
        if runs and runs[-1][0] + dt.timedelta(days=runs[-1][1]) == day:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((day, 1))
    return runs


def _row_label(e: TimelineEvent) -> str:
    label = e.label
    # The occurrence id already says the cycle or month; keep the label short.
    for tail in (" (cycle ", ", month "):
        if tail in label:
            label = label.split(tail)[0]
    label = label.split(":")[0].split(" (")[0]
    if len(label) > 30:
        label = label[:29].rstrip() + "…"
    return f"{e.event_id}  {label}"


def months_shown(start: dt.date, end: dt.date) -> str:
    """The month, or first and last month, of the days ``start`` to ``end`` ("2026-Dec",
    "2026-Dec – 2027-Feb"): the caption under a date axis."""
    first, last = start.strftime("%Y-%b"), end.strftime("%Y-%b")
    return first if first == last else f"{first} – {last}"


def days_shown_locator(stop: float) -> Any:
    """matplotlib's automatic date ticks, less any at or after ``stop``: the axis ends at the
    midnight after the last day shown, and a tick there ("Jan" on a December chart) names a
    day the chart does not cover."""
    import matplotlib.dates as mdates

    class DaysShownLocator(mdates.AutoDateLocator):
        def __call__(self) -> Any:
            return [t for t in super().__call__() if t < stop]

    return DaysShownLocator(minticks=5, maxticks=12)


def range_formatter(locator: Any, start: dt.date, end: dt.date) -> Any:
    """Concise tick labels (day numbers, month names at month starts, years at January),
    captioned with the months shown.

    matplotlib's ``ConciseDateFormatter`` captions the axis with the date of its *last tick*,
    and the last tick of a chart drawn to 31 December sits on the 1 January boundary after it:
    a December schedule was captioned "2027-Jan", and its first months carried no year at all.
    """
    import matplotlib.dates as mdates

    class RangeFormatter(mdates.ConciseDateFormatter):
        def get_offset(self) -> str:
            return months_shown(start, end)

    return RangeFormatter(locator)


def timeline_figure(
    timeline: PatientTimeline,
    today: dt.date,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> Figure:
    import matplotlib.dates as mdates
    from matplotlib.artist import Artist
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from sarcoma_sched.reports.style import figure

    start, end = timeline.default_range(today)
    start = date_from or start
    end = date_to or end
    if end <= start:
        end = start + dt.timedelta(days=30)
    shown = [e for e in timeline.events if e.last >= start and e.first <= end]
    later = [e for e in timeline.events if e.first > end]
    earlier = [e for e in timeline.events if e.last < start]

    rows = max(len(shown), 1)
    height = 1.7 + 0.24 * rows + 0.9
    fig = figure(11.5, height)
    top = 1 - 0.95 / height
    bottom = 1.15 / height
    ax = fig.add_axes((0.27, bottom, 0.71, top - bottom))

    def x(day: dt.date) -> float:
        return float(mdates.date2num(day))

    # Points per day on the x axis, to know when a bar is too thin to see.
    day_width = 11.5 * 0.71 * 72 / max((end - start).days + 1, 1)

    deviation_rows = []
    for i, e in enumerate(shown):
        colour = KIND_COLOURS.get(e.kind, "#555555")
        ax.barh(
            i,
            x(e.latest + ONE_DAY) - x(e.earliest),
            left=x(e.earliest),
            height=0.78,
            color=colour,
            alpha=0.16,
            linewidth=0,
        )
        face, alpha, edge, style = colour, 0.45, colour, "solid"
        if e.status == EventStatus.DONE:
            alpha = 1.0
        elif e.status in NOT_HAPPENED:
            face, alpha, edge, style = "white", 1.0, DEVIATION, "dashed"
        elif e.status == EventStatus.CANCELLED:
            face, alpha, edge = "#c8c8c8", 1.0, "#9a9a9a"
        if e.deviation:
            edge = DEVIATION
            deviation_rows.append(i)
        for first, length in _runs(e.days):
            ax.barh(i, length, left=x(first), height=0.5, color=face, alpha=alpha, linewidth=0)
            ax.barh(
                i,
                length,
                left=x(first),
                height=0.5,
                fill=False,
                edgecolor=edge,
                linewidth=1.6 if e.deviation else 0.6,
                linestyle=style,
            )
            if length * day_width < 5:
                # A one-day visit over months is a hairline: give it a visible mark.
                ax.plot(
                    x(first) + length / 2,
                    i,
                    marker="s",
                    markersize=6.5,
                    linestyle="none",
                    markerfacecolor=face,
                    alpha=alpha if face != "white" else 1.0,
                    markeredgecolor=edge,
                    markeredgewidth=1.4 if e.deviation else 0.5,
                )
        # The target day: a short tick, so a late or moved event shows where it was due.
        ax.plot([x(e.target) + 0.5] * 2, [i - 0.39, i + 0.39], color="#222222", lw=0.8)
        if e.actual_date is not None:
            ax.plot(
                x(e.actual_date) + 0.5,
                i,
                marker="D",
                color="black",
                markersize=4.5,
                markeredgecolor="white",
                markeredgewidth=0.6,
                zorder=5,
            )
        note = e.status if e.status in NOT_HAPPENED else "rescheduled" if e.pinned else ""
        if note:
            ax.text(
                x(max((*e.days, e.target))) + 2,
                i,
                note,
                va="center",
                fontsize=7,
                color=DEVIATION if note != "rescheduled" else "#333333",
            )

    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_yticks(range(len(shown)))
    ax.set_yticklabels([_row_label(e) for e in shown], fontsize=8)
    for i, tick in enumerate(ax.get_yticklabels()):
        if i in deviation_rows:
            tick.set_color(DEVIATION)
            tick.set_fontweight("bold")
    ax.set_xlim(x(start), x(end + ONE_DAY))
    locator = days_shown_locator(x(end + ONE_DAY))
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(range_formatter(locator, start, end))
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)

    marks = []
    if timeline.allocation_date and start <= timeline.allocation_date <= end:
        marks.append((timeline.allocation_date, "allocation", "#555555", ":"))
    if timeline.ended and start <= timeline.ended[1] <= end:
        kind, day, _ = timeline.ended
        marks.append((day, f"{kind} {day}", DEVIATION, "--"))
    if start <= today <= end:
        marks.append((today, f"today {today}", "#1f5fbf", "--"))
    # Labels of nearby lines would overprint each other: stack them instead.
    levels: list[float] = []
    for day, text, colour, style in sorted(marks):
        ax.axvline(x(day) + 0.5, color=colour, linestyle=style, linewidth=1.2, zorder=6)
        level = 0
        while level < len(levels) and x(day) - levels[level] < 95 / day_width:
            level += 1
        levels[level : level + 1] = [x(day)]
        ax.annotate(
            text,
            xy=(x(day) + 0.5, 1),
            xycoords=("data", "axes fraction"),
            xytext=(3, 3 + 11 * level),
            textcoords="offset points",
            color=colour,
            fontsize=7.5,
            va="bottom",
            ha="left",
            annotation_clip=False,
        )

    arm = f", arm {timeline.arm}" if timeline.arm else ""
    fig.text(
        0.01,
        1 - 0.12 / height,
        f"{timeline.study_id}: schedule",
        fontsize=12,
        fontweight="bold",
        va="top",
    )
    subtitle = f"{timeline.protocol_id}{arm}, site {timeline.site}"
    if timeline.allocation_date:
        subtitle += f", allocated {timeline.allocation_date}"
    if timeline.ended:
        kind, day, reason = timeline.ended
        subtitle += f"; {kind} {day}: {reason}"
    fig.text(0.01, 1 - 0.4 / height, subtitle, fontsize=9, va="top", color="#333333")

    kinds = [k for k in KIND_COLOURS if any(e.kind == k for e in shown)]
    handles: list[Artist] = [Patch(color=KIND_COLOURS[k], label=KIND_LABELS[k]) for k in kinds]
    handles += [
        Patch(facecolor="#888888", alpha=0.18, label="window"),
        Patch(facecolor="#888888", alpha=0.45, label=EventStatus.PLANNED),
        Patch(facecolor="#888888", label=EventStatus.DONE),
        Line2D(
            [], [], color="black", marker="D", linestyle="none", markersize=4.5, label="actual date"
        ),
        Line2D([], [], color="#222222", marker="|", linestyle="none", markersize=8, label="target"),
        Patch(facecolor="white", edgecolor=DEVIATION, linewidth=1.6, label="deviation"),
        Patch(facecolor="#c8c8c8", edgecolor="#9a9a9a", label=EventStatus.CANCELLED),
    ]
    fig.legend(
        handles=handles,
        loc="lower left",
        bbox_to_anchor=(0.01, 0.005),
        ncol=(len(handles) + 1) // 2,
        fontsize=7.5,
        frameon=False,
        handlelength=1.4,
        columnspacing=1.2,
    )
    notes = []
    if earlier:
        notes.append(f"{len(earlier)} earlier event(s) not shown")
    if later:
        notes.append(f"{len(later)} later event(s) to {max(e.first for e in later)} not shown")
    if not timeline.events:
        notes.append("no scheduled events")
    if notes:
        fig.text(
            0.99,
            0.62 / height,
            "; ".join(notes) + " (choose --from/--to)",
            ha="right",
            fontsize=7.5,
            color="#555555",
        )
    return fig


def draw_timeline(
    timeline: PatientTimeline,
    path: Path,
    *,
    today: dt.date,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> Path:
    from sarcoma_sched.reports.style import save

    return save(timeline_figure(timeline, today, date_from, date_to), path)
