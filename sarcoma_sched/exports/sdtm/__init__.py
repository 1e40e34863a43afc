"""CDISC SDTM trial design datasets (TA, TE, TV, TI, TS) from a protocol definition.

Pure: a validated protocol in, rows out (``trial_design``); ``write_csv`` only puts them in files.
Variable names and their order follow the SDTMIG trial design model; values use CDISC
controlled terminology where a codelist applies (EPOCH, IECAT, TSPARMCD/TSPARM, TPHASE, STYPE,
TBLIND, INTMODEL, NY, SEXPOP, null flavours), ISO 8601 for durations.

How the protocol maps onto the model:

- **Elements (TE)**: screening (``SCRN``), one element per treatment event of an arm (kind
  radiotherapy, infusion, oral or surgery; a cycle's components such as oral anlotinib belong to
  the cycle's element) and follow-up (``FU``) when visits follow the last treatment. A repeated
  event is one element listed once per cycle in TA. An element shared by arms (same key, label,
  kind, span and cycle length, e.g. NATARS's radical resection) has one ETCD.
- **Visits (TV)**: every planned occurrence the engine schedules (``rt``, ``ai.2``, ``labs.2``,
  ``follow_up.m12``) except oral home-medication periods, which are not visits. VISITDY is the
  nominal study day with allocation as day 1 (SDTM has no day 0), before any working-day shift;
  months count as 365.25/12 days. TVSTRL/TVENRL give the window: its opening and closing rule
  relative to the anchor, each prefixed with the occurrence id the schedule database uses. A
  visit timed identically in every arm is one row with ARMCD empty, as the SDTMIG asks.
- **Criteria (TI)**: IETESTCD is the criterion id without its hyphen (``INC-05`` → ``INC05``,
  letters and digits, at most 8 characters); TIRL is the machine rule in words (what must hold
  to pass); a criterion only checked after allocation has IESCAT ``POST-ALLOCATION``.
- **Summary (TS)**: only what the protocol file states or the engine implies; a parameter it
  cannot know (indication, control type of a parallel design, an unstated sample size) is
  present with TSVALNF ``NI`` rather than invented.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sarcoma_sched.protocol.allocation import (
    AssignedAllocation,
    BlockAllocation,
    FixedAllocation,
    MinimizationAllocation,
)
from sarcoma_sched.protocol.describe import describe_rule
from sarcoma_sched.protocol.model import Protocol
from sarcoma_sched.protocol.schedule import ALLOCATION, Arm, Component, Event, EventRef, Span
from sarcoma_sched.protocol.screening import (
    AllRule,
    AnyRule,
    Criterion,
    IfRule,
    IntegerField,
    NumberField,
    RangeRule,
    Rule,
)

__all__ = [
    "COLUMNS",
    "DATASETS",
    "REQUIRED",
    "TREATMENT_KINDS",
    "trial_design",
    "write_csv",
]

DATASETS = ("TA", "TE", "TV", "TI", "TS")

# SDTMIG variable order per dataset; REQUIRED are the variables the SDTMIG marks "Req" (a value
# in every row). The others are "Exp"/"Perm" and may be empty.
COLUMNS: dict[str, list[str]] = {
    "TA": [
        "STUDYID", "DOMAIN", "ARMCD", "ARM", "TAETORD", "ETCD", "ELEMENT", "TABRANCH",
        "TATRANS", "EPOCH",
    ],
    "TE": ["STUDYID", "DOMAIN", "ETCD", "ELEMENT", "TESTRL", "TEENRL", "TEDUR"],
    "TV": ["STUDYID", "DOMAIN", "VISITNUM", "VISIT", "VISITDY", "ARMCD", "ARM", "TVSTRL", "TVENRL"],
    "TI": ["STUDYID", "DOMAIN", "IETESTCD", "IETEST", "IECAT", "IESCAT", "TIRL", "TIVERS"],
    "TS": [
        "STUDYID", "DOMAIN", "TSSEQ", "TSGRPID", "TSPARMCD", "TSPARM", "TSVAL", "TSVALNF",
        "TSVALCD", "TSVCDREF", "TSVCDVER",
    ],
}  # fmt: skip
REQUIRED: dict[str, list[str]] = {
    "TA": ["STUDYID", "DOMAIN", "ARMCD", "ARM", "TAETORD", "ETCD", "EPOCH"],
    "TE": ["STUDYID", "DOMAIN", "ETCD", "ELEMENT", "TESTRL"],
    "TV": ["STUDYID", "DOMAIN", "VISITNUM", "TVSTRL"],
    "TI": ["STUDYID", "DOMAIN", "IETESTCD", "IETEST", "IECAT"],
    "TS": ["STUDYID", "DOMAIN", "TSSEQ", "TSPARMCD", "TSPARM"],
}

# What makes an element: the events that *are* the allocated intervention. Everything else
# (baseline, labs, imaging, post-operative checks, follow-up, visits) is a visit inside one.
TREATMENT_KINDS = ("radiotherapy", "infusion", "oral", "surgery")
# Oral dosing at home is a period in the patient's calendar, not a visit to the site.
NOT_VISITS = ("oral",)

SCREENING_ETCD = "SCRN"
FOLLOW_UP_ETCD = "FU"
DAYS_PER_MONTH = 365.25 / 12

# SDTMIG length limits for the codes.
ARMCD_MAX = 20
ETCD_MAX = 8
TESTCD_MAX = 8
TEXT_MAX = 200

CDISC_CT = "CDISC CT"
ISO_8601 = "ISO 8601"
# Trial Phase Classification (codelist C66737): submission value and NCI code.
TPHASE = {
    "1": ("PHASE I TRIAL", "C15600"),
    "1/2": ("PHASE I/II TRIAL", "C15693"),
    "2": ("PHASE II TRIAL", "C15601"),
    "2/3": ("PHASE II/III TRIAL", "C15694"),
    "3": ("PHASE III TRIAL", "C15602"),
    "4": ("PHASE IV TRIAL", "C15603"),
    "N/A": ("NOT APPLICABLE", "C48660"),
}
NY = {True: ("Y", "C49488"), False: ("N", "C49487")}
AGE_UNITS = {"years": "Y", "year": "Y", "months": "M", "month": "M", "weeks": "W", "days": "D"}
# The describe module speaks to people; SDTM text travels through SAS transport files.
ASCII = str.maketrans({"≥": ">=", "≤": "<=", "…": "...", "−": "-", "–": "-", "—": "-", "×": "x"})

Row = dict[str, Any]


def trial_design(protocol: Protocol) -> dict[str, list[Row]]:
    """The five trial design datasets of ``protocol``, each a list of rows keyed by variable."""
    arms = _arm_codes(protocol.arms)
    elements = _elements(protocol)
    return {
        "TA": _ta(protocol, arms, elements),
        "TE": _te(protocol, elements),
        "TV": _tv(protocol, arms),
        "TI": _ti(protocol),
        "TS": _ts(protocol),
    }


def write_csv(datasets: Mapping[str, list[Row]], directory: Path) -> list[Path]:
    """One UTF-8 CSV per dataset (``ta.csv`` …), header = SDTM variable names in order."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in DATASETS:
        path = directory / f"{name.lower()}.csv"
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS[name])
            writer.writeheader()
            for row in datasets[name]:
                writer.writerow({k: "" if row.get(k) is None else row[k] for k in COLUMNS[name]})
        tmp.replace(path)
        written.append(path)
    return written


