"""A deterministic cryptographic stream of random draws, keyed by the trial secret.

Every randomized allocation draws from a stream derived from the trial secret and *labels* that
say which decision it serves ("block", stratum, block index; or "minimization", position). This
gives the two properties concealment and audit need at once:

* without the secret the draws are HMAC-SHA256 outputs under an unknown key, so nothing stored in
  the database (which holds past allocations only) lets anyone compute the next assignment;
* with the secret every draw can be recomputed, so an auditor can replay the whole sequence.

Because each decision gets its own derived key, a draw does not depend on how many draws other
decisions made or in which order they were made (concurrent coordinators, replays, simulations
all see the same numbers).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import MutableSequence, Sequence
from typing import TypeVar

__all__ = [
    "FIRST_BLOCK",
    "DrawStream",
    "Label",
    "derive_messages",
    "derived_key",
    "first_uniform",
    "randbelow_after",
    "trial_key",
]

T = TypeVar("T")
Label = str | int | bytes

# Domain-separation prefixes: a derived key can never equal an output block of the same key.
_DERIVE = b"\x01sarcoma-sched/derive/v1"
_BLOCK = b"\x02sarcoma-sched/draw/v1"
_TRIAL = b"sarcoma-sched/trial-key/v1"
_TWO_53 = 9007199254740992.0


def _encode(label: Label) -> bytes:
    # Type tag + length prefix so that ("ab",) and ("a", "b"), or 1 and "1", never collide.
    if isinstance(label, bool):  # bool is an int subclass; refuse rather than guess.
        raise TypeError("stream labels are str, int or bytes, not bool")
    if isinstance(label, str):
        tag, raw = b"s", label.encode("utf-8")
    elif isinstance(label, int):
        tag, raw = b"i", str(label).encode("ascii")
    elif isinstance(label, bytes):
        tag, raw = b"b", label
    else:
        raise TypeError(f"stream labels are str, int or bytes, not {type(label).__name__}")
    return tag + len(raw).to_bytes(4, "big") + raw


def trial_key(secret: bytes, trial_id: str) -> bytes:
    """The key of one trial's stream: one installation secret can serve several trials."""
    return hmac.digest(secret, _TRIAL + _encode(trial_id), hashlib.sha256)


class DrawStream:
    """HMAC-SHA256 in counter mode under ``key``; same key ⇒ same draws, in the same order."""

    __slots__ = ("_buffer", "_counter", "_key")

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a draw stream key needs at least 128 bits")
        self._key = bytes(key)
        self._counter = 0
        self._buffer = b""

    def __repr__(self) -> str:
        # Never print the key: a repr in a log or traceback must not leak the sequence.
        return f"DrawStream(<key {hashlib.sha256(self._key).hexdigest()[:8]}…>)"

    def derive(self, *labels: Label) -> DrawStream:
        """An independent stream for the decision named by ``labels``."""
        message = _DERIVE + b"".join(_encode(label) for label in labels)
        return DrawStream(hmac.digest(self._key, message, hashlib.sha256))

    def _bytes(self, n: int) -> bytes:
        while len(self._buffer) < n:
            block = self._counter.to_bytes(8, "big")
            self._buffer += hmac.digest(self._key, _BLOCK + block, hashlib.sha256)
            self._counter += 1
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def bits(self, k: int) -> int:
        """``k`` uniformly random bits as a non-negative integer."""
        if k <= 0:
            return 0
        value = int.from_bytes(self._bytes((k + 7) // 8), "big")
        return value >> (-k % 8)

    def uniform(self) -> float:
        """A float in [0, 1) with 53 random bits (every representable multiple of 2**-53)."""
        return self.bits(53) / _TWO_53

    def randbelow(self, n: int) -> int:
        """An integer in [0, n), exactly uniform.

        Rejection sampling instead of ``bits % n``: a modulo would favour the low values whenever
        n is not a power of two, i.e. bias the allocation towards the first arms.
        """
        if n <= 0:
            raise ValueError(f"randbelow needs n >= 1, got {n}")
        k = (n - 1).bit_length()
        while True:
            r = self.bits(k)
            if r < n:
                return r

    def shuffle(self, items: MutableSequence[T]) -> None:
        """Fisher–Yates in place: every permutation equally likely."""
        for i in range(len(items) - 1, 0, -1):
            j = self.randbelow(i + 1)
            items[i], items[j] = items[j], items[i]

    def choice(self, seq: Sequence[T]) -> T:
        if not seq:
            raise IndexError("cannot choose from an empty sequence")
        return seq[self.randbelow(len(seq))]


# The simulation draws millions of times, and a DrawStream per decision costs more than the two
# HMACs it computes. These give the same numbers without the object: a derived stream's key,
# its first 32-byte output block, and the first draws from it (uniform() takes 7 bytes,
# randbelow(m) for m <= 256 one byte per try; anything rarer replays a real DrawStream).
# tests/unit/test_allocation_simulation_draws.py holds each equal to the stream's own draw.

FIRST_BLOCK = _BLOCK + (0).to_bytes(8, "big")


def derived_key(key: bytes, *labels: Label) -> bytes:
    """The key of ``DrawStream(key).derive(*labels)``."""
    return hmac.digest(key, _DERIVE + b"".join(_encode(label) for label in labels), "sha256")


def derive_messages(label: str, n: int) -> list[bytes]:
    """What ``derived_key`` hashes for (label, 1) .. (label, n), index = position; [0] unused."""
    head = _DERIVE + _encode(label)
    return [b"", *(head + _encode(position) for position in range(1, n + 1))]


def first_uniform(block: bytes) -> float:
    """``uniform()`` as the first draw of a stream whose first block is ``block``."""
    return (int.from_bytes(block[:7], "big") >> 3) / _TWO_53


def randbelow_after(key: bytes, block: bytes, used: int, m: int) -> int:
    """``randbelow(m)`` of the stream keyed ``key`` after ``used`` bytes of its first block."""
    k = (m - 1).bit_length()
    if k <= 8:
        shift = -k % 8
        for i in range(used, len(block)):
            r = block[i] >> shift
            if r < m:
                return r
    stream = DrawStream(key)
    if used:
        stream.bits(8 * used)
    return stream.randbelow(m)
