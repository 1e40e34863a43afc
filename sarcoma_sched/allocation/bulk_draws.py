"""The draw stream's numbers for many decisions at once: the simulation's fast path.

Every per-patient decision of a simulated trial draws from its own derived stream
(``DrawStream(key).derive(label, position)``), which costs two HMAC-SHA256: one to derive the
decision's key, one for that stream's first 32-byte output block. Nearly every draw a decision
makes fits in that block, so the block is all the fast path needs: computed here for a whole
chunk of trials in one pass, then read as NumPy arrays by the vectorised allocators. The rare
draw that needs more bytes replays a real :class:`DrawStream` from the derived key
(:func:`randbelow_from`), so the numbers are the stream's own, always.

The hashing is the floor of the fast path: six SHA-256 compressions per decision, issued as four
hash calls from Python (the key pads of a trial are hashed once and copied). Everything else is
NumPy over arrays of trials.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from sarcoma_sched.allocation.stream import FIRST_BLOCK, derive_messages, randbelow_after

__all__ = [
    "BLOCK_BYTES",
    "Draws",
    "first_blocks",
    "first_uniforms",
    "hmac_many",
    "position_draws",
    "randbelow_exact",
    "randbelow_from",
    "randbelow_table",
]

BLOCK_BYTES = 32
_IPAD = np.full(64, 0x36, dtype=np.uint8)
_OPAD = np.full(64, 0x5C, dtype=np.uint8)


def _builtin_sha256() -> Callable[..., Any]:
    # CPython's own SHA-256 (no OpenSSL): its copy() and one-shot calls cost a fraction of
    # OpenSSL 3's, whose per-call set-up dominates when a message is one or two blocks. The
    # digests are the same function's; tests hold them equal to DrawStream's.
    for name in ("_sha256", "_sha2"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        constructor = getattr(module, "sha256", None)
        if constructor is not None:
            return constructor  # type: ignore[no-any-return]
    return hashlib.sha256


_sha256 = _builtin_sha256()


def _pad(key: bytes, pad: NDArray[np.uint8]) -> bytes:
    raw = np.frombuffer(key.ljust(64, b"\0"), dtype=np.uint8)
    return (raw ^ pad).tobytes()


def hmac_many(key: bytes, messages: Sequence[bytes]) -> bytes:
    """HMAC-SHA256(key, m) for each message, concatenated (32 bytes each).

    The key's inner and outer pad blocks are hashed once and the hash state copied per message:
    two SHA-256 compressions per message instead of four.
    """
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    inner = _sha256(_pad(key, _IPAD))
    outer = _sha256(_pad(key, _OPAD))
    out = []
    for message in messages:
        i = inner.copy()
        i.update(message)
        o = outer.copy()
        o.update(i.digest())
        out.append(o.digest())
    return b"".join(out)


def first_blocks(keys: bytes) -> bytes:
    """HMAC-SHA256(k, FIRST_BLOCK) for each 32-byte key k of ``keys``: each derived stream's
    first output block, concatenated."""
    n = len(keys) // BLOCK_BYTES
    k = np.frombuffer(keys, dtype=np.uint8).reshape(n, BLOCK_BYTES)
    tail = np.frombuffer(FIRST_BLOCK, dtype=np.uint8)
    inner_rows = np.empty((n, 64 + len(tail)), dtype=np.uint8)
    inner_rows[:, :64] = _IPAD
    inner_rows[:, :BLOCK_BYTES] ^= k
    inner_rows[:, 64:] = tail
    # Two-block messages: OpenSSL's one-shot (SHA-NI where the CPU has it) is the cheaper here.
    # map() over the rows keeps the loop in C: no bytecode per hash.
    sha = hashlib.sha256
    digest = type(sha()).digest
    inner = b"".join(map(digest, map(sha, _rows(inner_rows))))
    outer_rows = np.empty((n, 64 + BLOCK_BYTES), dtype=np.uint8)
    outer_rows[:, :64] = _OPAD
    outer_rows[:, :BLOCK_BYTES] ^= k
    outer_rows[:, 64:] = np.frombuffer(inner, dtype=np.uint8).reshape(n, BLOCK_BYTES)
    return b"".join(map(digest, map(sha, _rows(outer_rows))))


def _rows(array: NDArray[np.uint8]) -> Iterable[bytes]:
    # Each row of a C-contiguous array is a contiguous buffer, which hashlib reads in place;
    # the stubs know no buffer type before Python 3.12, so name it bytes.
    return cast("Iterable[bytes]", array)


class Draws:
    """For trials × positions: each decision's derived key and its stream's first block."""

    __slots__ = ("blocks", "keys", "shape")

    def __init__(self, keys: bytes, blocks: bytes, shape: tuple[int, int]) -> None:
        self.keys = keys
        self.shape = shape
        self.blocks: NDArray[np.uint8] = np.frombuffer(blocks, dtype=np.uint8).reshape(
            *shape, BLOCK_BYTES
        )

    def key(self, trial: int, position_index: int) -> bytes:
        start = (trial * self.shape[1] + position_index) * BLOCK_BYTES
        return self.keys[start : start + BLOCK_BYTES]


def position_draws(trial_keys: Sequence[bytes], label: str, n: int) -> Draws:
    """The streams ``DrawStream(key).derive(label, position)`` for positions 1..n of each trial:
    index [t, i] is trial t's position i + 1."""
    messages = derive_messages(label, n)[1:]
    keys = b"".join(hmac_many(key, messages) for key in trial_keys)
    return Draws(keys, first_blocks(keys), (len(trial_keys), n))


