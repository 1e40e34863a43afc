"""An arm expanded into its occurrences: the one expansion the planner, ``protocol show`` and
the SDTM trial design all read.

An event happens once (``rt``), once per cycle (``ai.1`` … ``ai.3``, each cycle with its
components: ``labs.1`` …) or once per follow-up visit (``follow_up.m3`` …). Which occurrences an
arm has, their ids and labels, and what each is timed from never depend on dates, so they are
worked out here, once; the planner only chooses the dates, and SDTM lays the same occurrences
out on the nominal study clock.

The order is the order the planner places them in: every occurrence after the one it is timed
from (the arm's events in their order, each after its anchor, depth first; a repeated event
cycle by cycle, each cycle followed by its components). Plans are stored in this order and an
occurrence's place in it identifies it for good, so it must not change.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sarcoma_sched.protocol.schedule import ALLOCATION, Arm, Component, Event, EventRef, Span

__all__ = [
    "DAYS_PER_MONTH",
    "Anchor",
    "Nominal",
    "Occurrence",
    "anchor_order",
    "occurrences",
    "study_day",
]

# The nominal clock counts a month as a twelfth of the mean Gregorian year, as SDTM visit days
# do; the planner itself adds calendar months (31 Jan + 1 month = 28/29 Feb).
DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True, slots=True)
class Anchor:
    """The point an occurrence is timed from: allocation, or a day of an earlier occurrence."""

    index: int | None  # that occurrence's place in the arm's order; None for allocation
    id: str  # that occurrence's id, or "allocation"
    start: bool  # from its first day (else its last); True for allocation

    def __str__(self) -> str:
        if self.index is None:
            return ALLOCATION
        return f"{'start' if self.start else 'end'} of {self.id}"


@dataclass(frozen=True, slots=True)
class Nominal:
    """Days from allocation before any working-day shift or delay: each occurrence timed from
    its anchor's nominal day, months as ``DAYS_PER_MONTH`` days, a span counted in calendar
    days (no weekend is known here)."""

    start: int
    end: int
    earliest: int
    latest: int


@dataclass(frozen=True, slots=True)
class Occurrence:
    id: str  # "rt", "ai.2", "labs.2", "follow_up.m12"
    key: str  # the protocol's event or component key
    event: str  # the arm's event it belongs to: its own key, or the event whose component it is
    kind: str
    label: str  # "Doxorubicin + ifosfamide (cycle 2)", "Follow-up, month 12"
    cycle: int | None  # the cycle of a repeated event (and of its components)
    month: int | None  # a follow-up visit's month on its series' clock
    landmark: bool  # a follow-up visit the protocol marks as a landmark assessment
    anchor: Anchor
    # The target is ``months`` calendar months and then ``offset`` days after the anchor, the
    # window ``earliest`` … ``latest`` days from the same point (for a follow-up visit: ``months``
    # from the series' anchor, then ± its phase's window around the target).
    months: int
    offset: int
    earliest: int
    latest: int
    # earliest and latest count the site's working days after the anchor (not calendar days).
    window_working: bool
    day_rule: str
    shift: str
    time: dt.time | None
    span: Span
    nominal: Nominal

    @property
    def calendar_label(self) -> str:
        """The label a patient's calendar and the schedule show."""
        return f"{self.label} (landmark)" if self.landmark else self.label

    @property
    def study_day(self) -> int:
        """The nominal start as an SDTM study day."""
        return study_day(self.nominal.start)


def study_day(offset: int) -> int:
    """SDTM study day of a nominal offset from allocation: allocation is day 1, no day 0."""
    return offset + 1 if offset >= 0 else offset


