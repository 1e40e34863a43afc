"""A Chinese trial's data for the renderers: site, arm labels, reasons and criteria in Chinese.

Built as the dataclasses ``services.queries`` returns (the renderers take data, never a
session), so the pictures can be drawn without a database.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from sarcoma_sched.services.queries.consort import ArmFlow, ConsortFlow
from sarcoma_sched.services.queries.timeline import PatientTimeline, TimelineEvent
from sarcoma_sched.vocabulary import EventKind, EventStatus

SITE = "北京大学人民医院"
SURGERY = "手术"
WITHDRAWN = "撤回知情同意"
CRITERION = "年龄18至75岁"
TITLE = "腹膜后脂肪肉瘤新辅助化疗联合安罗替尼的多中心研究"
# Every Chinese string the pictures below draw.
CHINESE = (SITE, SURGERY, WITHDRAWN, CRITERION, TITLE, "新辅助化疗后手术", "放疗", "随访")


def consort() -> ConsortFlow:
    return ConsortFlow(
        protocol_id="NATARS",
        registry_id="NCT05844813",
        title=TITLE,
        method="assigned",
        assessed=9,
        not_eligible=2,
        failed=Counter({"INC-13": 2}),
        arms=[
            ArmFlow("SURGERY_ONLY", SURGERY, allocated=3, received=3),
            ArmFlow(
                "NEOADJUVANT",
                "新辅助化疗后手术",
                allocated=4,
                received=3,
                withdrawn=Counter({WITHDRAWN: 1}),
            ),
        ],
        criteria_text={"INC-13": CRITERION},
    )


def _event(event_id: str, label: str, kind: str, first: dt.date, days: int) -> TimelineEvent:
    span = tuple(first + dt.timedelta(days=i) for i in range(days))
    return TimelineEvent(
        event_id=event_id,
        label=label,
        kind=kind,
        days=span,
        target=first,
        earliest=first - dt.timedelta(days=3),
        latest=first + dt.timedelta(days=3),
        status=EventStatus.PLANNED,
        actual_date=None,
        deviation=None,
        pinned=False,
        flagged=False,
    )


def timeline(start: dt.date = dt.date(2026, 12, 1)) -> PatientTimeline:
    """A patient allocated on ``start``: radiotherapy, surgery, a follow-up visit."""
    return PatientTimeline(
        study_id="PKUPH-NATARS-0001",
        protocol_id="NATARS",
        site=SITE,
        arm=SURGERY,
        allocation_date=start,
        ended=("withdrawn", start + dt.timedelta(days=40), WITHDRAWN),
        events=[
            _event("rt", "放疗", EventKind.RADIOTHERAPY, start + dt.timedelta(days=2), 5),
            _event("surgery", SURGERY, EventKind.SURGERY, start + dt.timedelta(days=20), 1),
            _event("follow_up.m1", "随访", EventKind.FOLLOW_UP, start + dt.timedelta(days=50), 1),
        ],
    )
