"""A downgrade never drops recorded data silently.

Going below the revision that added pins (0003), capacities (0004) or access grants, key
commitments and the installation row (0006) drops their rows; upgrading again would present the
loss as if nothing had happened. A migration's ``downgrade()`` therefore asks
:func:`refuse_data_loss` first: with rows at stake it refuses, naming what and how many, unless
forced; a forced downgrade first writes every row it drops, as JSON lines, to a file the user
names (never over an existing file).

Forcing: ``alembic downgrade REV -x force=1 -x dump=FILE``, or from code
``migrate.downgrade(engine, REV, force=True, dump=FILE)``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

__all__ = ["DUMP_KEY", "FORCE_KEY", "refuse_data_loss"]

FORCE_KEY = "sarcoma_force_downgrade"
DUMP_KEY = "sarcoma_downgrade_dump"
_STARTED = "sarcoma_downgrade_dump_started"


def _options() -> tuple[bool, str | None]:
    from alembic import context

    attributes = context.config.attributes
    x = context.get_x_argument(as_dictionary=True)
    force = bool(attributes.get(FORCE_KEY)) or x.get("force", "").lower() in ("1", "true", "yes")
    dump = attributes.get(DUMP_KEY) or x.get("dump") or None
    return force, (str(dump) if dump else None)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return str(value)


def refuse_data_loss(bind: Connection, revision: str, queries: Mapping[str, str]) -> None:
    """``queries``: what the downgrade drops, by name (``scheduled_events.pinned``), each a
    SELECT of exactly those rows. Refuses (alembic's CommandError: one line, no traceback)
    when any has rows, unless forced with a dump file; then writes them there first."""
    from alembic.util import CommandError

    found = {name: bind.execute(text(sql)).mappings().all() for name, sql in queries.items()}
    found = {name: rows for name, rows in found.items() if rows}
    if not found:
        return
    what = ", ".join(f"{len(rows)} {name}" for name, rows in found.items())
    force, dump = _options()
    if not force:
        raise CommandError(
            f"downgrade below {revision} would drop {what}; refused. To drop them anyway, "
            "force it and name a file for what is dropped: -x force=1 -x dump=FILE"
        )
    if dump is None:
        raise CommandError(
            f"a forced downgrade below {revision} drops {what}: name the file to keep them in "
            "with -x dump=FILE"
        )
    lines = [
        json.dumps({"revision": revision, "what": name, "row": dict(row)}, default=_jsonable)
        for name, rows in found.items()
        for row in rows
    ]
    from alembic import context

    from sarcoma_sched.errors import SarcomaSchedError
    from sarcoma_sched.files import write_new

    payload = "\n".join(lines) + "\n"
    attributes = context.config.attributes
    if attributes.get(_STARTED) == dump:
        # A later step of the same downgrade: the file is the one this run created.
        fd = os.open(dump, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        return
    try:
        write_new(Path(dump), payload, mode=0o600)
    except SarcomaSchedError as exc:
        raise CommandError(str(exc)) from None
    attributes[_STARTED] = dump
