"""What the engine carries in a USDM v4 file beyond the standard model, shared by the export
(``exports/usdm``) and the import (``protocol/usdm_import.py``).

USDM has no place for a working-day rule, a hard gap between two events, a cycle count, a
follow-up series in months, the allocation method or the screening rules the engine evaluates.
Each is written as an ``ExtensionAttribute`` whose ``valueString`` is JSON, on the element it
belongs to (docs/usdm.md lists them), so an export read back plans the same schedule.
"""

from __future__ import annotations

__all__ = [
    "ALLOCATION_INSTANCE",
    "ARM_EXTENSION",
    "EVENT_EXTENSION",
    "STUDY_EXTENSION",
]

_BASE = "urn:sarcoma-sched:usdm:1:"
# On the StudyVersion: the study settings (time zone, holiday country, …), sites, screening
# fields, criteria with their rules, and the allocation method.
STUDY_EXTENSION = _BASE + "study"
# On an arm's ScheduleTimeline: the arm's hard constraints.
ARM_EXTENSION = _BASE + "arm"
# On each ScheduledActivityInstance: what an event's Timing cannot say (kind, day rule, span,
# cycles, follow-up series, a working-day window, the anchor's first or last occurrence).
EVENT_EXTENSION = _BASE + "event"
# The name of each timeline's entry instance: the day of allocation, every anchor's origin.
ALLOCATION_INSTANCE = "allocation"
