"""The closed vocabularies of the engine, as ``StrEnum``s: statuses, kinds, codes.

A member is its own text (``EventStatus.DONE == "done"``), so a row, a JSON document, an SQL
statement or a CHECK constraint holds the plain word, and ``json.dumps`` or a database driver
takes a member as the string it is. Code names the member, never the bare word: a misspelt
member is an AttributeError (and a mypy error) instead of a comparison that is silently never
true, and every place that asks about a status is found by searching for one name.
``tests/unit/test_vocabulary.py`` holds the package to that. The plain tuples (``EVENT_KINDS``,
``SEXES``, ...) are for click's choices and pydantic's ``Literal``, which show the words.

Standard library only: the command line offers these as choices on start-up, before it loads
the protocol models (pydantic) or the database (SQLAlchemy).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ALLOCATED_STATUSES",
    "AT_HOME_KINDS",
    "BOOKED_STATUSES",
    "BUILTIN_RULES",
    "END_KINDS",
    "EVENT_KINDS",
    "EVENT_STATUSES",
    "NOT_HAPPENED",
    "OFF_CALENDAR",
    "PLACEMENT_RULES",
    "PRE_ALLOCATION",
    "REASON_CODES",
    "RECORDABLE_STATUSES",
    "RESOURCE_NAMES",
    "SEXES",
    "TENTATIVE_FLAGS",
    "TREATMENT_KINDS",
    "UNSAFE_FLAGS",
    "WORKLOAD_KINDS",
    "CriterionStage",
    "DatabasePurpose",
    "DeviationKind",
    "EndKind",
    "EventKind",
    "EventStatus",
    "FlagCode",
    "PatientStatus",
    "PinPolicy",
    "ReasonCode",
    "Resource",
    "Sex",
    "SiteDayKind",
    "ViolationRule",
]


# --- scheduled events ----------------------------------------------------------------------------


class EventStatus(StrEnum):
    """What became of one scheduled event."""

    PLANNED = "planned"  # still to come: every re-plan may move it (unless pinned)
    DONE = "done"  # happened, on the days recorded
    MISSED = "missed"  # recorded as not having happened in its window
    SKIPPED = "skipped"  # recorded as deliberately not given (a reason kept)
    CANCELLED = "cancelled"  # dropped by a re-plan or an end of participation; the row is kept


# What a coordinator records (``record``): history, which re-planning never moves.
RECORDABLE_STATUSES = (EventStatus.DONE, EventStatus.MISSED, EventStatus.SKIPPED)
# Recorded as not having happened: no actual date, so the hard constraints and the anchors of
# later events pass over them, and each is a deviation.
NOT_HAPPENED = (EventStatus.MISSED, EventStatus.SKIPPED)
# Holding a day at the site: capacity, the workload and the default listings count these.
BOOKED_STATUSES = (EventStatus.PLANNED, EventStatus.DONE)
# Not going to happen on any day: a calendar shows them cancelled, a schedule its status.
OFF_CALENDAR = (EventStatus.MISSED, EventStatus.SKIPPED, EventStatus.CANCELLED)

EVENT_STATUSES = tuple(status.value for status in EventStatus)


class EventKind(StrEnum):
    """The kinds of scheduled event, in the order of a patient's pathway."""

    BASELINE = "baseline"
    RADIOTHERAPY = "radiotherapy"
    LABS = "labs"
    INFUSION = "infusion"
    ORAL = "oral"
    IMAGING = "imaging"
    SURGERY = "surgery"
    POSTOP = "postop"
    FOLLOW_UP = "follow_up"
    VISIT = "visit"


# Plain strings, in pathway order: the protocol models' Literal and the CLI's choices, whose
# error messages and help show the words themselves.
EVENT_KINDS = tuple(kind.value for kind in EventKind)

# The kinds that are the allocated intervention itself (the CONSORT "received" question and the
# SDTM elements use the same list).
TREATMENT_KINDS = (EventKind.RADIOTHERAPY, EventKind.INFUSION, EventKind.ORAL, EventKind.SURGERY)

# Taken at home: no visit, no ward or clinic load (oral dosing between visits).
AT_HOME_KINDS = (EventKind.ORAL,)

# The kinds that are ward, theatre or clinic load: every kind but those taken at home, in the
# order of a patient's pathway (the workload report counts these).
WORKLOAD_KINDS = tuple(kind for kind in EventKind if kind not in AT_HOME_KINDS)


class Resource(StrEnum):
    """A site resource with a capacity; ``calendar.capacity`` says which kind books it."""

    THEATRE = "theatre"
    INFUSION = "infusion"
    RT_COURSE = "rt_course"


RESOURCE_NAMES = tuple(resource.value for resource in Resource)


# --- what the planner and the checker report -----------------------------------------------------


class FlagCode(StrEnum):
    """A planned event a coordinator must look at, or (the last) a plan's notice."""

    UNSATISFIABLE = "unsatisfiable"  # no day meets the window, the day rule and the constraints
    OVER_CAPACITY = "over_capacity"  # the site's capacity for its resource is used up that day
    # A coordinator's date (reschedule) that a later re-plan made break a hard constraint,
    # kept because the pin's policy says keep: exported TENTATIVE, never CONFIRMED.
    PIN_BREAKS_CONSTRAINT = "pin_breaks_constraint"
    # The same, released (the default policy): the event moved to the first valid day.
    PIN_RELEASED = "pin_released"
    # No working day at all in the window (a closure covering it): the target is kept.
    NO_VALID_DAY = "no_valid_day"
    # An inpatient stay that runs into a holiday block (3+ days off) no day of its window avoids.
    HOLIDAY_BLOCK = "holiday_block"
    # After the registered trial end date: still planned, but not to be booked unseen.
    AFTER_TRIAL_END = "after_trial_end"
    # About the plan, not one event: working-day events in a year whose holidays (and make-up
    # working days) are the ``holidays`` package's estimate, not an announced arrangement.
    ESTIMATED_HOLIDAYS = "estimated_holidays"


