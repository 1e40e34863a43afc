"""One coordinator process for the concurrency tests: screens and allocates N patients.

Run as ``python -m tests.integration.alloc_worker URL WORKER N START_AT`` with the trial secret
in ``SARCOMA_SCHED_SECRET``; every worker sleeps until ``START_AT`` (epoch seconds) so that all
of them contend from the first allocation on.
"""

from __future__ import annotations

import datetime as dt
import sys
import time

from sarcoma_sched.allocation import load_secret
from sarcoma_sched.db.session import Database
from sarcoma_sched.services.allocation import allocate_patient
from sarcoma_sched.services.screening import screen
from tests.cohort import ELIGIBLE_NATARS

SITES = ["PKUIH", "BJFH", "XJTU1", "PKUFH", "SHCH", "SHZS", "QDUAH"]
HISTOLOGIES = ["DDLPS", "LMS", "UPS", "SFT"]
DAY = dt.date(2026, 11, 2)


def main() -> None:
    url, worker, count, start_at = (
        sys.argv[1],
        int(sys.argv[2]),
        int(sys.argv[3]),
        float(sys.argv[4]),
    )
    secret = load_secret(None)
    db = Database(url)
    time.sleep(max(0.0, start_at - time.time()))
    for i in range(count):
        n = worker * count + i
        values = {**ELIGIBLE_NATARS, "histology": HISTOLOGIES[n % 4]}
        if values["histology"] == "SFT":
            values["sft_risk_score"] = "6"
        outcome = screen(db, f"nurse{worker}", "NATARS-R", SITES[n % 7], values, screened_on=DAY)
        allocate_patient(
            db,
            f"nurse{worker}",
            outcome.screening_number,
            today=DAY,
            consent_date=DAY,
            secret=secret,
        )
    db.dispose()


if __name__ == "__main__":
    main()
