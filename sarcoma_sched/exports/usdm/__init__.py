"""CDISC USDM v4 export of a protocol version, through the ``usdm4`` package (the ``usdm``
extra): its model classes build the study and its rules library validates the file."""

from __future__ import annotations

from sarcoma_sched.exports.usdm.validate import UsdmFindings, validate_usdm
from sarcoma_sched.exports.usdm.write import write_usdm

__all__ = ["UsdmFindings", "validate_usdm", "write_usdm"]
