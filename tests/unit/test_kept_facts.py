"""What ``schedule`` keeps on disk (``services/queries/kept.py``) is what parsing says: for every
bundled protocol and every arm, each occurrence's ``show_as`` and day rule as kept equal the
parser's, read from the source or from the concealed definition a site role reads; an entry
that is missing, corrupt or of the wrong shape is worked out again, never believed; and the
official years of a country's holidays are the ``holidays`` package's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sarcoma_sched.holiday_years import OfficialYears
from sarcoma_sched.protocol import list_protocols
from sarcoma_sched.protocol.concealment import site_definition
from sarcoma_sched.protocol.occurrences import occurrences
from sarcoma_sched.services.queries import kept, schedule

PROTOCOLS = list_protocols(Path(__file__).parents[2] / "protocols")
ARMS = [(p, arm.id) for p in PROTOCOLS for arm in p.protocol.arms]


@pytest.fixture(autouse=True)
def _own_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _entries(tmp_path: Path, kind: str) -> list[Path]:
    return sorted((tmp_path / "cache" / "sarcoma-sched").glob(f"{kind}-*.json"))


def _never_parsed(monkeypatch) -> None:
    def fail(*_: object) -> None:
        raise AssertionError("parsed, though the facts were kept")

    monkeypatch.setattr(schedule, "_parse", fail)


@pytest.mark.parametrize("form", ["source", "site"])
@pytest.mark.parametrize(("loaded", "arm"), ARMS, ids=lambda v: getattr(v, "id", v))
def test_the_kept_facts_of_every_arm_are_what_the_parser_says(
    loaded, arm, form, tmp_path, monkeypatch
):
    text = loaded.source if form == "source" else site_definition(loaded.protocol)
    parsed = {o.id: (o.span.show_as, o.day_rule) for o in occurrences(loaded.protocol.arm(arm))}
    assert parsed, "an arm with no occurrence says nothing here"
    cold = schedule.occurrence_facts(form, text, "protocol.toml")
    assert cold[arm] == parsed
    assert len(_entries(tmp_path, "occurrences")) == 1
    _never_parsed(monkeypatch)
    assert schedule.occurrence_facts(form, text, "protocol.toml")[arm] == parsed  # as kept


@pytest.mark.parametrize(
    "corrupt",
    ['{"NEOADJUVANT": ', "[]", '{"NEOADJUVANT": {"rt": ["days"]}}', '{"A": {"x": [1, 2]}}', ""],
)
def test_an_entry_that_is_not_whole_is_parsed_again_and_rewritten(corrupt, tmp_path):
    loaded = PROTOCOLS[0]
    expected = schedule.occurrence_facts("source", loaded.source, "p.toml")
    (entry,) = _entries(tmp_path, "occurrences")
    entry.write_text(corrupt, encoding="utf-8")
    assert schedule.occurrence_facts("source", loaded.source, "p.toml") == expected
    assert schedule._load_facts(json.loads(entry.read_text(encoding="utf-8"))) == expected


def test_another_text_or_another_program_reads_another_entry(tmp_path, monkeypatch):
    loaded = PROTOCOLS[0]
    schedule.occurrence_facts("source", loaded.source, "p.toml")
    schedule.occurrence_facts("source", loaded.source + "\n# amended\n", "p.toml")
    assert len(_entries(tmp_path, "occurrences")) == 2
    monkeypatch.setattr(schedule, "_code", lambda: "another build of the parser")
    schedule.occurrence_facts("source", loaded.source, "p.toml")
    assert len(_entries(tmp_path, "occurrences")) == 3


def test_a_cache_that_cannot_be_written_only_means_parsing_each_time(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory", encoding="utf-8")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    loaded = PROTOCOLS[0]
    facts = schedule.occurrence_facts("source", loaded.source, "p.toml")
    arm = loaded.protocol.arms[0]
    assert facts[arm.id] == {o.id: (o.span.show_as, o.day_rule) for o in occurrences(arm)}


def test_a_relative_cache_home_is_ignored(monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    assert kept.cache_dir() == Path.home() / ".cache" / "sarcoma-sched"


@pytest.mark.parametrize("country", ["CN", "NL", "US"])
def test_the_kept_official_years_are_the_holiday_packages(country, tmp_path):
    expected = OfficialYears.of(country)
    assert schedule.official_years(country) == expected  # worked out
    assert schedule.official_years(country) == expected  # as kept, if kept
    assert len(_entries(tmp_path, "official-through")) == (1 if country == "CN" else 0)
    for entry in _entries(tmp_path, "official-through"):
        entry.write_text("true", encoding="utf-8")  # a bool is not a year
        assert schedule.official_years(country) == expected


def test_the_bundled_protocols_hold_every_kind_of_fact_the_schedule_reads():
    facts = {
        (o.span.show_as, o.day_rule == "working_day")
        for loaded, arm in ARMS
        for o in occurrences(loaded.protocol.arm(arm))
    }
    assert {show_as for show_as, _ in facts} == {"days", "period"}
    assert {working for _, working in facts} == {True, False}
