"""The declared bounds: each text length the pure core repeats is its column's, and the parsers
of numbers and zone names answer any input with a value in bounds or a ValueError/one usage
error, never another exception."""

from __future__ import annotations

import click
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Integer

from sarcoma_sched import limits
from sarcoma_sched.cli.numbers import CAPACITY, WholeNumber, parse_day_capacity
from sarcoma_sched.db import models
from sarcoma_sched.db.columns import INTEGER_RANGES, text_length
from sarcoma_sched.protocol.base import Key

COPIES = {
    "ACTOR_LENGTH": [models.AuditEntry.actor]
    + [
        getattr(model, name)
        for model in models.Base.__subclasses__()
        for name in model.__table__.columns.keys()  # noqa: SIM118 (a ColumnCollection)
        if name.endswith("_by")
    ],
    "PROTOCOL_ID_LENGTH": [
        models.ProtocolVersion.protocol_id,
        models.Patient.protocol_id,
        models.Allocation.protocol_id,
        models.TrialKey.protocol_id,
    ],
    "PROTOCOL_VERSION_LENGTH": [models.ProtocolVersion.version],
    "ARM_ID_LENGTH": [models.Allocation.arm],
    "BASIS_LENGTH": [models.Allocation.basis],
    "SITE_CODE_LENGTH": [models.Site.code],
    "SITE_NAME_LENGTH": [models.Site.name],
    "TIME_ZONE_LENGTH": [models.Site.time_zone],
    "SUBDIVISION_LENGTH": [models.Site.holiday_subdivision],
    "EVENT_LABEL_LENGTH": [models.ScheduledEvent.label],
}


@pytest.mark.parametrize("name", list(COPIES))
def test_each_length_the_core_repeats_is_the_length_of_its_columns(name):
    assert len(COPIES[name]) >= 1
    assert {text_length(column) for column in COPIES[name]} == {getattr(limits, name)}


def test_the_widest_stored_integer_is_the_integer_columns_bound():
    [(low, high)] = [bounds for family, bounds in INTEGER_RANGES if family is Integer]
    assert (low, high) == (-limits.MAX_STORED_INT - 1, limits.MAX_STORED_INT)


def test_the_longest_occurrence_id_fits_its_column():
    # ``key.m240`` (a follow-up visit) or ``key.200`` (a cycle), the key at its longest.
    longest_key = next(m.max_length for m in Key.__metadata__ if hasattr(m, "max_length"))
    longest = longest_key + len(f".m{limits.MAX_FOLLOW_UP_MONTHS}")
    assert longest <= text_length(models.ScheduledEvent.event_id)


def _ascii_whole(text: str) -> int | None:
    """What a careful reader takes ``text`` for: optional sign, then digits 0-9 only."""
    stripped = text.strip()
    body = stripped[1:] if stripped[:1] in "+-" else stripped
    if not body or not all("0" <= c <= "9" for c in body):
        return None
    body = body.lstrip("0") or "0"
    if len(body) > 4000:
        return None  # beyond any bound here
    return -int(body) if stripped.startswith("-") else int(body)


TEXTS = st.one_of(
    st.text(max_size=30),
    st.text(alphabet="0123456789+- ²٣３_", max_size=30),
    st.integers().map(str),
    st.integers(min_value=4000, max_value=5000).map(lambda n: "1" * n),
    st.integers(min_value=4000, max_value=5000).map(lambda n: "0" * n + "7"),
)


@given(TEXTS, st.integers(-(10**6), 10**6), st.integers(0, 10**9))
def test_any_text_is_a_whole_number_in_bounds_or_a_value_error(text, low, width):
    high = low + width
    expected = _ascii_whole(text)
    try:
        value = limits.parse_whole(text, low, high)
    except ValueError as exc:
        assert "\n" not in str(exc)
        assert expected is None or not low <= expected <= high
        return
    assert value == expected and low <= value <= high


@given(TEXTS)
def test_any_text_given_to_a_numeric_option_is_in_bounds_or_one_usage_error(text):
    try:
        value = CAPACITY.convert(text, None, None)
    except click.BadParameter as exc:
        assert "\n" not in exc.format_message()
        return
    assert 0 <= value <= limits.MAX_CAPACITY


@given(st.text(max_size=20))
def test_any_day_capacity_is_a_day_and_a_bounded_number_or_one_usage_error(value):
    try:
        name, n = parse_day_capacity(f"tue={value}")
    except click.BadParameter as exc:
        assert "\n" not in exc.format_message()
        return
    assert name == "tue" and 0 <= n <= limits.MAX_CAPACITY


def test_a_default_given_as_a_number_is_still_checked():
    assert WholeNumber(1, 5).convert(3, None, None) == 3
    with pytest.raises(click.BadParameter):
        WholeNumber(1, 5).convert(6, None, None)


@given(st.one_of(st.text(max_size=300), st.sampled_from(["Asia", "Etc", "../zoneinfo", ""])))
def test_any_zone_name_is_known_or_not_never_an_exception(name):
    assert limits.is_time_zone(name) in (True, False)


@pytest.mark.parametrize(
    ("name", "known"),
    [
        ("Asia/Shanghai", True),
        ("America/Argentina/ComodRivadavia", True),
        ("UTC", True),
        ("Asia", False),  # a directory of zones
        ("Asia/" + "A" * 251, False),  # longer than a file name may be
        ("Asia/Shanghai/", False),
        ("a\x00b", False),
    ],
)
def test_zone_names(name, known):
    assert limits.is_time_zone(name) is known


@pytest.mark.parametrize("text", ["+٣d", "+３d", "-²d"])
def test_a_relative_date_takes_ascii_digits_only(text):
    from sarcoma_sched.cli.dates import DATE

    with pytest.raises(click.BadParameter):
        DATE.convert(text, None, None)