# --- codes ----------------------------------------------------------------------------------


def _code(text: str, max_len: int, taken: set[str]) -> str:
    """Upper-case letters and digits, at most ``max_len``, unique among ``taken``."""
    base = re.sub(r"[^A-Z0-9]", "", text.upper()) or "X"
    if base[0].isdigit():  # an SDTM code never starts with a digit
        base = "X" + base
    code = base[:max_len]
    n = 1
    while code in taken:
        n += 1
        suffix = str(n)
        code = base[: max_len - len(suffix)] + suffix
    taken.add(code)
    return code


def _arm_codes(arms: list[Arm]) -> dict[str, str]:
    taken: set[str] = set()
    out = {}
    for arm in arms:
        # Arm ids are already upper case; keep underscores, which ARMCD allows.
        code = arm.id[:ARMCD_MAX]
        n = 1
        while code in taken:
            n += 1
            code = arm.id[: ARMCD_MAX - len(str(n))] + str(n)
        taken.add(code)
        out[arm.id] = code
    return out


def ietestcd(criterion_id: str) -> str:
    """``INC-05`` → ``INC05``: --TESTCD values are letters, digits and underscores only."""
    return criterion_id.replace("-", "")[:TESTCD_MAX]


def _text(value: str, fallback: str = "") -> str:
    """One line of at most 200 characters (SDTM text limit); ``fallback`` if nothing is left."""
    value = " ".join(value.translate(ASCII).split()) or fallback
    return value if len(value) <= TEXT_MAX else value[: TEXT_MAX - 3] + "..."


