"""Shared base for protocol models: strict, immutable, unknown keys rejected (typos are errors)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

__all__ = ["ArmId", "CodeId", "FieldId", "Key", "Model"]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# Event keys and field ids are lower snake case so they read well in TOML and in SQL; arm ids,
# criterion ids and site codes are upper case because coordinators say them aloud ("NEOADJUVANT",
# "INC-05", "PKUIH") and they appear in study ids.
Key = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]
FieldId = Key
ArmId = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]*$", max_length=40)]
CodeId = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_-]*$", max_length=40)]
