"""Every bundled protocol exports as a USDM v4 study that usdm4's own rules accept, and reads
back as a protocol that plans exactly the same schedule."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.usdm.conftest import require_usdm4

require_usdm4()

from sarcoma_sched.calendar import SiteCalendar, plan_arm  # noqa: E402 - after the usdm4 check
from sarcoma_sched.exports.usdm import validate_usdm, write_usdm  # noqa: E402 - after the usdm4 check
from sarcoma_sched.protocol import dump_protocol, list_protocols, parse_protocol  # noqa: E402 - after the usdm4 check
from sarcoma_sched.protocol.occurrences import occurrences  # noqa: E402 - after the usdm4 check
from sarcoma_sched.protocol.usdm_import import read_usdm  # noqa: E402 - after the usdm4 check

BUNDLED = {item.id: item.protocol for item in list_protocols()}
# Across Spring Festival, Golden Week and a plain month, so working-day rules are exercised.
ANCHORS = [dt.date(2026, 1, 26), dt.date(2026, 6, 15), dt.date(2026, 9, 24), dt.date(2027, 2, 1)]


@pytest.fixture(scope="module", params=sorted(BUNDLED))
def exported(request, tmp_path_factory):
    protocol = BUNDLED[request.param]
    path = tmp_path_factory.mktemp("usdm") / f"{protocol.id}.json"
    write_usdm(protocol, path)
    return protocol, path


def test_the_export_passes_the_usdm4_rules(exported):
    _, path = exported
    findings = validate_usdm(path)
    assert findings.rules_run > 200
    assert findings.passed, findings.failed


def test_the_file_holds_the_standard_schedule_elements(exported):
    protocol, path = exported
    design = json.loads(path.read_text())["study"]["versions"][0]["studyDesigns"][0]
    assert [a["name"] for a in design["arms"]] == [a.id for a in protocol.arms]
    assert [t["name"] for t in design["scheduleTimelines"]] == [a.id for a in protocol.arms]
    assert len(design["epochs"]) == 3 and design["encounters"] and design["activities"]
    timed = [t for tl in design["scheduleTimelines"] for t in tl["timings"] if t["windowLower"]]
    assert timed, "calendar-day windows are written as USDM windows"


def test_the_re_imported_protocol_is_the_same_definition(exported):
    protocol, path = exported
    again = read_usdm(path)
    assert again.canonical_json() == protocol.canonical_json()
    assert again.content_hash == protocol.content_hash
    # and it is a protocol file that validates on its own
    assert parse_protocol(dump_protocol(again)).content_hash == protocol.content_hash


def test_the_re_imported_protocol_plans_the_same_schedule(exported):
    protocol, path = exported
    again = read_usdm(path)
    for arm in protocol.arms:
        assert occurrences(again.arm(arm.id)) == occurrences(arm)
        for site in protocol.sites[:2]:
            calendar = SiteCalendar.for_protocol_site(protocol, site.code)
            for anchor in ANCHORS:
                before = plan_arm(protocol, arm.id, anchor, calendar)
                after = plan_arm(again, arm.id, anchor, calendar)
                assert after.events == before.events, (arm.id, site.code, anchor)
                assert after.violations == before.violations


def test_a_changed_window_in_the_usdm_file_is_read_from_the_standard_element(tmp_path):
    protocol = BUNDLED["NATARS"]
    path = write_usdm(protocol, tmp_path / "natars.json")
    data = json.loads(path.read_text())
    design = data["study"]["versions"][0]["studyDesigns"][0]
    timeline = next(t for t in design["scheduleTimelines"] if t["name"] == "SURGERY_ONLY")
    surgery = next(i for i in timeline["instances"] if i["name"] == "SURGERY_ONLY.surgery")
    timing = next(
        t for t in timeline["timings"] if t["relativeFromScheduledInstanceId"] == surgery["id"]
    )
    timing["windowUpper"] = "P21D"  # target +14, latest +35 instead of +28
    path.write_text(json.dumps(data))
    event = next(e for e in read_usdm(path).arm("SURGERY_ONLY").events if e.key == "surgery")
    assert event.timing is not None and (event.timing.earliest, event.timing.latest) == (7, 35)