def occurrences(arm: Arm) -> tuple[Occurrence, ...]:
    """Every occurrence of ``arm``, in the order the planner places them."""
    out: list[Occurrence] = []
    placed: dict[str, list[int]] = {}  # key → places of its occurrences so far

    def anchor_of(ref: EventRef) -> Anchor:
        if ref.event == ALLOCATION:
            return Anchor(None, ALLOCATION, True)
        places = placed[ref.event]
        index = places[0] if ref.occurrence == "first" else places[-1]
        return Anchor(index, out[index].id, ref.point == "start")

    def nominal_day(anchor: Anchor) -> int:
        if anchor.index is None:
            return 0
        n = out[anchor.index].nominal
        return n.start if anchor.start else n.end

    def add(
        item: Event | Component,
        event: Event,
        occurrence_id: str,
        label: str,
        cycle: int | None,
        anchor: Anchor,
        window: tuple[int, int, int],
        rule: tuple[str, str, dt.time | None],
        month: int | None = None,
        landmark: bool = False,
        working: bool = False,
    ) -> None:
        offset, earliest, latest = window
        base = nominal_day(anchor)
        if month:
            base += round(month * DAYS_PER_MONTH)
        # The nominal clock knows no weekend: a working-day window counts 7 days per 5.
        low, high = (_nominal_days(earliest), _nominal_days(latest)) if working else window[1:]
        start = base + min(max(offset, low), high)
        out.append(
            Occurrence(
                id=occurrence_id,
                key=item.key,
                event=event.key,
                kind=item.kind,
                label=label,
                cycle=cycle,
                month=month,
                landmark=landmark,
                anchor=anchor,
                months=month or 0,
                offset=offset,
                earliest=earliest,
                latest=latest,
                window_working=working,
                day_rule=rule[0],
                shift=rule[1],
                time=rule[2],
                span=item.span,
                nominal=Nominal(start, start + item.span.days - 1, base + low, base + high),
            )
        )
        placed.setdefault(item.key, []).append(len(out) - 1)

    for event in anchor_order(arm):
        series = event.series
        if series is not None:
            anchor = anchor_of(series.anchor)
            landmarks = set(series.landmarks_months)
            month = 0
            for phase in series.phases:
                days = phase.window_days
                while month + phase.every_months <= phase.until_months:
                    month += phase.every_months
                    add(
                        event,
                        event,
                        f"{event.key}.m{month}",
                        f"{event.label}, month {month}",
                        None,
                        anchor,
                        (0, -days, days),
                        (series.day_rule, series.shift, None),
                        month=month,
                        landmark=month in landmarks,
                    )
            continue
        timing = event.timing
        assert timing is not None
        rule = (timing.day_rule, timing.shift, timing.time)
        repeat = event.repeat
        for n in range(1, (repeat.count if repeat else 1) + 1):
            working = False
            if n == 1:
                anchor = anchor_of(timing.anchor)
                window = (timing.offset, timing.earliest, timing.latest)
                working = timing.window_counting == "working_days"
            else:
                assert repeat is not None
                # Cycle n+1 is timed from cycle n's D1 as it turns out (so delays chain).
                anchor = Anchor(placed[event.key][-1], out[placed[event.key][-1]].id, True)
                window = (repeat.every, repeat.earliest, repeat.latest)
            cycle = n if repeat else None
            suffix = f".{n}" if repeat else ""
            label = f"{event.label} (cycle {n})" if repeat else event.label
            add(
                event,
                event,
                event.key + suffix,
                label,
                cycle,
                anchor,
                window,
                rule,
                working=working,
            )
            d1 = placed[event.key][-1]
            cycle_start = Anchor(d1, out[d1].id, True)
            for component in event.components:
                t = component.timing
                add(
                    component,
                    event,
                    component.key + suffix,
                    f"{component.label} (cycle {n})" if repeat else component.label,
                    cycle,
                    cycle_start,
                    (t.offset, t.earliest, t.latest),
                    (t.day_rule, t.shift, t.time),
                )
    return tuple(out)


def _nominal_days(working_days: int) -> int:
    return round(working_days * 7 / 5)


def anchor_order(arm: Arm) -> list[Event]:
    """The arm's events ordered so that each comes after every event it is timed from."""
    owner = {c.key: e.key for e in arm.events for c in e.components}
    events = {e.key: e for e in arm.events}
    done: list[Event] = []
    seen: set[str] = set()

    def visit(key: str) -> None:
        key = owner.get(key, key)
        if key in seen or key == ALLOCATION:
            return
        seen.add(key)
        e = events[key]
        timed = e.timing or e.series
        assert timed is not None, key  # the model holds exactly one of the two
        visit(timed.anchor.event)
        done.append(e)

    for e in arm.events:
        visit(e.key)
    return done
