"""The patient and screening registers and the audit log, paged, on SQLite and PostgreSQL.

Paging must walk every row of a listing exactly once, whatever the page size and filters:
hypothesis draws both and the pages, joined, are the unpaged listing.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sarcoma_sched.db.session import Database
from sarcoma_sched.services.allocation import allocate_patient
from sarcoma_sched.services.protocols import initialize
from sarcoma_sched.services.queries.audit_log import audit_listing, change_text
from sarcoma_sched.services.queries.registers import (
    LISTED_STATUSES,
    patient_listing,
    screening_listing,
)
from sarcoma_sched.services.screening import screen
from tests.cohort import ELIGIBLE_NATARS
from tests.databases import pg_schema_url

TODAY = dt.date.today()
SITES = ("PKUIH", "BJFH", "SHCH")
BIRTH_DATE = dt.date(1970, 1, 2)


def _build(url: str) -> Database:
    db = Database(url, check_schema=False)
    initialize(db, "setup")
    failing = {**ELIGIBLE_NATARS, "metastasis": "yes"}
    for i in range(14):
        site = SITES[i % 3]
        values = failing if i % 4 == 3 else ELIGIBLE_NATARS
        done = screen(
            db,
            "nurse",
            "NATARS",
            site,
            values,
            screened_on=TODAY - dt.timedelta(days=30 - i),
            birth_date=BIRTH_DATE if i == 0 else None,
        )
        if i % 4 in (0, 1):
            allocate_patient(
                db,
                "nurse",
                done.screening_number,
                today=TODAY,
                allocation_date=TODAY - dt.timedelta(days=20 - i),
                consent_date=TODAY - dt.timedelta(days=21 - i),
                arm="NEOADJUVANT" if i % 2 else "SURGERY_ONLY",
                basis="mdt_decision",
                reason="MDT",
            )
    return db


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def registers(request, tmp_path_factory):
    if request.param == "sqlite":
        db = _build(str(tmp_path_factory.mktemp("registers") / "r.db"))
        yield db
        db.dispose()
    else:
        with pg_schema_url() as url:
            db = _build(url)
            yield db
            db.dispose()


FILTERS = st.fixed_dictionaries(
    {
        "site": st.sampled_from([None, *SITES]),
        "status": st.sampled_from([None, *LISTED_STATUSES]),
    }
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(filters=FILTERS, size=st.integers(min_value=1, max_value=6))
def test_pages_of_patients_cover_every_row_exactly_once(registers, filters, size):
    with registers.read() as session:
        whole = patient_listing(session, **filters)
        pages, offset = [], 0
        while True:
            page = patient_listing(session, **filters, offset=offset, limit=size)
            assert page.total == whole.total
            pages.extend(page.rows)
            if page.next_offset is None:
                break
            offset = page.next_offset
    assert pages == whole.rows
    assert len({r["screening_number"] for r in pages}) == len(pages) == whole.total


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    result=st.sampled_from([None, "eligible", "not_eligible", "incomplete"]),
    failed=st.sampled_from([None, "EXC-03", "INC-01"]),
    size=st.integers(min_value=1, max_value=5),
    offset=st.integers(min_value=0, max_value=20),
)
def test_a_page_of_screenings_is_the_slice_of_the_whole_listing(
    registers, result, failed, size, offset
):
    with registers.read() as session:
        whole = screening_listing(session, result=result, failed=failed)
        page = screening_listing(session, result=result, failed=failed, offset=offset, limit=size)
    assert page.rows == whole.rows[offset : offset + size]
    assert page.total == whole.total == len(whole.rows)


def test_status_and_arm_filters_say_where_each_patient_stands(registers):
    with registers.read() as session:
        on_study = patient_listing(session, status="on_study")
        screened = patient_listing(session, status="screened")
        arm = patient_listing(session, arm="neoadjuvant")
        enrolled = patient_listing(session, enrolled_from=TODAY - dt.timedelta(days=20))
    assert on_study.total == 8 and all(r["arm"] for r in on_study.rows)
    assert screened.total == 3 and all(r["arm"] is None for r in screened.rows)
    assert {r["arm"] for r in arm.rows} == {"NEOADJUVANT"}
    assert all(r["enrolled_on"] >= TODAY - dt.timedelta(days=20) for r in enrolled.rows)
    assert 0 < enrolled.total < on_study.total


def test_a_failed_criterion_filter_keeps_only_screenings_that_failed_it(registers):
    with registers.read() as session:
        failed = screening_listing(session, result="not_eligible")
        assert failed.total == 3
        criterion = failed.rows[0]["failed"].split()[0]
        by_criterion = screening_listing(session, failed=criterion)
    assert by_criterion.total == 3
    assert all(criterion in r["failed"].split() for r in by_criterion.rows)


def test_the_audit_log_shows_old_and_new_values_and_never_a_birth_date(registers):
    with registers.read() as session:
        entries = audit_listing(session, entity="patients", action="allocate")
        screenings = audit_listing(session, action="screen", entity="patients", limit=1)
        everything = audit_listing(session, include_notes=True)
    assert entries.total > 0
    update = entries.rows[0]
    assert update["op"] == "update"
    text = change_text(update["op"], update["changes"])
    assert "study_id: ∅ → " in text
    (row,) = screenings.rows
    assert {"column": "birth_date", "old": None, "new": "(hidden)"} in row["changes"]
    shown = "\n".join(change_text(r["op"], r["changes"]) for r in everything.rows)
    assert BIRTH_DATE.isoformat() not in shown and "birth_date=(hidden)" in shown
