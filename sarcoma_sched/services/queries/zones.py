"""Each site's time zone: what "today" means for a command (``cli.dates``), asked before nearly
every listing, so it is a driver statement (``db.rows``) that needs no SQLAlchemy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sarcoma_sched.db.rows import rows_of

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

    from sarcoma_sched.db.rows import Rows

__all__ = ["site_zones"]


def site_zones(where: Rows | Session | Connection) -> dict[str, str]:
    """Each site's time zone by code: the sites this login may read (row-level security)."""
    return dict(rows_of(where).all("SELECT code, time_zone FROM sites"))
