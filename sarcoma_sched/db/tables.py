"""The columns the read commands select, as SQLAlchemy Core table clauses: no ORM, no models.

``visits``, ``overdue``, ``deviations`` and ``schedule`` are what a coordinator waits for at the
start of the day; importing ``sqlalchemy.orm`` and ``db.models`` cost them more than their queries
do (issue 24). These clauses name the same tables and columns with the same types as ``db.models``
(the types decide how a value is bound and read back: an SQLite date is text until ``Date`` reads
it), and ``tests/unit/test_core_tables.py`` holds every column equal to its model's, so they cannot
drift apart. Only the columns a Core reader uses are listed.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Date, Integer, String, Text, column, table

__all__ = [
    "ALLOCATIONS",
    "AUDIT_LOG",
    "ENROLLMENTS",
    "PATIENTS",
    "PROTOCOL_DEFINITIONS",
    "PROTOCOL_VERSIONS",
    "SCHEDULED_EVENTS",
    "SITES",
]

SCHEDULED_EVENTS = table(
    "scheduled_events",
    column("id", Integer),
    column("patient_id", Integer),
    column("event_id", String(64)),
    column("kind", String(32)),
    column("label", String(200)),
    column("cycle", Integer),
    column("target", Date),
    column("earliest", Date),
    column("latest", Date),
    column("days", JSON),
    column("first_day", Date),
    column("last_day", Date),
    column("span_days", Integer),
    column("local_time", String(5)),
    column("status", String(16)),
    column("actual_date", Date),
    column("pinned", Date),
    column("deviation", Text),
    column("reason", Text),
    column("note", Text),
    column("flags", JSON),
)

PATIENTS = table(
    "patients",
    column("id", Integer),
    column("protocol_id", String(32)),
    column("site_code", String(16)),
    column("screening_number", String(64)),
    column("study_id", String(64)),
)

ALLOCATIONS = table(
    "allocations",
    column("id", Integer),
    column("patient_id", Integer),
    column("protocol_id", String(32)),
    column("arm", String(32)),
    column("allocation_date", Date),
)

ENROLLMENTS = table(
    "enrollments",
    column("patient_id", Integer),
    column("protocol_version_id", Integer),
)

# A version's source, or for a role that may not read it, its concealed definition: what a
# stored schedule reads of the protocol the patient was enrolled under.
PROTOCOL_VERSIONS = table(
    "protocol_versions",
    column("id", Integer),
    column("source_name", String(255)),
    column("source", Text),
)

PROTOCOL_DEFINITIONS = table(
    "protocol_definitions",
    column("version_id", Integer),
    column("site_definition", Text),
)

SITES = table(
    "sites",
    column("code", String(16)),
    column("time_zone", String(64)),
    column("holiday_country", String(3)),
    column("holiday_subdivision", String(16)),
    column("inpatient_over_holidays", Boolean),
)

# Only its width: how long a name ``--user`` may give (``session._check_actor``).
AUDIT_LOG = table("audit_log", column("actor", String(64)))
