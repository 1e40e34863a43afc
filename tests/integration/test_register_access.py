"""The registers through PostgreSQL's access model, each login connected as itself.

A coordinator lists only their own site's patients and screenings (row-level security, not a
filter in the engine), a data manager every site's; the audit log is refused to site roles.
The world's logins and group roles are created with unique names and dropped afterwards
(``access_fixtures.access_world``).
"""

from __future__ import annotations

import json

import pytest

from tests.integration.access_fixtures import OTHER, OWN, World, access_world

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def world():
    with access_world() as built:
        yield built


def _sites(world: World, key: str, command: str) -> list[str]:
    done = world.ok(world.logins[key], command, "--format", "json")
    return sorted({row["site"] for row in json.loads(done.stdout)})


def test_a_site_coordinator_lists_only_their_own_site_s_patients_and_screenings(world):
    assert _sites(world, "coord_a", "patients") == [OWN]
    assert _sites(world, "coord_b", "patients") == [OTHER]
    assert _sites(world, "coord_a", "screenings") == [OWN]
    assert _sites(world, "monitor", "screenings") == [OWN]
    own = world.ok(world.logins["coord_a"], "patients", "--format", "json")
    assert len(json.loads(own.stdout)) == len(world.site_ids(OWN))


def test_a_data_manager_lists_every_site(world):
    assert _sites(world, "dm", "patients") == sorted([OWN, OTHER])
    total = len(world.site_ids(OWN)) + len(world.site_ids(OTHER))
    listed = world.ok(world.logins["dm"], "patients", "--format", "json")
    assert len(json.loads(listed.stdout)) == total


def test_asking_for_another_site_s_patients_shows_none_of_them(world):
    done = world.cli(world.logins["coord_a"], "patients", "--site", OTHER, "--format", "json")
    # The other site's row is invisible too: named as unknown, never listed.
    assert done.returncode == 1, done.stdout
    assert done.stderr.startswith("error: ") and OTHER in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_the_audit_log_is_refused_to_a_coordinator_and_read_by_a_data_manager(world):
    before = world.fingerprint()
    refused = world.cli(world.logins["coord_a"], "audit", "log", "--limit", "1")
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and refused.stderr.startswith("error: ")
    assert "audit_log" in refused.stderr and "Traceback" not in refused.stderr
    read = world.ok(world.logins["dm"], "audit", "log", "--entity", "patients", "--format", "json")
    entries = json.loads(read.stdout)
    assert entries and {e["actor"] for e in entries} >= {world.logins["coord_a"]}
    assert world.fingerprint() == before


def _screening_of(world: World, key: str) -> int:
    return world.scalar("SELECT max(id) FROM screenings WHERE patient_id = %s", (world.ids[key],))


def test_a_coordinator_cannot_void_another_site_s_screening(world):
    target = _screening_of(world, "b2")
    before = world.fingerprint()
    done = world.cli(
        world.logins["coord_a"], "screen", "void", str(target), "--reason-code", "data_error"
    )
    assert done.returncode == 1 and done.stderr == f"error: no screening {target} " + (
        "(see `sarcoma-sched screenings`)\n"
    )
    assert world.fingerprint() == before


def test_a_void_is_stamped_with_the_login_and_cannot_be_rewritten(world):
    target = _screening_of(world, "p5")
    world.ok(world.logins["coord_a"], "screen", "void", str(target), "--reason-code", "data_error")
    voided_by, reason = world.admin(
        "SELECT voided_by, void_reason FROM screenings WHERE id = %s", (target,)
    )[0]
    assert (voided_by, reason) == (world.logins["coord_a"], "data_error")
    entry = world.scalar(
        "SELECT actor FROM audit_log WHERE entity = 'screenings' AND entity_id = %s "
        "AND action = 'void'",
        (str(target),),
    )
    assert entry == world.logins["coord_a"]
    before = world.fingerprint()
    with world.connect(world.logins["coord_a"]) as conn:
        try:
            conn.execute("UPDATE screenings SET void_reason = 'other' WHERE id = %s", (target,))
        except Exception as exc:  # the trigger refuses: a void is final
            assert "already voided" in str(exc)
        else:
            raise AssertionError("a void was rewritten")
    assert world.fingerprint() == before
