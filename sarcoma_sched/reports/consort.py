"""The CONSORT participant flow of one trial drawn as the diagram (``draw_consort``) or laid
out as rows (``consort_rows``), from the numbers ``services.queries.consort_flow`` counts.

What each box counts (assessed, excluded, received, discontinued, analysed) is defined once,
where it is counted: ``services.queries.consort``; the diagram prints those definitions.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sarcoma_sched.reports.style import NBSP, FontStyle, text_width, wrap_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from sarcoma_sched.services.queries.consort import ArmFlow, ConsortFlow

__all__ = ["consort_figure", "consort_rows", "draw_consort"]

METHOD_LABELS = {
    "fixed": "single arm, fixed allocation",
    "assigned": "arm assigned, not randomized",
    "stratified_blocks": "stratified permuted blocks",
    "minimization": "minimization",
}


def consort_rows(flow: ConsortFlow) -> list[dict[str, Any]]:
    """The flow as rows (stage, arm, item, n) for a table, CSV or JSON."""
    rows: list[dict[str, Any]] = []

    def add(stage: str, item: str, n: int | str, arm: str = "") -> None:
        rows.append({"stage": stage, "arm": arm, "item": item, "n": n})

    add("enrollment", "assessed for eligibility", flow.assessed)
    add("enrollment", "excluded", flow.excluded)
    add("enrollment", "not meeting eligibility criteria", flow.not_eligible)
    for cid, n in sorted(flow.failed.items()):
        add("enrollment", f"failed {cid}", n)
    add("enrollment", "screening incomplete", flow.incomplete)
    for cid, n in sorted(flow.missing.items()):
        add("enrollment", f"value missing for {cid}", n)
    add("enrollment", "eligible, not allocated", flow.eligible_not_allocated)
    add("enrollment", "screenings voided (not counted)", flow.voided)
    add("allocation", "randomized" if flow.randomized else "allocated", flow.allocated)
    for a in flow.arms:
        add("allocation", "allocated", a.allocated, a.arm)
        for basis, n in sorted(a.by_basis.items()):
            add("allocation", f"assigned by {basis}", n, a.arm)
        add("allocation", "received allocated intervention", a.received, a.arm)
        add("allocation", "did not receive allocated intervention", a.did_not_receive, a.arm)
        for reason, n in sorted(a.not_received.items()):
            add("allocation", f"did not receive: {reason}", n, a.arm)
        add("follow-up", "lost to follow-up", "not recorded", a.arm)
        add("follow-up", "discontinued", a.discontinued, a.arm)
        for reason, n in sorted(a.withdrawn.items()):
            add("follow-up", f"withdrawn: {reason}", n, a.arm)
        for reason, n in sorted(a.excluded.items()):
            add("follow-up", f"excluded after allocation: {reason}", n, a.arm)
        add("analysis", "analysed (intention to treat)", a.analysed, a.arm)
        add("analysis", "excluded from analysis", 0, a.arm)
    return rows


# --- drawing ----------------------------------------------------------------------------------

FONT = 9.0
LINE = FONT * 1.32 / 72  # inches per text line
PAD = 0.09
ARM_W = 3.45
ARM_GAP = 0.35
EXCL_W = 3.3
SPINE_W = 2.7
LEFT = 0.62  # the stage labels live left of this
FOOT = 7.5

Line = tuple[str, str]  # (text, style): "head", "text", "item", "sub", "note"


def _n(n: int) -> str:
    # No-break spaces: a count never splits across lines.
    return f"(n{NBSP}={NBSP}{n})"


# style: (weight, font style, first-line indent, continuation indent)
STYLES: dict[str, tuple[str, FontStyle, str, str]] = {
    "head": ("bold", "normal", "", ""),
    "text": ("normal", "normal", "", ""),
    "note": ("normal", "italic", "", ""),
    "item": ("normal", "normal", "• ", "   "),
    "sub": ("normal", "normal", "     ", "       "),
}


def _wrap(lines: list[Line], width: float) -> list[Line]:
    out: list[Line] = []
    for text, style in lines:
        weight, font_style, indent, follow = STYLES[style]
        wrapped = wrap_text(
            text,
            width - 2 * PAD,
            FONT,
            weight=weight,
            style=font_style,
            indent=indent,
            follow=follow,
        )
        out.extend((w, style) for w in wrapped)
    return out


def _short(text: str, chars: int) -> str:
    """At most ``chars`` characters, cut at a word boundary."""
    if len(text) <= chars:
        return text
    return text[: chars - 1].rsplit(" ", 1)[0].rstrip(" ,;:") + "…"


def _assessed_lines(flow: ConsortFlow) -> list[Line]:
    lines: list[Line] = [(f"Assessed for eligibility {_n(flow.assessed)}", "head")]
    if flow.voided:
        # Recorded by mistake and voided: shown so the counts reconcile with the screening log.
        lines.append((f"Voided screenings, not counted {_n(flow.voided)}", "note"))
    return lines


def _excluded_lines(flow: ConsortFlow) -> list[Line]:
    lines: list[Line] = [(f"Excluded {_n(flow.excluded)}", "head")]
    lines.append((f"Not meeting eligibility criteria {_n(flow.not_eligible)}", "item"))
    for cid, n in sorted(flow.failed.items()):
        text = _short(flow.criteria_text.get(cid, ""), 44)
        lines.append((f"{cid} {_n(n)}{': ' + text if text else ''}", "sub"))
    if flow.incomplete:
        lines.append((f"Screening incomplete {_n(flow.incomplete)}", "item"))
        for cid, n in sorted(flow.missing.items()):
            lines.append((f"{cid} not decided, value missing {_n(n)}", "sub"))
    if flow.eligible_not_allocated:
        lines.append((f"Eligible, not allocated {_n(flow.eligible_not_allocated)}", "item"))
    return lines


def _allocation_lines(flow: ConsortFlow) -> list[Line]:
    head = "Randomized" if flow.randomized else "Allocated"
    return [
        (f"{head} {_n(flow.allocated)}", "head"),
        (METHOD_LABELS.get(flow.method, flow.method), "note"),
    ]


def _arm_lines(arm: ArmFlow) -> list[Line]:
    lines: list[Line] = [(f"Allocated to {arm.arm} {_n(arm.allocated)}", "head")]
    if arm.label != arm.arm:
        lines.append((arm.label, "note"))
    for basis, n in sorted(arm.by_basis.items()):
        lines.append((f"Assigned by {basis} {_n(n)}", "item"))
    lines.append((f"Received allocated intervention {_n(arm.received)}", "item"))
    lines.append((f"Did not receive allocated intervention {_n(arm.did_not_receive)}", "item"))
    for reason, n in sorted(arm.not_received.items()):
        lines.append((f"{reason} {_n(n)}", "sub"))
    return lines


def _follow_up_lines(arm: ArmFlow) -> list[Line]:
    lines: list[Line] = [("Lost to follow-up: not recorded", "head")]
    lines.append((f"Discontinued {_n(arm.discontinued)}", "item"))
    withdrawn = sum(arm.withdrawn.values())
    lines.append((f"withdrawn {_n(withdrawn)}", "sub"))
    for reason, n in sorted(arm.withdrawn.items()):
        lines.append((f"– {reason} {_n(n)}", "sub"))
    excluded = sum(arm.excluded.values())
    lines.append((f"excluded after allocation {_n(excluded)}", "sub"))
    for reason, n in sorted(arm.excluded.items()):
        lines.append((f"– {reason} {_n(n)}", "sub"))
    return lines


def _analysis_lines(arm: ArmFlow) -> list[Line]:
    return [
        (f"Analysed {_n(arm.analysed)}", "head"),
        ("intention to treat: every allocated patient", "note"),
        (f"Excluded from analysis {_n(0)}", "item"),
    ]


FOOTNOTE = (
    "Counts from the schedule database; the latest screening of each patient counts (a voided "
    "screening never does), and a "
    "patient failing several criteria is counted under each. Received = at least one of the "
    "arm's treatment events (radiotherapy, infusion, oral, surgery) recorded done. Lost to "
    "follow-up is not a status the engine records (missed visits are deviations). Withdrawn and "
    "excluded patients stay in the analysis (intention to treat)."
)


@dataclass
class _Box:
    x: float
    y: float
    w: float
    lines: list[Line]

    @property
    def h(self) -> float:
        return len(self.lines) * LINE + 2 * PAD

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def bottom(self) -> float:
        return self.y + self.h


def consort_figure(flow: ConsortFlow, *, as_of: str | None = None) -> Figure:
    k = max(1, len(flow.arms))
    content_w = k * ARM_W + (k - 1) * ARM_GAP
    spine = LEFT + content_w / 2
    width = max(LEFT + content_w + 0.25, spine + 0.35 + EXCL_W + 0.25)

    y = 0.2
    title_y = y
    y += 0.55
    stages: list[tuple[str, float, float]] = []

    enrol_top = y
    assessed = _Box(
        spine - SPINE_W / 2,
        y,
        SPINE_W,
        _wrap(_assessed_lines(flow), SPINE_W),
    )
    y = assessed.bottom + 0.25
    excluded = _Box(spine + 0.35, y, EXCL_W, _wrap(_excluded_lines(flow), EXCL_W))
    y = excluded.bottom + 0.25
    allocation = _Box(spine - SPINE_W / 2, y, SPINE_W, _wrap(_allocation_lines(flow), SPINE_W))
    stages.append(("Enrollment", enrol_top, allocation.bottom))

    y = allocation.bottom + (0.45 if k > 1 else 0.3)
    rows: list[list[_Box]] = []
    for name, make in (
        ("Allocation", _arm_lines),
        ("Follow-up", _follow_up_lines),
        ("Analysis", _analysis_lines),
    ):
        boxes = [
            _Box(LEFT + i * (ARM_W + ARM_GAP), y, ARM_W, _wrap(make(arm), ARM_W))
            for i, arm in enumerate(flow.arms)
        ]
        tallest = max((b.h for b in boxes), default=LINE)
        stages.append((name, y, y + tallest))
        rows.append(boxes)
        y += tallest + 0.3
    foot_lines = wrap_text(
        FOOTNOTE + (f" As of {as_of}." if as_of else ""), width - LEFT - 0.2, FOOT
    )
    foot_y = y
    height = y + len(foot_lines) * LINE * FOOT / FONT + 0.2

    from matplotlib.patches import FancyBboxPatch

    from sarcoma_sched.reports.style import figure

    fig = figure(width, height)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")

    title = f"CONSORT flow: {flow.protocol_id} ({flow.registry_id})"
    ax.text(LEFT, title_y, title, fontsize=12, fontweight="bold", va="top")
    ax.text(LEFT, title_y + 0.24, _short(flow.title, 110), fontsize=8, va="top", color="#444")

    for name, top, bottom in stages:
        ax.add_patch(
            FancyBboxPatch(
                (0.12, top),
                0.3,
                bottom - top,
                boxstyle="round,pad=0,rounding_size=0.06",
                facecolor="#a9cce3",
                edgecolor="none",
            )
        )
        ax.text(
            0.27,
            (top + bottom) / 2,
            name,
            rotation=90,
            ha="center",
            va="center",
            fontsize=9,
            fontweight="bold",
        )

    def draw_box(box: _Box, height: float | None = None) -> None:
        ax.add_patch(
            FancyBboxPatch(
                (box.x, box.y),
                box.w,
                height or box.h,
                boxstyle="square,pad=0",
                facecolor="white",
                edgecolor="#333333",
                linewidth=0.9,
            )
        )
        for i, (text, style) in enumerate(box.lines):
            weight, font_style, _, _ = STYLES[style]
            # An indent is a position, not leading spaces: viewers that collapse whitespace
            # (browsers ignoring xml:space, editors) would pull the line back to the margin.
            body = text.lstrip(" ")
            indent = text_width(text[: len(text) - len(body)], FONT, weight, font_style)
            if style == "item" and not body.startswith("•"):
                # A hanging indent: a bullet's continuation lines start under its text.
                indent = text_width("• ", FONT, weight, font_style)
            ax.text(
                box.x + PAD + indent,
                box.y + PAD + i * LINE,
                body,
                va="top",
                ha="left",
                fontsize=FONT,
                fontweight=weight,
                fontstyle=font_style,
                color="#444444" if style == "note" else "black",
            )

    def arrow(x0: float, y0: float, x1: float, y1: float) -> None:
        ax.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            arrowprops={
                "arrowstyle": "-|>",
                "color": "#333333",
                "lw": 0.9,
                "shrinkA": 0,
                "shrinkB": 0,
                "mutation_scale": 10,
            },
        )

    def line(x0: float, y0: float, x1: float, y1: float) -> None:
        ax.plot([x0, x1], [y0, y1], color="#333333", lw=0.9, solid_capstyle="butt")

    draw_box(assessed)
    draw_box(excluded)
    draw_box(allocation)
    arrow(spine, assessed.bottom, spine, allocation.y)
    mid = excluded.y + min(excluded.h / 2, 0.25)
    arrow(spine, mid, excluded.x, mid)

    first = rows[0]
    if len(first) == 1:
        arrow(spine, allocation.bottom, first[0].cx, first[0].y)
    elif first:
        split = allocation.bottom + 0.2
        line(spine, allocation.bottom, spine, split)
        line(first[0].cx, split, first[-1].cx, split)
        for box in first:
            arrow(box.cx, split, box.cx, box.y)
    for upper, lower in itertools.pairwise(rows):
        row_h = max(b.h for b in upper)
        for top_box, bottom_box in zip(upper, lower, strict=True):
            arrow(top_box.cx, top_box.y + row_h, bottom_box.cx, bottom_box.y)
    for row in rows:
        row_h = max((b.h for b in row), default=0)
        for box in row:
            draw_box(box, row_h)

    for i, text in enumerate(foot_lines):
        ax.text(
            LEFT, foot_y + i * LINE * FOOT / FONT, text, fontsize=FOOT, va="top", color="#444444"
        )
    return fig


def draw_consort(flow: ConsortFlow, path: Path, *, as_of: str | None = None) -> Path:
    """Draw the flow diagram to ``path`` (.svg or .png)."""
    from sarcoma_sched.reports.style import save

    return save(consort_figure(flow, as_of=as_of), path)
