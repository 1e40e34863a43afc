"""Planner throughput: full NATARS neoadjuvant plans per second over random allocation dates.

Not a test (no assertion on time). Prints plans/s and, as a same-run baseline, the cost of the
bare date work every plan needs (one working-day lookup per planned day), so the ratio is
comparable across machines.

The machine may be shared, so the anchors are timed in batches, each batch's plans and then its
baseline lookups back to back, every batch ``--rounds`` times; each batch counts with its fastest
round. The work is the same every round (a plan is a pure function of its inputs), so a slower
round only measures time spent waiting for the CPU. The first round also fills the calendar's
table of working days, which a running service keeps too.

    python -m benchmarks.planner [--plans N] [--seed S] [--rounds R]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time

from benchmarks._table import record
from sarcoma_sched.calendar import SiteCalendar, plan_arm
from sarcoma_sched.protocol import find_protocol

BATCH = 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=20261121)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    protocol = find_protocol("NATARS").protocol
    calendar = SiteCalendar.for_protocol_site(protocol, "PKUIH")
    rng = random.Random(args.seed)
    first = dt.date(2024, 1, 1)
    anchors = [first + dt.timedelta(days=rng.randrange(365 * 12)) for _ in range(args.plans)]

    # Warm the imports and the arm's first plan; the number of occurrences per plan sizes the
    # baseline.
    warm = [plan_arm(protocol, "NEOADJUVANT", anchor, calendar) for anchor in anchors[:50]]
    per_plan = sum(len(p.events) for p in warm) // len(warm)

    batches = [anchors[i : i + BATCH] for i in range(0, len(anchors), BATCH)]
    # Baseline: the same number of working-day lookups over the same dates, nothing else.
    probes = [
        [a + dt.timedelta(days=k) for a in batch for k in range(per_plan)] for batch in batches
    ]
    planned = [float("inf")] * len(batches)
    baseline = [float("inf")] * len(batches)
    events = 0
    first_round = 0.0
    for round_ in range(args.rounds):
        for i, batch in enumerate(batches):
            start = time.perf_counter()
            n = 0
            for anchor in batch:
                n += len(plan_arm(protocol, "NEOADJUVANT", anchor, calendar).events)
            took = time.perf_counter() - start
            planned[i] = min(planned[i], took)
            if round_ == 0:
                events += n
                first_round += took
            start = time.perf_counter()
            for day in probes[i]:
                calendar.is_working_day(day)
            baseline[i] = min(baseline[i], time.perf_counter() - start)

    plan_time, base_time = sum(planned), sum(baseline)
    rate = args.plans / plan_time
    print(f"{'name':<34} {'measured':>14} {'baseline':>14} {'ratio':>8}")
    record(
        "natars_neoadjuvant_plans",
        f"{rate:.0f}/s",
        f"{args.plans / base_time:.0f}/s",
        base_time / plan_time,
    )
    print(
        f"{'natars_neoadjuvant_plans':<34} {rate:>10.0f}/s {args.plans / base_time:>12.0f}/s "
        f"{base_time / plan_time:>8.4f}"
    )
    print(
        f"  {args.plans} plans, {events} planned occurrences, "
        f"{plan_time / args.plans * 1e3:.3f} ms per plan "
        f"(fastest of {args.rounds} rounds per batch of {BATCH})"
    )
    # Honest about the caches: in the first round every anchor's days are looked up for the
    # first time in this process (a service planning a new patient's dates).
    print(
        f"  first round alone (each date seen for the first time): "
        f"{args.plans / first_round:.0f}/s, {first_round / args.plans * 1e3:.3f} ms per plan"
    )


if __name__ == "__main__":
    main()
