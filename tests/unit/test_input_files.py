"""The one reader of files a user names: regular files only, bounded in size and nesting, UTF-8
without a byte-order mark, and every refusal one problem naming the file."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sarcoma_sched.errors import InputFileError, ProtocolError
from sarcoma_sched.input_files import load_table, parse_json, parse_toml, read_bytes, read_text
from sarcoma_sched.limits import MAX_INPUT_FILE_BYTES, MAX_NESTING

posix_only = pytest.mark.skipif(os.name != "posix", reason="FIFOs and /dev/zero are POSIX")


def _one_line(exc: pytest.ExceptionInfo[InputFileError]) -> str:
    (line,) = exc.value.lines()
    return line


def _within(seconds: float, work):
    """``work()``'s outcome, or a failure if it has not returned by then (a read that blocks)."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still reading after {seconds} s"
    return outcome


@posix_only
def test_a_named_pipe_is_refused_at_once_instead_of_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "values.toml"
    os.mkfifo(fifo)
    outcome = _within(10, lambda: read_text(fifo))
    error = outcome.get("error")
    assert isinstance(error, InputFileError), outcome
    assert error.lines() == [
        f"{fifo}: cannot read file: it is a named pipe (FIFO), not a regular file"
    ]


@posix_only
def test_an_endless_device_is_refused_before_anything_is_read():
    outcome = _within(10, lambda: read_bytes("/dev/zero"))
    error = outcome.get("error")
    assert isinstance(error, InputFileError), outcome
    assert error.lines() == ["/dev/zero: cannot read file: it is a device, not a regular file"]


def test_a_directory_is_not_a_file(tmp_path):
    with pytest.raises(InputFileError) as caught:
        read_text(tmp_path)
    assert "cannot read file:" in _one_line(caught)


def test_a_missing_file_names_the_reason(tmp_path):
    with pytest.raises(ProtocolError) as caught:
        read_text(tmp_path / "nowhere.toml", ProtocolError)
    assert _one_line(caught) == (
        f"{tmp_path / 'nowhere.toml'}: cannot read file: No such file or directory"
    )


def test_a_file_over_the_bound_is_refused_and_one_at_the_bound_is_read(tmp_path):
    at_bound = tmp_path / "at.toml"
    at_bound.write_bytes(b"#" * MAX_INPUT_FILE_BYTES)
    assert len(read_bytes(at_bound)) == MAX_INPUT_FILE_BYTES
    over = tmp_path / "over.toml"
    over.write_bytes(b"#" * (MAX_INPUT_FILE_BYTES + 1))
    with pytest.raises(InputFileError) as caught:
        read_bytes(over)
    assert _one_line(caught) == (
        f"{over}: cannot read file: it is 1,048,577 bytes; an input file may be at most 1 MiB"
    )


@pytest.mark.parametrize(
    ("encoding", "message"),
    [
        ("utf-8-sig", "the file starts with a UTF-8 byte-order mark (BOM): save it as UTF-8 "
         "without a BOM"),
        ("utf-16", "the file is UTF-16 text: save it as UTF-8"),
        ("utf-16-be", "the file holds NUL bytes (UTF-16 text, or not a text file): save it as "
         "UTF-8"),
        ("utf-32", "the file is UTF-32 text: save it as UTF-8"),
    ],
)  # fmt: skip
def test_a_byte_order_mark_or_utf16_is_named_as_what_it_is(tmp_path, encoding, message):
    path = tmp_path / "values.toml"
    path.write_bytes('age_years = 61\nhistology = "LMS"\n'.encode(encoding))
    with pytest.raises(InputFileError) as caught:
        load_table(path)
    assert _one_line(caught) == f"{path}: {message}"


def test_text_that_is_not_utf8_names_the_byte(tmp_path):
    path = tmp_path / "values.toml"
    path.write_bytes('histology = "é"\n'.encode("latin-1"))
    with pytest.raises(InputFileError) as caught:
        read_text(path)
    assert _one_line(caught) == f"{path}: not UTF-8 text: invalid continuation byte at byte 13"


def _nested(kind: str, depth: int) -> str:
    if kind == "json-array":
        return "[" * depth + "]" * depth
    if kind == "json-object":
        return '{"a": ' * depth + "1" + "}" * depth
    if kind == "toml-array":
        return "a = " + "[" * depth + "]" * depth
    return "a = " + "{ b = " * depth + "1" + " }" * depth


def _parse(kind: str, text: str) -> object:
    if kind.startswith("json"):
        return parse_json(text, "f.json")
    return parse_toml(text, "f.toml")


KINDS = ["json-array", "json-object", "toml-array", "toml-table"]


def _depth_of_document(kind: str, depth: int) -> int:
    # A TOML document is a table holding `a`; a JSON document is the value itself.
    return depth if kind.startswith("json") else depth + 1


@given(st.sampled_from(KINDS), st.integers(min_value=1, max_value=3 * MAX_NESTING))
def test_any_nesting_is_parsed_within_the_bound_or_refused_in_one_line(kind, depth):
    text = _nested(kind, depth)
    if _depth_of_document(kind, depth) <= MAX_NESTING:
        _parse(kind, text)
        return
    with pytest.raises(InputFileError) as caught:
        _parse(kind, text)
    assert _one_line(caught).endswith(f"tables and arrays are nested more than {MAX_NESTING} deep")


@pytest.mark.parametrize("kind", KINDS)
def test_nesting_that_would_overflow_the_parser_is_one_line_not_a_recursion_error(kind):
    with pytest.raises(InputFileError) as caught:
        _parse(kind, _nested(kind, 100_000))
    assert "nested more than" in _one_line(caught)


@pytest.mark.parametrize(("name", "text"), [("f.toml", "a = "), ("f.json", '{"a": ')])
def test_a_number_of_thousands_of_digits_is_one_line(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text + "9" * 5000 + ("}" if name.endswith("json") else "") + "\n")
    with pytest.raises(InputFileError) as caught:
        load_table(path)
    assert _one_line(caught) == f"{path}: a number has more than 4300 digits"


def test_a_json_syntax_error_names_line_and_column(tmp_path):
    path = tmp_path / "values.json"
    path.write_text('{"age_years": 61,\n "ecog" 1}\n')
    with pytest.raises(InputFileError) as caught:
        load_table(path)
    assert _one_line(caught) == (
        f"{path}: line 2, column 9: JSON syntax error: Expecting ':' delimiter"
    )


def test_a_plain_table_is_read_whichever_the_format(tmp_path):
    toml = tmp_path / "values.toml"
    toml.write_text('age_years = 61\nhistology = "LMS"\n')
    as_json = tmp_path / "values.JSON"
    as_json.write_text('{"age_years": 61, "histology": "LMS"}')
    assert load_table(toml) == load_table(as_json) == {"age_years": 61, "histology": "LMS"}


def test_the_callers_error_class_is_raised(tmp_path):
    path = tmp_path / "p.toml"
    path.write_bytes(b"\xef\xbb\xbf[study]\n")
    with pytest.raises(ProtocolError):
        load_table(Path(path), ProtocolError)
