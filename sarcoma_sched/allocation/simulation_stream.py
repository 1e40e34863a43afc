"""The simulation's draws: NumPy's Philox in counter mode, keyed by the seed, not the secret.

A simulated trial has synthetic patients and is reported in aggregate, so its randomness needs
no secret (a real trial's does: :class:`~sarcoma_sched.allocation.stream.DrawStream`). What it
needs is that the production allocator, reading one draw at a time, and the vectorised path,
reading whole arrays, see the same numbers. Philox4x64-10 (Salmon et al., SC '11) gives that:
it is counter-based, the 256-bit block at counter c under key k is a function of (k, c) alone,
so any stream's draws can be computed directly, singly or for a whole trial in one NumPy call.

Layout. A stream is a 128-bit key and an index i. It reads 64-bit words: first the
``WORDS`` words of the Philox blocks at counters 2i + 1 and 2i + 2, then, if a decision needs
more (a shuffle of more than eight arms; a rejected draw), the blocks at 2**192 + i·2**64 + 1,
+ 2, ... (a region no index's first words reach). ``derive(*head, n)`` with a final integer n
(0 <= n < 2**63) is the stream (key', n) with key' = BLAKE2b(key, index, head): so a trial's
streams ``derive("minimization", 1)``, ``derive("minimization", 2)``, ... read consecutive
counters under one key, and :class:`Family` makes all their words with one ``random_raw``.
Any other labels give (BLAKE2b(key, index, labels), 0), tagged apart from the first kind.

Draws from words, as :func:`uniforms` and :func:`randbelow_words` do for arrays:
``uniform()`` is (w >> 11) / 2**53, the top 53 bits; ``randbelow(n)`` is w mod n for the first
word w below 2**64 − (2**64 mod n), which makes every residue equally likely (for larger n,
k-bit rejection over concatenated words); ``randbelow(1)`` is 0 and reads nothing.
"""

from __future__ import annotations

import hashlib
import threading

import numpy as np
from numpy.typing import NDArray

from sarcoma_sched.allocation.random_stream import Label, RandomStream, encode_label

__all__ = ["WORDS", "Family", "SimulationStream", "randbelow_words", "uniforms"]

# 64-bit words at a stream's own counters: a uniform and a tie-break, or a block of 8 shuffled.
WORDS = 8
_PERSON = b"sarcoma-sim/v1"
_INDEXED, _SINGLE = b"f", b"s"
_MAX_INDEX = 1 << 63
_OVERFLOW = 1 << 192
_TWO_64 = 1 << 64
_TWO_53 = 9007199254740992.0
# A family's cache grows to any index up to this far past what it holds; farther ones are
# computed alone rather than filling the rows between.
_GROW_SLACK = 1024


def _key(parent: int, index: int, tag: bytes, labels: tuple[Label, ...]) -> int:
    message = b"".join(
        [parent.to_bytes(16, "little"), encode_label(index), tag, *map(encode_label, labels)]
    )
    digest = hashlib.blake2b(message, digest_size=16, person=_PERSON).digest()
    return int.from_bytes(digest, "little")


_MASK = (1 << 64) - 1
_local = threading.local()


def _raw(key: int, counter: int, n: int) -> NDArray[np.uint64]:
    """``n`` words of Philox under ``key`` from the block at ``counter`` + 1 on.

    Setting the state of one generator per thread costs a fraction of constructing one from a
    Python int key (measured 2.8 against 19 µs), and it is paid about once per simulated trial.
    """
    generator = getattr(_local, "philox", None)
    if generator is None:
        generator = _local.philox = np.random.Philox(key=0)
        _local.state = generator.state
    state = _local.state
    state["state"]["key"] = np.array([key & _MASK, key >> 64], dtype=np.uint64)
    state["state"]["counter"] = np.array(
        [counter & _MASK, counter >> 64 & _MASK, counter >> 128 & _MASK, counter >> 192],
        dtype=np.uint64,
    )
    state["buffer_pos"] = 4  # the buffer is empty: the next word starts a new block
    generator.state = state
    words: NDArray[np.uint64] = generator.random_raw(n)
    return words


def _rows(key: int, start: int, stop: int) -> NDArray[np.uint64]:
    """The first WORDS words of streams start..stop-1 under ``key``, one row each."""
    # Streams i.. start at block 2i + 1.
    words = _raw(key, 2 * start, WORDS * (stop - start))
    return words.reshape(stop - start, WORDS)


