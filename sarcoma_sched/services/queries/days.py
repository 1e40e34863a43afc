"""How a stored event's days and window read in a listing: ``2027-03-04``, ``2027-03-04..
2027-03-08`` for consecutive days, the days one by one when there is a gap, the local time
after them."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

__all__ = ["days_text", "iso_days", "window_text"]


def iso_days(text: str) -> list[str]:
    """The stored JSON list of ISO dates. What the engine writes (``json.dumps``: '["2027-03-04",
    "2027-03-05"]', 14 characters a day) is split at C speed; anything else is decoded."""
    items = text[2:-2].split('", "')
    if text.startswith('["') and text.endswith('"]') and len(text) == 14 * len(items):
        return items
    return json.loads(text)


def days_text(days: Sequence[str] | str, time: str | None) -> str:
    """``days`` as a list of ISO dates, or as its JSON text (the listings skip the decoding
    for one-day events, most of them, and decode here only what has several days)."""
    if isinstance(days, str):
        days = iso_days(days)
    if len(days) == 1:
        text = days[0]
    else:
        # RT 5 fractions straddling a weekend must show which days, not just first and last.
        # Strictly increasing (ISO dates sort as text) over n - 1 days is one day apart each.
        first, last = dt.date.fromisoformat(days[0]), dt.date.fromisoformat(days[-1])
        consecutive = (last - first).days == len(days) - 1 and all(map(str.__lt__, days, days[1:]))
        text = f"{days[0]}..{days[-1]}" if consecutive else ", ".join(days)
    return f"{text} {time}" if time else text


def window_text(earliest: dt.date, latest: dt.date) -> str:
    return f"{earliest}..{latest}"
