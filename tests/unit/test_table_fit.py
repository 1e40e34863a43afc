"""Fitting a table into a terminal (``cli/table_fit.py``): widths in terminal cells."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sarcoma_sched.cli.table_fit import cut, cut_middle, display_width, fit_table, wrap

# Latin, a space, an ellipsis and Chinese (two cells each): what sites and labels are made of.
TEXT = st.text(alphabet="abcXYZ019-_. …北京大学肿瘤医院", max_size=40)


def test_a_chinese_character_takes_two_cells():
    assert display_width("北京") == 4 and display_width("PKUIH") == 5
    assert cut("北京大学肿瘤医院", 5) == "北京…" and display_width(cut("北京大学", 6)) <= 6


def test_a_table_that_fits_is_printed_as_it_is():
    lines = fit_table(["id", "n"], [["A-1", "3"], ["B-22", "10"]], 80)
    assert lines == ["id    n", "A-1   3", "B-22  10"]
    assert fit_table(["id", "n"], [["A-1", "3"]], None) == fit_table(["id", "n"], [["A-1", "3"]], 9)


def test_prose_is_cut_before_an_identifier_and_an_identifier_keeps_its_number():
    rows = [["PKUIH-NATARS-0007", "2026-11-20", "AI+A cycle: PLD 40 mg/m2 D1 + ifosfamide D1-D5"]]
    (header, line) = fit_table(["study_id", "date", "label"], rows, 50)
    assert line.startswith("PKUIH-NATARS-0007  2026-11-20  AI+A") and line.endswith("…")
    assert len(line) <= 50 and header.split() == ["study_id", "date", "label"]
    (_, narrow) = fit_table(["study_id", "date", "label"], rows, 34)
    assert narrow.split()[0] == cut_middle("PKUIH-NATARS-0007", 10) == "PKUI…-0007"
    assert narrow.split()[1] == "2026-11-20"


def test_a_table_too_wide_for_any_cut_becomes_one_block_per_row_losing_nothing():
    columns = [f"column_{i}" for i in range(12)]
    rows = [[f"value {i} of row {r}" for i in range(12)] for r in range(2)]
    lines = fit_table(columns, rows, 40)
    assert "" in lines and lines[0].split() == ["column_0", "value", "0", "of", "row", "0"]
    assert all(f"value {i} of row 1" in " ".join(lines) for i in range(12))


@given(
    columns=st.lists(st.text(alphabet="abc_北", min_size=1, max_size=14), min_size=1, max_size=14),
    data=st.data(),
    width=st.integers(min_value=20, max_value=200),
)
def test_no_line_is_wider_than_the_terminal(columns, data, width):
    rows = data.draw(st.lists(st.lists(TEXT, min_size=len(columns), max_size=len(columns))))
    assert all(display_width(line) <= width for line in fit_table(columns, rows, width))


@given(text=TEXT, room=st.integers(min_value=1, max_value=50))
def test_a_cut_or_wrapped_text_fits_and_wrapping_keeps_every_word(text, room):
    assert display_width(cut(text, room)) <= room
    assert display_width(cut_middle(text, room)) <= room
    lines = wrap(text, max(room, 2))
    assert all(display_width(line) <= max(room, 2) for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")


@given(st.text(max_size=40), st.integers(min_value=-3, max_value=45))
def test_the_ascii_shortcut_counts_and_cuts_as_the_character_walk_does(text, room):
    # display_width and _take answer ASCII text without unicodedata; any text, ASCII or not,
    # gets the answer the character-by-character walk gives.
    from sarcoma_sched.cli.table_fit import _cell_width, _take

    assert display_width(text) == sum(_cell_width(c) for c in text)
    used, head = 0, len(text)
    for i, char in enumerate(text):
        used += _cell_width(char)
        if used > room:
            head = i
            break
    assert _take(text, room) == (text[:head], text[head:])
