"""Screening fields (what a coordinator records) and eligibility criteria (what they must show)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from sarcoma_sched.protocol.base import FieldId, Model
from sarcoma_sched.vocabulary import CriterionStage

__all__ = [
    "AllRule",
    "AnyRule",
    "AttestationField",
    "AttestationRule",
    "BooleanField",
    "CategoryField",
    "Criterion",
    "DateField",
    "FactRule",
    "IfRule",
    "InRule",
    "IntegerField",
    "NotInRule",
    "NumberField",
    "RangeRule",
    "Rule",
    "ScreeningField",
]


class _FieldBase(Model):
    id: FieldId
    label: str = Field(min_length=1)
    help: str = ""


class IntegerField(_FieldBase):
    type: Literal["integer"]
    unit: str = ""
    # Plausibility bounds: a value outside them is a typing mistake, not a screen failure.
    min: int | None = None
    max: int | None = None


class NumberField(_FieldBase):
    type: Literal["number"]
    unit: str = ""
    min: float | None = None
    max: float | None = None


class BooleanField(_FieldBase):
    type: Literal["boolean"]


class CategoryField(_FieldBase):
    type: Literal["category"]
    values: list[str] = Field(min_length=1)


class AttestationField(_FieldBase):
    """A judgement only a clinician or the MDT can make; recorded as affirmed or not, by whom."""

    type: Literal["attestation"]
    by: str = "investigator"


class DateField(_FieldBase):
    type: Literal["date"]


ScreeningField = Annotated[
    IntegerField | NumberField | BooleanField | CategoryField | AttestationField | DateField,
    Field(discriminator="type"),
]


class RangeRule(Model):
    type: Literal["range"]
    field: FieldId
    min: float | None = None
    max: float | None = None


class InRule(Model):
    type: Literal["in"]
    field: FieldId
    values: list[str] = Field(min_length=1)


class NotInRule(Model):
    type: Literal["not_in"]
    field: FieldId
    values: list[str] = Field(min_length=1)


class FactRule(Model):
    type: Literal["fact"]
    field: FieldId
    expected: bool


class AttestationRule(Model):
    type: Literal["attestation"]
    field: FieldId


class IfRule(Model):
    """Applies ``then`` only when ``when`` holds ("if histology = LMS then size >= 10 cm")."""

    type: Literal["if"]
    when: Rule
    then: Rule


class AllRule(Model):
    type: Literal["all"]
    rules: list[Rule] = Field(min_length=1)


class AnyRule(Model):
    type: Literal["any"]
    rules: list[Rule] = Field(min_length=1)


Rule = Annotated[
    RangeRule | InRule | NotInRule | FactRule | AttestationRule | IfRule | AllRule | AnyRule,
    Field(discriminator="type"),
]

for _m in (IfRule, AllRule, AnyRule):
    _m.model_rebuild()

CriterionId = Annotated[str, StringConstraints(pattern=r"^(INC|EXC)-[0-9]{2}[A-Z]?$")]


class Criterion(Model):
    """A criterion's rule states what must hold for the patient to *pass* it.

    For an exclusion criterion that means the excluding condition is absent, so one evaluator
    serves both kinds and a screen failure always names the criterion that failed.
    """

    id: CriterionId
    kind: Literal["inclusion", "exclusion"]
    text: str = Field(min_length=1)
    rule: Rule
    # Some exclusions can only be known after allocation (NATARS: final pathology shows WDLPS).
    # They never block screening; they lead to a recorded post-allocation exclusion.
    stage: CriterionStage = CriterionStage.SCREENING
