"""How patients are allocated to arms; the method is chosen by the protocol file."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveInt

from sarcoma_sched.limits import BASIS_LENGTH, MAX_BLOCK_SIZE
from sarcoma_sched.protocol.base import Model

__all__ = [
    "SITE_FACTOR",
    "Allocation",
    "AssignedAllocation",
    "BlockAllocation",
    "ConcealedAllocation",
    "Factor",
    "FixedAllocation",
    "MinimizationAllocation",
    "SimulationWeights",
    "conceal",
    "factor_fields",
    "is_randomized",
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
    bases: list[Annotated[str, Field(min_length=1, max_length=BASIS_LENGTH)]] = Field(
        default_factory=lambda: ["mdt_decision", "patient_preference", "other"], min_length=1
    )
    reason_required: bool = True


class BlockAllocation(Model):
    method: Literal["stratified_blocks"]
    ratio: dict[str, PositiveInt]
    strata: list[str] = Field(default_factory=list)
    # Drawn at random per block so the end of a block cannot be predicted from its start.
    block_sizes: list[Annotated[int, Field(ge=1, le=MAX_BLOCK_SIZE)]] = Field(min_length=1)
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


class ConcealedAllocation(Model):
    """A randomized method as the people who must not predict it read it: the design, the
    ratio and the factors a coordinator enters, without block sizes, probability or weights.

    Never written in a protocol file: the database derives it from the registered source for
    roles that may not read that source (coordinators, monitors), and the server draws with
    the full method. ``protocol_hash`` is the full definition's content hash, so a plan made
    from the concealed view names the same protocol as one made from the source.
    """

    method: Literal["concealed"]
    design: Literal["stratified_blocks", "minimization"]
    ratio: dict[str, PositiveInt]
    factors: list[str] = Field(default_factory=list)
    protocol_hash: str


Allocation = Annotated[
    FixedAllocation
    | AssignedAllocation
    | BlockAllocation
    | MinimizationAllocation
    | ConcealedAllocation,
    Field(discriminator="method"),
]


def is_randomized(allocation: object) -> bool:
    return isinstance(allocation, BlockAllocation | MinimizationAllocation | ConcealedAllocation)


def factor_fields(allocation: object) -> list[str]:
    """The factor fields a method reads: block strata or minimization factors, in order."""
    if isinstance(allocation, BlockAllocation):
        return list(allocation.strata)
    if isinstance(allocation, MinimizationAllocation):
        return [f.field for f in allocation.factors]
    if isinstance(allocation, ConcealedAllocation):
        return list(allocation.factors)
    return []


def conceal(allocation: object, protocol_hash: str) -> dict[str, object] | None:
    """The concealed form of a randomized method (None for a method with nothing to hide)."""
    if not isinstance(allocation, BlockAllocation | MinimizationAllocation):
        return None
    return {
        "method": "concealed",
        "design": allocation.method,
        "ratio": dict(allocation.ratio),
        "factors": factor_fields(allocation),
        "protocol_hash": protocol_hash,
    }
