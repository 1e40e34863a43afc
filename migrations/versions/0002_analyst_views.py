"""Read-only views for analysts: the visit schedule, enrolment by arm and site, the screening log.

Views join several tables, so neither SQLite nor PostgreSQL can write through them: data managers
query them, and every change still goes through the engine and its audit log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

VIEWS = {
    "v_visit_schedule": """
        SELECT p.protocol_id, p.site_code, p.study_id, a.arm,
               e.event_id, e.event_key, e.kind, e.label, e.cycle,
               e.target, e.earliest, e.latest, e.local_time,
               e.status, e.actual_date, e.deviation, e.reason, e.revision,
               pe.kind AS participation_end
        FROM scheduled_events e
        JOIN patients p ON p.id = e.patient_id
        JOIN allocations a ON a.patient_id = p.id
        LEFT JOIN participation_ends pe ON pe.patient_id = p.id
    """,
    "v_enrollment_by_arm_site": """
        SELECT a.protocol_id, p.site_code, a.arm,
               COUNT(*) AS allocated,
               SUM(CASE WHEN pe.kind = 'withdrawn' THEN 1 ELSE 0 END) AS withdrawn,
               SUM(CASE WHEN pe.kind = 'excluded' THEN 1 ELSE 0 END) AS excluded
        FROM allocations a
        JOIN patients p ON p.id = a.patient_id
        LEFT JOIN participation_ends pe ON pe.patient_id = p.id
        GROUP BY a.protocol_id, p.site_code, a.arm
    """,
    "v_screening_log": """
        SELECT p.protocol_id, p.site_code, p.screening_number, p.study_id,
               s.screened_on, s.eligible, s.recorded_by,
               CASE WHEN en.id IS NULL THEN 0 ELSE 1 END AS enrolled
        FROM screenings s
        JOIN patients p ON p.id = s.patient_id
        LEFT JOIN enrollments en ON en.screening_id = s.id
    """,
}


def upgrade() -> None:
    for name, body in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {body.strip()}")


def downgrade() -> None:
    for name in reversed(VIEWS):
        op.execute(f"DROP VIEW {name}")
