"""Which version a site runs on a date (``protocol.activation``), against a day-by-day replay
of the activation history."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from sarcoma_sched.protocol.activation import Activation, active_activation, active_version

START = dt.date(2026, 1, 1)
SITES = ("PKUIH", "BJFH", "FJMUUH")


def _replay(history: list[Activation], site: str, on: dt.date) -> int | None:
    """The version running at ``site`` at the end of ``on``: start on the baseline, then walk
    day by day, switching to each activation at the site on its approval day, in the order
    recorded."""
    baseline = next((a for a in history if a.baseline), None)
    running = None if baseline is None else baseline.version_id
    day = START
    while day <= on:
        for activation in sorted(history, key=lambda a: a.order):
            if activation.site_code == site and activation.approved_on == day:
                running = activation.version_id
        day += dt.timedelta(days=1)
    return running


@st.composite
def histories(draw: st.DrawFn) -> list[Activation]:
    history = []
    if draw(st.booleans()):
        history.append(Activation(1, None, None, order=0))
    for order in range(1, draw(st.integers(0, 8)) + 1):
        history.append(
            Activation(
                draw(st.integers(1, 4)),
                draw(st.sampled_from(SITES)),
                START + dt.timedelta(days=draw(st.integers(0, 60))),
                order=order,
            )
        )
    return draw(st.permutations(history))


@given(histories(), st.sampled_from(SITES), st.integers(0, 70))
def test_the_version_chosen_is_the_one_running_at_the_site_on_that_date(history, site, day):
    on = START + dt.timedelta(days=day)
    assert active_version(history, site, on) == _replay(history, site, on)


@given(histories(), st.sampled_from(SITES), st.integers(0, 70))
def test_the_activation_chosen_is_the_baseline_or_one_at_that_site_approved_by_then(
    history, site, day
):
    on = START + dt.timedelta(days=day)
    chosen = active_activation(history, site, on)
    if chosen is None:
        assert not any(a.baseline for a in history)
        assert not any(a.site_code == site and a.approved_on <= on for a in history)
    elif chosen.baseline:
        assert not any(a.site_code == site and a.approved_on <= on for a in history)
    else:
        assert chosen.site_code == site and chosen.approved_on <= on


def test_an_activation_at_another_site_changes_nothing_here():
    history = [Activation(1, None, None), Activation(2, "PKUIH", START, order=1)]
    assert active_version(history, "BJFH", START + dt.timedelta(days=30)) == 1
    assert active_version(history, "PKUIH", START) == 2
    assert active_version(history, "PKUIH", START - dt.timedelta(days=1)) == 1
