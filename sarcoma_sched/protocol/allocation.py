"""How patients are allocated to arms; the method is chosen by the protocol file."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveInt

from sarcoma_sched.protocol.base import Model

__all__ = [
    "SITE_FACTOR",
    "Allocation",
    "AssignedAllocation",
    "BlockAllocation",
    "Factor",
    "FixedAllocation",
    "MinimizationAllocation",
    "SimulationWeights",
]

# Enrolling site is a stratification factor without being a screening field.
SITE_FACTOR = "site"


# Expected share of each level of an allocation factor among enrolled patients, as relative
# weights ({ DDLPS = 0.45, LMS = 0.3 } or { DDLPS = 9, LMS = 6 }): used only to simulate the
# method's operating characteristics before the trial, never to allocate. A factor left out is
# simulated as uniform over the levels an eligible patient can have.
SimulationWeights = dict[str, dict[str, Annotated[float, Field(gt=0, allow_inf_nan=False)]]]


class FixedAllocation(Model):
    """Single-arm trials: every eligible, consented patient receives the one arm."""

    method: Literal["fixed"]
    arm: str


class AssignedAllocation(Model):
    """Non-randomized parallel designs: the coordinator names the arm, the basis and a reason."""

    method: Literal["assigned"]
    bases: list[str] = Field(
        default_factory=lambda: ["mdt_decision", "patient_preference", "other"], min_length=1
    )
    reason_required: bool = True


class BlockAllocation(Model):
    method: Literal["stratified_blocks"]
    ratio: dict[str, PositiveInt]
    strata: list[str] = Field(default_factory=list)
    # Drawn at random per block so the end of a block cannot be predicted from its start.
    block_sizes: list[PositiveInt] = Field(min_length=1)
    simulation: SimulationWeights | None = None


class Factor(Model):
    field: str
    weight: float = Field(default=1.0, gt=0)


class MinimizationAllocation(Model):
    """Pocock-Simon minimization."""

    method: Literal["minimization"]
    ratio: dict[str, PositiveInt]
    factors: list[Factor] = Field(min_length=1)
    # Probability of taking the imbalance-minimizing arm; below 1 keeps allocation unpredictable.
    probability: float = Field(gt=0.5, le=1.0)
    imbalance: Literal["range", "variance"] = "range"
    simulation: SimulationWeights | None = None


Allocation = Annotated[
    FixedAllocation | AssignedAllocation | BlockAllocation | MinimizationAllocation,
    Field(discriminator="method"),
]