# --- nominal schedule ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Occurrence:
    """One planned occurrence on the nominal study clock (offsets in days from allocation)."""

    id: str
    key: str
    kind: str
    label: str
    cycle: int | None
    start: int
    end: int
    earliest: int
    latest: int
    start_rule: str
    end_rule: str


def _span_end(start: int, span: Span) -> int:
    # Nominal: working-day spans are counted as calendar days (no weekend known here).
    return start + span.days - 1


def _signed(n: int) -> str:
    return f"+{n}" if n >= 0 else str(n)


def _point_name(ref: EventRef, counts: Mapping[str, int]) -> str:
    if ref.event == ALLOCATION:
        return "allocation"
    count = counts.get(ref.event, 1)
    occurrence = ref.event
    if count > 1:
        occurrence += f".{1 if ref.occurrence == 'first' else count}"
    return f"{'start' if ref.point == 'start' else 'end'} of {occurrence}"


def _days_text(span: Span, kind: str) -> str:
    if span.days == 1:
        return ""
    if span.day_counting == "working_days":
        unit = "fractions" if kind == "radiotherapy" else "working days"
        return f"; lasts {span.days} {unit} on consecutive working days"
    return f"; lasts {span.days} calendar days"


def _nominal(arm: Arm) -> list[_Occurrence]:
    """Every occurrence of the arm in planner order, timed nominally from allocation."""
    counts: dict[str, int] = {}
    for e in arm.events:
        counts[e.key] = e.repeat.count if e.repeat else 1
        for c in e.components:
            counts[c.key] = counts[e.key]
    placed: dict[str, list[_Occurrence]] = {}
    pending = list(arm.events)
    out: list[_Occurrence] = []

    def point(ref: EventRef) -> int | None:
        if ref.event == ALLOCATION:
            return 0
        occurrences = placed.get(ref.event)
        if not occurrences:
            return None
        o = occurrences[0] if ref.occurrence == "first" else occurrences[-1]
        return o.start if ref.point == "start" else o.end

    # Protocol validation guarantees the anchors are acyclic, so each pass places at least one.
    while pending:
        ready = [e for e in pending if point(_anchor(e)) is not None]
        if not ready:  # pragma: no cover - a validated protocol never gets here
            raise ValueError(f"arm {arm.id}: anchors form a cycle")
        for event in ready:
            pending.remove(event)
            anchor = _anchor(event)
            start = point(anchor)
            assert start is not None
            for occ in _occurrences(event, start, _point_name(anchor, counts)):
                placed.setdefault(occ.key, []).append(occ)
                out.append(occ)
    return out