class Family:
    """The streams ``parent.derive(*head, i)`` for i = 0, 1, …: one key, consecutive counters."""

    __slots__ = ("_rows", "key")

    def __init__(self, key: int) -> None:
        self.key = key
        self._rows: NDArray[np.uint64] = np.empty((0, WORDS), dtype=np.uint64)

    def words(self, stop: int) -> NDArray[np.uint64]:
        """``[i, j]``: the j-th word of stream i, for i < stop (made once, then kept)."""
        have = len(self._rows)
        if stop > have:
            grown = max(stop, 2 * have, 16)
            more = _rows(self.key, have, grown)
            self._rows = np.concatenate([self._rows, more]) if have else more
        return self._rows[:stop]

    def leading(self, indices: range, n: int) -> NDArray[np.uint64]:
        """``[r, j]``: ``stream(indices[r]).words(n)[j]``, the first n words of each stream,
        made without the stream objects (a simulated trial's patients read them)."""
        out = np.empty((len(indices), n), dtype=np.uint64)
        if not len(indices):
            return out
        first = min(n, WORDS)
        out[:, :first] = self.words(indices[-1] + 1)[indices.start :: indices.step, :first]
        rest = n - first
        if rest:
            blocks = -(-rest // 4) * 4
            for r, index in enumerate(indices):
                words = _raw(self.key, _OVERFLOW | (index << 64), blocks)
                out[r, first:] = words[:rest]
        return out

    def stream(self, index: int) -> SimulationStream:
        if index < len(self._rows) + _GROW_SLACK:
            row = self.words(index + 1)[index]
        else:
            row = _rows(self.key, index, index + 1)[0]
        return SimulationStream(self.key, index, row.tolist())


class SimulationStream(RandomStream):
    """A simulated trial's stream: what :func:`allocate` reads, seeded and counter-based."""

    __slots__ = ("_families", "_index", "_key", "_overflow", "_used", "_words")

    # _overflow: the counter of the last block read from the overflow region (0: none yet).

    def __init__(self, key: int, index: int = 0, words: list[int] | None = None) -> None:
        if not 0 <= key < 1 << 128 or not 0 <= index < _MAX_INDEX:
            raise ValueError("a simulation stream has a 128-bit key and an index below 2**63")
        self._key = key
        self._index = index
        self._words = words if words is not None else _rows(key, index, index + 1)[0].tolist()
        self._used = 0
        self._overflow = 0
        self._families: dict[tuple[Label, ...], Family] = {}

    @classmethod
    def from_seed(cls, seed: int) -> SimulationStream:
        """The root of every stream a simulation with this seed draws from."""
        text = f"sarcoma-sched/simulation/{seed}".encode()
        digest = hashlib.blake2b(text, digest_size=16, person=_PERSON).digest()
        return cls(int.from_bytes(digest, "little"))

    def __repr__(self) -> str:
        return f"SimulationStream(key={self._key:#034x}, index={self._index})"

    def family(self, *head: Label) -> Family:
        """The streams ``derive(*head, i)``, i >= 0, whose words come in bulk."""
        found = self._families.get(head)
        if found is None:
            found = self._families[head] = Family(_key(self._key, self._index, _INDEXED, head))
        return found

    def derive(self, *labels: Label) -> SimulationStream:
        # True == 1 as a dict key: refuse bools here, before a family is looked up by them.
        if any(isinstance(label, bool) for label in labels):
            raise TypeError("stream labels are str, int or bytes, not bool")
        last = labels[-1] if labels else None
        if isinstance(last, int) and 0 <= last < _MAX_INDEX:
            return self.family(*labels[:-1]).stream(last)
        return SimulationStream(_key(self._key, self._index, _SINGLE, labels))

    def _more(self, n: int) -> NDArray[np.uint64]:
        """The next ``n`` words of the overflow region (whole blocks: n a multiple of 4)."""
        if not self._overflow:
            self._overflow = _OVERFLOW | (self._index << 64)
        words = _raw(self._key, self._overflow, n)
        self._overflow += n // 4
        return words

    def _word(self) -> int:
        if self._used == len(self._words):
            self._words = self._more(WORDS).tolist()
            self._used = 0
        word = self._words[self._used]
        self._used += 1
        return word

    def words(self, n: int) -> NDArray[np.uint64]:
        """The stream's next ``n`` words at once, as ``n`` draws of one word would read them."""
        have = self._words[self._used :]
        if n <= len(have):
            self._used += n
            return np.array(have[:n], dtype=np.uint64)
        missing = n - len(have)
        more = self._more(-(-missing // 4) * 4)
        # Words of the last block beyond n are the next single draws'.
        self._words, self._used = more[missing:].tolist(), 0
        return np.concatenate([np.array(have, dtype=np.uint64), more[:missing]])

    def uniform(self) -> float:
        return (self._word() >> 11) / _TWO_53

    def randbelow(self, n: int) -> int:
        if n <= 0:
            raise ValueError(f"randbelow needs n >= 1, got {n}")
        if n == 1:
            return 0
        if n <= _TWO_64:
            limit = _TWO_64 - _TWO_64 % n
            while True:
                w = self._word()
                if w < limit:
                    return w % n
        k = (n - 1).bit_length()
        count = -(-k // 64)
        while True:
            value = 0
            for _ in range(count):
                value = (value << 64) | self._word()
            value >>= 64 * count - k
            if value < n:
                return value


def uniforms(words: NDArray[np.uint64]) -> NDArray[np.float64]:
    """``uniform()`` of each word: below 2**53 after the shift, so exact as a double."""
    return (words >> np.uint64(11)).astype(np.float64) * (1.0 / _TWO_53)


def randbelow_words(
    words: NDArray[np.uint64], n: int
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """``randbelow(n)`` of each word as its first try (2 <= n <= 2**63), and where that try is
    rejected (there the stream reads its next word: ask the stream itself)."""
    values = (words % np.uint64(n)).astype(np.int64)
    rest = _TWO_64 % n
    if not rest:  # a power of two divides 2**64: no word is rejected
        return values, np.zeros(words.shape, dtype=np.bool_)
    return values, words >= np.uint64(_TWO_64 - rest)
