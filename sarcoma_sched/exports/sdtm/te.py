"""TE, the trial elements, and the element sequence of each arm that TA lists.

Elements are screening (``SCRN``), one element per treatment event of an arm (kind
radiotherapy, infusion, oral or surgery; a cycle's components such as oral anlotinib belong to
the cycle's element) and follow-up (``FU``) when visits follow the last treatment. A repeated
event is one element listed once per cycle in TA. An element shared by arms (same key, label,
kind, span and cycle length, e.g. NATARS's radical resection) has one ETCD.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sarcoma_sched.exports.sdtm.common import NOT_VISITS, TREATMENT_KINDS, Row, code, text
from sarcoma_sched.protocol.model import Protocol
from sarcoma_sched.protocol.occurrences import Occurrence, occurrences
from sarcoma_sched.protocol.schedule import Arm, Event
from sarcoma_sched.vocabulary import EventKind

__all__ = [
    "FOLLOW_UP_ETCD",
    "SCREENING_ETCD",
    "Element",
    "Elements",
    "elements",
    "rows",
    "treatment_occurrences",
]

SCREENING_ETCD = "SCRN"
FOLLOW_UP_ETCD = "FU"
ETCD_MAX = 8


@dataclass(frozen=True)
class Element:
    etcd: str
    element: str
    testrl: str
    teenrl: str
    tedur: str = ""


@dataclass(frozen=True)
class Elements:
    """The protocol's elements in TE order, and each arm's (element, epoch) in TA order."""

    elements: list[Element]
    sequences: dict[str, list[tuple[Element, str]]]


def _element_key(e: Event) -> tuple[Any, ...]:
    return (e.key, e.label, e.kind, e.span, e.repeat.every if e.repeat else None)


def elements(protocol: Protocol) -> Elements:
    taken = {SCREENING_ETCD, FOLLOW_UP_ETCD}
    screening = Element(
        SCREENING_ETCD,
        "Screening",
        "Informed consent and screening against the eligibility criteria",
        "Allocation (study day 1)",
    )
    follow_up = Element(
        FOLLOW_UP_ETCD,
        "Follow-up",
        "Start of the first visit after the last treatment element",
        "Last planned follow-up visit, or end of participation",
    )
    by_key: dict[tuple[Any, ...], Element] = {}
    sequences: dict[str, list[tuple[Element, str]]] = {}
    used_fu = False
    for arm in protocol.arms:
        timeline = occurrences(arm)
        treatments = _treatments(arm)
        given = treatment_occurrences(arm)
        sequence: list[tuple[Element, str]] = [(screening, "SCREENING")]
        for o in given:
            event = treatments[o.key]
            ident = _element_key(event)
            if ident not in by_key:
                by_key[ident] = _treatment_element(event, code(event.key, ETCD_MAX, taken))
            sequence.append((by_key[ident], "TREATMENT"))
        last_start = max((o.nominal.start for o in given), default=None)
        if any(
            o.key not in treatments and (last_start is None or o.nominal.start > last_start)
            for o in timeline
            if o.kind not in NOT_VISITS
        ):
            sequence.append((follow_up, "FOLLOW-UP"))
            used_fu = True
        sequences[arm.id] = sequence
    return Elements([screening, *by_key.values(), *([follow_up] if used_fu else [])], sequences)


def _treatments(arm: Arm) -> dict[str, Event]:
    return {e.key: e for e in arm.events if e.kind in TREATMENT_KINDS and e.series is None}


def treatment_occurrences(arm: Arm) -> list[Occurrence]:
    """The arm's treatment occurrences in TA order (TAETORD 2, 3, ...; screening is 1).

    Elements follow the nominal clock: every cycle is one element, in time order."""
    timeline = occurrences(arm)
    treatments = _treatments(arm)
    given = sorted(
        (i for i, o in enumerate(timeline) if o.key in treatments),
        key=lambda i: (timeline[i].nominal.start, i),
    )
    return [timeline[i] for i in given]


def _treatment_element(e: Event, etcd: str) -> Element:
    if e.repeat is not None:
        every = e.repeat.every
        return Element(
            etcd,
            text(e.label, e.key),
            text(f"Day 1 of each {e.key} cycle"),
            text(
                f"{every} days after day 1 of the cycle (day 1 of the next cycle); "
                "the last cycle ends at the start of the next element"
            ),
            f"P{every}D",
        )
    first = "First fraction" if e.kind == EventKind.RADIOTHERAPY else "First day"
    return Element(
        etcd,
        text(e.label, e.key),
        text(f"{first} of {e.key}" if e.span.days > 1 else f"Day of {e.key}"),
        "At the start of the next element",
    )


def rows(protocol: Protocol, built: Elements) -> list[Row]:
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
        for e in built.elements
    ]
