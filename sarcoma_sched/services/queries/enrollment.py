"""Enrolment counts: allocated patients by protocol, site, arm and/or stratum, with withdrawals
and exclusions, and the screening counts where the grouping allows them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sarcoma_sched.db.models import Allocation, Enrollment, ParticipationEnd, Patient, Screening
from sarcoma_sched.errors import Conflict
from sarcoma_sched.vocabulary import ALLOCATED_STATUSES, PRE_ALLOCATION, EndKind

__all__ = ["ENROLLMENT_GROUPS", "enrollment_columns", "enrollment_report"]

ENROLLMENT_GROUPS = ("protocol", "site", "arm", "stratum")


def enrollment_report(
    session: Session, *, protocol: str | None = None, by: Sequence[str] = ("protocol", "arm")
) -> list[dict[str, Any]]:
    """Allocated patients grouped ``by`` protocol, site, arm and/or stratum, with withdrawals
    and exclusions (who stay in the intention-to-treat counts), plus screening counts when the
    grouping has no arm or stratum (screening happens before either exists)."""
    unknown = [b for b in by if b not in ENROLLMENT_GROUPS]
    if unknown or not by:
        raise Conflict(
            f"--by: {', '.join(unknown) or 'nothing'}; choose from {', '.join(ENROLLMENT_GROUPS)}"
        )
    columns = {
        "protocol": Allocation.protocol_id,
        "site": Patient.site_code,
        "arm": Allocation.arm,
        "stratum": Allocation.stratum,
    }
    keys = [columns[b].label(b) for b in by]
    query = (
        select(
            *keys,
            func.count(Allocation.id).label("allocated"),
            func.count(ParticipationEnd.id).filter(ParticipationEnd.kind == EndKind.WITHDRAWN),
            func.count(ParticipationEnd.id).filter(ParticipationEnd.kind == EndKind.EXCLUDED),
        )
        .join(Patient, Patient.id == Allocation.patient_id)
        .outerjoin(ParticipationEnd, ParticipationEnd.patient_id == Patient.id)
        .group_by(*keys)
        .order_by(*keys)
    )
    if protocol:
        query = query.where(Allocation.protocol_id == protocol.upper())
    rows = []
    for r in session.execute(query):
        row: dict[str, Any] = {b: r[i] for i, b in enumerate(by)}
        # After the keys, the three count() columns.
        allocated, withdrawn, excluded = cast(Sequence[int], r[len(by) :])
        row.update(
            allocated=allocated,
            withdrawn=withdrawn,
            excluded=excluded,
            on_study=allocated - withdrawn - excluded,
        )
        rows.append(row)
    if not {"arm", "stratum"} & set(by):
        _add_screening_counts(session, rows, by, protocol)
    return rows


def _add_screening_counts(
    session: Session, rows: list[dict[str, Any]], by: Sequence[str], protocol: str | None
) -> None:
    columns = {"protocol": Patient.protocol_id, "site": Patient.site_code}
    keys = [columns[b].label(b) for b in by]
    latest = (
        select(Screening.patient_id, func.max(Screening.id).label("id"))
        .where(Screening.voided_at.is_(None))  # a voided screening is not counted
        .group_by(Screening.patient_id)
        .subquery()
    )
    query = (
        select(
            *keys,
            func.count(Patient.id).label("screened"),
            func.count(Patient.id).filter(Screening.eligible.is_(True)).label("eligible"),
            func.count(Enrollment.id).label("enrolled"),
        )
        .join(latest, latest.c.patient_id == Patient.id)
        .join(Screening, Screening.id == latest.c.id)
        .outerjoin(Enrollment, Enrollment.patient_id == Patient.id)
        .group_by(*keys)
    )
    if protocol:
        query = query.where(Patient.protocol_id == protocol.upper())
    counts = {tuple(r[: len(by)]): r[len(by) :] for r in session.execute(query)}
    by_key = {tuple(row[b] for b in by): row for row in rows}
    for key, (screened, eligible, enrolled) in counts.items():
        row = by_key.get(key)
        if row is None:  # screened but nobody allocated yet
            row = {b: key[i] for i, b in enumerate(by)}
            row.update(allocated=0, withdrawn=0, excluded=0, on_study=0)
            rows.append(row)
        row.update(screened=screened, eligible=eligible, enrolled=enrolled)
    for row in rows:
        for status in PRE_ALLOCATION:
            row.setdefault(status.value, 0)
    rows.sort(key=lambda row: tuple(str(row[b]) for b in by))


def enrollment_columns(by: Sequence[str]) -> list[str]:
    counts = [s.value for s in ALLOCATED_STATUSES]
    if not {"arm", "stratum"} & set(by):
        counts = [*(s.value for s in PRE_ALLOCATION), *counts]
    return [*by, *counts]
