"""Working-day calendars, the planner, and the one constraint checker (pure: no database)."""

from sarcoma_sched.calendar.checker import check_events
from sarcoma_sched.calendar.holiday_table import HolidayTable, load_holiday_table
from sarcoma_sched.calendar.plan import (
    Actual,
    Change,
    Deviation,
    Flag,
    Pin,
    Plan,
    PlannedEvent,
    Violation,
)
from sarcoma_sched.calendar.planner import diff_plans, plan_arm
from sarcoma_sched.calendar.workdays import SiteCalendar, official_through
from sarcoma_sched.notices import Notice, notices_of

__all__ = [
    "Actual",
    "Change",
    "Deviation",
    "Flag",
    "HolidayTable",
    "Notice",
    "Pin",
    "Plan",
    "PlannedEvent",
    "SiteCalendar",
    "Violation",
    "check_events",
    "diff_plans",
    "load_holiday_table",
    "notices_of",
    "official_through",
    "plan_arm",
]