def _anchor(event: Event) -> EventRef:
    return event.timing.anchor if event.timing else event.series.anchor  # type: ignore[union-attr]


def _occurrences(event: Event, anchor: int, anchor_name: str) -> Iterator[_Occurrence]:
    if event.series is not None:
        month = 0
        for phase in event.series.phases:
            w = phase.window_days
            while month + phase.every_months <= phase.until_months:
                month += phase.every_months
                start = anchor + round(month * DAYS_PER_MONTH)
                where = f"{anchor_name} + {month} months"
                yield _Occurrence(
                    id=f"{event.key}.m{month}",
                    key=event.key,
                    kind=event.kind,
                    label=f"{event.label}, month {month}",
                    cycle=None,
                    start=start,
                    end=start,
                    earliest=start - w,
                    latest=start + w,
                    start_rule=f"from {w} days before {where} (target {where})",
                    end_rule=f"to {w} days after {where}",
                )
        return
    assert event.timing is not None
    t = event.timing
    count = event.repeat.count if event.repeat else 1
    start = anchor + t.offset
    lo, hi, off, name = t.earliest, t.latest, t.offset, anchor_name
    previous = anchor
    for n in range(1, count + 1):
        if n > 1:
            assert event.repeat is not None
            previous = start
            off, lo, hi = event.repeat.every, event.repeat.earliest, event.repeat.latest
            start = previous + off
            name = f"start of {event.key}.{n - 1}"
        else:
            previous = anchor
        occ_id = f"{event.key}.{n}" if event.repeat else event.key
        cycle = n if event.repeat else None
        label = f"{event.label} (cycle {n})" if event.repeat else event.label
        yield _Occurrence(
            id=occ_id,
            key=event.key,
            kind=event.kind,
            label=label,
            cycle=cycle,
            start=start,
            end=_span_end(start, event.span),
            earliest=previous + lo,
            latest=previous + hi,
            start_rule=f"from {name} {_signed(lo)} days (target {_signed(off)} days)",
            end_rule=f"to {name} {_signed(hi)} days" + _days_text(event.span, event.kind),
        )
        for c in event.components:
            yield _component(c, occ_id, start, cycle)


def _component(c: Component, occ_id: str, d1: int, cycle: int | None) -> _Occurrence:
    t = c.timing
    start = d1 + t.offset
    name = f"start of {occ_id}"
    return _Occurrence(
        id=f"{c.key}.{cycle}" if cycle else c.key,
        key=c.key,
        kind=c.kind,
        label=f"{c.label} (cycle {cycle})" if cycle else c.label,
        cycle=cycle,
        start=start,
        end=_span_end(start, c.span),
        earliest=d1 + t.earliest,
        latest=d1 + t.latest,
        start_rule=f"from {name} {_signed(t.earliest)} days (target {_signed(t.offset)} days)",
        end_rule=f"to {name} {_signed(t.latest)} days" + _days_text(c.span, c.kind),
    )


def study_day(offset: int) -> int:
    """SDTM study day of a nominal offset from allocation: allocation is day 1, no day 0."""
    return offset + 1 if offset >= 0 else offset


# --- TE / TA ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Element:
    etcd: str
    element: str
    testrl: str
    teenrl: str
    tedur: str = ""


def _element_key(e: Event) -> tuple[Any, ...]:
    return (e.key, e.label, e.kind, e.span, e.repeat.every if e.repeat else None)


