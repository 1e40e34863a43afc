"""The read side, and the only one: every question asked of the database without changing it.

Each module reads one thing and hands back plain rows or frozen values, never a session, so
``reports`` and ``exports`` render them and ``cli`` prints them without touching the database:

* ``listings``: visits in a date range, what is overdue, the deviations (across patients);
* ``schedule``: one patient's schedule;
* ``enrollment``: allocated, withdrawn, excluded, screened by protocol, site, arm, stratum;
* ``consort``: the CONSORT flow counts of a trial;
* ``timeline``: one patient's events for the Gantt chart;
* ``workload``: event-days per day or week, a site's days off;
* ``capacity``: a site's resource limits, bookings and their use;
* ``allocations``: a trial's allocation sequence as recorded;
* ``sites``: the sites with their allocated patients and closures ahead;
* ``calendars``: a patient's or a site's calendar to export;
* ``trials``: everything the HTML report shows of each trial.

Queries find patients, sites and protocols through ``services.lookups`` (``schedule``, served by
SQL text the driver runs as the listings are, ``db.rows``, through ``services.names``) and
import no other service: the use cases read through here, never the other way round.

Each name is imported from its module when first used (PEP 562), so ``visits`` loads the
listings alone, not the enrollment tables, the CONSORT flow or the calendars' exports.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sarcoma_sched.services.queries.allocations import ALLOCATION_COLUMNS, allocation_listing
    from sarcoma_sched.services.queries.calendars import patient_calendar, site_calendar_export
    from sarcoma_sched.services.queries.capacity import (
        USAGE_COLUMNS,
        bookings,
        capacity_usage,
        site_limits,
    )
    from sarcoma_sched.services.queries.consort import ArmFlow, ConsortFlow, consort_flow
    from sarcoma_sched.services.queries.enrollment import (
        ENROLLMENT_GROUPS,
        enrollment_columns,
        enrollment_report,
    )
    from sarcoma_sched.services.queries.listings import (
        DEVIATION_COLUMNS,
        EVENT_COLUMNS,
        OVERDUE_COLUMNS,
        deviations,
        overdue,
        visits,
    )
    from sarcoma_sched.services.queries.schedule import (
        PatientSchedule,
        StoredEvent,
        patient_schedule,
    )
    from sarcoma_sched.services.queries.sites import SITE_COLUMNS, list_sites
    from sarcoma_sched.services.queries.timeline import (
        PatientTimeline,
        TimelineEvent,
        patient_timeline,
    )
    from sarcoma_sched.services.queries.trials import TrialReport, trial_reports
    from sarcoma_sched.services.queries.workload import (
        COUNTED_STATUSES,
        non_working_days,
        workload,
        workload_columns,
    )

__all__ = [
    "ALLOCATION_COLUMNS",
    "COUNTED_STATUSES",
    "DEVIATION_COLUMNS",
    "ENROLLMENT_GROUPS",
    "EVENT_COLUMNS",
    "OVERDUE_COLUMNS",
    "SITE_COLUMNS",
    "USAGE_COLUMNS",
    "ArmFlow",
    "ConsortFlow",
    "PatientSchedule",
    "PatientTimeline",
    "StoredEvent",
    "TimelineEvent",
    "TrialReport",
    "allocation_listing",
    "bookings",
    "capacity_usage",
    "consort_flow",
    "deviations",
    "enrollment_columns",
    "enrollment_report",
    "list_sites",
    "non_working_days",
    "overdue",
    "patient_calendar",
    "patient_schedule",
    "patient_timeline",
    "site_calendar_export",
    "site_limits",
    "trial_reports",
    "visits",
    "workload",
    "workload_columns",
]

# Where each name lives.
_MODULES = {
    "ALLOCATION_COLUMNS": "allocations",
    "ArmFlow": "consort",
    "COUNTED_STATUSES": "workload",
    "ConsortFlow": "consort",
    "DEVIATION_COLUMNS": "listings",
    "ENROLLMENT_GROUPS": "enrollment",
    "EVENT_COLUMNS": "listings",
    "OVERDUE_COLUMNS": "listings",
    "PatientSchedule": "schedule",
    "PatientTimeline": "timeline",
    "SITE_COLUMNS": "sites",
    "StoredEvent": "schedule",
    "TimelineEvent": "timeline",
    "TrialReport": "trials",
    "USAGE_COLUMNS": "capacity",
    "allocation_listing": "allocations",
    "bookings": "capacity",
    "capacity_usage": "capacity",
    "consort_flow": "consort",
    "deviations": "listings",
    "enrollment_columns": "enrollment",
    "enrollment_report": "enrollment",
    "list_sites": "sites",
    "non_working_days": "workload",
    "overdue": "listings",
    "patient_calendar": "calendars",
    "patient_schedule": "schedule",
    "patient_timeline": "timeline",
    "site_calendar_export": "calendars",
    "site_limits": "capacity",
    "trial_reports": "trials",
    "visits": "listings",
    "workload": "workload",
    "workload_columns": "workload",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # asked once: later look-ups find it in the module
    return value


class _Package(types.ModuleType):
    """``workload`` is a module and the function it holds: importing the module names it on the
    package (the import system's setattr), which would hide the function. The package's name
    is the function, as when this package imported every name at once."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _MODULES.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
