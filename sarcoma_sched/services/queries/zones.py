"""Each site's time zone, by Core statement: what "today" means for a command (``cli.dates``),
asked before nearly every listing, so it must not import the ORM (``db.tables``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from sarcoma_sched.db.tables import SITES

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

__all__ = ["site_zones"]


def site_zones(session: Session | Connection) -> dict[str, str]:
    """Each site's time zone by code: the sites this login may read (row-level security)."""
    s = SITES.c
    return {code: zone for code, zone in session.execute(select(s.code, s.time_zone))}