def _elements(protocol: Protocol) -> dict[str, Any]:
    """Elements by identity, and each arm's sequence of (element, epoch) in TA order."""
    taken = {SCREENING_ETCD, FOLLOW_UP_ETCD}
    screening = _Element(
        SCREENING_ETCD,
        "Screening",
        "Informed consent and screening against the eligibility criteria",
        "Allocation (study day 1)",
    )
    follow_up = _Element(
        FOLLOW_UP_ETCD,
        "Follow-up",
        "Start of the first visit after the last treatment element",
        "Last planned follow-up visit, or end of participation",
    )
    by_key: dict[tuple[Any, ...], _Element] = {}
    sequences: dict[str, list[tuple[_Element, str]]] = {}
    used_fu = False
    for arm in protocol.arms:
        timeline = _nominal(arm)
        treatments = {
            e.key: e for e in arm.events if e.kind in TREATMENT_KINDS and e.series is None
        }
        # Elements follow the nominal clock: every cycle is one element, in time order.
        given = sorted(
            (i for i, o in enumerate(timeline) if o.key in treatments),
            key=lambda i: (timeline[i].start, i),
        )
        sequence: list[tuple[_Element, str]] = [(screening, "SCREENING")]
        for i in given:
            event = treatments[timeline[i].key]
            ident = _element_key(event)
            if ident not in by_key:
                by_key[ident] = _treatment_element(event, _code(event.key, ETCD_MAX, taken))
            sequence.append((by_key[ident], "TREATMENT"))
        last_start = max((timeline[i].start for i in given), default=None)
        if any(
            o.key not in treatments and (last_start is None or o.start > last_start)
            for o in timeline
            if o.kind not in NOT_VISITS
        ):
            sequence.append((follow_up, "FOLLOW-UP"))
            used_fu = True
        sequences[arm.id] = sequence
    elements = [screening, *by_key.values(), *([follow_up] if used_fu else [])]
    return {"elements": elements, "sequences": sequences}


def _treatment_element(e: Event, etcd: str) -> _Element:
    if e.repeat is not None:
        every = e.repeat.every
        return _Element(
            etcd,
            _text(e.label, e.key),
            _text(f"Day 1 of each {e.key} cycle"),
            _text(
                f"{every} days after day 1 of the cycle (day 1 of the next cycle); "
                "the last cycle ends at the start of the next element"
            ),
            f"P{every}D",
        )
    first = "First fraction" if e.kind == "radiotherapy" else "First day"
    return _Element(
        etcd,
        _text(e.label, e.key),
        _text(f"{first} of {e.key}" if e.span.days > 1 else f"Day of {e.key}"),
        "At the start of the next element",
    )


def _ta(protocol: Protocol, arms: Mapping[str, str], built: dict[str, Any]) -> list[Row]:
    a = protocol.allocation
    rows = []
    for arm in protocol.arms:
        sequence = built["sequences"][arm.id]
        for order, (element, epoch) in enumerate(sequence, 1):
            branch = ""
            # The branch sits on the element at whose end the arms part (SDTMIG TABRANCH).
            if order == 1 and len(protocol.arms) > 1:
                if isinstance(a, BlockAllocation | MinimizationAllocation):
                    branch = f"Randomized to {_text(arm.label, arm.id)}"
                elif isinstance(a, AssignedAllocation):
                    branch = f"Assigned to {_text(arm.label, arm.id)} ({', '.join(a.bases)})"
                else:
                    branch = f"Allocated to {_text(arm.label, arm.id)}"
            rows.append(
                {
                    "STUDYID": protocol.id,
                    "DOMAIN": "TA",
                    "ARMCD": arms[arm.id],
                    "ARM": _text(arm.label, arm.id),
                    "TAETORD": order,
                    "ETCD": element.etcd,
                    "ELEMENT": element.element,
                    "TABRANCH": _text(branch) if branch else "",
                    "TATRANS": "",
                    "EPOCH": epoch,
                }
            )
    return rows


def _te(protocol: Protocol, built: dict[str, Any]) -> list[Row]:
    return [
        {
            "STUDYID": protocol.id,
            "DOMAIN": "TE",
            "ETCD": e.etcd,
            "ELEMENT": e.element,
            "TESTRL": e.testrl,
            "TEENRL": e.teenrl,
            "TEDUR": e.tedur,
        }
        for e in built["elements"]
    ]


# --- TV --------------------------------------------------------------------------------------


