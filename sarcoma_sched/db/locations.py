"""Which database a command names, read alike by the engine (``db.engine``) and by a read
command's own connection (``db.quick_open``): ``--db``, else ``SARCOMA_SCHED_DB``, else the
default file. Standard library only."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

__all__ = ["DB_ENV", "default_sqlite_path", "is_broken_url", "named_database"]

DB_ENV = "SARCOMA_SCHED_DB"


def default_sqlite_path(env: Mapping[str, str] = os.environ) -> Path:
    """``$XDG_DATA_HOME/sarcoma-sched/schedule.db``, i.e. ``~/.local/share/...`` by default."""
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "sarcoma-sched" / "schedule.db"


def named_database(value: str | None, env: Mapping[str, str] = os.environ) -> str:
    """``--db`` wins over ``SARCOMA_SCHED_DB``, which wins over the default file."""
    return value or env.get(DB_ENV) or str(default_sqlite_path(env))


def is_broken_url(raw: str) -> bool:
    """``sqlite:/x`` or ``postgresql:db``: read as a path it would quietly create a file named
    after the scheme; it is a URL with a slash missing."""
    return "://" not in raw and _SCHEME.match(raw) is not None


_SCHEME = re.compile(r"^(?:sqlite|postgres|postgresql|[a-z]+\+[a-z0-9]+):", re.IGNORECASE)
