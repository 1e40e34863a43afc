"""Counts over a corpus of plans: every arm of every bundled protocol, allocated on each day of
2026-2027 at each site (2 x 365 x 4 arms x 7 sites, the TNT-STS arm at its own sites): flags by
code, inpatient days on closures or in holiday blocks, PFS scans within 14 days after surgery,
RT sooner than 5 working days after allocation, and avoidable flags: a plan with a flag the
repair clears is planned again with no limit on its re-plans, and every flag that plan no longer
has is counted (the repair is exact over its search, so only its budget can leave one). Run from
an old and a new checkout to compare.

    python -m benchmarks.plan_corpus [--step DAYS] [--closures N]

``--closures N`` gives each site N closures of one to five days a year, drawn with a fixed seed
(a ward move, a strike, a linac service): the counts then include stays kept off closures.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import random

from sarcoma_sched.calendar import SiteCalendar, plan_arm, planner
from sarcoma_sched.protocol import list_protocols


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", type=int, default=1, help="days between allocations")
    parser.add_argument("--closures", type=int, default=0, help="closures per site per year")
    args = parser.parse_args()
    draw = random.Random(2026)
    flags: collections.Counter[str] = collections.Counter()
    plans = stay_blocked = stay_closed = pfs_after_surgery = rt_early = avoidable = 0
    for item in list_protocols():
        p = item.protocol
        for site in p.sites:
            closed = set()
            for _ in range(2 * args.closures):
                first = dt.date(2026, 1, 1) + dt.timedelta(days=draw.randrange(730))
                closed |= {first + dt.timedelta(days=i) for i in range(draw.randint(1, 5))}
            calendar = SiteCalendar.for_protocol_site(p, site.code, closures=sorted(closed))
            day = dt.date(2026, 1, 1)
            while day <= dt.date(2027, 12, 31):
                for arm in p.arms:
                    plan = plan_arm(p, arm.id, day, calendar)
                    plans += 1
                    avoidable += _avoidable(plan, p, arm.id, day, calendar)
                    for e in plan.events:
                        for f in e.flags:
                            flags[f"{e.key}:{f.code}"] += 1
                        if e.kind == "infusion" and len(e.days) > 1:
                            if any(calendar.holiday_block(d) for d in e.days[1:]):
                                stay_blocked += 1
                            if any(calendar.is_closed(d) for d in e.days):
                                stay_closed += 1
                    if "surgery" in plan and plan.occurrences("follow_up"):
                        surgery = plan["surgery"].start
                        first = plan.occurrences("follow_up")[0].start
                        if 0 <= (first - surgery).days <= 14:
                            pfs_after_surgery += 1
                    if "rt" in plan:
                        working = 0
                        d = day
                        while d < plan["rt"].start:
                            d += dt.timedelta(days=1)
                            working += calendar.is_working_day(d)
                        if working < 5:
                            rt_early += 1
                day += dt.timedelta(days=args.step)
    print(f"plans: {plans}")
    print(f"inpatient stays running into a holiday block (3+ days off): {stay_blocked}")
    print(f"inpatient stays on a site closure: {stay_closed}")
    print(f"first PFS scan 0-14 days after surgery: {pfs_after_surgery}")
    print(f"RT fraction 1 sooner than 5 working days after allocation: {rt_early}")
    print(f"avoidable flags (cleared with an unlimited repair budget): {avoidable}")
    for code, n in sorted(flags.items()):
        print(f"flag {code}: {n}")


def _avoidable(plan, protocol, arm_id, day, calendar) -> int:  # type: ignore[no-untyped-def]
    def count(events) -> int:  # type: ignore[no-untyped-def]
        return sum(f.code in planner._AVOIDABLE for e in events for f in e.flags)

    found = count(plan.events)
    if not found:
        return 0
    budget = planner._REPAIR_BUDGET
    planner._REPAIR_BUDGET = 10**9
    try:
        unlimited = plan_arm(protocol, arm_id, day, calendar)
    finally:
        planner._REPAIR_BUDGET = budget
    return max(0, found - count(unlimited.events))


if __name__ == "__main__":
    main()
