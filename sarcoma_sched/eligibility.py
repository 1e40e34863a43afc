"""Typing what a coordinator recorded, and evaluating it against a protocol's criteria.

Pure: protocol model + values in, one outcome per criterion id out. Outcomes are three-valued
(pass, fail, missing) because a screening is often recorded over several days: a criterion whose
data is not in yet must never read as passed, and a patient is eligible only when every
criterion of the stage has positively passed.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast, get_args

from sarcoma_sched.errors import InputFileError, Problem
from sarcoma_sched.limits import MAX_STORED_INT, parse_whole
from sarcoma_sched.protocol.model import Protocol
from sarcoma_sched.protocol.screening import (
    AllRule,
    AnyRule,
    AttestationField,
    AttestationRule,
    BooleanField,
    CategoryField,
    DateField,
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
from sarcoma_sched.vocabulary import CriterionStage

__all__ = [
    "CriterionResult",
    "EligibilityResult",
    "Outcome",
    "evaluate",
    "evaluate_rule",
    "parse_field_values",
]

Outcome = Literal["pass", "fail", "missing"]
_OUTCOMES: tuple[str, ...] = get_args(Outcome)
_STAGES = tuple(CriterionStage)
_KINDS = ("inclusion", "exclusion")
_JSON_FORMAT = 1

_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})
# Strict on purpose: int()/float() also take "1_000", "nan" and non-ASCII digits, none of which a
# coordinator means; str() of any accepted value matches again, so values round-trip as text.
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


# Internal: never escapes parse_field_values, which gathers every one into an InputFileError.
class _Bad(ValueError):
    """One value that cannot be typed; the message becomes one Problem line."""


# --- typing recorded values ---------------------------------------------------------------------


def parse_field_values(
    protocol: Protocol, raw: Mapping[str, object], source: str = "--field"
) -> dict[str, object]:
    """Type ``raw`` (text from ``--field name=value``, or values read from a file) per field.

    Returns the typed values in the protocol's field order. A field left out, or given as
    None (JSON null), is simply not recorded yet. Every unknown name and every untypable value
    is reported together in one ``InputFileError``.
    """
    fields = {f.id: f for f in protocol.fields}
    problems: list[Problem] = []
    typed: dict[str, object] = {}
    for name, value in raw.items():
        field = fields.get(name)
        if field is None:
            problems.append(Problem(source, name, _unknown_field(name, list(fields))))
            continue
        if value is None:
            continue
        try:
            typed[name] = _typed(field, value)
        except _Bad as exc:
            problems.append(Problem(source, name, str(exc)))
    if problems:
        raise InputFileError(problems)
    return {fid: typed[fid] for fid in fields if fid in typed}


def _unknown_field(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown screening field{hint} (known: {', '.join(known) or 'none'})"


def _typed(field: ScreeningField, value: object) -> object:
    if isinstance(value, str) and not value.strip():
        raise _Bad("empty value (leave the field out while it is not known)")
    if isinstance(field, IntegerField | NumberField):
        number = _whole(value) if isinstance(field, IntegerField) else _number(value)
        _check_bounds(number, field.min, field.max, field.unit, value)
        return number
    if isinstance(field, BooleanField | AttestationField):
        return _yes_no(value)
    if isinstance(field, CategoryField):
        return _category(value, field.values)
    if isinstance(field, DateField):
        return _date(value)
    raise AssertionError(f"unhandled field type {field.type!r}")  # pragma: no cover


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _whole(value: object) -> int:
    # bool is an int subclass; True as an age is a mistake in the file, not 1.
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        try:
            # Bounded before int() sees the digits: it refuses 4,301 of them with a ValueError.
            number = parse_whole(value, -MAX_STORED_INT, MAX_STORED_INT)
        except ValueError:
            raise _Bad(
                f"beyond any whole number the database stores (got {_show(value)})"
            ) from None
    if number is None:
        raise _Bad(f"not a whole number (got {_show(value)})")
    if abs(number) > MAX_STORED_INT:
        raise _Bad(f"beyond any whole number the database stores (got {_show(value)})")
    return number


def _number(value: object) -> float:
    number: float | None = None
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
            number = float(value.strip())
    except OverflowError:
        number = None
    if number is None or not math.isfinite(number):
        raise _Bad(f"not a number (got {_show(value)})")
    return number


def _check_bounds(
    number: float, lo: float | None, hi: float | None, unit: str, value: object
) -> None:
    # The declared bounds are plausibility limits (age 0..120): outside them the value was
    # mistyped, and silently screening-failing on it would hide the typo from the coordinator.
    if (lo is not None and number < lo) or (hi is not None and number > hi):
        unit_text = f" {unit}" if unit else ""
        if lo is not None and hi is not None:
            limits = f"outside the plausible range {_num(lo)}..{_num(hi)}{unit_text}"
        elif lo is not None:
            limits = f"below the plausible minimum {_num(lo)}{unit_text}"
        else:
            limits = f"above the plausible maximum {_num(hi)}{unit_text}"
        raise _Bad(f"{limits} (got {_show(value)})")


def _yes_no(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise _Bad(f"not yes or no (use true/false, yes/no or 1/0; got {_show(value)})")


def _category(value: object, allowed: list[str]) -> str:
    if isinstance(value, str):
        text = value.strip()
        if text in allowed:
            return text
        # "ddlps" for DDLPS is a keyboard slip, not a different answer; accept it only when
        # the folded spelling names exactly one declared value.
        folded = [v for v in allowed if v.casefold() == text.casefold()]
        if len(folded) == 1:
            return folded[0]
    raise _Bad(f"not one of the allowed values {', '.join(allowed)} (got {_show(value)})")


def _date(value: object) -> dt.date:
    # datetime is a date subclass; a time of day on a screening date is a different question.
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise _Bad(f"not a real calendar date (got {_show(value)})") from None
    raise _Bad(f"not a date in the form YYYY-MM-DD (got {_show(value)})")


# --- evaluating criteria ------------------------------------------------------------------------


@dataclass(frozen=True)
class CriterionResult:
    id: str
    kind: Literal["inclusion", "exclusion"]
    text: str
    outcome: Outcome
    # A sentence saying why for "fail" and "missing"; empty for "pass".
    reason: str

    def to_json(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CriterionResult:
        values = {k: data.get(k) for k in ("id", "kind", "text", "outcome", "reason")}
        well_formed = all(isinstance(v, str) for v in values.values())
        if not well_formed or values["kind"] not in _KINDS or values["outcome"] not in _OUTCOMES:
            raise ValueError(f"malformed criterion result: {_show(dict(data))}")
        return cls(**cast(dict[str, Any], values))


@dataclass(frozen=True)
class EligibilityResult:
    stage: CriterionStage
    criteria: tuple[CriterionResult, ...]

    @property
    def eligible(self) -> bool:
        # A stage without criteria is passed: there is nothing the patient fails to meet.
        return all(c.outcome == "pass" for c in self.criteria)

    @property
    def failed(self) -> list[str]:
        return [c.id for c in self.criteria if c.outcome == "fail"]

    @property
    def missing(self) -> list[str]:
        return [c.id for c in self.criteria if c.outcome == "missing"]

    def to_json(self) -> dict[str, Any]:
        """A stable, JSON-ready dict; the derived keys are there so SQL can query them."""
        return {
            "format": _JSON_FORMAT,
            "stage": self.stage,
            "eligible": self.eligible,
            "failed": self.failed,
            "missing": self.missing,
            "criteria": [c.to_json() for c in self.criteria],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EligibilityResult:
        if data.get("format") != _JSON_FORMAT:
            raise ValueError(f"unsupported eligibility result format {data.get('format')!r}")
        stage = data.get("stage")
        items = data.get("criteria")
        if stage not in _STAGES or not isinstance(items, list):
            raise ValueError("malformed eligibility result: needs a stage and a criteria list")
        result = cls(CriterionStage(stage), tuple(CriterionResult.from_json(c) for c in items))
        # The stored verdict is what a coordinator acted on; if it disagrees with its own
        # criteria the record was altered or written by a bug, and must not be trusted silently.
        if "eligible" in data and data["eligible"] != result.eligible:
            raise ValueError("eligibility result is inconsistent: 'eligible' contradicts criteria")
        return result


def evaluate(
    protocol: Protocol,
    values: Mapping[str, object],
    stage: CriterionStage = CriterionStage.SCREENING,
) -> EligibilityResult:
    """Evaluate every criterion of ``stage``, in protocol order.

    ``values`` may be raw or already typed: they are typed again here (idempotent), so the
    string "false" can never be compared to a boolean and read as a failure.
    Raises ``InputFileError`` for values ``parse_field_values`` would reject.
    """
    if stage not in _STAGES:
        raise ValueError(f"unknown stage {stage!r} (stages: {', '.join(_STAGES)})")
    typed = parse_field_values(protocol, values, source="screening values")
    return EligibilityResult(
        stage,
        tuple(
            CriterionResult(c.id, c.kind, c.text, *evaluate_rule(c.rule, typed))
            for c in protocol.criteria
            if c.stage == stage
        ),
    )


def evaluate_rule(rule: Rule, values: Mapping[str, object]) -> tuple[Outcome, str]:
    """One rule against typed values: the outcome and, unless it passed, why."""
    outcome, why = _eval(rule, values)
    return outcome, ("" if outcome == "pass" else why)


def _eval(rule: Rule, values: Mapping[str, object]) -> tuple[Outcome, str]:
    """Outcome plus a phrase: why it failed or is missing, or what held when it passed.

    The pass phrase is kept internally so an ``if`` can say which condition made it apply.
    """
    if isinstance(rule, IfRule):
        cond, cond_why = _eval(rule.when, values)
        if cond == "missing":
            return "missing", cond_why
        if cond == "fail":
            return "pass", f"not applicable: {cond_why}"
        outcome, why = _eval(rule.then, values)
        return outcome, why if outcome == "pass" else f"{why} (applies because {cond_why})"
    if isinstance(rule, AllRule | AnyRule):
        parts = [_eval(r, values) for r in rule.rules]
        by: dict[str, list[str]] = {o: [] for o in _OUTCOMES}
        for outcome, why in parts:
            if why not in by[outcome]:
                by[outcome].append(why)
        if isinstance(rule, AllRule):
            if by["fail"]:
                return "fail", "; ".join(by["fail"])
            if by["missing"]:
                return "missing", "; ".join(by["missing"])
            return "pass", " and ".join(by["pass"])
        if by["pass"]:
            return "pass", by["pass"][0]
        if by["missing"]:
            return "missing", "; ".join(by["missing"])
        return "fail", f"no alternative holds ({'; '.join(by['fail'])})"
    value = values.get(rule.field)
    if value is None:
        return "missing", f"no value recorded for {rule.field}"
    return _leaf(rule, value)


_Leaf = RangeRule | InRule | NotInRule | FactRule | AttestationRule


def _leaf(rule: _Leaf, value: object) -> tuple[Outcome, str]:
    name = rule.field
    if isinstance(rule, RangeRule):
        number = _expect(value, (int, float), name, "a number")
        if rule.min is not None and number < rule.min:
            return "fail", f"{name} is {_num(number)}, below the minimum {_num(rule.min)}"
        if rule.max is not None and number > rule.max:
            return "fail", f"{name} is {_num(number)}, above the maximum {_num(rule.max)}"
        return "pass", f"{name} is {_num(number)}"
    if isinstance(rule, InRule | NotInRule):
        text = _expect(value, (str,), name, "a category value")
        listed = ", ".join(rule.values)
        if isinstance(rule, InRule) and text not in rule.values:
            return "fail", f"{name} is {text!r}, which is not one of {listed}"
        if isinstance(rule, NotInRule) and text in rule.values:
            return "fail", f"{name} is {text!r}, one of the excluded values {listed}"
        return "pass", f"{name} is {text!r}"
    if isinstance(rule, FactRule):
        fact = _expect(value, (bool,), name, "yes or no")
        if fact != rule.expected:
            return "fail", f"{name} is {_yn(fact)}, expected {_yn(rule.expected)}"
        return "pass", f"{name} is {_yn(fact)}"
    if isinstance(rule, AttestationRule):
        # Only an explicit affirmation counts: the clinician's judgement is the criterion.
        if not _expect(value, (bool,), name, "affirmed yes or no"):
            return "fail", f"attestation {name} not affirmed"
        return "pass", f"attestation {name} affirmed"
    raise AssertionError(f"unhandled rule type {rule.type!r}")  # pragma: no cover


def _expect(value: object, types: tuple[type, ...], name: str, what: str) -> Any:
    # Values should come through parse_field_values; anything else reaching here is a bug in
    # the caller, so it is a TypeError rather than a user-facing error.
    if isinstance(value, types) and (bool in types or not isinstance(value, bool)):
        return value
    raise TypeError(f"{name} holds {value!r}, not {what}; type values with parse_field_values")


def _num(x: float | int | None) -> str:
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return str(x)


def _yn(flag: bool) -> str:
    return "yes" if flag else "no"
