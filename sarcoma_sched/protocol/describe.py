"""The protocol in words a coordinator recognises (used by ``protocol show``)."""

from __future__ import annotations

from sarcoma_sched.protocol.allocation import (
    AssignedAllocation,
    BlockAllocation,
    ConcealedAllocation,
    FixedAllocation,
    MinimizationAllocation,
)
from sarcoma_sched.protocol.model import Protocol
from sarcoma_sched.protocol.occurrences import Occurrence, occurrences
from sarcoma_sched.protocol.schedule import (
    ALLOCATION,
    Arm,
    Component,
    Event,
    EventRef,
    Repeat,
    Series,
    Span,
    Window,
)
from sarcoma_sched.protocol.screening import (
    AllRule,
    AnyRule,
    AttestationRule,
    FactRule,
    IfRule,
    InRule,
    NotInRule,
    RangeRule,
    Rule,
)
from sarcoma_sched.vocabulary import CriterionStage, EventKind

__all__ = ["describe_protocol", "describe_rule", "describe_timing", "ordinal"]


def describe_protocol(protocol: Protocol) -> str:
    s = protocol.study
    out: list[str] = []
    out.append(f"{s.id} — {s.title}")
    if s.variant_of:
        out.append(f"  VARIANT of {s.variant_of}: {s.variant_note or 'not the registered design'}")
    randomized = protocol.allocation.method in ("stratified_blocks", "minimization")
    design = "single arm" if s.design == "single_arm" else "parallel arms"
    design += ", randomized" if randomized else ", non-randomized"
    out.append(f"  registry {s.registry_id} · phase {s.phase} · {design}")
    out.append(f"  protocol version {s.version} · content {protocol.content_hash[:19]}")
    target = str(s.target_enrollment) if s.target_enrollment else "not stated in the registry"
    out.append(f"  target enrollment: {target}")
    if s.sponsor:
        out.append(f"  sponsor: {s.sponsor}")
    if s.status or s.end_date:
        bits = [b for b in (s.status, f"ends {s.end_date}" if s.end_date else "") if b]
        out.append(f"  status: {', '.join(bits)}")
    out.append(f"  calendar: {s.time_zone}, {_holidays(s.holiday_country, s.holiday_subdivision)}")
    out.append("")
    out.append(f"Sites ({len(protocol.sites)})")
    for site in protocol.sites:
        extra = []
        if site.time_zone:
            extra.append(site.time_zone)
        if site.holiday_country or site.holiday_subdivision:
            extra.append(
                _holidays(site.holiday_country or s.holiday_country, site.holiday_subdivision)
            )
        lead = " (lead)" if site.role == "lead" else ""
        where = f", {site.city}" if site.city else ""
        more = f" [{'; '.join(extra)}]" if extra else ""
        out.append(f"  {site.code:<8} {site.name}{where}{lead}{more}")
    out.append("")
    out.append(f"Allocation: {describe_allocation(protocol)}")
    for arm in protocol.arms:
        out.append("")
        out.extend(_describe_arm(arm))
    out.append("")
    out.extend(_describe_criteria(protocol))
    return "\n".join(out)


def _holidays(country: str, subdivision: str | None) -> str:
    where = f"{country}-{subdivision}" if subdivision else country
    return f"{where} public holidays and make-up working days"


def describe_allocation(protocol: Protocol) -> str:
    a = protocol.allocation
    if isinstance(a, FixedAllocation):
        return f"fixed — every eligible, consented patient receives arm {a.arm}"
    if isinstance(a, AssignedAllocation):
        reason = "; a reason is required" if a.reason_required else ""
        return (
            "assigned by the coordinator (non-randomized) — basis one of "
            f"{', '.join(a.bases)}{reason}"
        )
    ratio = ":".join(str(v) for v in a.ratio.values())
    arms = ":".join(a.ratio)
    if isinstance(a, ConcealedAllocation):
        design = "stratified permuted blocks" if a.design == "stratified_blocks" else "minimization"
        factors = ", ".join(a.factors) or "none"
        return (
            f"{design}, drawn by the server — ratio {arms} = {ratio}; factors: {factors}; "
            "its parameters are concealed from your role"
        )
    if isinstance(a, BlockAllocation):
        strata = " × ".join(a.strata) if a.strata else "none"
        sizes = ", ".join(str(n) for n in a.block_sizes)
        return (
            f"stratified permuted blocks — ratio {arms} = {ratio}; strata: {strata}; "
            f"block sizes drawn at random from {sizes}"
        )
    assert isinstance(a, MinimizationAllocation)
    factors = ", ".join(f"{f.field} (weight {f.weight:g})" for f in a.factors)
    return (
        f"Pocock–Simon minimization — ratio {arms} = {ratio}; factors: {factors}; "
        f"{a.imbalance} imbalance; the minimizing arm with probability {a.probability:g}, "
        "ties broken at random"
    )


