"""The mix benchmark times service calls by name (``benchmarks.mix.PHASES``); a rename in a
service left it failing at start-up, unseen, since no test runs the benchmarks. Every name it
wraps must still be there."""

from __future__ import annotations

import importlib

import pytest

from benchmarks.mix import PHASES


@pytest.mark.parametrize("module_name", sorted(PHASES))
def test_every_call_the_mix_times_exists(module_name):
    module = importlib.import_module(module_name)
    assert [name for name in PHASES[module_name] if not callable(getattr(module, name, None))] == []
