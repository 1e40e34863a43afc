"""What the next allocation reads of a trial's history, counted by the database in one statement.

Minimization needs, per arm, how many earlier patients share each of the new patient's factor
levels; permuted blocks how many share the patient's stratum; every method the number of earlier
allocations and the last position. Decoding every earlier allocation's factors in Python for
that made an allocation's cost grow with the trial (10.5 ms at 300 patients, 20.6 ms at 1,000:
BENCHMARKS.md §1). Here the database groups the trial's allocations by arm and stored factors
(a few rows per combination of levels, however long the trial) and ``allocation.count_groups``
counts from those groups exactly what it counts from a whole history
(tests/integration/test_allocation_counts.py holds the two equal on both backends).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from types import MappingProxyType

from sqlalchemy import Text, bindparam, cast, func, select
from sqlalchemy.orm import Session

from sarcoma_sched.allocation import TrialCounts, count_groups
from sarcoma_sched.db.core_read import core_execute
from sarcoma_sched.db.models import Allocation
from sarcoma_sched.protocol.allocation import Allocation as Method

__all__ = ["trial_counts"]

# As text: PostgreSQL's json type has no equality to group by; the text is what was stored.
_STORED = cast(Allocation.factors, Text)
# Built once, as every statement an allocation runs: composing one costs more than running it.
_GROUPS = (
    select(Allocation.arm, _STORED, func.count(), func.max(Allocation.position))
    .where(Allocation.protocol_id == bindparam("protocol"))
    .group_by(Allocation.arm, _STORED)
)


@lru_cache(maxsize=4096)
def _factors(stored: str) -> Mapping[str, object]:
    # The same few dozen texts come back for every allocation of a trial; decoded once each.
    # Read-only, since every caller shares the one decoded value.
    return MappingProxyType(json.loads(stored))


def trial_counts(
    session: Session,
    protocol_id: str,
    method: Method,
    arm_ids: Sequence[str],
    factors: dict[str, str],
) -> TrialCounts:
    """The counts ``allocation.allocate_counted`` decides from, for a patient with ``factors``.

    Read under the write lock (``Database.write``), so they are those of the history the
    allocation follows."""
    rows = core_execute(session, _GROUPS, {"protocol": protocol_id}).all()
    groups = [(str(arm), _factors(text), int(n)) for arm, text, n, _last in rows]
    last = max((int(r[3] or 0) for r in rows), default=0)
    return count_groups(method, arm_ids, groups, factors, last_position=last)
