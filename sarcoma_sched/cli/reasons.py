"""``--reason-code`` and ``--reason``: the code that leaves the database, the note that stays."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from sarcoma_sched.vocabulary import REASON_CODES

__all__ = ["reason_options"]

F = TypeVar("F", bound=Callable[..., Any])


def reason_options(why: str) -> Callable[[F], F]:
    """Both options; ``why`` says when a reason is needed (help text)."""

    def decorate(func: F) -> F:
        func = click.option(
            "--reason",
            metavar="TEXT",
            help=f"{why} A note in words, kept in the database: exports and listings show "
            "the code, the note only with --include-notes.",
        )(func)
        return click.option(
            "--reason-code",
            type=click.Choice(REASON_CODES),
            help="Why, as a code: what calendars, pictures and exports carry "
            "[default with a note only: other].",
        )(func)

    return decorate
