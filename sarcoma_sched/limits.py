"""Every bound on what a user can hand in, declared once.

The engine refuses what lies outside these before it reads or writes anything, with one line
naming the option, file or field: a typing slip (``--week 99999999999``), a runaway request
(``allocation simulate --patients 1000000000000``) or a hostile file (a protocol with a block of
two billion patients, a 256-character time zone, a field file that is a FIFO or ``/dev/zero``)
would otherwise end in a traceback, a process that never finishes, or a value SQLite stores
and PostgreSQL refuses. The command-line help shows the bounds a user meets there, so
``docs/cli.md`` does too.

Text lengths the database stores are the model columns' (``db.models``, ``String(n)``); they
are repeated here only where the pure core (protocol validation) must refuse a value before
any database is involved, and ``tests/unit/test_limits.py`` holds each copy to its column.

Standard library only, like ``errors``: the pure core and the command line import it on
start-up.
"""

from __future__ import annotations

import re
import zoneinfo
from functools import lru_cache

__all__ = [
    "ACTOR_LENGTH",
    "ARM_ID_LENGTH",
    "BASIS_LENGTH",
    "EVENT_LABEL_LENGTH",
    "MAX_BLOCK_SIZE",
    "MAX_CAPACITY",
    "MAX_CLOSURE_DAYS",
    "MAX_CYCLES",
    "MAX_DAYS",
    "MAX_FOLLOW_UP_MONTHS",
    "MAX_INPUT_FILE_BYTES",
    "MAX_NESTING",
    "MAX_OCCURRENCES",
    "MAX_REPORT_DAYS",
    "MAX_SIMULATED_DRAWS",
    "MAX_SIMULATED_PATIENTS",
    "MAX_SIMULATED_TRIALS",
    "MAX_SPAN_DAYS",
    "MAX_STORED_INT",
    "PROTOCOL_ID_LENGTH",
    "PROTOCOL_VERSION_LENGTH",
    "SITE_CODE_LENGTH",
    "SITE_NAME_LENGTH",
    "SUBDIVISION_LENGTH",
    "TIME_ZONE_LENGTH",
    "is_time_zone",
    "parse_whole",
    "shown",
]

# --- files a user names --------------------------------------------------------------------------

# A protocol, a screening field file, a holiday table, a key file: the bundled protocols are
# 16 KiB, a field file a few hundred bytes. Anything bigger is the wrong file (a log, an
# image, /dev/zero), and reading it whole would only exhaust memory.
MAX_INPUT_FILE_BYTES = 1 << 20
# Tables and arrays inside one another: the bundled protocols nest 9 deep (a criterion's
# if/all/any rules), a field file 1. A parser recursing 10,000 deep would overflow the stack.
MAX_NESTING = 32

# --- numbers -------------------------------------------------------------------------------------

# The widest whole number every backend stores: PostgreSQL's integer (int4). SQLite's are
# 64-bit, so without this bound SQLite would keep what PostgreSQL refuses.
MAX_STORED_INT = 2**31 - 1
# Sessions, chairs or new courses a site offers on one weekday or in one week.
MAX_CAPACITY = 1000
# `allocation simulate`: a trial of up to 10,000 patients, up to 100,000 simulated trials, and
# at most 10 million draws in all (a few minutes; each draw takes some 35 microseconds).
MAX_SIMULATED_PATIENTS = 10_000
MAX_SIMULATED_TRIALS = 100_000
MAX_SIMULATED_DRAWS = 10_000_000

# --- date ranges ---------------------------------------------------------------------------------

# A site closure (`site close`, `plan --closure`): a ward move or a strike, not a site leaving
# the trial. Longer closures would also push a patient's whole calendar past the dates a
# trial can mean (cli.dates.LATEST).
MAX_CLOSURE_DAYS = 366
# `report workload --from/--to`: three years of load ahead, one row per day.
MAX_REPORT_DAYS = 3 * 365 + 1

# --- protocol definitions: sanity limits -----------------------------------------------------

# Patients in one permuted block (typical blocks hold 2 to 12).
MAX_BLOCK_SIZE = 100
# Cycles of one repeated event (two years of weekly treatment is 104).
MAX_CYCLES = 200
# Any offset, window bound, cycle length, gap or follow-up window in days: ten years.
MAX_DAYS = 3660
# Days one occurrence occupies (an RT course, a period of oral dosing).
MAX_SPAN_DAYS = 366
# The follow-up horizon: twenty years.
MAX_FOLLOW_UP_MONTHS = 240
# Occurrences one arm expands to: the rows a patient's calendar holds (the bundled arms: 26).
MAX_OCCURRENCES = 1000

# --- text the database stores (its columns' lengths; tests/unit/test_limits.py) ----------------

ACTOR_LENGTH = 64  # --user, and every *_by column
PROTOCOL_ID_LENGTH = 32  # study.id
PROTOCOL_VERSION_LENGTH = 32  # study.version
ARM_ID_LENGTH = 32  # arms[].id
BASIS_LENGTH = 32  # allocation.bases[]
SITE_CODE_LENGTH = 16  # sites[].code, site add CODE
SITE_NAME_LENGTH = 200  # sites[].name, site add --name
TIME_ZONE_LENGTH = 64  # every time zone name
SUBDIVISION_LENGTH = 16  # a holiday subdivision code
EVENT_LABEL_LENGTH = 200  # the label an occurrence's calendar entry carries


@lru_cache(maxsize=256)
def is_time_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone that ``zoneinfo`` knows.

    ``zoneinfo`` reads the name as a path below its zone directories: a name too long for the
    file system raises ``OSError``, a directory (``Asia``) ``IsADirectoryError``; both mean the
    same as an unknown zone. The length is checked first, so no such name reaches the file
    system at all.
    """
    if not name or len(name) > TIME_ZONE_LENGTH:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


# ASCII digits only: int() also reads "1_000", " 12 " and non-ASCII digits ("١٢", fullwidth
# "１２"), and str.isdigit() lets "²" through, which int() then refuses with a ValueError.
_WHOLE = re.compile(r"\+?[0-9]+|-[0-9]+")


def parse_whole(text: str, low: int, high: int) -> int:
    """``text`` as a whole number in ``low .. high``, or ValueError with the reason in words.

    The digits are counted before int() sees them: Python refuses to convert more than 4,300
    digits (a ValueError naming sys.set_int_max_str_digits), and a bound check after the
    conversion would come too late for it.
    """
    stripped = text.strip()
    if not _WHOLE.fullmatch(stripped):
        raise ValueError(f"{shown(text)} is not a whole number (digits 0-9)")
    digits = stripped.lstrip("+-").lstrip("0") or "0"
    if len(digits) > len(str(max(abs(low), abs(high)))):
        raise ValueError(f"{shown(text)} is outside {low}..{high}")
    value = -int(digits) if stripped.startswith("-") else int(digits)
    if not low <= value <= high:
        raise ValueError(f"{shown(text)} is outside {low}..{high}")
    return value


def shown(text: str) -> str:
    """``text`` quoted for an error line, cut short when long: a 5,000-character value would
    otherwise become the line."""
    quoted = repr(text)
    return quoted if len(quoted) <= 40 else f"{quoted[:24]}... ({len(text)} characters)"
