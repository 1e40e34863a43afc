"""The one way the package writes a file: complete or not at all, and never through a symlink.

Every file sarcoma-sched produces (calendars, SDTM datasets, report pictures and pages, the demo's
calendars, the trial secret key file) goes through ``write_atomic`` or ``write_new``:

- The data goes into a temporary file beside the target, created by ``tempfile.mkstemp``: an
  unpredictable name opened with ``O_CREAT | O_EXCL``, so a symlink planted at a guessable name
  (``.tv.csv.tmp``) is never followed; beside the target, so the final rename stays on one file
  system. It is flushed and fsync-ed, then given its mode.
- ``write_atomic`` renames it over the target with ``os.replace``: a reader (a calendar client
  polling the file) sees the old file or the new, never half of one, and a symlink at the target
  is itself replaced, not written through. ``write_new`` hard-links it into place instead, which
  fails rather than replace anything already at the target, symlink included.
- The directory is fsync-ed, so the new name survives a power cut; on any error the temporary
  file is removed, and an ``OSError`` becomes a ``FileWriteError`` naming the file.

It lives at the top of the package, beside ``errors``, and imports nothing but the standard
library and ``errors``: the pure core may use it (``allocation.secret`` writes the key file), as
may every adapter. ``sarcoma_sched.exports.files`` re-exports these names for the exporters; it
holds no code of its own.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

from sarcoma_sched.errors import AlreadyExists, FileWriteError

__all__ = ["AlreadyExists", "FileWriteError", "write_atomic", "write_new"]

TEMP_SUFFIX = ".tmp"


def write_atomic(
    path: Path | str, data: bytes | str, *, mode: int | None = None, encoding: str = "utf-8"
) -> Path:
    """Write ``data`` to ``path``, replacing whatever is there in one step.

    ``mode`` defaults to what a plain ``open(path, "w")`` would leave: an existing file keeps
    its mode, a new one gets ``0o666`` less the umask (``0o644`` under the usual ``022``). A
    secret gets an explicit ``0o600``. A device or named pipe at ``path`` (``/dev/null``,
    ``/dev/stdout``, a FIFO) is written into, as a shell redirection would: renaming over it
    would replace the device with a plain file.
    """
    path = Path(path)
    payload = data.encode(encoding) if isinstance(data, str) else data
    try:
        st = path.stat()  # follows a symlink: /dev/stdout is one
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise _error(path, exc) from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise FileWriteError(f"cannot write {path}: it is a directory")
    if st is not None and not stat.S_ISREG(st.st_mode):
        try:
            _write_into(path, payload)
        except OSError as exc:
            raise _error(path, exc) from None
        return path
    if mode is None:
        mode = _plain_mode(path)
    tmp = _temporary(path, payload, mode)
    try:
        os.replace(tmp, path)
        _sync_directory(path)
    except OSError as exc:
        _discard(tmp)
        raise _error(path, exc) from None
    except BaseException:
        _discard(tmp)
        raise
    return path


def write_new(
    path: Path | str, data: bytes | str, *, mode: int = 0o600, encoding: str = "utf-8"
) -> Path:
    """Create ``path`` holding ``data``, complete from its first moment; never replace anything.

    Raises ``AlreadyExists`` if a file, directory or symlink (even a dangling one) is at
    ``path``, including one created while the data was being written: ``link()`` refuses an
    existing name where ``rename()`` would silently replace it.
    """
    path = Path(path)
    payload = data.encode(encoding) if isinstance(data, str) else data
    if os.path.lexists(path):
        raise AlreadyExists(f"{path} already exists")
    tmp = _temporary(path, payload, mode)
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise AlreadyExists(f"{path} already exists") from None
    except OSError as exc:
        raise _error(path, exc) from None
    finally:
        _discard(tmp)
    try:
        _sync_directory(path)
    except OSError as exc:
        raise _error(path, exc) from None
    return path


def _temporary(path: Path, payload: bytes, mode: int) -> str:
    """A complete, fsync-ed copy of ``payload`` under a fresh name beside ``path``."""
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=directory)
    except OSError as exc:
        raise _error(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            # mkstemp creates mode 0o600; set the mode exactly, whatever the umask. On the open
            # descriptor: by name, a file swapped in at ``tmp`` meanwhile could be changed.
            if hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), mode)
            else:  # Windows before Python 3.13
                os.chmod(tmp, mode)
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        _discard(tmp)
        raise _error(path, exc) from None
    except BaseException:
        _discard(tmp)
        raise
    return tmp


def _write_into(path: Path, payload: bytes) -> None:
    # Non-blocking open: a FIFO nobody reads fails (ENXIO) instead of hanging the command.
    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.set_blocking(fd, True)
        with os.fdopen(fd, "wb", closefd=False) as handle:
            handle.write(payload)
    finally:
        os.close(fd)


def _plain_mode(path: Path) -> int:
    # lstat: a symlink at the target is replaced, so the mode of whatever it points to is not
    # the target's mode.
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISREG(st.st_mode):
        return stat.S_IMODE(st.st_mode)
    return 0o666 & ~_umask()


def _umask() -> int:
    # The umask can only be read by setting it, which for an instant applies to every thread of
    # the process; Linux shows it in /proc without changing it. Elsewhere, set the strictest
    # value meanwhile, so a file another thread creates in that instant is narrower, not wider.
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    old = os.umask(0o077)
    os.umask(old)
    return old


def _sync_directory(path: Path) -> None:
    if os.name != "posix":
        return  # Windows cannot open a directory; its rename is durable on its own terms
    directory = path.parent if str(path.parent) else Path(".")
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some file systems (network, FUSE) cannot fsync a directory; the file is in place.
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _discard(tmp: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def _error(path: Path, exc: OSError) -> FileWriteError:
    directory = path.parent if str(path.parent) else Path(".")
    if isinstance(exc, FileNotFoundError) and not directory.exists():
        reason = f"directory {directory} does not exist"
    elif isinstance(exc, NotADirectoryError):
        reason = f"{directory} is not a directory"
    elif isinstance(exc, PermissionError):
        reason = "permission denied"
    else:
        reason = exc.strerror or str(exc)
    return FileWriteError(f"cannot write {path}: {reason}")
