"""``audit.insert_audited`` writes the rows and entries an ORM flush would have written.

A new calendar's events are inserted in one ``executemany`` with their entries chained from
the same dicts (``services.schedules.store_plan``), not as ORM objects through the flush hook.
Held here to the ORM path on both backends: the same stored values, the same entries (on
PostgreSQL written by the server's triggers), a chain ``audit verify`` accepts, and a value
its column cannot hold refused in the same words with nothing written.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from sarcoma_sched.calendar import SiteCalendar, plan_arm
from sarcoma_sched.db.audit import insert_audited, update_audited, verify
from sarcoma_sched.db.models import AuditEntry, Patient, ScheduledEvent
from sarcoma_sched.db.types import utc_now
from sarcoma_sched.errors import InputError
from sarcoma_sched.protocol.loader import find_protocol
from sarcoma_sched.services.schedules import event_rows
from tests.dumps import dump

_SKIP = {"id", "patient_id", "uid"}


def _patient(number: str) -> Patient:
    return Patient(
        protocol_id="NATARS",
        site_code="PKUIH",
        screening_number=number,
        study_id=f"PKUIH-NATARS-{number}",
        sex="female",
        created_at=utc_now(),
    )


def _plan():
    protocol = find_protocol("NATARS").protocol
    calendar = SiteCalendar("CN", time_zone="Asia/Shanghai")
    return plan_arm(protocol, protocol.arms[-1].id, dt.date(2026, 3, 2), calendar)


def _entries(session, patient_id: int) -> list[dict]:
    import json

    found = []
    for entry in session.scalars(
        select(AuditEntry).where(AuditEntry.entity == "scheduled_events").order_by(AuditEntry.seq)
    ):
        change = json.loads(entry.change)
        after = change["after"]
        if after["patient_id"] == patient_id:
            found.append({k: v for k, v in after.items() if k not in _SKIP} | {"op": change["op"]})
    return found


def test_insert_audited_writes_what_the_orm_flush_writes(database):
    plan = _plan()
    with database.write("tester", "allocate") as session:
        by_orm, by_rows = _patient("0001"), _patient("0002")
        session.add_all([by_orm, by_rows])
        session.flush()
        now = utc_now()
        session.add_all(ScheduledEvent(**row) for row in event_rows(by_orm, plan, "i", now))
        session.flush()
        ids = insert_audited(session, "scheduled_events", event_rows(by_rows, plan, "i", now))
    assert len(ids) == len(plan.events) > 10
    with database.read() as session:
        stored = {
            p: [
                {c: getattr(e, c) for c in ScheduledEvent.__table__.c.keys() if c not in _SKIP}  # noqa: SIM118
                for e in session.scalars(
                    select(ScheduledEvent)
                    .where(ScheduledEvent.patient_id == p)
                    .order_by(ScheduledEvent.id)
                )
            ]
            for p in (by_orm.id, by_rows.id)
        }
        assert stored[by_rows.id] == stored[by_orm.id]
        assert [
            e.id
            for e in session.scalars(
                select(ScheduledEvent)
                .where(ScheduledEvent.patient_id == by_rows.id)
                .order_by(ScheduledEvent.id)
            )
        ] == ids
        # The entries agree but for the ids; on PostgreSQL the server's triggers wrote both.
        assert _entries(session, by_rows.id) == _entries(session, by_orm.id)
        assert len(_entries(session, by_rows.id)) == len(ids)
        report = verify(session)
    assert report.ok, report.problems


def test_a_value_its_column_cannot_hold_is_refused_and_nothing_is_written(database, db_url):
    plan = _plan()
    with database.write("tester", "screen") as session:
        session.add(_patient("0003"))
    before = dump(db_url)
    with pytest.raises(InputError) as refused, database.write("tester", "allocate") as session:
        patient = session.scalars(select(Patient).where(Patient.screening_number == "0003")).one()
        rows = event_rows(patient, plan, "i")
        rows[0]["label"] = "x" * 201
        rows[1]["reason"] = "a\x00b"
        insert_audited(session, "scheduled_events", rows)
    assert str(refused.value).startswith("scheduled_events.label: 'xxxxxxxx")
    assert "scheduled_events.reason: text with a NUL character" in str(refused.value)
    assert dump(db_url) == before


def test_a_row_missing_a_column_is_a_bug_not_a_default(database):
    plan = _plan()
    with pytest.raises(RuntimeError, match=r"lack \['note'\]"), database.write("t", "x") as s:
        patient = _patient("0004")
        s.add(patient)
        s.flush()
        rows = event_rows(patient, plan, "i")
        del rows[0]["note"]
        insert_audited(s, "scheduled_events", rows)


def _patient_entries(session, patient_id: int) -> list[dict]:
    import json

    return [
        json.loads(entry.change)
        for entry in session.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity == "patients", AuditEntry.entity_id == str(patient_id))
            .order_by(AuditEntry.seq)
        )
    ]


def test_update_audited_writes_what_an_attribute_change_and_flush_write(database):
    # Enrolment sets the study id this way (services.enrollment.enroll_row).
    with database.write("tester", "screen") as session:
        by_orm, by_core = _patient("0005"), _patient("0006")
        by_orm.study_id = by_core.study_id = None
        session.add_all([by_orm, by_core])
    with database.write("tester", "enrol") as session:
        orm = session.get(Patient, by_orm.id)
        core = session.get(Patient, by_core.id)
        orm.study_id = "PKUIH-NATARS-0001"
        session.flush()
        update_audited(session, core, {"study_id": "PKUIH-NATARS-0002"})
        assert core.study_id == "PKUIH-NATARS-0002"  # the object shows what is stored
        assert core not in session.dirty  # ...as stored, not as a change still to flush
    with database.read() as session:
        assert session.get(Patient, by_core.id).study_id == "PKUIH-NATARS-0002"
        orm_entries = _patient_entries(session, by_orm.id)
        core_entries = _patient_entries(session, by_core.id)
        assert (
            [e["op"] for e in core_entries]
            == [e["op"] for e in orm_entries]
            == [
                "insert",
                "update",
            ]
        )
        strip = {"id", "screening_number", "study_id", "created_at"}
        for orm_entry, core_entry in zip(orm_entries, core_entries, strict=True):
            for side in ("before", "after"):
                mine, theirs = core_entry[side], orm_entry[side]
                if mine is None:
                    assert theirs is None
                    continue
                assert {k: v for k, v in mine.items() if k not in strip} == {
                    k: v for k, v in theirs.items() if k not in strip
                }
        assert core_entries[1]["before"]["study_id"] is None
        assert core_entries[1]["after"]["study_id"] == "PKUIH-NATARS-0002"
        report = verify(session)
    assert report.ok, report.problems


def test_update_audited_refuses_what_it_cannot_chain(database, db_url):
    with database.write("tester", "screen") as session:
        session.add(_patient("0007"))
    before = dump(db_url)
    with database.write("tester", "enrol") as session:
        patient = session.scalars(select(Patient).where(Patient.screening_number == "0007")).one()
        with pytest.raises(RuntimeError, match="cannot set"):
            update_audited(session, patient, {"no_such_column": 1})
        with pytest.raises(RuntimeError, match="cannot set"):
            update_audited(session, patient, {"id": 99})
        with pytest.raises(InputError, match=r"patients\.study_id"):
            update_audited(session, patient, {"study_id": "x" * 500})
    assert dump(db_url) == before