def _tv(protocol: Protocol, arms: Mapping[str, str]) -> list[Row]:
    per_arm: dict[str, list[_Occurrence]] = {
        arm.id: [o for o in _nominal(arm) if o.kind not in NOT_VISITS] for arm in protocol.arms
    }

    def signature(o: _Occurrence) -> tuple[Any, ...]:
        return (o.id, o.label, o.start, o.start_rule, o.end_rule)

    numbers = _visit_numbers([[(o.id, o.label, o.start) for o in occ] for occ in per_arm.values()])
    # VISIT names a visit as uniquely as VISITNUM does: two visits that would read alike (the
    # same label on different events) carry their occurrence id as well.
    names = {key: _text(key[1], key[0]) for key in numbers}
    alike = Counter(names.values())
    names = {k: v if alike[v] == 1 else _text(f"{v} ({k[0]})") for k, v in names.items()}

    rows: list[Row] = []
    common: set[tuple[Any, ...]] = set()
    if len(protocol.arms) > 1:
        sets = [{signature(o) for o in occ} for occ in per_arm.values()]
        common = set.intersection(*sets)
    emitted: set[tuple[Any, ...]] = set()
    for arm in protocol.arms:
        for o in per_arm[arm.id]:
            shared = signature(o) in common
            if shared and signature(o) in emitted:
                continue
            emitted.add(signature(o))
            rows.append(
                {
                    "STUDYID": protocol.id,
                    "DOMAIN": "TV",
                    "VISITNUM": numbers[(o.id, o.label)],
                    "VISIT": names[(o.id, o.label)],
                    "VISITDY": study_day(o.start),
                    "ARMCD": "" if shared else arms[arm.id],
                    "ARM": "" if shared else _text(arm.label, arm.id),
                    "TVSTRL": _text(f"{o.id}: {o.start_rule}"),
                    "TVENRL": _text(f"{o.id}: {o.end_rule}"),
                }
            )
    rows.sort(key=lambda r: (r["VISITNUM"], r["ARMCD"]))
    return rows


def _visit_numbers(arms: list[list[tuple[str, str, int]]]) -> dict[tuple[str, str], int]:
    """VISITNUM per visit (occurrence id and name), chronological within every arm.

    A visit shared by arms at different times (NATARS surgery: day 15 in one arm, day 85 in the
    other) keeps one number; numbers follow each arm's own order, merged (Kahn's algorithm,
    earliest nominal day first). Arms that disagree on the order fall back to the earliest day.
    """
    first: dict[tuple[str, str], tuple[int, int]] = {}
    after: dict[tuple[str, str], set[tuple[str, str]]] = {}
    before_count: dict[tuple[str, str], int] = {}
    seen = 0
    for visits in arms:
        ordered = sorted(enumerate(visits), key=lambda iv: (iv[1][2], iv[0]))
        keys = [(v[0], v[1]) for _, v in ordered]
        for key, (_, v) in zip(keys, ordered, strict=True):
            if key not in first:
                first[key] = (v[2], seen)
                seen += 1
            else:
                first[key] = min(first[key], (v[2], first[key][1]))
            after.setdefault(key, set())
            before_count.setdefault(key, 0)
        for a, b in itertools.pairwise(keys):
            if a != b and b not in after[a]:
                after[a].add(b)
                before_count[b] += 1
    order: list[tuple[str, str]] = []
    ready = [k for k, n in before_count.items() if n == 0]
    while ready:
        ready.sort(key=first.__getitem__)
        key = ready.pop(0)
        order.append(key)
        for nxt in after[key]:
            before_count[nxt] -= 1
            if before_count[nxt] == 0:
                ready.append(nxt)
    if len(order) < len(first):  # the arms disagree on the order: earliest day first
        order = sorted(first, key=first.__getitem__)
    return {key: n for n, key in enumerate(order, 1)}


# --- TI --------------------------------------------------------------------------------------


