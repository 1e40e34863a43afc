"""TA, the trial arms: each arm's elements in order, with the branch where the arms part."""

from __future__ import annotations

from collections.abc import Mapping

from sarcoma_sched.exports.sdtm.common import Row, text
from sarcoma_sched.exports.sdtm.te import Elements
from sarcoma_sched.protocol.allocation import (
    AssignedAllocation,
    is_randomized,
)
from sarcoma_sched.protocol.model import Protocol

__all__ = ["rows"]


def rows(protocol: Protocol, arms: Mapping[str, str], built: Elements) -> list[Row]:
    a = protocol.allocation
    out = []
    for arm in protocol.arms:
        sequence = built.sequences[arm.id]
        for order, (element, epoch) in enumerate(sequence, 1):
            branch = ""
            # The branch sits on the element at whose end the arms part (SDTMIG TABRANCH).
            if order == 1 and len(protocol.arms) > 1:
                if is_randomized(a):
                    branch = f"Randomized to {text(arm.label, arm.id)}"
                elif isinstance(a, AssignedAllocation):
                    branch = f"Assigned to {text(arm.label, arm.id)} ({', '.join(a.bases)})"
                else:
                    branch = f"Allocated to {text(arm.label, arm.id)}"
            out.append(
                {
                    "STUDYID": protocol.id,
                    "DOMAIN": "TA",
                    "ARMCD": arms[arm.id],
                    "ARM": text(arm.label, arm.id),
                    "TAETORD": order,
                    "ETCD": element.etcd,
                    "ELEMENT": element.element,
                    "TABRANCH": text(branch) if branch else "",
                    "TATRANS": "",
                    "EPOCH": epoch,
                }
            )
    return out