# Flags whose event's date breaks a hard rule: calendars show it TENTATIVE, with the reason.
UNSAFE_FLAGS = frozenset(
    {FlagCode.UNSATISFIABLE, FlagCode.PIN_BREAKS_CONSTRAINT, FlagCode.NO_VALID_DAY}
)


# Flags that leave a planned date in doubt: a hard rule broken, a resource with no room, a stay
# into a holiday block, a date after the trial's registered end.
TENTATIVE_FLAGS = UNSAFE_FLAGS | {
    FlagCode.OVER_CAPACITY,
    FlagCode.HOLIDAY_BLOCK,
    FlagCode.AFTER_TRIAL_END,
}


class PinPolicy(StrEnum):
    """What a pinned date does when a re-plan makes it break a hard constraint."""

    RELEASE = "release"  # move to the first valid day, say old -> new
    KEEP = "keep"  # the date stands (a booked theatre), flagged pin_breaks_constraint


class ViolationRule(StrEnum):
    """The rules the checker applies to every event; a declared constraint's rule is its id."""

    WINDOW = "window"
    WORKING_DAY = "working_day"
    SPAN = "span"
    ORDER = "order"


BUILTIN_RULES = tuple(ViolationRule)
# About the day an event is on, not its distance to another event.
PLACEMENT_RULES = (ViolationRule.WINDOW, ViolationRule.WORKING_DAY)


class DeviationKind(StrEnum):
    """What happened that the protocol did not plan."""

    EARLY = "early"
    LATE = "late"
    MISSED = "missed"
    SKIPPED = "skipped"
    RESCHEDULED = "rescheduled"  # a pin outside the window
    NEEDS_REASON = "needs_reason"  # a cycle delayed beyond the protocol's limit, no reason given
    NON_WORKING_DAY = "non_working_day"
    CONSTRAINT = "constraint"  # a hard constraint broken by recorded dates


# --- patients ------------------------------------------------------------------------------------


class PatientStatus(StrEnum):
    """Where a patient stands in the CONSORT flow, as the enrollment report counts them, in
    the report's column order.

    The first four are stages a patient passes (an allocated patient was screened, found
    eligible and enrolled); an allocated patient is then exactly one of the last three.
    """

    SCREENED = "screened"
    ELIGIBLE = "eligible"
    ENROLLED = "enrolled"
    ALLOCATED = "allocated"
    WITHDRAWN = "withdrawn"
    EXCLUDED = "excluded"
    ON_STUDY = "on_study"


# Counted from the screenings, which happen before a patient has an arm or a stratum.
PRE_ALLOCATION = (PatientStatus.SCREENED, PatientStatus.ELIGIBLE, PatientStatus.ENROLLED)
# Counted from the allocations: every allocated patient, and where each one now stands.
ALLOCATED_STATUSES = (
    PatientStatus.ALLOCATED,
    PatientStatus.WITHDRAWN,
    PatientStatus.EXCLUDED,
    PatientStatus.ON_STUDY,
)


class EndKind(StrEnum):
    """How a patient's participation ended; the patient stays in the analysis (ITT)."""

    WITHDRAWN = "withdrawn"  # consent withdrawn
    EXCLUDED = "excluded"  # a criterion found not met after allocation


END_KINDS = tuple(kind.value for kind in EndKind)


class ReasonCode(StrEnum):
    """Why something happened (a withdrawal, a delay, a move, a closure), as a code.

    The code is what leaves the database: calendars, pictures, listings, SDTM and error
    messages carry it. What a coordinator types beside it ("patient Zhang asked to stop, phone
    138…") is a note, kept inside the database and shown only on an explicit ``--include-notes``.
    Rows written before codes existed read as ``other``.
    """

    PATIENT_REQUEST = "patient_request"
    TOXICITY = "toxicity"
    PROGRESSION = "progression"
    INTERCURRENT_ILLNESS = "intercurrent_illness"
    CLINICIAN_DECISION = "clinician_decision"
    SITE_CLOSED = "site_closed"
    CAPACITY = "capacity"
    LOGISTICS = "logistics"
    DATA_ERROR = "data_error"  # a correction of what was recorded
    INELIGIBLE = "ineligible"  # a criterion found not met after allocation
    # An event the patient's new protocol version no longer has (``transition``).
    PROTOCOL_AMENDMENT = "protocol_amendment"
    OTHER = "other"

    @classmethod
    def of(cls, value: str | None) -> ReasonCode | None:
        """The code a stored reason stands for: itself, or ``other`` for free text."""
        if value is None or value == "":
            return None
        try:
            return cls(value)
        except ValueError:
            return cls.OTHER


REASON_CODES = tuple(code.value for code in ReasonCode)


class Sex(StrEnum):
    """The sex recorded at screening (no name or birth date is ever exported with it)."""

    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


SEXES = tuple(sex.value for sex in Sex)


class CriterionStage(StrEnum):
    """When a criterion is checked."""

    SCREENING = "screening"
    POST_ALLOCATION = "post_allocation"


# --- the database --------------------------------------------------------------------------------


class SiteDayKind(StrEnum):
    """A day a coordinator set apart from a site's holiday calendar (``site_closures.kind``)."""

    CLOSED = "closed"  # `site close`: no treatment that day, working day or not
    OPEN = "open"  # `site open`: a working day although a weekend or public holiday


class DatabasePurpose(StrEnum):
    """What a database is for, set once by ``init``: the demo's published key is refused for a
    trial's database."""

    TRIAL = "trial"
    DEMO = "demo"
