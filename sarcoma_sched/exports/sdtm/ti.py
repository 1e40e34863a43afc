"""TI, the inclusion and exclusion criteria.

IETESTCD is the criterion id without its hyphen (``INC-05`` → ``INC05``, letters and digits, at
most 8 characters); TIRL is the machine rule in words (what must hold to pass); a criterion only
checked after allocation has IESCAT ``POST-ALLOCATION``.
"""

from __future__ import annotations

from sarcoma_sched.exports.sdtm.common import Row, text
from sarcoma_sched.protocol.describe import describe_rule
from sarcoma_sched.protocol.model import Protocol
from sarcoma_sched.vocabulary import CriterionStage

__all__ = ["ietestcd", "rows"]

TESTCD_MAX = 8


def ietestcd(criterion_id: str) -> str:
    """``INC-05`` → ``INC05``: --TESTCD values are letters, digits and underscores only."""
    return criterion_id.replace("-", "")[:TESTCD_MAX]


def rows(protocol: Protocol) -> list[Row]:
    return [
        {
            "STUDYID": protocol.id,
            "DOMAIN": "TI",
            "IETESTCD": ietestcd(c.id),
            "IETEST": text(c.text, c.id),
            "IECAT": c.kind.upper(),
            "IESCAT": "POST-ALLOCATION" if c.stage == CriterionStage.POST_ALLOCATION else "",
            "TIRL": text(f"{c.id} passes if {describe_rule(c.rule)}"),
            "TIVERS": protocol.version,
        }
        for c in protocol.criteria
    ]
