"""One coordinator process for the theatre-capacity concurrency test: screens and allocates N
NATARS surgery-only patients at PKUIH, all on the same day, so their surgeries compete for the
same sessions.

Run as ``python -m tests.integration.cap_worker URL WORKER N START_AT``.
"""

from __future__ import annotations

import datetime as dt
import sys
import time

from sarcoma_sched.db.session import Database
from sarcoma_sched.services.allocation import allocate_patient
from sarcoma_sched.services.screening import screen
from tests.cohort import ELIGIBLE_NATARS

DAY = dt.date(2026, 11, 20)


def main() -> None:
    url, worker, count, start_at = (
        sys.argv[1],
        int(sys.argv[2]),
        int(sys.argv[3]),
        float(sys.argv[4]),
    )
    db = Database(url)
    time.sleep(max(0.0, start_at - time.time()))
    for _ in range(count):
        outcome = screen(db, f"nurse{worker}", "NATARS", "PKUIH", ELIGIBLE_NATARS, screened_on=DAY)
        allocate_patient(
            db,
            f"nurse{worker}",
            outcome.screening_number,
            today=DAY,
            consent_date=DAY,
            arm="SURGERY_ONLY",
            basis="mdt_decision",
            reason="MDT",
        )
    db.dispose()


if __name__ == "__main__":
    main()
