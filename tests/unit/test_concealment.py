"""What a site role reads of a protocol: the same trial, planned the same way, without what
predicts the next arm (issue 19, item 6)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sarcoma_sched.calendar import SiteCalendar, plan_arm
from sarcoma_sched.errors import AllocationError, ProtocolError
from sarcoma_sched.protocol import list_protocols
from sarcoma_sched.protocol.allocation import ConcealedAllocation, is_randomized
from sarcoma_sched.protocol.concealment import (
    parse_site_definition,
    server_allocation,
    site_definition,
)
from sarcoma_sched.protocol.describe import describe_allocation
from sarcoma_sched.protocol.loader import parse_protocol
from sarcoma_sched.protocol.occurrences import occurrences

BUNDLED = {item.protocol.id: item for item in list_protocols()}
# Words that name a randomized method's parameters, in any protocol's allocation section.
PARAMETERS = {"block_sizes", "probability", "weight", "imbalance", "simulation"}


def _words(value: object) -> set[str]:
    return set(json.dumps(value).replace('"', " ").replace(":", " ").split())


@pytest.mark.parametrize("protocol_id", sorted(BUNDLED))
def test_the_site_view_names_the_same_trial_and_hides_only_the_method(protocol_id):
    full = BUNDLED[protocol_id].protocol
    site = parse_site_definition(site_definition(full), "x")
    assert site.content_hash == full.content_hash
    assert [a.id for a in site.arms] == [a.id for a in full.arms]
    assert site.criteria == full.criteria and site.fields == full.fields
    for arm in full.arms:
        assert occurrences(site.arm(arm.id)) == occurrences(arm)
    if is_randomized(full.allocation):
        assert isinstance(site.allocation, ConcealedAllocation)
        assert not PARAMETERS & _words(json.loads(site_definition(full))["allocation"])
        assert "concealed from your role" in describe_allocation(site)
    else:
        assert site.allocation == full.allocation


@pytest.mark.parametrize("protocol_id", sorted(BUNDLED))
def test_the_server_reads_the_method_and_the_arms_in_order(protocol_id):
    full = BUNDLED[protocol_id].protocol
    spec = json.loads(server_allocation(full))
    assert spec["arms"] == [a.id for a in full.arms]
    assert spec["method"] == full.allocation.model_dump(mode="json", by_alias=True)


@settings(max_examples=60, deadline=None)
@given(
    protocol_id=st.sampled_from(sorted(BUNDLED)),
    day=st.dates(dt.date(2025, 1, 1), dt.date(2027, 12, 31)),
    data=st.data(),
)
def test_a_site_role_plans_every_date_the_full_protocol_plans(protocol_id, day, data):
    full = BUNDLED[protocol_id].protocol
    site = parse_site_definition(site_definition(full), "x")
    arm = data.draw(st.sampled_from([a.id for a in full.arms]))
    calendar = SiteCalendar("CN", time_zone="Asia/Shanghai")
    assert plan_arm(site, arm, day, calendar) == plan_arm(full, arm, day, calendar)


def test_the_concealed_view_cannot_draw_and_is_no_method_for_a_file():
    full = BUNDLED["NATARS-R"].protocol
    site = parse_site_definition(site_definition(full), "x")
    from sarcoma_sched.allocation import DrawStream, allocate

    with pytest.raises(AllocationError, match="concealed from your role"):
        allocate(
            site.allocation,
            [a.id for a in site.arms],
            [],
            {"histology": "DDLPS", "site": "PKUIH"},
            1,
            DrawStream(b"k" * 32),
        )
    source = BUNDLED["NATARS-R"].source
    start = source.index('method = "minimization"')
    forged = (
        source[:start] + 'method = "concealed"' + source[start + len('method = "minimization"') :]
    )
    with pytest.raises(ProtocolError, match="'concealed' is not a method"):
        parse_protocol(forged, "forged.toml")
