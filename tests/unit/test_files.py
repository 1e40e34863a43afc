"""The one atomic file writer: complete files, the right mode, nothing left behind, no symlink
followed, and ``write_new`` never replacing anything."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sarcoma_sched import files
from sarcoma_sched.errors import Conflict, SarcomaSchedError
from sarcoma_sched.exports import files as export_files
from sarcoma_sched.files import AlreadyExists, FileWriteError, write_atomic, write_new

posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes and FIFOs are POSIX")

# A file name is at most 255 bytes and the temporary name adds 14 ("." + "." + 8 + ".tmp").
NAMES = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"),
    min_size=1,
    max_size=50,
).filter(lambda name: name not in (".", "..") and len(name.encode()) <= 200)


@contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_exporters_module_is_the_same_writer_not_a_second_one():
    assert export_files.write_atomic is files.write_atomic
    assert export_files.write_new is files.write_new
    assert issubclass(FileWriteError, SarcomaSchedError) and issubclass(AlreadyExists, Conflict)


@given(name=NAMES, data=st.binary(max_size=4096) | st.text(max_size=500))
def test_what_is_read_back_is_what_was_written_whatever_the_name_and_bytes(name, data):
    expected = data.encode("utf-8") if isinstance(data, str) else data
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        path = directory / name
        assert write_atomic(path, data) == path
        assert path.read_bytes() == expected
        write_atomic(path, b"replaced")
        assert path.read_bytes() == b"replaced"
        other = directory / f"{name}.new"
        write_new(other, data)
        assert other.read_bytes() == expected
        assert sorted(p.name for p in directory.iterdir()) == sorted([name, f"{name}.new"])


@posix_only
@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_a_new_file_gets_the_mode_a_plain_write_would_under_the_umask(tmp_path, mask, expected):
    with umask(mask):
        write_atomic(tmp_path / "out.ics", b"x")
    assert mode_of(tmp_path / "out.ics") == expected


@posix_only
def test_a_replaced_file_keeps_its_mode_and_an_explicit_mode_wins_over_any_umask(tmp_path):
    kept = tmp_path / "kept.csv"
    kept.write_bytes(b"old")
    kept.chmod(0o640)
    write_atomic(kept, b"new")
    assert mode_of(kept) == 0o640 and kept.read_bytes() == b"new"
    with umask(0):
        write_atomic(tmp_path / "secret", b"s", mode=0o600)
        write_new(tmp_path / "key", b"k")
    assert mode_of(tmp_path / "secret") == 0o600
    assert mode_of(tmp_path / "key") == 0o600  # write_new's default: owner only


@posix_only
def test_a_symlink_at_the_target_is_replaced_not_written_through(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    victim.chmod(0o600)
    out = tmp_path / "out"
    out.mkdir()
    target = out / "report.svg"
    target.symlink_to(victim)
    # The mode comes from the target name, not from what a symlink there points to.
    with umask(0o022):
        write_atomic(target, b"<svg/>")
    assert victim.read_bytes() == b"precious\n"
    assert not target.is_symlink() and target.is_file()
    assert target.read_bytes() == b"<svg/>" and mode_of(target) == 0o644


@posix_only
def test_a_symlink_at_the_old_fixed_temporary_name_is_neither_followed_nor_removed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    trap = tmp_path / ".tv.csv.tmp"
    trap.symlink_to(victim)
    write_atomic(tmp_path / "tv.csv", "STUDYID\r\n")
    assert victim.read_bytes() == b"precious\n"
    assert trap.is_symlink() and os.readlink(trap) == str(victim)
    assert (tmp_path / "tv.csv").read_bytes() == b"STUDYID\r\n"


@pytest.mark.parametrize("fail", ["fsync", "replace"])
def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch, fail):
    target = tmp_path / "calendar.ics"
    target.write_bytes(b"old calendar")

    def broken(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, fail, broken)
    with pytest.raises(FileWriteError) as e:
        write_atomic(target, b"new calendar")
    monkeypatch.undo()
    assert str(e.value) == f"cannot write {target}: No space left on device"
    assert target.read_bytes() == b"old calendar"
    assert list(tmp_path.iterdir()) == [target]


def test_an_interrupted_write_removes_its_temporary_file_and_lets_the_interrupt_through(
    tmp_path, monkeypatch
):
    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "index.html", "<html>")
    assert list(tmp_path.iterdir()) == []


def test_a_missing_directory_or_a_file_in_its_place_is_one_line_naming_the_file(tmp_path):
    missing = tmp_path / "no-such-dir" / "ta.csv"
    with pytest.raises(FileWriteError) as e:
        write_atomic(missing, b"x")
    assert str(e.value) == f"cannot write {missing}: directory {missing.parent} does not exist"
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a directory\n")
    for write in (write_atomic, write_new):
        with pytest.raises(FileWriteError) as e:
            write(blocker / "trial.key", b"x")
        assert str(e.value) == f"cannot write {blocker / 'trial.key'}: {blocker} is not a directory"
    assert blocker.read_text() == "a file, not a directory\n"
    with pytest.raises(FileWriteError, match="it is a directory"):
        write_atomic(tmp_path, b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0, reason="POSIX permissions; root writes anywhere"
)
def test_a_directory_without_write_permission_is_refused_as_such(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(FileWriteError, match=r"cannot write .*out\.ics: permission denied"):
            write_atomic(locked / "out.ics", b"x")
    finally:
        locked.chmod(0o700)


@posix_only
def test_write_new_refuses_a_file_a_directory_or_a_dangling_symlink_and_changes_nothing(tmp_path):
    existing = tmp_path / "trial.key"
    existing.write_bytes(b"the old secret\n")
    folder = tmp_path / "folder"
    folder.mkdir()
    dangling = tmp_path / "dangling.key"
    dangling.symlink_to(tmp_path / "would-be-created")
    for path in (existing, folder, dangling):
        with pytest.raises(AlreadyExists, match="already exists"):
            write_new(path, b"a new secret\n")
    assert existing.read_bytes() == b"the old secret\n"
    assert dangling.is_symlink() and not (tmp_path / "would-be-created").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling.key", "folder", "trial.key"]


def test_write_new_refuses_a_file_created_while_it_was_writing(tmp_path, monkeypatch):
    """The check before writing is only a courtesy: link() is what refuses."""
    target = tmp_path / "trial.key"
    real_mkstemp = tempfile.mkstemp

    def racing_mkstemp(*args: object, **kwargs: object) -> tuple[int, str]:
        target.write_bytes(b"written by someone else\n")
        return real_mkstemp(*args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(files.tempfile, "mkstemp", racing_mkstemp)
    with pytest.raises(AlreadyExists):
        write_new(target, b"mine\n")
    assert target.read_bytes() == b"written by someone else\n"
    assert list(tmp_path.iterdir()) == [target]


@posix_only
def test_a_named_pipe_at_the_target_is_written_into_and_one_without_reader_is_refused(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(FileWriteError, match=f"cannot write {fifo}: "):
        write_atomic(fifo, b"nobody reads")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # not replaced by a plain file
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        write_atomic(fifo, b"read me")
        assert os.read(reader, 100) == b"read me"
    finally:
        os.close(reader)
    write_atomic(os.devnull, b"discarded")
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
