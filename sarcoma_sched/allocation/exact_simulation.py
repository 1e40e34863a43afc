"""The simulated methods run by the production allocator itself: ``allocation simulate --exact``.

Each simulated patient is allocated by :func:`allocate` over the trial's history so far, from the
trial's :class:`SimulationStream`, exactly as a coordinator's allocation would be from the
trial's DrawStream (the comparator, simple randomization, by :func:`simple_randomization`).
Nothing is shared with the vectorised path but the stream's numbers, so the two agreeing is
evidence, not a tautology. It costs what
the allocator costs: the history is re-read at every position, quadratic in the trial's size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from sarcoma_sched.allocation.methods import allocate, simple_randomization
from sarcoma_sched.allocation.records import PriorAllocation
from sarcoma_sched.allocation.simulation_stream import SimulationStream
from sarcoma_sched.protocol.allocation import BlockAllocation, MinimizationAllocation

__all__ = ["allocator_exact", "simple_exact"]

Ints = NDArray[np.int64]


def allocator_exact(
    method: BlockAllocation | MinimizationAllocation,
    arm_ids: Sequence[str],
    fields: Sequence[str],
    level_names: Sequence[Sequence[str]],
    streams: Sequence[SimulationStream],
    patients: Ints,
) -> tuple[Ints, Ints]:
    """(arm index per trial and position, deterministic assignments per trial)."""
    n_trials, n, _ = patients.shape
    index = {a: i for i, a in enumerate(arm_ids)}
    out = np.empty((n_trials, n), dtype=np.int64)
    forced = np.zeros(n_trials, dtype=np.int64)
    for t in range(n_trials):
        stream = streams[t]
        history: list[PriorAllocation] = []
        for i, levels in enumerate(patients[t].tolist()):
            factors = {
                f: level_names[c][lv] for c, (f, lv) in enumerate(zip(fields, levels, strict=True))
            }
            decision = allocate(method, arm_ids, history, factors, i + 1, stream)
            history.append(PriorAllocation(i + 1, decision.arm, factors, decision.stratum))
            out[t, i] = index[decision.arm]
            forced[t] += decision.deterministic
    return out, forced


def simple_exact(
    arm_ids: Sequence[str], ratio: Mapping[str, int], streams: Sequence[SimulationStream], n: int
) -> tuple[Ints, Ints]:
    index = {a: i for i, a in enumerate(arm_ids)}
    out = np.empty((len(streams), n), dtype=np.int64)
    for t, stream in enumerate(streams):
        for i in range(n):
            out[t, i] = index[simple_randomization(arm_ids, ratio, stream.derive("simple", i + 1))]
    return out, np.zeros(len(streams), dtype=np.int64)
