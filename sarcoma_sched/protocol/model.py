"""The whole protocol definition and its content hash."""

from __future__ import annotations

import hashlib
import json
from functools import cached_property

from pydantic import Field, model_validator

from sarcoma_sched.protocol.allocation import Allocation, ConcealedAllocation
from sarcoma_sched.protocol.base import Model
from sarcoma_sched.protocol.schedule import Arm
from sarcoma_sched.protocol.screening import Criterion, ScreeningField
from sarcoma_sched.protocol.study import Site, StudyInfo

__all__ = ["Protocol", "ProtocolProblems"]


# Not part of the exception tree in sarcoma_sched.errors, and a ValueError on purpose: pydantic
# turns only a ValueError (or AssertionError) raised in a validator into a ValidationError entry,
# with the exception kept in the entry's ctx, from where the loader unpacks the problems into a
# ProtocolError. Anything else would escape model validation as a bare exception.
class ProtocolProblems(ValueError):
    """Raised inside validation with every cross-field problem; the loader unpacks it."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{path}: {msg}" for path, msg in problems))


class Protocol(Model):
    study: StudyInfo
    sites: list[Site] = Field(min_length=1)
    fields: list[ScreeningField] = Field(default_factory=list)
    criteria: list[Criterion] = Field(default_factory=list)
    allocation: Allocation
    arms: list[Arm] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Protocol:
        from sarcoma_sched.protocol.checks import find_problems

        problems = find_problems(self)
        if problems:
            raise ProtocolProblems(problems)
        return self

    @property
    def id(self) -> str:
        return self.study.id

    @property
    def version(self) -> str:
        return self.study.version

    def canonical_json(self) -> str:
        """Key-sorted JSON of the definition: what the content hash is taken over.

        Comments and layout of the TOML file do not change it; any change of meaning does.
        """
        data = self.model_dump(mode="json", by_alias=True)
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @cached_property
    def content_hash(self) -> str:
        # A site role's concealed view stands for the full definition it was derived from.
        if isinstance(self.allocation, ConcealedAllocation):
            return self.allocation.protocol_hash
        return "sha256:" + hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def arm(self, arm_id: str) -> Arm:
        for arm in self.arms:
            if arm.id == arm_id:
                return arm
        from sarcoma_sched.errors import NotFound

        known = ", ".join(a.id for a in self.arms)
        raise NotFound(f"protocol {self.id} has no arm {arm_id!r} (arms: {known})")

    def site(self, code: str) -> Site:
        for site in self.sites:
            if site.code == code:
                return site
        from sarcoma_sched.errors import NotFound

        known = ", ".join(s.code for s in self.sites)
        raise NotFound(f"protocol {self.id} has no site {code!r} (sites: {known})")
