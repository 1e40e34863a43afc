"""What the allocator reads from a stream of draws, whichever generator makes them.

Two streams implement it. :class:`~sarcoma_sched.allocation.stream.DrawStream` (HMAC-SHA256
under the trial secret) allocates real patients: concealment and audit need its key. The
simulation's :class:`~sarcoma_sched.allocation.simulation_stream.SimulationStream` (NumPy's
Philox, keyed by the seed) allocates simulated ones: nothing about a simulated trial is secret,
and a counter-based generator gives the same numbers one at a time (to the production
allocator) or as whole arrays (to the vectorised path).

The allocator calls only what is declared here, so what it does with either stream is the same
code: ``derive`` a decision's own stream, then ``uniform``, ``randbelow``, ``choice`` and
``shuffle`` from it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import MutableSequence, Sequence
from typing import TypeVar

__all__ = ["Label", "RandomStream", "encode_label"]

T = TypeVar("T")
Label = str | int | bytes


def encode_label(label: Label) -> bytes:
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


class RandomStream(ABC):
    """A deterministic stream of draws: the same key gives the same draws in the same order."""

    __slots__ = ()

    @abstractmethod
    def derive(self, *labels: Label) -> RandomStream:
        """An independent stream for the decision named by ``labels``."""

    @abstractmethod
    def uniform(self) -> float:
        """A float in [0, 1), a multiple of 2**-53."""

    @abstractmethod
    def randbelow(self, n: int) -> int:
        """An integer in [0, n), exactly uniform (rejection sampling, never a biased modulo)."""

    def shuffle(self, items: MutableSequence[T]) -> None:
        """Fisher–Yates in place: every permutation equally likely."""
        for i in range(len(items) - 1, 0, -1):
            j = self.randbelow(i + 1)
            items[i], items[j] = items[j], items[i]

    def choice(self, seq: Sequence[T]) -> T:
        if not seq:
            raise IndexError("cannot choose from an empty sequence")
        return seq[self.randbelow(len(seq))]
