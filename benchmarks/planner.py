"""Planner throughput: full NATARS neoadjuvant plans per second over random allocation dates.

Not a test (no assertion on time). Prints plans/s and, as a same-run baseline, the cost of the
bare date work every plan needs (one working-day lookup per planned day), so the ratio is
comparable across machines.

    python -m benchmarks.planner [--plans N] [--seed S]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time

from sarcoma_sched.calendar import SiteCalendar, plan_arm
from sarcoma_sched.protocol import find_protocol


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=20261121)
    args = parser.parse_args()

    protocol = find_protocol("NATARS").protocol
    calendar = SiteCalendar.for_protocol_site(protocol, "PKUIH")
    rng = random.Random(args.seed)
    first = dt.date(2024, 1, 1)
    anchors = [first + dt.timedelta(days=rng.randrange(365 * 12)) for _ in range(args.plans)]

    # Warm the calendar's day cache so both measurements see the same lookups.
    for anchor in anchors[:50]:
        plan_arm(protocol, "NEOADJUVANT", anchor, calendar)

    start = time.perf_counter()
    events = 0
    for anchor in anchors:
        events += len(plan_arm(protocol, "NEOADJUVANT", anchor, calendar).events)
    planned = time.perf_counter() - start

    # Baseline: the same number of working-day lookups over the same dates, nothing else.
    probes = [a + dt.timedelta(days=k) for a in anchors for k in range(events // len(anchors))]
    start = time.perf_counter()
    for day in probes:
        calendar.is_working_day(day)
    baseline = time.perf_counter() - start

    rate = args.plans / planned
    print(f"{'name':<34} {'measured':>14} {'baseline':>14} {'ratio':>8}")
    print(
        f"{'natars_neoadjuvant_plans':<34} {rate:>10.0f}/s {args.plans / baseline:>12.0f}/s "
        f"{baseline / planned:>8.3f}"
    )
    print(
        f"  {args.plans} plans, {events} planned occurrences, "
        f"{planned / args.plans * 1e3:.2f} ms per plan"
    )


if __name__ == "__main__":
    main()
