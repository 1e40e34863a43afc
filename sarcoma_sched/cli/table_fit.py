"""Fitting a table into a terminal's width: the one place every command's table goes through.

A table that fits is printed as it is. One that does not first narrows its prose columns (a
label, a window, a flag's message), cutting their cells' ends with an ellipsis, while
identifiers and dates (cells without a space) keep their full width; then the identifiers too,
cut in the middle (``FJMUU…0005``: a study id's number is its end), never below a date's
width. When even that does not fit (a dozen columns in 80), each row is printed as a block of
``column  value`` lines, values wrapped, so nothing is lost.
Widths are counted in terminal cells: a Chinese character takes two.

Output to a pipe or a file is never cut (there is no terminal to fit); ``COLUMNS`` overrides
what the terminal says, as it does for every program that reads it.
"""

from __future__ import annotations

import shutil
import unicodedata
from collections.abc import Sequence

__all__ = ["cut", "cut_middle", "display_width", "fit_table", "terminal_width", "wrap"]

SEPARATOR = "  "
ELLIPSIS = "…"
# Narrower than this a cell of prose says nothing; an identifier or a date, narrower than the
# second (a date is 10 wide).
FLOOR = 8
RIGID_FLOOR = 10
# Longer than this a space-free cell is a text, not an identifier (a list joined by commas).
RIGID_MAX = 24


def terminal_width() -> int | None:
    """The width to fit: ``COLUMNS`` if set, else the terminal's; None when there is no
    terminal (output piped or redirected), which fits nothing."""
    size = shutil.get_terminal_size((0, 0)).columns
    return max(size, 20) if size > 0 else None


def _cell_width(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def display_width(text: str) -> int:
    # Every ASCII character takes one cell; a listing's cells are nearly all ASCII, and asking
    # unicodedata character by character cost `visits` a third of its time at 500 rows.
    if text.isascii():
        return len(text)
    return sum(_cell_width(c) for c in text)


def _take(text: str, room: int) -> tuple[str, str]:
    """The longest head of ``text`` that takes at most ``room`` cells, and the rest."""
    if text.isascii():
        room = max(room, 0)
        return text[:room], text[room:]
    used = 0
    for i, char in enumerate(text):
        used += _cell_width(char)
        if used > room:
            return text[:i], text[i:]
    return text, ""


def cut(text: str, room: int) -> str:
    """``text`` in at most ``room`` cells, its end replaced by an ellipsis if it is longer."""
    if display_width(text) <= room:
        return text
    return _take(text, max(room - 1, 0))[0] + ELLIPSIS


def cut_middle(text: str, room: int) -> str:
    """``text`` in at most ``room`` cells, an ellipsis in place of its middle if it is longer."""
    if display_width(text) <= room or room < 3:
        return cut(text, room)
    head = _take(text, (room - 1) // 2)[0]
    tail = _take(text[::-1], room - 1 - display_width(head))[0][::-1]
    return f"{head}{ELLIPSIS}{tail}"


def wrap(text: str, room: int) -> list[str]:
    """``text`` broken into lines of at most ``room`` cells, at spaces where it can be."""
    room = max(room, 1)
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if display_width(candidate) <= room:
                line = candidate
                continue
            if line:
                lines.append(line)
            while display_width(word) > room:
                head, word = _take(word, room)
                if not head:  # a wide character in a one-cell room: it goes alone
                    head, word = word[0], word[1:]
                lines.append(head)
            line = word
        lines.append(line)
    return lines


def _pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


def _line(cells: Sequence[str], widths: Sequence[int], middle: Sequence[bool]) -> str:
    return SEPARATOR.join(
        _pad((cut_middle if m else cut)(c, w), w)
        for c, w, m in zip(cells, widths, middle, strict=True)
    ).rstrip()


def _capped(
    natural: Sequence[int], floors: Sequence[int], shrink: Sequence[bool], room: int
) -> list[int] | None:
    """Column widths within ``room``: the shrinkable columns capped at the widest cap that fits
    (each at least its floor), the others natural; None if the floors alone do not fit."""

    def widths(cap: int) -> list[int]:
        return [
            min(n, max(cap, f)) if s else n for n, f, s in zip(natural, floors, shrink, strict=True)
        ]

    if sum(widths(0)) > room:
        return None
    low, high = 0, max(natural)
    while low < high:  # the largest cap whose widths fit
        mid = (low + high + 1) // 2
        low, high = (mid, high) if sum(widths(mid)) <= room else (low, mid - 1)
    return widths(low)


def fit_table(
    columns: Sequence[str], rows: Sequence[Sequence[str]], width: int | None
) -> list[str]:
    """The lines of an aligned table, each at most ``width`` cells (None: as wide as it is)."""
    natural = [
        max([display_width(c), *(display_width(row[i]) for row in rows)])
        for i, c in enumerate(columns)
    ]
    room = None if width is None else width - len(SEPARATOR) * (len(columns) - 1)
    widths: list[int] | None = natural
    rigid = [
        n <= RIGID_MAX and all(" " not in row[i] for row in rows) for i, n in enumerate(natural)
    ]
    if room is not None and sum(natural) > room:
        floors = [min(n, RIGID_FLOOR if r else FLOOR) for n, r in zip(natural, rigid, strict=True)]
        # Prose first; identifiers and dates only when prose alone cannot make room.
        widths = _capped(natural, floors, [not r for r in rigid], room) or _capped(
            natural, floors, [True] * len(columns), room
        )
    if widths is None:
        assert width is not None
        if not rows:
            return [cut(SEPARATOR.join(columns), width)]
        return _blocks(columns, rows, width)
    header = [False] * len(columns)  # a name cut keeps its start, where it says what it is
    return [_line(columns, widths, header), *(_line(row, widths, rigid) for row in rows)]


def _blocks(columns: Sequence[str], rows: Sequence[Sequence[str]], width: int) -> list[str]:
    """Each row as ``column  value`` lines (values wrapped), rows apart by a blank line: what a
    table too wide for the terminal becomes, as psql's expanded display."""
    label = min(max(display_width(c) for c in columns), width // 3)
    room = width - label - len(SEPARATOR)
    lines: list[str] = []
    for n, row in enumerate(rows):
        if n:
            lines.append("")
        for name, value in zip(columns, row, strict=True):
            head = _pad(cut(name, label), label)
            for i, part in enumerate(wrap(value, room) if value else [""]):
                lines.append(f"{head if i == 0 else ' ' * label}{SEPARATOR}{part}".rstrip())
    return lines