def _ti(protocol: Protocol) -> list[Row]:
    return [
        {
            "STUDYID": protocol.id,
            "DOMAIN": "TI",
            "IETESTCD": ietestcd(c.id),
            "IETEST": _text(c.text, c.id),
            "IECAT": c.kind.upper(),
            "IESCAT": "POST-ALLOCATION" if c.stage == "post_allocation" else "",
            "TIRL": _text(f"{c.id} passes if {describe_rule(c.rule)}"),
            "TIVERS": protocol.version,
        }
        for c in protocol.criteria
    ]


# --- TS --------------------------------------------------------------------------------------

TSPARM = {
    "TITLE": "Trial Title",
    "ACRONYM": "Trial Acronym",
    "REGID": "Registry Identifier",
    "SPONSOR": "Clinical Study Sponsor",
    "STYPE": "Study Type",
    "TPHASE": "Trial Phase Classification",
    "INTMODEL": "Intervention Model",
    "TBLIND": "Trial Blinding Schema",
    "TCNTRL": "Control Type",
    "RANDOM": "Trial is Randomized",
    "STRATFCT": "Stratification Factor",
    "NARMS": "Planned Number of Arms",
    "PLANSUB": "Planned Number of Subjects",
    "SEXPOP": "Sex of Participants",
    "AGEMIN": "Planned Minimum Age of Subjects",
    "AGEMAX": "Planned Maximum Age of Subjects",
    "ADAPT": "Adaptive Design",
    "INDIC": "Trial Disease/Condition Indication",
}


def _ts(protocol: Protocol) -> list[Row]:
    s = protocol.study
    a = protocol.allocation
    randomized = isinstance(a, BlockAllocation | MinimizationAllocation)
    params: list[tuple[str, str, str, str, str]] = []  # code, value, null flavour, CT code, ref

    def add(code: str, value: Any = "", nf: str = "", ct: str = "", ref: str = "") -> None:
        params.append((code, "" if value is None else str(value), nf, ct, ref))

    add("TITLE", _text(s.title, s.id))
    if _text(s.short_title):
        add("ACRONYM", _text(s.short_title))
    add("REGID", s.registry_id, ct=s.registry_id, ref="ClinicalTrials.gov")
    if _text(s.sponsor):
        add("SPONSOR", _text(s.sponsor))
    # Every trial this engine runs allocates an intervention to each patient.
    add("STYPE", "INTERVENTIONAL", ct="C98388", ref=CDISC_CT)
    phase, phase_code = TPHASE[s.phase]
    add("TPHASE", phase, ct=phase_code, ref=CDISC_CT)
    if s.design == "single_arm":
        add("INTMODEL", "SINGLE GROUP", ct="C82640", ref=CDISC_CT)
    else:
        add("INTMODEL", "PARALLEL", ct="C82639", ref=CDISC_CT)
    # The engine shows the arm to the coordinator and writes the treatment into the patient's
    # calendar: it has no blinding, so a trial it runs is open label (both registrations agree).
    add("TBLIND", "OPEN LABEL", ct="C49659", ref=CDISC_CT)
    if s.design == "single_arm" or isinstance(a, FixedAllocation):
        add("TCNTRL", "NONE", ct="C41132", ref=CDISC_CT)
    else:
        add("TCNTRL", nf="NI")  # the protocol file does not say what the comparator is
    value, code = NY[randomized]
    add("RANDOM", value, ct=code, ref=CDISC_CT)
    for factor in _stratification_factors(protocol):
        add("STRATFCT", factor)
    add("NARMS", len(protocol.arms))
    if s.target_enrollment:
        add("PLANSUB", s.target_enrollment)
    else:
        add("PLANSUB", nf="NI")  # NATARS: the registry shows 0, i.e. not stated
    add(*_sex_population(protocol.criteria))
    low, high = _age_limits(protocol)
    add("AGEMIN", low, nf="" if low else "NI", ref=ISO_8601 if low else "")
    add("AGEMAX", high, nf="" if high else "NI", ref=ISO_8601 if high else "")
    # Arms, ratios and rules change only through a new protocol version, never mid-trial.
    value, code = NY[False]
    add("ADAPT", value, ct=code, ref=CDISC_CT)
    add("INDIC", nf="NI")  # the protocol file has no coded indication

    rows = []
    seq: dict[str, int] = {}
    for code, value, nf, ct, ref in params:
        seq[code] = seq.get(code, 0) + 1
        rows.append(
            {
                "STUDYID": protocol.id,
                "DOMAIN": "TS",
                "TSSEQ": seq[code],
                "TSGRPID": "",
                "TSPARMCD": code,
                "TSPARM": TSPARM[code],
                "TSVAL": value,
                "TSVALNF": nf,
                "TSVALCD": ct,
                "TSVCDREF": ref,
                "TSVCDVER": "",
            }
        )
    return rows


