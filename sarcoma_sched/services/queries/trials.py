"""Everything the offline HTML report shows of each trial, read in one go (``trial_reports``):
the CONSORT flow, enrolment by arm and by site, the weekly workload from 4 weeks back to 12
ahead (every site, and each site's sum), the allocated patients and each one's timeline.
``reports.html`` lays it out and writes the pages.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sarcoma_sched.db.models import (
    Allocation,
    ParticipationEnd,
    Patient,
    ProtocolVersion,
    ScheduledEvent,
)
from sarcoma_sched.errors import NotFound
from sarcoma_sched.services.queries.consort import ConsortFlow, consort_flow
from sarcoma_sched.services.queries.enrollment import enrollment_columns, enrollment_report
from sarcoma_sched.services.queries.timeline import PatientTimeline, trial_timelines
from sarcoma_sched.services.queries.workload import workload
from sarcoma_sched.vocabulary import WORKLOAD_KINDS, EventStatus

__all__ = [
    "TrialReport",
    "site_load",
    "trial_ids",
    "trial_patients",
    "trial_reports",
]

WEEKS_BACK = 4
WEEKS_AHEAD = 12


@dataclass(frozen=True)
class TrialReport:
    flow: ConsortFlow
    date_from: dt.date  # the workload's period, Monday to Sunday
    date_to: dt.date
    weekly: list[dict[str, Any]]  # workload per week, every site of the trial
    site_load: list[dict[str, Any]]  # workload per site, summed over the period
    enrollment: dict[str, tuple[list[dict[str, Any]], list[str]]]  # title → (rows, columns)
    patients: list[dict[str, Any]]  # by study id (see trial_patients)
    timelines: list[PatientTimeline]  # one per patient, in the same order


def trial_ids(session: Session) -> list[str]:
    return list(
        session.scalars(
            select(ProtocolVersion.protocol_id).distinct().order_by(ProtocolVersion.protocol_id)
        )
    )


def trial_reports(
    session: Session, *, today: dt.date, protocols: Sequence[str] | None = None
) -> list[TrialReport]:
    """One ``TrialReport`` per trial asked for (every trial in the database by default)."""
    known = trial_ids(session)
    if not known:
        raise NotFound("no protocol in the database: run `sarcoma-sched init`")
    wanted = [p.upper() for p in protocols] if protocols else known
    for p in wanted:
        if p not in known:
            raise NotFound(f"protocol {p!r} is not in the database (loaded: {', '.join(known)})")
    date_from = today - dt.timedelta(days=today.weekday()) - dt.timedelta(weeks=WEEKS_BACK)
    date_to = date_from + dt.timedelta(weeks=WEEKS_BACK + WEEKS_AHEAD, days=-1)
    reports = []
    for pid in wanted:
        patients = trial_patients(session, pid, today)
        reports.append(
            TrialReport(
                flow=consort_flow(session, pid),
                date_from=date_from,
                date_to=date_to,
                weekly=workload(session, date_from, date_to, protocol=pid, by="week"),
                site_load=site_load(session, pid, date_from, date_to),
                enrollment={
                    "by arm": (
                        enrollment_report(session, protocol=pid, by=["arm"]),
                        enrollment_columns(["arm"]),
                    ),
                    "by site": (
                        enrollment_report(session, protocol=pid, by=["site"]),
                        enrollment_columns(["site"]),
                    ),
                },
                patients=patients,
                timelines=trial_timelines(session, pid),
            )
        )
    return reports


def trial_patients(session: Session, protocol_id: str, today: dt.date) -> list[dict[str, Any]]:
    """The trial's allocated patients: site, arm, on study or ended, the next planned event
    from ``today`` and the number of deviations."""
    ends = {
        e.patient_id: e
        for e in session.scalars(
            select(ParticipationEnd)
            .join(Patient, Patient.id == ParticipationEnd.patient_id)
            .where(Patient.protocol_id == protocol_id)
        )
    }
    next_event = dict(
        session.execute(
            select(ScheduledEvent.patient_id, func.min(ScheduledEvent.first_day))
            .where(ScheduledEvent.status == EventStatus.PLANNED, ScheduledEvent.first_day >= today)
            .group_by(ScheduledEvent.patient_id)
        ).all()
    )
    deviations = dict(
        session.execute(
            select(ScheduledEvent.patient_id, func.count(ScheduledEvent.id))
            .where(ScheduledEvent.deviation.is_not(None))
            .group_by(ScheduledEvent.patient_id)
        ).all()
    )
    rows = []
    for patient, allocation in session.execute(
        select(Patient, Allocation)
        .join(Allocation, Allocation.patient_id == Patient.id)
        .where(Patient.protocol_id == protocol_id)
        .order_by(Patient.study_id)
    ).all():
        end = ends.get(patient.id)
        rows.append(
            {
                "study_id": patient.study_id,
                "site": patient.site_code,
                "arm": allocation.arm,
                "allocated": allocation.allocation_date,
                "status": f"{end.kind} {end.effective_date}" if end else "on study",
                "next_planned": next_event.get(patient.id),
                "deviations": deviations.get(patient.id, 0),
            }
        )
    return rows


def site_load(
    session: Session, protocol_id: str, date_from: dt.date, date_to: dt.date
) -> list[dict[str, Any]]:
    """Event-days per kind at each of the trial's sites, summed over [from, to]."""
    sites = session.scalars(
        select(Patient.site_code)
        .join(Allocation, Allocation.patient_id == Patient.id)
        .where(Patient.protocol_id == protocol_id)
        .distinct()
        .order_by(Patient.site_code)
    ).all()
    rows = []
    for site in sites:
        weeks = workload(session, date_from, date_to, site=site, protocol=protocol_id, by="week")
        row: dict[str, Any] = {"site": site}
        for kind in (*WORKLOAD_KINDS, "total"):
            row[kind] = sum(w[kind] for w in weeks)
        rows.append(row)
    return rows
