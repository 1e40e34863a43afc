"""Screening values for test patients: the demo's eligible patients (one source of truth)."""

from sarcoma_sched.demo.cohort import ELIGIBLE_NATARS, ELIGIBLE_TNT

__all__ = ["ELIGIBLE_NATARS", "ELIGIBLE_TNT"]
