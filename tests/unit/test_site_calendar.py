"""The site working-day calendar: weekends, holidays, China's make-up days, closures, tables."""

import datetime as dt
from itertools import pairwise
from pathlib import Path

import holidays
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sarcoma_sched.calendar import SiteCalendar, load_holiday_table, official_through
from sarcoma_sched.errors import HolidayTableError

TABLES = Path(__file__).parents[1] / "calendars"
D = dt.date.fromisoformat


def test_chinese_make_up_saturdays_are_working_days_and_festival_weekdays_are_not():
    cn = SiteCalendar("CN", time_zone="Asia/Shanghai")
    assert cn.is_working_day(D("2026-02-14"))  # Saturday, make-up day for Spring Festival
    assert cn.is_working_day(D("2026-10-10"))  # Saturday, make-up day for National Day
    assert not cn.is_working_day(D("2026-02-16"))  # Monday, Spring Festival eve
    assert not cn.is_working_day(D("2026-10-05"))  # Monday in Golden Week
    assert not cn.is_working_day(D("2026-02-21"))  # an ordinary Saturday
    assert cn.is_working_day(D("2026-02-24"))
    assert cn.why_not_working(D("2026-10-01")) == "National Day"
    assert cn.why_not_working(D("2026-02-21")) == "weekend"


@given(st.dates(dt.date(2024, 1, 1), dt.date(2026, 12, 31)))
def test_without_overrides_the_calendar_agrees_with_the_holidays_package(day):
    package = holidays.country_holidays("CN")
    assert SiteCalendar("CN").is_working_day(day) == package.is_working_day(day)


def test_closures_and_extra_working_days_win_over_everything():
    closed, opened = D("2026-03-03"), D("2026-10-04")  # a Tuesday; a Sunday in Golden Week
    cal = SiteCalendar("CN", closures=[closed], extra_working_days=[opened])
    assert not cal.is_working_day(closed)
    assert cal.why_not_working(closed) == "site closure"
    assert cal.is_working_day(opened)
    with pytest.raises(ValueError):
        SiteCalendar("CN", closures=[closed], extra_working_days=[closed])


def test_china_is_official_through_the_packages_last_announced_year_only():
    assert official_through("CN") >= 2026
    cn = SiteCalendar("CN")
    horizon = official_through("CN")
    assert cn.is_official(horizon)
    assert not cn.is_official(horizon + 1)
    # Rule-based countries have no estimated years.
    assert official_through("NL") is None
    assert SiteCalendar("NL").is_official(2035)


def test_an_official_table_makes_its_year_official_and_replaces_the_estimate():
    table = load_holiday_table(TABLES / "cn-2027-illustrative.toml")
    cal = SiteCalendar("CN", tables=[table])
    assert cal.is_official(2027)
    assert cal.is_working_day(D("2027-01-30"))  # a Saturday the table makes a working day
    assert not cal.is_working_day(D("2027-02-12"))  # a Friday inside the table's block
    assert cal.why_not_working(D("2027-02-12")) == "Spring Festival"
    # 2027-05-04 is Labour Day (observed) in the package's estimate; the loaded table, which
    # does not list it, decides the whole year instead.
    assert not SiteCalendar("CN").is_working_day(D("2027-05-04"))
    assert cal.is_working_day(D("2027-05-04"))  # not in this (illustrative) table
    assert not cal.is_official(2028)


def test_a_table_for_another_country_is_refused():
    table = load_holiday_table(TABLES / "cn-2027-illustrative.toml")
    with pytest.raises(ValueError):
        SiteCalendar("NL", tables=[table])


def test_a_bad_holiday_table_is_one_clear_line_naming_the_file(tmp_path):
    with pytest.raises(HolidayTableError) as caught:
        load_holiday_table(TABLES / "bad_makeup_on_holiday.toml")
    (line,) = caught.value.lines()
    assert "bad_makeup_on_holiday.toml" in line
    assert "2027-02-06 is both a holiday and a make-up working day" in line
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('country = "CN"\nyear = "next"\nsource = "x"\n', encoding="utf-8")
    with pytest.raises(HolidayTableError) as caught:
        load_holiday_table(wrong)
    assert caught.value.lines()[0].startswith(f"{wrong}: year: ")


@given(st.dates(dt.date(2024, 1, 1), dt.date(2035, 12, 31)), st.integers(1, 12))
def test_working_days_from_gives_consecutive_working_days(start, count):
    cal = SiteCalendar("CN")
    first = cal.next_working_day(start)
    days = cal.working_days_from(first, count)
    assert len(days) == count
    assert all(cal.is_working_day(d) for d in days)
    for a, b in pairwise(days):
        between = [a + dt.timedelta(days=i) for i in range(1, (b - a).days)]
        assert not any(cal.is_working_day(d) for d in between)