def _stratification_factors(protocol: Protocol) -> list[str]:
    a = protocol.allocation
    if isinstance(a, MinimizationAllocation):
        return [f.field for f in a.factors]
    if isinstance(a, BlockAllocation):
        return list(a.strata)
    return []


def _leaf_rules(rule: Rule) -> Iterator[Rule]:
    """Rules that must hold unconditionally: the rule itself, or each part of an ``all``."""
    if isinstance(rule, AllRule):
        for r in rule.rules:
            yield from _leaf_rules(r)
    elif not isinstance(rule, IfRule | AnyRule):
        yield rule


def _screening_rules(criteria: Iterable[Criterion]) -> Iterator[Rule]:
    for c in criteria:
        if c.stage == "screening":
            yield from _leaf_rules(c.rule)


def _sex_population(criteria: list[Criterion]) -> tuple[str, str, str, str, str]:
    def mentions_sex(rule: Rule) -> bool:
        if isinstance(rule, AllRule | AnyRule):
            return any(mentions_sex(r) for r in rule.rules)
        if isinstance(rule, IfRule):
            return mentions_sex(rule.when) or mentions_sex(rule.then)
        return "sex" in rule.field or "gender" in rule.field

    if any(mentions_sex(c.rule) for c in criteria):
        # A rule on sex exists; which sexes it admits is not for a text match to decide.
        return ("SEXPOP", "", "NI", "", "")
    return ("SEXPOP", "BOTH", "", "C49636", CDISC_CT)


def _age_limits(protocol: Protocol) -> tuple[str, str]:
    """ISO 8601 durations from range rules on an age field (``age_years``, unit years)."""
    fields = {f.id: f for f in protocol.fields}
    lows: list[tuple[float, str]] = []
    highs: list[tuple[float, str]] = []
    for rule in _screening_rules(protocol.criteria):
        if not isinstance(rule, RangeRule) or "age" not in rule.field.split("_"):
            continue
        field = fields.get(rule.field)
        unit = getattr(field, "unit", "") if isinstance(field, IntegerField | NumberField) else ""
        designator = AGE_UNITS.get(unit.lower()) or _unit_from_id(rule.field)
        if designator is None:
            continue
        if rule.min is not None:
            lows.append((rule.min, designator))
        if rule.max is not None:
            highs.append((rule.max, designator))

    def iso(value: tuple[float, str] | None) -> str:
        if value is None:
            return ""
        n, unit = value
        number = f"{n:g}" if n != int(n) else str(int(n))
        return f"P{number}{unit}" if n >= 0 else ""

    low = max(lows, default=None, key=lambda v: v[0])
    high = min(highs, default=None, key=lambda v: v[0])
    return iso(low), iso(high)


def _unit_from_id(field_id: str) -> str | None:
    for suffix, designator in (("years", "Y"), ("months", "M"), ("weeks", "W"), ("days", "D")):
        if field_id.endswith(suffix):
            return designator
    return None
