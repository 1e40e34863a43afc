"""NATARS amended, as a trial team would write it: version 1.3 of the bundled 1.2 file.

In the surgery-only arm the surgery window is widened (allocation + 7 … + 42 days instead of
+ 28), a post-operative visit 6 weeks after surgery is added, and PFS follow-up ends at 4 years
instead of 5 (its visits at months 54 and 60 are gone). The neoadjuvant arm is unchanged.
"""

from __future__ import annotations

from pathlib import Path

from sarcoma_sched.protocol import bundled_protocol_dir

__all__ = ["AMENDED_VERSION", "BASE_VERSION", "amended_natars"]

BASE_VERSION = "1.2"
AMENDED_VERSION = "1.3"

_SURGERY = (
    'timing = { anchor = "allocation", offset = 14, earliest = 7, latest = 28, '
    'day_rule = "working_day", shift = "forward" }'
)
_POSTOP = """
[[arms.events]]
key = "postop"
kind = "postop"
label = "Post-operative visit, 6 weeks"
timing = { anchor = { event = "surgery", point = "start" }, offset = 42, earliest = 35, \
latest = 49, day_rule = "working_day", shift = "forward" }
"""
_FOLLOW_UP = "{ every_months = 6, until_months = 60, window_days = 30 }"


def amended_text() -> str:
    text = (bundled_protocol_dir() / "natars.toml").read_text(encoding="utf-8")
    assert text.count(f'version = "{BASE_VERSION}"') == 1
    text = text.replace(f'version = "{BASE_VERSION}"', f'version = "{AMENDED_VERSION}"')
    # The surgery-only arm comes first: only its surgery and its follow-up change.
    assert _SURGERY in text and _FOLLOW_UP in text
    text = text.replace(_SURGERY, _SURGERY.replace("latest = 28", "latest = 42") + _POSTOP, 1)
    return text.replace(_FOLLOW_UP, _FOLLOW_UP.replace("60", "48"), 1)


def amended_natars(directory: Path) -> Path:
    path = directory / "natars-1.3.toml"
    path.write_text(amended_text(), encoding="utf-8")
    return path
