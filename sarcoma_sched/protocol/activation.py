"""Which version of a trial a site runs on a date: the one rule every use case asks.

An amendment takes effect at a site on the date its ethics committee approved it there, not
when the file was loaded: a site runs the version of its latest activation approved on or
before the date (two approved on one day: the one recorded later, a correction). A site with
no activation by then runs the trial's baseline, the version every site ran from the start
(``protocol load`` makes a trial's first version its baseline; migration 0011 made each
trial's newest version of the time its baseline).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Activation", "active_activation", "active_version"]


@dataclass(frozen=True)
class Activation:
    """``site_code`` and ``approved_on`` both None: the baseline. ``order`` breaks ties between
    activations approved on the same day (the row id: later recorded wins)."""

    version_id: int
    site_code: str | None
    approved_on: dt.date | None
    order: int = 0

    @property
    def baseline(self) -> bool:
        return self.site_code is None


def active_activation(
    activations: Iterable[Activation], site_code: str, on: dt.date
) -> Activation | None:
    """The activation in force at ``site_code`` on ``on``, or None when the trial has neither
    an activation there by then nor a baseline."""
    baseline: Activation | None = None
    best: Activation | None = None
    for activation in activations:
        if activation.baseline:
            baseline = activation
            continue
        if activation.site_code != site_code:
            continue
        assert activation.approved_on is not None  # a site's activation has its date
        if activation.approved_on > on:
            continue
        if best is None or (activation.approved_on, activation.order) > (
            best.approved_on or dt.date.min,
            best.order,
        ):
            best = activation
    return best or baseline


def active_version(activations: Iterable[Activation], site_code: str, on: dt.date) -> int | None:
    """The version id ``active_activation`` chooses."""
    chosen = active_activation(activations, site_code, on)
    return None if chosen is None else chosen.version_id
