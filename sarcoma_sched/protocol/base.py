"""Shared base for protocol models: strict, immutable, unknown keys rejected (typos are errors)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from sarcoma_sched import limits

__all__ = [
    "ArmId",
    "CodeId",
    "Days",
    "FieldId",
    "Key",
    "Model",
    "Months",
    "NonNegativeDays",
    "PositiveDays",
]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# Event keys and field ids are lower snake case so they read well in TOML and in SQL; arm ids,
# criterion ids and site codes are upper case because coordinators say them aloud ("NEOADJUVANT",
# "INC-05", "PKUIH") and they appear in study ids.
Key = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]
FieldId = Key
ArmId = Annotated[
    str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]*$", max_length=limits.ARM_ID_LENGTH)
]
CodeId = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_-]*$", max_length=40)]

# Sanity limits (sarcoma_sched.limits): a block of two billion patients or a follow-up of a
# million months validates as a number, then exhausts memory when a patient is allocated.
Days = Annotated[int, Field(ge=-limits.MAX_DAYS, le=limits.MAX_DAYS)]
PositiveDays = Annotated[int, Field(ge=1, le=limits.MAX_DAYS)]
NonNegativeDays = Annotated[int, Field(ge=0, le=limits.MAX_DAYS)]
Months = Annotated[int, Field(ge=1, le=limits.MAX_FOLLOW_UP_MONTHS)]
