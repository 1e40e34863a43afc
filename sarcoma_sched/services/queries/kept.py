"""Facts worked out from inputs that never change, kept on disk between runs (issue 24).

``schedule`` needs two small facts whose working-out costs more than the query: what the
protocol version a patient was enrolled under says of each occurrence (parsing it imports
pydantic and validates the whole definition), and the last year of a country's holidays the
``holidays`` package holds as announced (importing it loads every country). Both are pure
functions of what they are worked out from, so each is worked out once and kept under
``$XDG_CACHE_HOME/sarcoma-sched/`` (``~/.cache`` by default).

An entry is named by a digest of everything its value depends on: the input itself (the
protocol text as read from the database; the stamp of the package file holding the
announcements) and the code working it out (the stamps of this package's files and
pydantic's, and the interpreter's version). A changed input or program reads another entry,
never a stale one. An entry is written whole (a temporary file renamed over it); one that
cannot be read or does not hold what it should is worked out again, as a missing one is; a
cache directory that cannot be written only means the facts are worked out every time.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["cache_dir", "code_stamp", "file_stamp", "kept"]

V = TypeVar("V")


def cache_dir(env: dict[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/sarcoma-sched``, ``~/.cache/sarcoma-sched`` by default (a relative
    ``XDG_CACHE_HOME`` is ignored, as the XDG specification says)."""
    base = (os.environ if env is None else env).get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = str(Path.home() / ".cache")
    return Path(base) / "sarcoma-sched"


def kept(
    kind: str,
    key: Sequence[str],
    work_out: Callable[[], V],
    *,
    dump: Callable[[V], Any],
    load: Callable[[Any], V],
) -> V:
    """The value named by ``key`` (everything it depends on), as kept, or ``work_out()`` kept
    for next time. ``dump`` gives it as JSON; ``load`` reads that back, raising ``ValueError``,
    ``TypeError`` or ``KeyError`` on anything that is not such a value."""
    digest = hashlib.sha256("\0".join((kind, *key)).encode()).hexdigest()
    path = cache_dir() / f"{kind}-{digest}.json"
    try:
        return load(json.loads(path.read_bytes()))
    except (OSError, ValueError, TypeError, KeyError):
        pass  # missing, unreadable, half-written by hand or by an older program: work it out
    value = work_out()
    _write(path, json.dumps(dump(value), separators=(",", ":")).encode())
    return value


def _write(path: Path, data: bytes) -> None:
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temporary, path)  # a reader sees the old entry or the whole new one
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError:
        pass  # not kept: the next run works it out again


def file_stamp(path: str | os.PathLike[str]) -> str:
    """A file as a digest key: where it is, which file it is and when it was last written.
    Reinstalling or editing a file changes its inode, time or size."""
    found = os.stat(path)
    return f"{os.fspath(path)}:{found.st_ino}:{found.st_mtime_ns}:{found.st_size}"


def _tree(root: str) -> Iterable[str]:
    for folder, folders, files in os.walk(root):
        folders[:] = sorted(f for f in folders if f != "__pycache__")
        for name in sorted(files):
            yield file_stamp(os.path.join(folder, name))


@cache
def code_stamp(*packages: str) -> str | None:
    """The code a fact is worked out with: the interpreter's version and every file of
    ``packages`` (found without importing them), as one digest. None when one of them is not a
    directory of files (a zip): nothing derived from it is kept then."""
    digest = hashlib.sha256(sys.version.encode())
    try:
        for name in packages:
            for root in _package_dirs(name):
                for stamp in _tree(root):
                    digest.update(stamp.encode() + b"\0")
    except (OSError, LookupError):
        return None
    return digest.hexdigest()


def _package_dirs(name: str) -> list[str]:
    from importlib.util import find_spec

    spec = find_spec(name)  # a top-level package: found, not imported
    roots = list(spec.submodule_search_locations or ()) if spec else []
    if not roots or not all(os.path.isdir(r) for r in roots):
        raise LookupError(name)
    return roots


def module_file(module: str) -> str | None:
    """The source file of ``module`` (``holidays.countries.china``), without importing it or
    its package, or None where it is not a plain file."""
    top, _, rest = module.partition(".")
    try:
        roots = _package_dirs(top)
    except LookupError:
        return None
    for root in roots:
        candidate = os.path.join(root, *rest.split(".")) + ".py" if rest else None
        if candidate and os.path.isfile(candidate):
            return candidate
    return None
