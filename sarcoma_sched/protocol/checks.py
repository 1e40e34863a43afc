"""Cross-field checks that a type system cannot express.

Each check returns ``(path, message)`` pairs; paths name list items by their id or key
(``arms[NEOADJUVANT].events[surgery].timing.anchor``) so a coordinator can find the line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import TYPE_CHECKING

from sarcoma_sched.limits import (
    EVENT_LABEL_LENGTH,
    MAX_OCCURRENCES,
    is_time_zone,
    shown,
)
from sarcoma_sched.protocol.allocation import (
    SITE_FACTOR,
    BlockAllocation,
    ConcealedAllocation,
    FixedAllocation,
    MinimizationAllocation,
)
from sarcoma_sched.protocol.occurrences import occurrences
from sarcoma_sched.protocol.schedule import ALLOCATION, Arm, EventRef, Series, Window
from sarcoma_sched.protocol.screening import (
    AllRule,
    AnyRule,
    AttestationField,
    AttestationRule,
    BooleanField,
    CategoryField,
    FactRule,
    IfRule,
    InRule,
    IntegerField,
    NotInRule,
    NumberField,
    RangeRule,
    Rule,
    ScreeningField,
)

if TYPE_CHECKING:
    from sarcoma_sched.protocol.model import Protocol

__all__ = ["factor_levels", "find_problems"]

Found = Iterator[tuple[str, str]]


def find_problems(protocol: Protocol) -> list[tuple[str, str]]:
    arms = list(_check_arms(protocol.arms))
    return [
        *_check_places(protocol),
        *_check_fields(protocol.fields),
        *_check_criteria(protocol),
        *arms,
        # Only arms whose events and references are sound can be laid out as a network.
        *([] if arms else _check_schedulable(protocol.arms)),
        *_check_allocation(protocol),
    ]


def _check_schedulable(arms: list[Arm]) -> Found:
    from sarcoma_sched.protocol.temporal import conflicts

    for arm in arms:
        clash = conflicts(arm)
        if clash:
            yield (
                f"arms[{arm.id}]",
                "its windows and hard constraints cannot all be met, on any calendar: "
                + " vs ".join(b.rule for b in clash),
            )


def _duplicates(ids: Iterable[str]) -> list[str]:
    return [i for i, n in Counter(ids).items() if n > 1]


@lru_cache(maxsize=64)
def _holiday_problem(country: str, subdivision: str | None) -> str | None:
    import holidays

    supported = holidays.list_supported_countries()
    if country not in supported:
        return f"unknown holiday country {country!r} (ISO 3166 alpha-2 code expected, e.g. 'CN')"
    if subdivision is not None and subdivision not in supported[country]:
        known = ", ".join(supported[country]) or "none"
        return f"unknown subdivision {subdivision!r} of {country} (known: {known})"
    return None


def _check_places(protocol: Protocol) -> Found:
    study = protocol.study
    if not is_time_zone(study.time_zone):
        yield "study.time_zone", f"unknown IANA time zone {shown(study.time_zone)}"
    if (msg := _holiday_problem(study.holiday_country, study.holiday_subdivision)) is not None:
        yield "study.holiday_country", msg
    for code in _duplicates(s.code for s in protocol.sites):
        yield f"sites[{code}]", f"site code {code!r} is declared more than once"
    for site in protocol.sites:
        here = f"sites[{site.code}]"
        if site.time_zone is not None and not is_time_zone(site.time_zone):
            yield f"{here}.time_zone", f"unknown IANA time zone {shown(site.time_zone)}"
        country = site.holiday_country or study.holiday_country
        if site.holiday_country or site.holiday_subdivision:
            msg = _holiday_problem(country, site.holiday_subdivision)
            if msg is not None:
                yield f"{here}.holiday_country", msg
    arms = len(protocol.arms)
    if study.design == "single_arm" and arms != 1:
        yield "study.design", f"a single_arm design needs exactly one arm, found {arms}"
    if study.design == "parallel" and arms < 2:
        yield "study.design", f"a parallel design needs at least two arms, found {arms}"


def _check_fields(fields: list[ScreeningField]) -> Found:
    for fid in _duplicates(f.id for f in fields):
        yield f"fields[{fid}]", f"field {fid!r} is declared more than once"
    for f in fields:
        here = f"fields[{f.id}]"
        if f.id == SITE_FACTOR:
            yield f"{here}.id", f"{SITE_FACTOR!r} is reserved for the enrolling site"
        if isinstance(f, IntegerField | NumberField) and None not in (f.min, f.max):
            assert f.min is not None and f.max is not None
            if f.min > f.max:
                yield f"{here}.min", f"min ({f.min}) is greater than max ({f.max})"
        if isinstance(f, CategoryField):
            for v in _duplicates(f.values):
                yield f"{here}.values", f"category value {v!r} is listed more than once"


def _check_criteria(protocol: Protocol) -> Found:
    fields = {f.id: f for f in protocol.fields}
    for cid in _duplicates(c.id for c in protocol.criteria):
        yield f"criteria[{cid}]", f"criterion id {cid!r} is used more than once"
    for c in protocol.criteria:
        here = f"criteria[{c.id}]"
        prefix = "INC" if c.kind == "inclusion" else "EXC"
        if not c.id.startswith(prefix):
            yield f"{here}.id", f"an {c.kind} criterion id must start with {prefix}-"
        yield from _check_rule(c.rule, f"{here}.rule", fields)


def _check_rule(rule: Rule, here: str, fields: dict[str, ScreeningField]) -> Found:
    if isinstance(rule, IfRule):
        yield from _check_rule(rule.when, f"{here}.when", fields)
        yield from _check_rule(rule.then, f"{here}.then", fields)
        return
    if isinstance(rule, AllRule | AnyRule):
        for i, sub in enumerate(rule.rules):
            yield from _check_rule(sub, f"{here}.rules[{i}]", fields)
        return
    field = fields.get(rule.field)
    if field is None:
        yield f"{here}.field", f"criterion reads undeclared screening field {rule.field!r}"
        return
    if isinstance(rule, RangeRule):
        if not isinstance(field, IntegerField | NumberField):
            yield f"{here}.field", f"a range needs a numeric field; {field.id!r} is {field.type}"
        if rule.min is None and rule.max is None:
            yield here, "a range needs min, max or both"
        elif rule.min is not None and rule.max is not None and rule.min > rule.max:
            yield f"{here}.min", f"min ({rule.min:g}) is greater than max ({rule.max:g})"
    elif isinstance(rule, InRule | NotInRule):
        if not isinstance(field, CategoryField):
            yield (
                f"{here}.field",
                f"{rule.type!r} needs a category field; {field.id!r} is {field.type}",
            )
        else:
            for v in rule.values:
                if v not in field.values:
                    allowed = ", ".join(field.values)
                    yield (
                        f"{here}.values",
                        f"unknown category value {v!r} for field {field.id!r} (allowed: {allowed})",
                    )
    elif isinstance(rule, FactRule):
        if not isinstance(field, BooleanField):
            yield f"{here}.field", f"a fact needs a boolean field; {field.id!r} is {field.type}"
    elif isinstance(rule, AttestationRule) and not isinstance(field, AttestationField):
        yield (
            f"{here}.field",
            f"an attestation needs an attestation field; {field.id!r} is {field.type}",
        )


def _check_window(w: Window, here: str) -> Found:
    if w.earliest > w.latest:
        yield f"{here}.earliest", f"window earliest ({w.earliest}) is after latest ({w.latest})"
    elif w.window_counting == "working_days":
        # Counted in working days the window has no day 0 and no days before its anchor; the
        # target, in calendar days, is compared with it only once a calendar is known.
        if w.earliest < 1:
            yield (
                f"{here}.earliest",
                f"a window counted in working days starts at the 1st working day after its "
                f"anchor or later (got {w.earliest})",
            )
        elif w.day_rule != "working_day":
            yield (
                f"{here}.day_rule",
                'a window counted in working days needs day_rule = "working_day"',
            )
    elif not w.earliest <= w.offset <= w.latest:
        yield (
            f"{here}.offset",
            f"target offset {w.offset} lies outside its window {w.earliest}..{w.latest}",
        )


def _check_arms(arms: list[Arm]) -> Found:
    for aid in _duplicates(a.id for a in arms):
        yield f"arms[{aid}]", f"arm id {aid!r} is declared more than once"
    for arm in arms:
        found = list(_check_arm(arm))
        yield from found
        if not found:  # expanding an arm needs its anchors sound
            yield from _check_occurrences(arm)


def _occurrence_count(arm: Arm) -> int:
    """How many occurrences ``occurrences(arm)`` gives, counted without expanding them."""
    count = 0
    for e in arm.events:
        if e.series is not None:
            month = 0
            for phase in e.series.phases:
                visits = max(0, (phase.until_months - month) // phase.every_months)
                month += visits * phase.every_months
                count += visits
        else:
            count += (e.repeat.count if e.repeat else 1) * (1 + len(e.components))
    return count


def _check_occurrences(arm: Arm) -> Found:
    # Every occurrence is a row of each patient's calendar, written in the allocation's one
    # transaction; the count is worked out first, so a huge arm is never expanded.
    at = f"arms[{arm.id}]"
    count = _occurrence_count(arm)
    if count > MAX_OCCURRENCES:
        yield (
            f"{at}.events",
            f"the arm expands to {count:,} occurrences (cycles, components and follow-up "
            f"visits); at most {MAX_OCCURRENCES:,}",
        )
        return
    reported: set[str] = set()
    for o in occurrences(arm):
        label = o.calendar_label
        if len(label) > EVENT_LABEL_LENGTH and o.key not in reported:
            reported.add(o.key)
            where = f"{at}.events[{o.event}]"
            if o.key != o.event:
                where += f".components[{o.key}]"
            yield (
                f"{where}.label",
                f"the calendar label of {o.id} is {len(label)} characters with its cycle, month "
                f"or landmark note; at most {EVENT_LABEL_LENGTH}",
            )


def _check_arm(arm: Arm) -> Found:
    at = f"arms[{arm.id}]"
    keys = [e.key for e in arm.events] + [c.key for e in arm.events for c in e.components]
    for key in _duplicates(keys):
        yield f"{at}.events[{key}]", f"event key {key!r} is used more than once in arm {arm.id}"
    known = set(keys)
    # Each event points at the event it is timed from; a cycle would make planning impossible.
    depends: dict[str, str] = {}

    def ref_problems(ref: EventRef, here: str, owner: str | None) -> Found:
        if ref.event == ALLOCATION:
            return
        if ref.event not in known:
            yield f"{here}.event", f"unknown event {ref.event!r} in arm {arm.id}"
        elif ref.event == owner:
            yield f"{here}.event", f"event {owner!r} cannot be timed from itself"

    for e in arm.events:
        here = f"{at}.events[{e.key}]"
        if e.key == ALLOCATION:
            yield f"{here}.key", f"{ALLOCATION!r} is reserved for the allocation day"
        if (e.timing is None) == (e.series is None):
            yield here, "an event needs exactly one of 'timing' or 'series'"
        if e.timing is not None:
            yield from _check_window(e.timing, f"{here}.timing")
            yield from ref_problems(e.timing.anchor, f"{here}.timing.anchor", e.key)
            depends[e.key] = e.timing.anchor.event
            if e.span.day_counting == "working_days" and e.timing.day_rule != "working_day":
                yield (
                    f"{here}.timing.day_rule",
                    "a span counted in working days must start on a working day",
                )
        if e.series is not None:
            yield from ref_problems(e.series.anchor, f"{here}.series.anchor", e.key)
            depends[e.key] = e.series.anchor.event
            yield from _check_series(e.series, f"{here}.series")
            if e.repeat is not None:
                yield f"{here}.repeat", "a follow-up series cannot also repeat"
        if e.repeat is not None:
            r = e.repeat
            if not r.earliest <= r.every <= r.latest:
                yield (
                    f"{here}.repeat.every",
                    f"cycle length {r.every} lies outside its window {r.earliest}..{r.latest}",
                )
            if r.earliest < e.span.days:
                yield (
                    f"{here}.repeat.earliest",
                    f"cycles could overlap: earliest {r.earliest} is shorter than the "
                    f"{e.span.days}-day span",
                )
        for c in e.components:
            c_here = f"{here}.components[{c.key}]"
            yield from _check_window(c.timing, f"{c_here}.timing")
            if c.timing.window_counting == "working_days":
                # A component's window is read from its cycle's D1 by the look-ahead in
                # calendar days (cycle-day numbering: D−3 … D1).
                yield (
                    f"{c_here}.timing.window_counting",
                    "a component's window counts cycle days (calendar days), not working days",
                )
            if c.span.day_counting == "working_days" and c.timing.day_rule != "working_day":
                yield (
                    f"{c_here}.timing.day_rule",
                    "a span counted in working days must start on a working day",
                )
            depends[c.key] = e.key
    yield from _check_cycles(depends, at)
    yield from _check_constraints(arm, known, at)


def _check_cycles(depends: dict[str, str], at: str) -> Found:
    reported: set[str] = set()
    for start in depends:
        path = [start]
        node = depends.get(start)
        while node is not None and node in depends and node not in path:
            path.append(node)
            node = depends.get(node)
        if node is not None and node in path:
            loop = path[path.index(node) :]
            if not reported.intersection(loop):
                reported.update(loop)
                chain = " -> ".join([*loop, node])
                yield f"{at}.events[{node}].timing.anchor", f"anchors form a cycle: {chain}"


def _check_series(series: Series, here: str) -> Found:
    previous = 0
    visit_months: set[int] = set()
    for i, phase in enumerate(series.phases):
        p_here = f"{here}.phases[{i}]"
        if phase.until_months <= previous:
            yield (
                f"{p_here}.until_months",
                f"until_months {phase.until_months} must be after the previous phase "
                f"(month {previous})",
            )
            continue
        if (phase.until_months - previous) % phase.every_months:
            yield (
                f"{p_here}.every_months",
                f"months {previous}..{phase.until_months} are not a whole number of "
                f"{phase.every_months}-month intervals",
            )
        visit_months.update(
            range(previous + phase.every_months, phase.until_months + 1, phase.every_months)
        )
        previous = phase.until_months
    for m in series.landmarks_months:
        if m not in visit_months:
            yield f"{here}.landmarks_months", f"landmark month {m} is not a follow-up visit"


def _check_constraints(arm: Arm, known: set[str], at: str) -> Found:
    for cid in _duplicates(c.id for c in arm.constraints):
        yield f"{at}.constraints[{cid}]", f"constraint id {cid!r} is used more than once"
    for c in arm.constraints:
        here = f"{at}.constraints[{c.id}]"
        for name, ref in (("from", c.from_), ("to", c.to)):
            if ref.event != ALLOCATION and ref.event not in known:
                yield f"{here}.{name}.event", f"unknown event {ref.event!r} in arm {arm.id}"
        if c.not_between is not None and c.not_between[0] > c.not_between[1]:
            low, high = c.not_between
            yield f"{here}.not_between", f"not_between starts ({low}) after it ends ({high})"
        elif c.min_days is None and c.max_days is None and c.not_between is None:
            yield here, "a constraint needs min_days, max_days or not_between"
        elif c.min_days is not None and c.max_days is not None and c.min_days > c.max_days:
            yield (
                f"{here}.min_days",
                f"min_days ({c.min_days}) is greater than max_days ({c.max_days})",
            )


def _check_allocation(protocol: Protocol) -> Found:
    alloc = protocol.allocation
    arm_ids = [a.id for a in protocol.arms]
    design = protocol.study.design
    if isinstance(alloc, FixedAllocation):
        if design != "single_arm":
            yield "allocation.method", "'fixed' allocation is for single_arm designs"
        if alloc.arm not in arm_ids:
            yield "allocation.arm", f"unknown arm {alloc.arm!r} (arms: {', '.join(arm_ids)})"
        return
    if design == "single_arm":
        yield (
            "allocation.method",
            f"a single_arm design allocates with 'fixed', not {alloc.method!r}",
        )
    if isinstance(alloc, ConcealedAllocation):
        for i, name in enumerate(alloc.factors):
            yield from _check_factor(protocol, name, f"allocation.factors[{i}]")
    if isinstance(alloc, BlockAllocation | MinimizationAllocation | ConcealedAllocation):
        for arm in alloc.ratio:
            if arm not in arm_ids:
                yield f"allocation.ratio.{arm}", f"unknown arm {arm!r} (arms: {', '.join(arm_ids)})"
        for arm in arm_ids:
            if arm not in alloc.ratio:
                yield "allocation.ratio", f"arm {arm!r} has no share in the ratio"
    if isinstance(alloc, BlockAllocation):
        total = sum(alloc.ratio.values())
        for size in alloc.block_sizes:
            if size % total:
                yield (
                    "allocation.block_sizes",
                    f"block size {size} is not a multiple of the ratio's sum ({total})",
                )
        for i, name in enumerate(alloc.strata):
            yield from _check_factor(protocol, name, f"allocation.strata[{i}]")
        for name in _duplicates(alloc.strata):
            yield "allocation.strata", f"stratum factor {name!r} is listed more than once"
    if isinstance(alloc, MinimizationAllocation):
        for i, factor in enumerate(alloc.factors):
            yield from _check_factor(protocol, factor.field, f"allocation.factors[{i}].field")
        for name in _duplicates(f.field for f in alloc.factors):
            yield "allocation.factors", f"factor {name!r} is listed more than once"
    if isinstance(alloc, BlockAllocation | MinimizationAllocation) and alloc.simulation:
        names = (
            alloc.strata if isinstance(alloc, BlockAllocation) else [f.field for f in alloc.factors]
        )
        yield from _check_simulation(protocol, alloc.simulation, names)


def factor_levels(protocol: Protocol, name: str) -> list[str] | None:
    """Every level an allocation factor can take, as the allocator spells it; None if unknown."""
    if name == SITE_FACTOR:
        return [s.code for s in protocol.sites]
    field = next((f for f in protocol.fields if f.id == name), None)
    if isinstance(field, CategoryField):
        return list(field.values)
    if isinstance(field, BooleanField):
        return ["true", "false"]
    return None


def _check_simulation(
    protocol: Protocol, weights: dict[str, dict[str, float]], names: list[str]
) -> Found:
    for name, levels in weights.items():
        here = f"allocation.simulation.{name}"
        if name not in names:
            listed = ", ".join(names) or "none"
            yield here, f"{name!r} is not an allocation factor of this method (factors: {listed})"
            continue
        if not levels:
            yield here, "give at least one level with a positive weight"
        known = factor_levels(protocol, name)
        if known is None:
            continue  # the factor itself is reported as unknown above
        for level in levels:
            if level not in known:
                yield (
                    f"{here}.{level}",
                    f"unknown level {level!r} of {name!r} (levels: {', '.join(known)})",
                )


def _check_factor(protocol: Protocol, name: str, here: str) -> Found:
    if name == SITE_FACTOR:
        return
    field = next((f for f in protocol.fields if f.id == name), None)
    if field is None:
        yield here, f"allocation factor {name!r} is not a screening field (nor 'site')"
    elif not isinstance(field, CategoryField | BooleanField):
        yield (
            here,
            f"allocation factor {name!r} must be a category or boolean field, not {field.type}",
        )
