"""Study metadata and the sites that run it."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, PositiveInt, StringConstraints

from sarcoma_sched.limits import (
    PROTOCOL_ID_LENGTH,
    PROTOCOL_VERSION_LENGTH,
    SITE_CODE_LENGTH,
    SITE_NAME_LENGTH,
    SUBDIVISION_LENGTH,
)
from sarcoma_sched.protocol.base import CodeId, Model

__all__ = ["Site", "StudyInfo"]

Phase = Literal["1", "1/2", "2", "2/3", "3", "4", "N/A"]
RegistryId = Annotated[str, StringConstraints(pattern=r"^NCT\d{8}$")]


class StudyInfo(Model):
    id: Annotated[CodeId, StringConstraints(max_length=PROTOCOL_ID_LENGTH)]
    registry_id: RegistryId
    title: str = Field(min_length=1)
    short_title: str = ""
    version: str = Field(min_length=1, max_length=PROTOCOL_VERSION_LENGTH)
    phase: Phase
    design: Literal["single_arm", "parallel"]
    # None when the registry does not state it (NATARS shows "0"): never invent a number.
    target_enrollment: PositiveInt | None = None
    sponsor: str = ""
    status: str = ""
    end_date: dt.date | None = None
    time_zone: str
    holiday_country: str = Field(min_length=2, max_length=3)
    holiday_subdivision: str | None = Field(default=None, max_length=SUBDIVISION_LENGTH)
    # A template derived from a registered protocol (e.g. a randomized variant) names its origin
    # so nobody mistakes it for the registered design.
    variant_of: CodeId | None = None
    variant_note: str = ""


class Site(Model):
    code: Annotated[CodeId, StringConstraints(max_length=SITE_CODE_LENGTH)]
    name: str = Field(min_length=1, max_length=SITE_NAME_LENGTH)
    city: str = ""
    role: Literal["lead", "collaborator"] = "collaborator"
    # Unset means the study's own setting; a site in another country or zone sets its own.
    time_zone: str | None = None
    holiday_country: str | None = Field(default=None, min_length=2, max_length=3)
    holiday_subdivision: str | None = Field(default=None, max_length=SUBDIVISION_LENGTH)
