"""A deterministic cryptographic stream of random draws, keyed by the trial secret.

Every randomized allocation draws from a stream derived from the trial secret and *labels* that
say which decision it serves ("block", stratum, block index; or "minimization", position). This
gives the two properties concealment and audit need at once:

* without the secret the draws are HMAC-SHA256 outputs under an unknown key, so nothing stored in
  the database (which holds past allocations only) lets anyone compute the next assignment;
* with the secret every draw can be recomputed, so an auditor can replay the whole sequence.

Because each decision gets its own derived key, a draw does not depend on how many draws other
decisions made or in which order they were made (concurrent coordinators and replays all see
the same numbers).
"""

from __future__ import annotations

import hashlib
import hmac

from sarcoma_sched.allocation.random_stream import Label, RandomStream
from sarcoma_sched.allocation.random_stream import encode_label as _encode

__all__ = [
    "DrawStream",
    "Label",
    "derived_key",
    "trial_key",
]

# Domain-separation prefixes: a derived key can never equal an output block of the same key.
_DERIVE = b"\x01sarcoma-sched/derive/v1"
_BLOCK = b"\x02sarcoma-sched/draw/v1"
_TRIAL = b"sarcoma-sched/trial-key/v1"
_TWO_53 = 9007199254740992.0


def trial_key(secret: bytes, trial_id: str) -> bytes:
    """The key of one trial's stream: one installation secret can serve several trials."""
    return hmac.digest(secret, _TRIAL + _encode(trial_id), hashlib.sha256)


class DrawStream(RandomStream):
    """HMAC-SHA256 in counter mode under ``key``; same key ⇒ same draws, in the same order.

    ``shuffle`` and ``choice`` are :class:`RandomStream`'s, over this stream's ``randbelow``."""

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


# A derived stream's key without the object: the PostgreSQL allocation's tests compare the
# server's derivation with it.
def derived_key(key: bytes, *labels: Label) -> bytes:
    """The key of ``DrawStream(key).derive(*labels)``."""
    return hmac.digest(key, _DERIVE + b"".join(_encode(label) for label in labels), "sha256")
