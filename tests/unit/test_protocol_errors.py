"""Every malformed protocol in tests/protocols/ is rejected with the file, field path and reason."""

from pathlib import Path

import pytest

from sarcoma_sched.errors import ProtocolError
from sarcoma_sched.protocol import load_protocol, parse_protocol

FIXTURES = Path(__file__).parents[1] / "protocols"
BAD = sorted(FIXTURES.glob("bad_*.toml"))


def _expectation(path: Path) -> tuple[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found = {}
    for line in lines[:4]:
        if line.startswith("# expect-"):
            name, _, value = line.removeprefix("# expect-").partition(": ")
            found[name] = value
    return found["path"], found["message"]


def test_the_corpus_covers_the_required_mistakes():
    names = {p.stem for p in BAD}
    for required in (
        "bad_wrong_type_every",
        "bad_window_reversed",
        "bad_unknown_anchor",
        "bad_cyclic_anchor",
        "bad_criterion_unknown_field",
        "bad_criterion_unknown_category",
        "bad_allocation_factor",
        "bad_toml_syntax",
    ):
        assert required in names


def test_the_base_fixture_is_valid():
    assert load_protocol(FIXTURES / "minimal.toml").id == "MINI"


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_malformed_protocol_is_rejected_naming_file_path_and_reason(path):
    want_path, want_message = _expectation(path)
    with pytest.raises(ProtocolError) as caught:
        load_protocol(path)
    lines = caught.value.lines()
    matching = [
        line for line in lines if line.startswith(f"{path}: {want_path}") and want_message in line
    ]
    assert matching, f"no line names {want_path!r} with {want_message!r}: {lines}"


def test_wrong_type_names_the_offending_value():
    with pytest.raises(ProtocolError) as caught:
        load_protocol(FIXTURES / "bad_wrong_type_every.toml")
    assert "'21d'" in str(caught.value)


def test_all_problems_are_reported_at_once_not_just_the_first():
    text = (FIXTURES / "minimal.toml").read_text(encoding="utf-8")
    text = text.replace('time_zone = "Europe/Amsterdam"', 'time_zone = "Mars/Olympus"')
    text = text.replace('field = "age_years", min = 18', 'field = "age", min = 18')
    with pytest.raises(ProtocolError) as caught:
        parse_protocol(text, "two.toml")
    paths = [p.path for p in caught.value.problems]
    assert "study.time_zone" in paths
    assert "criteria[INC-01].rule.field" in paths


def test_a_missing_file_is_one_clear_problem(tmp_path):
    with pytest.raises(ProtocolError) as caught:
        load_protocol(tmp_path / "nowhere.toml")
    (line,) = caught.value.lines()
    assert "nowhere.toml" in line
    assert "cannot read file" in line
