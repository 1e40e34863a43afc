"""Hypothesis strategies that build *valid* protocol definitions of every shape the format allows.

Events are only anchored to events generated before them, so anchors never form a cycle; windows
are drawn around their offsets so they are always ordered.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import reject
from hypothesis import strategies as st
from pydantic import ValidationError

from sarcoma_sched.protocol import Protocol

SAFE_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=30,
)
KEYS = st.from_regex(r"\A[a-z][a-z0-9_]{0,10}\Z")
UPPER = st.from_regex(r"\A[A-Z][A-Z0-9_]{0,8}\Z")
FINITE = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
ZONES = st.sampled_from(["Asia/Shanghai", "Europe/Amsterdam", "America/New_York", "UTC"])
COUNTRIES = st.sampled_from([("CN", None), ("NL", None), ("US", "CA"), ("DE", "BY")])
KINDS = st.sampled_from(
    [
        "baseline",
        "radiotherapy",
        "labs",
        "infusion",
        "oral",
        "imaging",
        "surgery",
        "postop",
        "visit",
    ]
)


@st.composite
def windows(draw: st.DrawFn) -> dict[str, Any]:
    earliest = draw(st.integers(-60, 60))
    latest = draw(st.integers(earliest, earliest + 60))
    offset = draw(st.integers(earliest, latest))
    w: dict[str, Any] = {"offset": offset, "earliest": earliest, "latest": latest}
    w["day_rule"] = draw(st.sampled_from(["working_day", "any_day"]))
    w["shift"] = draw(st.sampled_from(["forward", "backward", "nearest"]))
    if draw(st.booleans()):
        w["time"] = draw(st.times())
    return w


def spans(day_rule: str) -> st.SearchStrategy[dict[str, Any]]:
    counting = ["calendar_days", "working_days"] if day_rule == "working_day" else ["calendar_days"]
    return st.fixed_dictionaries(
        {
            "days": st.integers(1, 15),
            "day_counting": st.sampled_from(counting),
            "show_as": st.sampled_from(["days", "period"]),
        }
    )


def refs(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "event": st.sampled_from(["allocation", *keys]),
            "occurrence": st.sampled_from(["first", "last"]),
            "point": st.sampled_from(["start", "end"]),
        }
    )


@st.composite
def series(draw: st.DrawFn, keys: list[str]) -> dict[str, Any]:
    phases = []
    month = 0
    visit_months: list[int] = []
    for _ in range(draw(st.integers(1, 3))):
        every = draw(st.integers(1, 6))
        n = draw(st.integers(1, 6))
        visit_months += [month + every * (i + 1) for i in range(n)]
        month += every * n
        phases.append(
            {"every_months": every, "until_months": month, "window_days": draw(st.integers(0, 30))}
        )
    return {
        "anchor": draw(refs(keys)),
        "phases": phases,
        "day_rule": draw(st.sampled_from(["working_day", "any_day"])),
        "shift": draw(st.sampled_from(["forward", "backward", "nearest"])),
        "landmarks_months": draw(st.lists(st.sampled_from(visit_months), max_size=2, unique=True)),
    }


@st.composite
def arms(draw: st.DrawFn, arm_id: str) -> dict[str, Any]:
    keys = draw(
        st.lists(KEYS.filter(lambda k: k != "allocation"), min_size=1, max_size=6, unique=True)
    )
    events: list[dict[str, Any]] = []
    used: list[str] = []
    pending = list(keys)
    while pending:
        key = pending.pop(0)
        event: dict[str, Any] = {"key": key, "kind": draw(KINDS), "label": draw(SAFE_TEXT)}
        if draw(st.booleans()):
            event["description"] = draw(SAFE_TEXT)
        if used and draw(st.integers(0, 4)) == 0:
            event["kind"] = "follow_up"
            event["series"] = draw(series(used))
        else:
            timing = draw(windows())
            timing["anchor"] = draw(refs(used))
            event["timing"] = timing
            span = draw(spans(timing["day_rule"]))
            event["span"] = span
            if draw(st.booleans()):
                every = draw(st.integers(span["days"], 40))
                earliest = draw(st.integers(span["days"], every))
                event["repeat"] = {
                    "count": draw(st.integers(2, 6)),
                    "every": every,
                    "earliest": earliest,
                    "latest": draw(st.integers(every, every + 14)),
                }
                if draw(st.booleans()):
                    event["repeat"]["reason_required_after"] = draw(st.integers(0, 20))
                # A component key must not collide with any event key of the arm.
                if pending and draw(st.booleans()):
                    comp_key = pending.pop()
                    c_timing = draw(windows())
                    event["components"] = [
                        {
                            "key": comp_key,
                            "kind": draw(KINDS),
                            "label": draw(SAFE_TEXT),
                            "timing": c_timing,
                            "span": draw(spans(c_timing["day_rule"])),
                        }
                    ]
                    used.append(comp_key)
        events.append(event)
        used.append(key)
    constraints = []
    for cid in draw(st.lists(KEYS, max_size=3, unique=True)):
        lo = draw(st.none() | st.integers(-30, 60))
        hi = (
            draw(st.integers(lo if lo is not None else -30, 90))
            if (lo is None or draw(st.booleans()))
            else None
        )
        c: dict[str, Any] = {
            "id": cid,
            "description": draw(SAFE_TEXT),
            "from": draw(refs(used)),
            "to": draw(refs(used)),
        }
        if lo is not None:
            c["min_days"] = lo
        if hi is not None:
            c["max_days"] = hi
        constraints.append(c)
    return {"id": arm_id, "label": draw(SAFE_TEXT), "events": events, "constraints": constraints}


@st.composite
def screening(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    ids = draw(st.lists(KEYS.filter(lambda k: k != "site"), min_size=1, max_size=6, unique=True))
    fields: list[dict[str, Any]] = []
    for fid in ids:
        kind = draw(
            st.sampled_from(["integer", "number", "boolean", "category", "attestation", "date"])
        )
        f: dict[str, Any] = {"id": fid, "label": draw(SAFE_TEXT), "type": kind}
        if kind == "integer":
            lo = draw(st.integers(-100, 100))
            f.update(min=lo, max=draw(st.integers(lo, 200)), unit="u")
        elif kind == "number":
            lo = draw(FINITE)
            f.update(min=lo, max=draw(st.floats(lo, 2e6, allow_nan=False)))
        elif kind == "category":
            f["values"] = draw(st.lists(KEYS, min_size=1, max_size=4, unique=True))
        elif kind == "attestation":
            f["by"] = draw(st.sampled_from(["MDT", "investigator"]))
        fields.append(f)

    def rule(depth: int) -> st.SearchStrategy[dict[str, Any]]:
        leaf = st.sampled_from(ruleable).flatmap(_leaf_rule)
        if depth == 0:
            return leaf
        inner = rule(depth - 1)
        return st.one_of(
            leaf,
            st.fixed_dictionaries({"type": st.just("if"), "when": inner, "then": inner}),
            st.fixed_dictionaries(
                {
                    "type": st.sampled_from(["all", "any"]),
                    "rules": st.lists(inner, min_size=1, max_size=3),
                }
            ),
        )

    # No rule type reads a date field yet, so rules draw from the other fields only.
    ruleable = [f for f in fields if f["type"] != "date"]
    criteria = []
    n_criteria = draw(st.integers(0, 4)) if ruleable else 0
    for i in range(n_criteria):
        kind = draw(st.sampled_from(["inclusion", "exclusion"]))
        prefix = "INC" if kind == "inclusion" else "EXC"
        criteria.append(
            {
                "id": f"{prefix}-{i + 1:02d}",
                "kind": kind,
                "text": draw(SAFE_TEXT),
                "rule": draw(rule(2)),
                "stage": draw(st.sampled_from(["screening", "post_allocation"])),
            }
        )
    return fields, criteria


def _leaf_rule(field: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    fid = field["id"]
    kind = field["type"]
    if kind in ("integer", "number"):
        return st.tuples(FINITE, FINITE).map(
            lambda ab: {"type": "range", "field": fid, "min": min(ab), "max": max(ab)}
        )
    if kind == "category":
        return st.sampled_from(["in", "not_in"]).flatmap(
            lambda t: st.lists(st.sampled_from(field["values"]), min_size=1, unique=True).map(
                lambda vs: {"type": t, "field": fid, "values": vs}
            )
        )
    if kind == "boolean":
        return st.booleans().map(lambda b: {"type": "fact", "field": fid, "expected": b})
    assert kind == "attestation", kind
    return st.just({"type": "attestation", "field": fid})


@st.composite
def protocols(draw: st.DrawFn) -> Protocol:
    design = draw(st.sampled_from(["single_arm", "parallel"]))
    arm_ids = draw(
        st.lists(
            UPPER,
            min_size=1 if design == "single_arm" else 2,
            max_size=1 if design == "single_arm" else 3,
            unique=True,
        )
    )
    fields, criteria = draw(screening())
    country, subdivision = draw(COUNTRIES)
    study: dict[str, Any] = {
        "id": draw(st.from_regex(r"\A[A-Z][A-Z0-9-]{0,10}\Z")),
        "registry_id": draw(st.from_regex(r"\ANCT[0-9]{8}\Z")),
        "title": draw(SAFE_TEXT),
        "version": draw(SAFE_TEXT),
        "phase": draw(st.sampled_from(["1", "1/2", "2", "2/3", "3", "4", "N/A"])),
        "design": design,
        "time_zone": draw(ZONES),
        "holiday_country": country,
    }
    if subdivision:
        study["holiday_subdivision"] = subdivision
    if draw(st.booleans()):
        study["target_enrollment"] = draw(st.integers(1, 5000))
    if draw(st.booleans()):
        study["end_date"] = draw(st.dates(dt.date(2000, 1, 1), dt.date(2100, 1, 1)))
    codes = draw(
        st.lists(st.from_regex(r"\A[A-Z][A-Z0-9_-]{0,6}\Z"), min_size=1, max_size=4, unique=True)
    )
    sites = [
        {
            "code": c,
            "name": draw(SAFE_TEXT),
            "role": draw(st.sampled_from(["lead", "collaborator"])),
        }
        for c in codes
    ]
    if draw(st.booleans()):
        sites[0]["time_zone"] = draw(ZONES)
    factor_fields = [f["id"] for f in fields if f["type"] in ("category", "boolean")] + ["site"]
    if design == "single_arm":
        allocation: dict[str, Any] = {"method": "fixed", "arm": arm_ids[0]}
    else:
        method = draw(st.sampled_from(["assigned", "stratified_blocks", "minimization"]))
        ratio = {a: draw(st.integers(1, 3)) for a in arm_ids}
        if method == "assigned":
            allocation = {
                "method": method,
                "bases": draw(st.lists(KEYS, min_size=1, max_size=3)),
                "reason_required": draw(st.booleans()),
            }
        elif method == "stratified_blocks":
            total = sum(ratio.values())
            allocation = {
                "method": method,
                "ratio": ratio,
                "strata": draw(st.lists(st.sampled_from(factor_fields), unique=True, max_size=3)),
                "block_sizes": draw(
                    st.lists(st.integers(1, 4).map(lambda k: k * total), min_size=1, max_size=3)
                ),
            }
        else:
            allocation = {
                "method": method,
                "ratio": ratio,
                "factors": [
                    {"field": f, "weight": draw(st.floats(0.01, 10, allow_nan=False))}
                    for f in draw(
                        st.lists(
                            st.sampled_from(factor_fields), min_size=1, unique=True, max_size=3
                        )
                    )
                ],
                "probability": draw(st.floats(0.51, 1.0)),
                "imbalance": draw(st.sampled_from(["range", "variance"])),
            }
    data = {
        "study": study,
        "sites": sites,
        "fields": fields,
        "criteria": criteria,
        "allocation": allocation,
        "arms": [draw(arms(a)) for a in arm_ids],
    }
    try:
        return Protocol.model_validate(data)
    except ValidationError as error:
        # Constraints drawn blindly may ask for the impossible (cycle 2 a day after cycle 1
        # and on the allocation day): validation refuses such an arm, as it would a trial
        # team's. The protocol is still a valid draw without them.
        if "cannot all be met" not in str(error):
            raise
    for arm in data["arms"]:
        arm["constraints"] = []
    try:
        return Protocol.model_validate(data)
    except ValidationError as error:
        # The events alone clash (a two-day component of cycles a day apart overlaps the
        # next cycle's): no trial could run it, so it is no valid draw.
        if "cannot all be met" not in str(error):
            raise
        reject()
