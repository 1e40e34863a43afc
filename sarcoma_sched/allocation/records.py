"""What the allocator reads (past allocations) and what it returns (a decision)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sarcoma_sched.errors import AllocationError

__all__ = [
    "ALL_STRATUM",
    "Decision",
    "PriorAllocation",
    "TrialCounts",
    "factor_level",
    "stratum_key",
]

# The single stratum of an unstratified design.
ALL_STRATUM = "all"


@dataclass(frozen=True)
class PriorAllocation:
    """One past allocation, as recorded; withdrawn and excluded patients included (ITT)."""

    position: int
    arm: str
    factors: Mapping[str, str]
    stratum: str | None = None


@dataclass(frozen=True)
class TrialCounts:
    """All a method reads of a trial's history before a new patient: how many allocations there
    are, and how many share the patient's stratum or each of the patient's factor levels.

    The allocator counts these where they are stored (one ``GROUP BY``) instead of decoding
    every earlier allocation; :func:`~sarcoma_sched.allocation.methods.counts_of` counts the
    same from a history, and the decision is a function of the counts alone, so both give the
    same arm.
    """

    allocated: int  # earlier allocations of the trial
    last_position: int  # the highest position taken (0 for none)
    arms: frozenset[str]  # every arm an earlier allocation names
    in_stratum: int = 0  # earlier allocations in the patient's stratum (blocks)
    # level_counts[f][a]: earlier patients in arm ``a`` sharing the patient's level of factor f.
    level_counts: tuple[tuple[int, ...], ...] = ()
    # An earlier allocation with no value for this factor: a broken history, refused.
    missing_factor: str | None = None


@dataclass(frozen=True)
class Decision:
    """The arm for a new patient, and why.

    ``detail`` holds only what the recorded history already implies or what is specific to this
    draw (minimization scores, the uniform draw): it is safe to store with the allocation.

    ``concealed`` holds what would reveal *future* assignments if stored in the clear — for
    permuted blocks the block index, its size and the slot: with them and the past allocations
    anyone could deduce the rest of the block. Never write it to the database; an authorized
    auditor recomputes it from the secret with :func:`replay`.

    ``deterministic`` is True when someone who knows the rule and the block could not have been
    wrong about this arm. For permuted blocks it is itself concealed information (a True means
    the rest of the block is that arm); it exists for simulation and audit, not for storage.
    """

    arm: str
    stratum: str | None
    factors: dict[str, str]
    deterministic: bool
    detail: dict[str, Any] = field(default_factory=dict)
    concealed: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """The JSON-serializable part that may be stored with the allocation and audited."""
        return {
            "arm": self.arm,
            "stratum": self.stratum,
            "factors": dict(self.factors),
            "detail": dict(self.detail),
        }


def factor_level(value: object) -> str:
    """The canonical text of a factor value: booleans as ``true``/``false``, the rest as is.

    Strata and minimization counts compare these strings, so every caller must spell a level
    the same way ("True" from Python and "true" from JSON would otherwise be two strata).
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    raise AllocationError(f"a factor value must be text or a boolean, not {value!r}")


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("=", "\\=")


def stratum_key(fields: Sequence[str], factors: Mapping[str, str]) -> str:
    """``histology=LMS|site=PKUIH`` in the declared order of ``fields``; ``all`` when unstratified.

    Separators inside values are escaped so two different strata can never share a key (the key
    labels the stream a stratum's blocks are drawn from).
    """
    if not fields:
        return ALL_STRATUM
    return "|".join(f"{_escape(f)}={_escape(factors[f])}" for f in fields)
