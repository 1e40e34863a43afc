"""The one way the package reads a file a user names: a protocol, a screening field file, a
holiday table, a trial key file.

- **Regular files only**, opened without blocking: a named pipe nobody writes to would hang the
  command for ever, and ``/dev/zero`` or ``/dev/urandom`` would be read until memory ran out.
  The path is opened once and the open file is checked (``fstat``), so nothing can be swapped
  in between a check and the read.
- **At most** ``limits.MAX_INPUT_FILE_BYTES``, refused from the file's size before anything is
  read, and never more than one byte past the bound even if the file grows meanwhile.
- **UTF-8 without a byte-order mark**: a file saved with a BOM or as UTF-16 (what some Windows
  editors do) is named as such, with what to do, instead of a TOML error at line 1 column 1.
- **Nesting at most** ``limits.MAX_NESTING`` deep: the parsers recurse, and a file of 100,000
  opening brackets would otherwise end in a ``RecursionError``.

Every problem is one ``Problem`` (file, where, what) raised as the caller's ``InputFileError``
subclass, so a protocol's is a ``ProtocolError`` and a holiday table's a ``HolidayTableError``.
Standard library and ``errors`` only, like ``files`` (the one writer): the pure core uses it.
"""

from __future__ import annotations

import codecs
import gc
import json
import os
import stat
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sarcoma_sched.errors import InputFileError, Problem
from sarcoma_sched.limits import MAX_INPUT_FILE_BYTES, MAX_NESTING

__all__ = ["decode", "load_table", "parse_json", "parse_toml", "read_bytes", "read_text"]

_CHUNK = 1 << 16

# Longest first: a UTF-32 little-endian mark begins with the UTF-16 one.
_UTF8_BOM = "the file starts with a UTF-8 byte-order mark (BOM): save it as UTF-8 without a BOM"
_BOMS = (
    (codecs.BOM_UTF32_LE, "the file is UTF-32 text: save it as UTF-8"),
    (codecs.BOM_UTF32_BE, "the file is UTF-32 text: save it as UTF-8"),
    (codecs.BOM_UTF8, _UTF8_BOM),
    (codecs.BOM_UTF16_LE, "the file is UTF-16 text: save it as UTF-8"),
    (codecs.BOM_UTF16_BE, "the file is UTF-16 text: save it as UTF-8"),
)


def _fail(error: type[InputFileError], source: str, message: str, where: str = "") -> Exception:
    return error([Problem(source, where, message)])


def _size(n: int) -> str:
    return f"{n / (1 << 20):.3g} MiB" if n >= 1 << 20 else f"{n:,} bytes"


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def read_bytes(
    path: str | Path, error: type[InputFileError] = InputFileError, *, limit: int | None = None
) -> bytes:
    """The whole content of the regular file ``path``, at most ``limit`` bytes
    (``MAX_INPUT_FILE_BYTES`` unless given)."""
    limit = MAX_INPUT_FILE_BYTES if limit is None else limit
    source = str(path)
    # Non-blocking: opening a FIFO for reading would otherwise wait for a writer.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise _fail(error, source, f"cannot read file: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = _kind(st.st_mode)
            raise _fail(error, source, f"cannot read file: it is {kind}, not a regular file")
        if st.st_size > limit:
            raise _fail(error, source, _too_big(st.st_size, limit))
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, _CHUNK))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise _fail(error, source, f"cannot read file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise _fail(error, source, _too_big(len(data), limit))
    return data


def _too_big(size: int, limit: int) -> str:
    return f"cannot read file: it is {size:,} bytes; an input file may be at most {_size(limit)}"


def read_text(
    path: str | Path, error: type[InputFileError] = InputFileError, *, limit: int | None = None
) -> str:
    """``read_bytes`` decoded as UTF-8, a byte-order mark or UTF-16 named as what it is."""
    return decode(read_bytes(path, error, limit=limit), str(path), error)


def decode(data: bytes, source: str, error: type[InputFileError] = InputFileError) -> str:
    for bom, message in _BOMS:
        if data.startswith(bom):
            raise _fail(error, source, message)
    if b"\x00" in data:
        # UTF-16 without a mark puts a NUL beside every ASCII letter; a binary file has some too.
        raise _fail(
            error,
            source,
            "the file holds NUL bytes (UTF-16 text, or not a text file): save it as UTF-8",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(error, source, f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None


@contextmanager
def _no_collection() -> Iterator[None]:
    """No garbage collection while a parser may be at the recursion limit: a collection there
    runs finalizers with no stack left, and the interpreter then prints "Exception ignored in
    sys.unraisablehook" before the one error line (seen once in a few hundred fuzzed runs of
    a file 10,000 brackets deep)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse_toml(
    text: str, source: str, error: type[InputFileError] = InputFileError
) -> dict[str, Any]:
    """``text`` as a TOML document; a syntax error names its line and column."""
    from sarcoma_sched.input_errors import toml_syntax_problem

    _refuse_bom(text, source, error)
    try:
        with _no_collection():
            data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error([toml_syntax_problem(source, exc)]) from None
    except RecursionError:
        raise _fail(error, source, _TOO_DEEP) from None
    except ValueError:
        # tomllib reads integers with int(), which refuses more than 4300 digits.
        raise _fail(error, source, _TOO_LONG_NUMBER) from None
    _check_nesting(data, source, error)
    return data


def parse_json(text: str, source: str, error: type[InputFileError] = InputFileError) -> Any:
    """``text`` as a JSON document; a syntax error names its line and column."""
    _refuse_bom(text, source, error)
    try:
        with _no_collection():
            data = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise _fail(error, source, f"JSON syntax error: {exc.msg}", where) from None
    except RecursionError:
        raise _fail(error, source, _TOO_DEEP) from None
    except ValueError:
        raise _fail(error, source, _TOO_LONG_NUMBER) from None
    _check_nesting(data, source, error)
    return data


def load_table(path: Path, error: type[InputFileError] = InputFileError) -> Any:
    """A TOML file, or a JSON one when its name ends in ``.json``: read, decoded, parsed."""
    text = read_text(path, error)
    if path.suffix.lower() == ".json":
        return parse_json(text, str(path), error)
    return parse_toml(text, str(path), error)


_TOO_DEEP = f"tables and arrays are nested more than {MAX_NESTING} deep"
_TOO_LONG_NUMBER = f"a number has more than {sys.get_int_max_str_digits()} digits"


def _refuse_bom(text: str, source: str, error: type[InputFileError]) -> None:
    if text.startswith("\ufeff"):
        raise _fail(error, source, _UTF8_BOM)


def _check_nesting(data: Any, source: str, error: type[InputFileError]) -> None:
    # Iterative, so the check itself cannot recurse too deep; what passes it is shallow enough
    # for everything after (validation, repr in an error line, canonical JSON).
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = list(node.values())
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > MAX_NESTING:
            raise _fail(error, source, _TOO_DEEP)
        stack.extend((child, depth + 1) for child in children)
