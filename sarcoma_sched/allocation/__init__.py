"""Allocation: fixed, assigned, stratified permuted blocks and minimization; the concealed,
reproducible draw stream keyed by the trial secret; simulation of operating characteristics.

Pure: imports nothing from the database, the services or the command line.
"""

from sarcoma_sched.allocation.blocks import block_arms, forced_from, locate
from sarcoma_sched.allocation.methods import (
    ReplayRow,
    allocate,
    allocate_counted,
    count_groups,
    counts_of,
    method_fields,
    replay,
    replay_decisions,
    simple_randomization,
)
from sarcoma_sched.allocation.minimization import MinimizationRule, reduced_ratio
from sarcoma_sched.allocation.records import (
    ALL_STRATUM,
    Decision,
    PriorAllocation,
    TrialCounts,
    factor_level,
    stratum_key,
)
from sarcoma_sched.allocation.secret import (
    INIT_SECRET_COMMAND,
    SECRET_ENV,
    generate_secret,
    load_secret,
    write_secret_file,
)
from sarcoma_sched.allocation.simulate import (
    LevelImbalance,
    MethodReport,
    SimulationReport,
    Stats,
    default_distributions,
    eligible_levels,
    simulate,
)
from sarcoma_sched.allocation.stream import DrawStream, trial_key

__all__ = [
    "ALL_STRATUM",
    "INIT_SECRET_COMMAND",
    "SECRET_ENV",
    "Decision",
    "DrawStream",
    "LevelImbalance",
    "MethodReport",
    "MinimizationRule",
    "PriorAllocation",
    "ReplayRow",
    "SimulationReport",
    "Stats",
    "TrialCounts",
    "allocate",
    "allocate_counted",
    "block_arms",
    "count_groups",
    "counts_of",
    "default_distributions",
    "eligible_levels",
    "factor_level",
    "forced_from",
    "generate_secret",
    "load_secret",
    "locate",
    "method_fields",
    "reduced_ratio",
    "replay",
    "replay_decisions",
    "simple_randomization",
    "simulate",
    "stratum_key",
    "trial_key",
    "write_secret_file",
]