def first_uniforms(blocks: NDArray[np.uint8]) -> NDArray[np.float64]:
    """``uniform()`` as each stream's first draw: the first 53 bits of its first 7 bytes."""
    value = np.zeros(blocks.shape[:-1], dtype=np.uint64)
    for i in range(7):
        value = (value << np.uint64(8)) | blocks[..., i].astype(np.uint64)
    # Below 2**53, so the conversion to float and the division are exact: stream.first_uniform.
    return (value >> np.uint64(3)).astype(np.float64) / 9007199254740992.0


def randbelow_table(draws: Draws, used: int, m: int) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """``randbelow(m)`` of every stream after ``used`` bytes of its first block, and where the
    block ran out of bytes (those values are 0 here: :func:`randbelow_exact` gives them).

    Rejection sampling on the block's bytes, one byte per try (m <= 256), exactly as the stream
    does it.
    """
    blocks = draws.blocks
    shape = blocks.shape[:-1]
    if m <= 1:
        return np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=np.bool_)
    k = (m - 1).bit_length()
    if k > 8:
        return np.zeros(shape, dtype=np.int64), np.ones(shape, dtype=np.bool_)
    tries = blocks[..., used:] >> np.uint8(-k % 8)
    ok = tries < m
    first = ok.argmax(axis=-1)
    values = np.take_along_axis(tries, first[..., None], axis=-1)[..., 0].astype(np.int64)
    missing: NDArray[np.bool_] = np.logical_not(ok.any(axis=-1))
    values[missing] = 0
    return values, missing


def randbelow_exact(draws: Draws, trial: int, index: int, used: int, m: int) -> int:
    """One stream's ``randbelow(m)`` after ``used`` bytes, its real DrawStream replayed when the
    first block does not suffice."""
    block = draws.blocks[trial, index].tobytes()
    return randbelow_after(draws.key(trial, index), block, used, m)


def randbelow_from(draws: Draws, used: int, m: int) -> NDArray[np.int64]:
    """``randbelow(m)`` of every stream after ``used`` bytes of its first block."""
    values, missing = randbelow_table(draws, used, m)
    for t, i in zip(*np.nonzero(missing), strict=True):
        values[t, i] = randbelow_exact(draws, int(t), int(i), used, m)
    return values
