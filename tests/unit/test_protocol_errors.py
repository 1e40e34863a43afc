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
        # sanity limits (issue 18): numbers that validate, then exhaust memory or overflow
        "bad_block_size_too_large",
        "bad_too_many_cycles",
        "bad_window_too_long",
        "bad_span_too_long",
        "bad_constraint_gap_too_long",
        "bad_follow_up_horizon",
        "bad_too_many_occurrences",
        "bad_label_too_long_with_cycle",
        "bad_time_zone_too_long",
        "bad_time_zone_directory",
        "bad_protocol_id_too_long",
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


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xef\xbb\xbf", "the file starts with a UTF-8 byte-order mark (BOM): save it as UTF-8 "
         "without a BOM"),
        ("utf-16", "the file is UTF-16 text: save it as UTF-8"),
        ("utf-16-le", "the file holds NUL bytes (UTF-16 text, or not a text file): save it as "
         "UTF-8"),
        (b"\n[extra]\nx = " + b"[" * 100_000 + b"]" * 100_000, "tables and arrays are nested "
         "more than 32 deep"),
    ],
    ids=["utf-8 BOM", "utf-16", "utf-16 without a BOM", "nested 100,000 deep"],
)  # fmt: skip
def test_a_protocol_file_saved_oddly_is_one_problem_saying_what_it_is(tmp_path, content, message):
    minimal = (FIXTURES / "minimal.toml").read_bytes()
    if isinstance(content, str):
        data = minimal.decode("utf-8").encode(content)
    elif content.startswith(b"\xef"):
        data = content + minimal
    else:
        data = minimal + content
    path = tmp_path / "odd.toml"
    path.write_bytes(data)
    with pytest.raises(ProtocolError) as caught:
        load_protocol(path)
    assert caught.value.lines() == [f"{path}: {message}"]
