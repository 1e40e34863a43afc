"""How a coordinator names a patient or a site, and what is said when a name finds none (or,
for a patient, several): one wording for ``lookups`` (the ORM) and the Core reads of
``queries.schedule``, so a reference is answered alike whichever serves it. Standard library
only: the read commands import it without the ORM."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from sarcoma_sched.errors import Conflict, NotFound

__all__ = ["no_site", "only_named", "patient_key"]

T = TypeVar("T")


def patient_key(ref: str) -> str:
    """A typed study id or screening number as stored: both are made of upper-case site and
    protocol codes, so the typed reference is compared upper-cased (the indexes still serve
    it)."""
    return ref.strip().upper()


def only_named(found: Sequence[T], ref: str, trial_of: Callable[[T], str]) -> T:
    """The one patient found for ``ref``; ``NotFound`` for none, ``Conflict`` naming the trials
    for several (a screening number is unique within a trial only)."""
    if not found:
        raise NotFound(f"no patient with study id or screening number {ref!r}")
    if len(found) > 1:
        trials = ", ".join(sorted(trial_of(p) for p in found))
        raise Conflict(f"{ref!r} names patients in several trials ({trials}); use the study id")
    return found[0]


def no_site(code: str, known: Iterable[str]) -> NotFound:
    """The error for a site code that names no site, with the sites there are."""
    listed = ", ".join(known)
    return NotFound(f"no site {code!r} (sites: {listed or 'none; run `sarcoma-sched init`'})")
