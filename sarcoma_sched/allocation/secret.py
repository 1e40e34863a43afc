"""The trial secret: kept outside the database, readable by its owner only.

The database holds past allocations and nothing else; the secret is what turns that history into
the next assignment. Whoever can read it can predict allocations, so a key file that group or
others can read is refused rather than used.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from sarcoma_sched.errors import Conflict, InputFileError, SecretError
from sarcoma_sched.files import AlreadyExists, write_new
from sarcoma_sched.input_files import read_bytes

__all__ = [
    "DEMO_SECRET",
    "INIT_SECRET_COMMAND",
    "MIN_SECRET_BYTES",
    "SECRET_BYTES",
    "SECRET_ENV",
    "check_for_database",
    "generate_secret",
    "key_fingerprint",
    "load_secret",
    "write_secret_file",
]

SECRET_ENV = "SARCOMA_SCHED_SECRET"
INIT_SECRET_COMMAND = "sarcoma-sched allocation init-secret"
SECRET_BYTES = 32
# 256 bits, the HMAC-SHA256 key the stream is built for; shorter keys were accepted before and
# are refused now.
MIN_SECRET_BYTES = 32
# The key the demo publishes beside its database so anyone can replay the demo's draws. Being
# public it conceals nothing: refused for any database that is not a demo's.
DEMO_SECRET = bytes(range(32))
# A key file holds one line of hex; anything much longer is not a key file.
KEY_FILE_BYTES = 4096
_COMMITMENT = b"sarcoma-sched/key-commitment/v1"


def generate_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def write_secret_file(path: Path | str, secret: bytes | None = None) -> None:
    """Create ``path`` holding a new (or the given) secret as hex, mode 0o600, atomically.

    An existing file is never overwritten: replacing a trial's secret would make every past
    allocation unverifiable and change every future one.
    """
    path = Path(path)
    secret = generate_secret() if secret is None else secret
    _check_length(secret, str(path))
    # Written under a fresh temporary name, then hard-linked into place: the final name appears
    # only complete, and link() fails instead of replacing a file (or following a symlink)
    # created there in the meantime.
    try:
        write_new(path, secret.hex() + "\n", mode=0o600, encoding="ascii")
    except AlreadyExists:
        raise Conflict(f"{path} already exists; a trial secret is never overwritten") from None


def load_secret(path: Path | str | None, env: Mapping[str, str] = os.environ) -> bytes:
    """The secret from ``$SARCOMA_SCHED_SECRET`` (hex) if set, else from the file at ``path``."""
    value = env.get(SECRET_ENV, "").strip()
    if value:
        return _decode(value, f"${SECRET_ENV}")
    if path is None:
        raise SecretError(
            f"no trial secret: set {SECRET_ENV} or give a key file "
            f"(create one with `{INIT_SECRET_COMMAND}`)"
        )
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise SecretError(
            f"no trial secret at {path}: create one with `{INIT_SECRET_COMMAND}` "
            f"or set {SECRET_ENV}"
        ) from None
    if os.name == "posix" and st.st_mode & 0o077:
        mode = oct(st.st_mode & 0o777)
        raise SecretError(
            f"{path} is readable or writable by group or others (mode {mode}); "
            f"refusing to use it: run `chmod 600 {path}`"
        )
    try:
        # A regular file only, and small: a FIFO at the key's path would hang the command.
        data = read_bytes(path, limit=KEY_FILE_BYTES)
        text = data.decode("ascii")
    except InputFileError as e:
        raise SecretError(f"cannot read the trial secret {e}") from None
    except UnicodeDecodeError as e:
        raise SecretError(f"cannot read the trial secret {path}: {e}") from None
    return _decode(text.strip(), str(path))


def _decode(text: str, where: str) -> bytes:
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        raise SecretError(f"{where}: the trial secret must be hexadecimal") from None
    _check_length(secret, where)
    return secret


def _check_length(secret: bytes, where: str) -> None:
    if len(secret) < MIN_SECRET_BYTES:
        raise SecretError(
            f"{where}: the trial secret has {len(secret)} bytes; at least {MIN_SECRET_BYTES} "
            "are needed"
        )
    if len(set(secret)) == 1:
        # All zeros, all 0xff: what a placeholder or a broken generator leaves, and the first
        # keys anyone trying to predict the sequence would try.
        raise SecretError(
            f"{where}: the trial secret is one byte repeated ({secret[0]:02x}); "
            f"make a real one with `{INIT_SECRET_COMMAND}`"
        )


def check_for_database(secret: bytes, where: str, *, demo: bool) -> None:
    """Refuse a key this database must not use: too short, degenerate, or the demo's."""
    _check_length(secret, where)
    if secret == DEMO_SECRET and not demo:
        raise SecretError(
            f"{where}: this is the demo's published key, not a trial's; "
            f"make one with `{INIT_SECRET_COMMAND}`"
        )


def key_fingerprint(secret: bytes, trial_id: str) -> str:
    """A commitment to ``secret`` for one trial: reveals nothing of the key (HMAC under it),
    yet no other key gives the same value, so a swapped key is caught at once."""
    message = _COMMITMENT + trial_id.encode("utf-8")
    return hmac.digest(secret, message, hashlib.sha256).hex()
