"""The trial secret lives outside the database, owner-readable only."""

import os
import stat

import pytest

from sarcoma_sched.allocation import (
    INIT_SECRET_COMMAND,
    SECRET_ENV,
    generate_secret,
    load_secret,
    write_secret_file,
)
from sarcoma_sched.errors import Conflict, SarcomaSchedError, SecretError

posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


def test_a_generated_secret_has_256_bits_and_differs_every_time():
    a, b = generate_secret(), generate_secret()
    assert len(a) == 32
    assert a != b


@posix_only
def test_a_secret_file_is_created_owner_only(tmp_path):
    path = tmp_path / "trial.key"
    old = os.umask(0)  # even a permissive umask must not widen the mode
    try:
        write_secret_file(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(load_secret(path, env={})) == 32
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_a_secret_file_round_trips_the_given_secret(tmp_path):
    secret = bytes(range(32))
    write_secret_file(tmp_path / "k", secret)
    assert load_secret(tmp_path / "k", env={}) == secret


def test_an_existing_secret_file_is_never_overwritten(tmp_path):
    path = tmp_path / "trial.key"
    write_secret_file(path)
    before = path.read_bytes()
    with pytest.raises(Conflict, match="already exists"):
        write_secret_file(path)
    assert path.read_bytes() == before


@posix_only
def test_a_group_readable_secret_file_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "trial.key"
    write_secret_file(path)
    path.chmod(0o640)
    with pytest.raises(SecretError) as e:
        load_secret(path, env={})
    assert str(path) in str(e.value)
    assert f"chmod 600 {path}" in str(e.value)
    assert isinstance(e.value, SarcomaSchedError)


def test_the_environment_variable_wins_over_the_file(tmp_path):
    path = tmp_path / "trial.key"
    write_secret_file(path, bytes(range(1, 33)))
    from_env = bytes(range(32))
    assert load_secret(path, env={SECRET_ENV: from_env.hex()}) == from_env


def test_a_missing_secret_names_the_command_that_creates_it(tmp_path):
    for path in (None, tmp_path / "absent.key"):
        with pytest.raises(SecretError, match=INIT_SECRET_COMMAND):
            load_secret(path, env={})
    assert INIT_SECRET_COMMAND == "sarcoma-sched allocation init-secret"


def test_a_secret_that_is_not_hex_is_refused_without_echoing_it():
    with pytest.raises(SecretError, match="hexadecimal") as e:
        load_secret(None, env={SECRET_ENV: "not-hex-at-all-zz"})
    assert "not-hex-at-all-zz" not in str(e.value)


def test_a_short_secret_is_refused():
    # 256 bits: the key of the HMAC-SHA256 stream; 128-bit keys were accepted before.
    with pytest.raises(SecretError, match="at least 32"):
        load_secret(None, env={SECRET_ENV: "5a" * 16})


@pytest.mark.parametrize("byte", [0x00, 0xFF, 0x41])
def test_a_secret_of_one_repeated_byte_is_refused_from_the_environment_and_as_a_file(
    tmp_path, byte
):
    with pytest.raises(SecretError, match="one byte repeated"):
        load_secret(None, env={SECRET_ENV: f"{byte:02x}" * 32})
    with pytest.raises(SecretError, match="one byte repeated"):
        write_secret_file(tmp_path / "trial.key", bytes([byte]) * 32)
    assert not (tmp_path / "trial.key").exists()