def _describe_arm(arm: Arm) -> list[str]:
    out = [f"Arm {arm.id} — {arm.label}"]
    if arm.description:
        out.append(f"  {arm.description}")
    out.append(
        "  (study days are nominal: allocation is day 1, a month is 365.25/12 days, "
        "no working-day shift or delay)"
    )
    by_key = _labels(arm)
    of_key: dict[str, list[Occurrence]] = {}
    for o in occurrences(arm):
        of_key.setdefault(o.key, []).append(o)
    for i, e in enumerate(arm.events, 1):
        out.append(f"  {i}. {e.key} — {e.label} [{e.kind}]")
        out.extend(f"       {line}" for line in _describe_event(e, by_key, of_key))
    if arm.constraints:
        out.append("  Hard constraints:")
        for c in arm.constraints:
            gaps = []
            if c.min_days is not None or c.max_days is not None:
                gaps.append(_gap(c.min_days, c.max_days))
            if c.not_between is not None:
                gaps.append(f"not {c.not_between[0]} to {c.not_between[1]} days after")
            gap = " and ".join(gaps)
            out.append(f"    {c.id}: {_ref(c.to, by_key)} {gap} {_ref(c.from_, by_key)}")
            out.append(f"      ({c.description})")
    return out


def _labels(arm: Arm) -> dict[str, Event | Component]:
    found: dict[str, Event | Component] = {}
    for e in arm.events:
        found[e.key] = e
        for c in e.components:
            found[c.key] = c
    return found


def _cycle_of(items: dict[str, Event | Component], key: str) -> Event | None:
    """The repeated event whose cycles ``key`` follows (itself, or the event holding it)."""
    item = items.get(key)
    if isinstance(item, Event):
        return item if item.repeat is not None else None
    for e in items.values():
        if isinstance(e, Event) and e.repeat is not None and item in e.components:
            return e
    return None


def _ref(ref: EventRef, items: dict[str, Event | Component]) -> str:
    if ref.event == ALLOCATION:
        return "allocation"
    item = items.get(ref.event)
    cycle = _cycle_of(items, ref.event)
    if cycle is not None and cycle.repeat is not None and item is not None:
        # Coordinators say "C3D1": cycle number and protocol day (D1 = offset 0).
        n = cycle.repeat.count if ref.occurrence == "last" else 1
        first_day = item.timing.offset + 1 if isinstance(item, Component) else 1
        day = first_day if ref.point == "start" else first_day + item.span.days - 1
        if item is cycle:
            what = "D1" if ref.point == "start" else "last day"
            return f"C{n}D{day} ({what} of {ref.event} cycle {n})"
        what = "first" if ref.point == "start" else "last"
        return f"C{n}D{day} ({what} {ref.event} day of cycle {n})"
    if item is None or item.span.days == 1:
        return ref.event
    return f"the {'first' if ref.point == 'start' else 'last'} day of {ref.event}"


def _gap(lo: int | None, hi: int | None) -> str:
    if lo is not None and hi is not None:
        return f"{lo} to {hi} days after"
    if lo is not None:
        return f"at least {lo} days after"
    return f"at most {hi} days after"


def _days(n: int, what: str) -> str:
    if n == 0:
        return f"on the day of {what}"
    unit = "day" if abs(n) == 1 else "days"
    return f"{abs(n)} {unit} {'after' if n > 0 else 'before'} {what}"


def _signed(n: int) -> str:
    return f"+{n}" if n >= 0 else f"−{-n}"


def describe_timing(w: Window, what: str) -> list[str]:
    if w.window_counting == "working_days":
        window = (
            f"window the {ordinal(w.earliest)} … {ordinal(w.latest)} working day after {what} "
            "at the site (the target moves into it when it falls outside)"
        )
    elif w.earliest == w.latest:
        window = "no window"
    else:
        window = f"window {what} {_signed(w.earliest)} … {_signed(w.latest)} days"
    lines = [f"when: {_days(w.offset, what)}; {window}"]
    lines.append(f"day rule: {_day_rule(w.day_rule, w.shift)}")
    if w.time is not None:
        lines.append(f"time: {w.time.strftime('%H:%M')} local time at the site")
    return lines


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _day_rule(rule: str, shift: str) -> str:
    if rule == "any_day":
        return "any day"
    moves = {
        "forward": "moved to the next working day",
        "backward": "moved to the previous working day",
        "nearest": "moved to the nearest working day (earlier on a tie)",
    }
    return f"working days only; a non-working day is {moves[shift]}"


def _span(span: Span, kind: str) -> str | None:
    if span.days == 1:
        return None
    n = span.days
    if span.day_counting == "working_days":
        unit = "fractions" if kind == EventKind.RADIOTHERAPY else "days"
        return f"{n} {unit}, one per working day on consecutive working days"
    if span.show_as == "period":
        return f"D1–D{n} shown as one {n}-day period (not {n} visits)"
    return f"D1–D{n}: {n} consecutive calendar days"


