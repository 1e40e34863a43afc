"""What the picture tests need from the machine: a CJK font and a headless Chromium.

Without them the calling test is skipped with the reason; ``.ci/run`` installs both (Debian's
``fonts-noto-cjk`` and ``chromium``) and sets ``SARCOMA_SCHED_REQUIRE_PICTURE_TOOLS=1``, which
turns that skip into a failure, as ``SARCOMA_SCHED_REQUIRE_ICALJS`` does for ical.js.
"""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRE_ENV = "SARCOMA_SCHED_REQUIRE_PICTURE_TOOLS"
CHROMIUM = ("/usr/bin/chromium", "chromium", "chromium-browser")


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(f"picture tools required ({REQUIRE_ENV} is set) but {reason}")
    pytest.skip(f"skipped: {reason}")


def cjk_font() -> str:
    """The CJK family the pictures draw with; else skip or fail."""
    from sarcoma_sched.reports.fonts import cjk_family

    found = cjk_family()
    if found is None:
        _unavailable("no CJK font is installed (apt-get install fonts-noto-cjk)")
    return found  # type: ignore[return-value]


def chromium() -> str:
    """The Chromium executable, once Playwright is importable; else skip or fail."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    found = next((p for p in map(shutil.which, CHROMIUM) if p), None)
    if found is None:
        _unavailable("chromium is not on PATH (apt-get install chromium)")
    return found  # type: ignore[return-value]
