"""The screening service's "today": the site's date at the instant given, never the machine's."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from sarcoma_sched.db.models import Screening
from sarcoma_sched.errors import Conflict
from sarcoma_sched.services.screening import screen
from tests.cohort import ELIGIBLE_NATARS

# 16:30 UTC on 1 November is 00:30 on 2 November in Beijing (UTC+8, no summer time).
NOW = dt.datetime(2026, 11, 1, 16, 30, tzinfo=dt.UTC)
BEIJING_TODAY = dt.date(2026, 11, 2)


def test_just_after_midnight_at_the_site_its_new_date_is_today_and_the_next_is_refused(database):
    undated = screen(database, "nurse", "NATARS", "PKUIH", ELIGIBLE_NATARS, now=NOW)
    assert undated.screened_on == BEIJING_TODAY  # not 1 November, the date in UTC
    dated = screen(
        database, "nurse", "NATARS", "PKUIH", ELIGIBLE_NATARS, screened_on=BEIJING_TODAY, now=NOW
    )
    assert dated.screened_on == BEIJING_TODAY
    with pytest.raises(Conflict) as refused:
        screen(
            database,
            "nurse",
            "NATARS",
            None,
            ELIGIBLE_NATARS,
            screened_on=BEIJING_TODAY + dt.timedelta(days=1),
            patient_ref=dated.screening_number,
            now=NOW,
        )
    assert str(refused.value) == (
        "screening date 2026-11-03 is in the future: today at site PKUIH (Asia/Shanghai) "
        "is 2026-11-02"
    )
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(Screening)) == 2