def _repeat(r: Repeat) -> str:
    text = (
        f"{r.count} cycles; each next D1 {r.every} days after the previous D1 "
        f"(window +{r.earliest} … +{r.latest} days)"
    )
    if r.reason_required_after is not None:
        text += f"; more than {r.reason_required_after} days late needs a documented reason"
    return text


def _series(
    series: Series, items: dict[str, Event | Component], visits: list[Occurrence]
) -> list[str]:
    parts = []
    start = 0
    for phase in series.phases:
        n = (phase.until_months - start) // phase.every_months
        parts.append(
            f"every {phase.every_months} months to month {phase.until_months} "
            f"(±{phase.window_days} days, {n} visits)"
        )
        start = phase.until_months
    lines = [f"when: {', then '.join(parts)}, counted from {_ref(series.anchor, items)}"]
    lines.append(f"visits: {len(visits)} in all")
    if series.landmarks_months:
        months = ", ".join(str(m) for m in series.landmarks_months)
        lines.append(f"landmark assessments: months {months}")
    lines.append(f"day rule: {_day_rule(series.day_rule, series.shift)}")
    return lines


def _when(occs: list[Occurrence]) -> str:
    """Which occurrences the planner makes of an event and their nominal study days."""
    if len(occs) == 1:
        return f"occurs: {occs[0].id} on study day {occs[0].study_day}"
    # A long follow-up series reads well enough from its first two visits and its last.
    shown: list[Occurrence | None] = [*occs] if len(occs) <= 4 else [*occs[:2], None, occs[-1]]
    ids = ", ".join("…" if o is None else o.id for o in shown)
    days = ", ".join("…" if o is None else str(o.study_day) for o in shown)
    return f"occurs: {ids} on study days {days}"


def _describe_event(
    e: Event, items: dict[str, Event | Component], of_key: dict[str, list[Occurrence]]
) -> list[str]:
    lines: list[str] = []
    if e.description:
        lines.append(e.description)
    if e.timing is not None:
        what = _ref(e.timing.anchor, items)
        timing = describe_timing(e.timing, what)
        if e.repeat:
            timing[0] = timing[0].replace("when:", "cycle 1:", 1)
        lines.append(timing[0])
        lines.extend(timing[1:])
    if e.series is not None:
        lines.extend(_series(e.series, items, of_key[e.key]))
    if (span := _span(e.span, e.kind)) is not None:
        lines.append(f"days: {span}")
    if e.repeat is not None:
        lines.append(f"repeat: {_repeat(e.repeat)}")
    lines.append(_when(of_key[e.key]))
    for c in e.components:
        per = "each cycle" if e.repeat else "with it"
        lines.append(f"{per}: {c.key} — {c.label} [{c.kind}]")
        for line in describe_timing(c.timing, "D1"):
            lines.append(f"  {line}")
        if (span := _span(c.span, c.kind)) is not None:
            lines.append(f"  days: {span}")
        lines.append(f"  {_when(of_key[c.key])}")
    return lines


def _describe_criteria(protocol: Protocol) -> list[str]:
    out = [f"Eligibility ({len(protocol.criteria)} criteria; each rule is what must hold to pass)"]
    for c in protocol.criteria:
        stage = " [checked after allocation]" if c.stage == CriterionStage.POST_ALLOCATION else ""
        out.append(f"  {c.id} {c.text}{stage}")
        out.append(f"         pass if: {describe_rule(c.rule)}")
    return out


def describe_rule(rule: Rule) -> str:
    if isinstance(rule, RangeRule):
        if rule.min is not None and rule.max is not None:
            return f"{rule.field} between {rule.min:g} and {rule.max:g}"
        if rule.min is not None:
            return f"{rule.field} ≥ {rule.min:g}"
        return f"{rule.field} ≤ {rule.max:g}"
    if isinstance(rule, InRule):
        if len(rule.values) == 1:
            return f"{rule.field} is {rule.values[0]}"
        return f"{rule.field} is one of {', '.join(rule.values)}"
    if isinstance(rule, NotInRule):
        return f"{rule.field} is none of {', '.join(rule.values)}"
    if isinstance(rule, FactRule):
        return f"{rule.field} is {'yes' if rule.expected else 'no'}"
    if isinstance(rule, AttestationRule):
        return f"{rule.field} affirmed"
    if isinstance(rule, IfRule):
        return f"if {describe_rule(rule.when)} then {describe_rule(rule.then)}"
    joiner = " and " if isinstance(rule, AllRule) else " or "
    assert isinstance(rule, AllRule | AnyRule)
    return "(" + joiner.join(describe_rule(r) for r in rule.rules) + ")"
