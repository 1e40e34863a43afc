"""The USDM tests run the installed command as the command tests do.

On Python 3.11 usdm4 is installed without its declared dependencies (README, the usdm extra);
without it these tests skip, and ``SARCOMA_SCHED_REQUIRE_USDM=1`` (set by ``.ci/run``) turns the
skip into a failure, so CI always runs them.
"""

import importlib.util
import os

import pytest

from tests.cli.conftest import _no_ambient_settings, command, run

__all__ = ["_no_ambient_settings", "command", "require_usdm4", "run"]


def require_usdm4() -> None:
    if importlib.util.find_spec("usdm4") is not None:
        return
    reason = "usdm4 is not installed (pip install --no-deps 'usdm4>=0.29', see the usdm extra)"
    if os.environ.get("SARCOMA_SCHED_REQUIRE_USDM"):
        pytest.fail(f"usdm4 required (SARCOMA_SCHED_REQUIRE_USDM is set) but {reason}")
    pytest.skip(reason, allow_module_level=True)
