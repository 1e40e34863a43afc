"""Amendments site by site, on SQLite and PostgreSQL: which version a patient gets, and a
patient moved to a new version on re-consenting (issue 22, item 2)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from sarcoma_sched.db.audit import verify
from sarcoma_sched.db.models import (
    AuditEntry,
    Enrollment,
    Patient,
    ProtocolTransition,
    ProtocolVersion,
    ScheduledEvent,
    Screening,
)
from sarcoma_sched.errors import Conflict, NotFound
from sarcoma_sched.protocol import load_protocol
from sarcoma_sched.services.activations import activate_version
from sarcoma_sched.services.allocation import allocate_patient
from sarcoma_sched.services.enrollment import enroll
from sarcoma_sched.services.events import record_event
from sarcoma_sched.services.protocols import load_protocols
from sarcoma_sched.services.screening import screen
from sarcoma_sched.services.transitions import transition_patient
from sarcoma_sched.vocabulary import EventStatus, ReasonCode
from tests.amendment import AMENDED_VERSION, BASE_VERSION, amended_natars
from tests.cohort import ELIGIBLE_NATARS
from tests.dumps import dump

MARCH = dt.date(2026, 3, 2)
APPROVED = dt.date(2026, 4, 1)  # PKUIH's ethics committee approves 1.3
AFTER = dt.date(2026, 4, 2)
TODAY = dt.date(2026, 5, 4)


def _screen(db, site: str, on: dt.date) -> str:
    return screen(db, "nurse", "NATARS", site, ELIGIBLE_NATARS, screened_on=on).screening_number


def _allocate(db, ref: str, on: dt.date) -> str:
    done = allocate_patient(
        db,
        "nurse",
        ref,
        today=on,
        allocation_date=on,
        consent_date=on,
        arm="SURGERY_ONLY",
        basis="mdt_decision",
        reason="MDT",
    )
    return done.study_id


def _version_of(db, ref: str) -> tuple[str | None, str | None]:
    """(version screened under, version enrolled under) of a patient."""
    with db.read() as session:
        patient = session.scalars(
            select(Patient).where((Patient.study_id == ref) | (Patient.screening_number == ref))
        ).one()
        screened = session.scalar(
            select(ProtocolVersion.version)
            .join(Screening, Screening.protocol_version_id == ProtocolVersion.id)
            .where(Screening.patient_id == patient.id)
        )
        enrolled = session.scalar(
            select(ProtocolVersion.version)
            .join(Enrollment, Enrollment.protocol_version_id == ProtocolVersion.id)
            .where(Enrollment.patient_id == patient.id)
        )
    return screened, enrolled


def _events(db, ref: str) -> dict[str, ScheduledEvent]:
    with db.read() as session:
        patient = session.scalars(select(Patient).where(Patient.study_id == ref)).one()
        rows = session.scalars(
            select(ScheduledEvent).where(ScheduledEvent.patient_id == patient.id)
        ).all()
        session.expunge_all()
    return {r.event_id: r for r in rows}


@pytest.fixture
def amended(database, tmp_path):
    """NATARS 1.3 loaded (not yet active anywhere) and a PKUIH patient allocated under 1.2 in
    March whose surgery is done."""
    load_protocols(database, "admin", [load_protocol(amended_natars(tmp_path))])
    early = _allocate(database, _screen(database, "PKUIH", MARCH), MARCH)
    surgery = _events(database, early)["surgery"]
    record_event(
        database, "nurse", early, "surgery", "done", date=surgery.target, reason=None, today=TODAY
    )
    return database, early


def test_a_loaded_version_runs_nowhere_until_a_site_activates_it(amended):
    db, early = amended
    assert _version_of(db, early) == (BASE_VERSION, BASE_VERSION)
    later = _screen(db, "PKUIH", AFTER)
    assert _version_of(db, later) == (BASE_VERSION, None)


def test_patients_get_the_version_their_site_runs_on_the_screening_and_consent_date(amended):
    db, _ = amended
    outcome = activate_version(db, "admin", "NATARS", AMENDED_VERSION, "PKUIH", APPROVED)
    assert (outcome.version, outcome.previous) == (AMENDED_VERSION, BASE_VERSION)
    before = _screen(db, "PKUIH", APPROVED - dt.timedelta(days=1))
    at_pkuih = _allocate(db, _screen(db, "PKUIH", APPROVED), AFTER)
    at_bjfh = _allocate(db, _screen(db, "BJFH", AFTER), AFTER)
    assert _version_of(db, before) == (BASE_VERSION, None)
    assert _version_of(db, at_pkuih) == (AMENDED_VERSION, AMENDED_VERSION)
    assert _version_of(db, at_bjfh) == (BASE_VERSION, BASE_VERSION)
    # Planned under their own versions: only 1.3 has the post-operative visit.
    assert "postop" in _events(db, at_pkuih) and "postop" not in _events(db, at_bjfh)
    assert "follow_up.m60" in _events(db, at_bjfh) and "follow_up.m60" not in _events(db, at_pkuih)


def test_a_patient_screened_under_the_old_version_is_not_enrolled_under_the_new_one(amended):
    db, _ = amended
    screened = _screen(db, "PKUIH", APPROVED - dt.timedelta(days=3))
    activate_version(db, "admin", "NATARS", AMENDED_VERSION, "PKUIH", APPROVED)
    before = dump(db.url)
    with pytest.raises(Conflict, match=r"screened under NATARS 1\.2 .* runs 1\.3 .* screen the"):
        enroll(db, "nurse", screened, AFTER, today=TODAY)
    assert dump(db.url) == before
    # Consenting before the approval, the patient is enrolled under the version screened under.
    enroll(db, "nurse", screened, APPROVED - dt.timedelta(days=1), today=TODAY)
    assert _version_of(db, screened)[1] == BASE_VERSION


@pytest.mark.parametrize(
    ("version", "site", "approved", "message"),
    [
        ("1.3", "PKUIH", TODAY + dt.timedelta(days=400), "in the future"),
        ("9.9", "PKUIH", APPROVED, r"no version '9\.9' \(loaded: 1\.2, 1\.3"),
        ("1.3", "NOWHERE", APPROVED, "no site 'NOWHERE'"),
        # The early patient was screened at PKUIH on MARCH under 1.2.
        ("1.3", "PKUIH", MARCH, r"before 2 record\(s\) at PKUIH .* under 1\.2"),
    ],
)
def test_an_activation_that_cannot_be_true_is_refused_and_changes_nothing(
    amended, version, site, approved, message
):
    db, _ = amended
    before = dump(db.url)
    with pytest.raises((Conflict, NotFound), match=message):
        activate_version(db, "admin", "NATARS", version, site, approved)
    assert dump(db.url) == before


def test_a_version_is_activated_at_a_site_once(amended):
    db, _ = amended
    activate_version(db, "admin", "NATARS", AMENDED_VERSION, "PKUIH", APPROVED)
    before = dump(db.url)
    with pytest.raises(Conflict, match="already active at PKUIH"):
        activate_version(db, "admin", "NATARS", AMENDED_VERSION, "PKUIH", AFTER)
    assert dump(db.url) == before


def test_a_transition_replans_open_events_and_keeps_what_was_recorded(amended):
    db, early = amended
    activate_version(db, "admin", "NATARS", AMENDED_VERSION, "PKUIH", APPROVED)
    old = _events(db, early)
    reconsent = dt.date(2026, 4, 10)

    outcome = transition_patient(db, "nurse", early, AMENDED_VERSION, reconsent)

    assert (outcome.from_version, outcome.to_version) == (BASE_VERSION, AMENDED_VERSION)
    new = _events(db, early)
    changes = {c.event_id: c for c in outcome.changes}
    assert {k: c.change for k, c in changes.items()} == {
        "postop": "new",
        "follow_up.m54": "cancelled",
        "follow_up.m60": "cancelled",
    }
    # The done surgery stays exactly as recorded; the new visit is timed from its actual day.
    assert new["surgery"].status == EventStatus.DONE
    assert new["surgery"].revision == old["surgery"].revision
    assert new["surgery"].days == old["surgery"].days
    postop = new["postop"]
    assert postop.earliest == old["surgery"].actual_date + dt.timedelta(days=35)
    assert postop.revision == 0
    for gone in ("follow_up.m54", "follow_up.m60"):
        assert new[gone].status == EventStatus.CANCELLED
        assert new[gone].reason == ReasonCode.PROTOCOL_AMENDMENT
        assert new[gone].uid == old[gone].uid
        assert new[gone].revision == old[gone].revision + 1
    # Events that continue unchanged keep their row as it was.
    assert new["follow_up.m48"].revision == old["follow_up.m48"].revision
    with db.read() as session:
        patient = session.scalars(select(Patient).where(Patient.study_id == early)).one()
        moved = session.scalars(
            select(ProtocolTransition).where(ProtocolTransition.patient_id == patient.id)
        ).one()
        assert moved.reconsent_date == reconsent
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.entity == "protocol_transitions")
        ).all()
        assert actions == ["transition"]
        assert verify(session).ok, verify(session).problems
    assert _version_of(db, early) == (BASE_VERSION, AMENDED_VERSION)


def test_a_planned_event_that_continues_keeps_its_uid_and_its_sequence_rises(amended):
    db, _ = amended
    patient = _allocate(db, _screen(db, "PKUIH", AFTER), AFTER)
    # Approved the day after the patient's screening and consent under 1.2.
    activate_version(db, "admin", "NATARS", AMENDED_VERSION, "PKUIH", dt.date(2026, 4, 3))
    old = _events(db, patient)
    outcome = transition_patient(db, "nurse", patient, AMENDED_VERSION, dt.date(2026, 4, 3))
    new = _events(db, patient)
    surgery = next(c for c in outcome.changes if c.event_id == "surgery")
    assert surgery.change in ("window", "moved")
    assert surgery.before is not None and surgery.before.latest < surgery.after.latest
    assert new["surgery"].uid == old["surgery"].uid == surgery.uid
    assert new["surgery"].revision == old["surgery"].revision + 1 == surgery.sequence


@pytest.mark.parametrize(
    ("site", "reconsent", "message"),
    [
        ("BJFH", dt.date(2026, 4, 10), r"1\.3 is not active at site BJFH on 2026-04-10"),
        ("PKUIH", APPROVED - dt.timedelta(days=1), r"not active at site PKUIH on 2026-03-31"),
        ("PKUIH", TODAY + dt.timedelta(days=400), "in the future"),
        ("PKUIH", MARCH - dt.timedelta(days=1), "before the patient's consent"),
    ],
)
def test_a_patient_never_moves_to_a_version_the_site_does_not_run_on_the_date(
    amended, site, reconsent, message
):
    db, early = amended
    activate_version(db, "admin", "NATARS", AMENDED_VERSION, "PKUIH", APPROVED)
    patient = early if site == "PKUIH" else _allocate(db, _screen(db, site, MARCH), MARCH)
    before = dump(db.url)
    with pytest.raises(Conflict, match=message):
        transition_patient(db, "nurse", patient, AMENDED_VERSION, reconsent)
    assert dump(db.url) == before


def test_a_transition_to_the_version_the_patient_runs_is_refused(amended):
    db, early = amended
    before = dump(db.url)
    with pytest.raises(Conflict, match=r"already runs NATARS 1\.2"):
        transition_patient(db, "nurse", early, BASE_VERSION, AFTER)
    assert dump(db.url) == before


def test_an_activation_is_audited_as_its_own_action(amended):
    db, _ = amended
    activate_version(db, "admin", "NATARS", AMENDED_VERSION, "PKUIH", APPROVED)
    with db.read() as session:
        entries = session.execute(
            select(AuditEntry.action, AuditEntry.change).where(
                AuditEntry.entity == "protocol_activations"
            )
        ).all()
    assert [e.action for e in entries][-1] == "protocol activate"
    after = json.loads(entries[-1].change)["after"]
    assert (after["site_code"], after["approved_on"]) == ("PKUIH", "2026-04-01")


def test_a_version_may_be_named_as_protocol_load_prints_it(amended):
    db, _ = amended
    outcome = activate_version(db, "admin", "NATARS", f"v{AMENDED_VERSION}", "PKUIH", APPROVED)
    assert outcome.version == AMENDED_VERSION
