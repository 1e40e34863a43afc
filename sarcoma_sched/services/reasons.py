"""A reason as a code plus an optional note: what leaves the database, and what stays in it.

Every service that records why (withdraw, exclude, record, reschedule, a site closure) stores
the code (``vocabulary.ReasonCode``) in ``reason`` and what the coordinator typed in ``note``.
Calendars, pictures, listings, SDTM and error messages carry the code; a note is shown only when
a user asks with ``--include-notes``. A coordinator who types "patient Zhang, 138…" as the
reason therefore sees it in the database and in nothing that is sent or printed for others.
"""

from __future__ import annotations

from sarcoma_sched.errors import Conflict, InputError
from sarcoma_sched.vocabulary import REASON_CODES, ReasonCode

__all__ = ["NOTE_LIMIT", "coded"]

# A note is a sentence or two; anything longer is a pasted document, which belongs elsewhere.
NOTE_LIMIT = 2000


def coded(
    code: str | None,
    note: str | None,
    *,
    default: ReasonCode,
    required: str | None = None,
) -> tuple[ReasonCode | None, str | None]:
    """(code, note) to store. A note without a code takes ``default``; neither is refused with
    ``required`` when given, else means no reason."""
    text = (note or "").strip() or None
    if text is not None and len(text) > NOTE_LIMIT:
        raise InputError(f"--reason: {len(text)} characters; a note holds at most {NOTE_LIMIT}")
    if code is not None:
        try:
            return ReasonCode(code.strip().lower()), text
        except ValueError:
            raise InputError(
                f"--reason-code {code[:40]!r}: one of {', '.join(REASON_CODES)}"
            ) from None
    if text is not None:
        return default, text
    if required is not None:
        raise Conflict(required)
    return None, None
