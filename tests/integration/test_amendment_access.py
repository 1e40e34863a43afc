"""Amendments on PostgreSQL's access model, each login connected as itself (issue 22 item 2).

Only the trial admin records that a site runs a version (``protocol activate``): the database
refuses everyone else's insert, through the command and in raw SQL. A coordinator moves their
own site's patient to it on re-consent; another site's coordinator cannot even see that patient
(row-level security). The world's roles are dropped afterwards (``access_world``).
"""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from sarcoma_sched.protocol.loader import bundled_protocol_dir
from tests.integration.access_fixtures import OTHER, OWN, PROTOCOL, World, access_world

pytestmark = pytest.mark.postgres

AMENDED = "9.8"


@pytest.fixture(scope="module")
def world():
    with access_world() as built:
        text = (bundled_protocol_dir() / "natars-randomized.toml").read_text(encoding="utf-8")
        amended = built.cwd / f"natars-r-{AMENDED}.toml"
        amended.write_text(
            text.replace('version = "1.2"', f'version = "{AMENDED}"', 1), encoding="utf-8"
        )
        built.ok(built.logins["admin"], "protocol", "load", str(amended))
        yield built


def _refused(done, who: str) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1, f"{who}: exit {done.returncode}\n{done.stdout}{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


def test_only_the_trial_admin_activates_a_version_at_a_site(world: World) -> None:
    today = dt.date.today().isoformat()
    before = world.fingerprint()
    for who in ("coord_a", "monitor", "dm"):
        done = world.cli(
            world.logins[who], "protocol", "activate", PROTOCOL, AMENDED, "--site", OWN,
            "--approved", today,
        )  # fmt: skip
        assert "permission denied" in _refused(done, who)
        version = world.scalar(
            "SELECT id FROM protocol_versions WHERE protocol_id = %s AND version = %s",
            (PROTOCOL, AMENDED),
        )
        with (
            pytest.raises(psycopg.errors.InsufficientPrivilege),
            world.connect(world.logins[who]) as conn,
        ):
            conn.execute(
                "INSERT INTO protocol_activations (protocol_id, version_id, site_code, "
                "approved_on, activated_at, activated_by) VALUES (%s, %s, %s, current_date, "
                "now(), current_user)",
                (PROTOCOL, version, OWN),
            )
    assert world.fingerprint() == before
    admin = world.logins["admin"]
    done = world.ok(
        admin, "protocol", "activate", PROTOCOL, AMENDED, "--site", OWN, "--approved", today
    )
    assert f"{PROTOCOL} {AMENDED} active at {OWN}" in done.stdout
    rows = world.admin(
        "SELECT actor, action FROM audit_log WHERE entity = 'protocol_activations' "
        "ORDER BY seq DESC LIMIT 1"
    )
    assert rows == [(admin, "protocol activate")]


def test_a_coordinator_moves_only_their_own_site_s_patient(world: World) -> None:
    # Needs the activation of the test above (the module's tests run in order).
    today = dt.date.today().isoformat()
    patient = world.names["p1"]
    before = world.fingerprint()
    stranger = world.cli(
        world.logins["coord_b"], "transition", patient, "--to", AMENDED, "--reconsent-date", today
    )
    assert "no patient with study id" in _refused(stranger, "coord_b")
    assert world.fingerprint() == before
    # BJFH never activated it: its own coordinator's patient stays where it is.
    other = world.cli(
        world.logins["coord_b"], "transition", world.names["b1"], "--to", AMENDED,
        "--reconsent-date", today,
    )  # fmt: skip
    assert f"not active at site {OTHER}" in _refused(other, "coord_b")
    assert world.fingerprint() == before
    coordinator = world.logins["coord_a"]
    done = world.ok(coordinator, "transition", patient, "--to", AMENDED, "--reconsent-date", today)
    assert done.stdout.startswith(f"{patient}: {PROTOCOL} 1.2 → {AMENDED}")
    moved = world.admin(
        "SELECT t.recorded_by, v.version FROM protocol_transitions t "
        "JOIN enrollments e ON e.patient_id = t.patient_id "
        "JOIN protocol_versions v ON v.id = e.protocol_version_id WHERE t.patient_id = %s",
        (world.ids["p1"],),
    )
    assert moved == [(coordinator, AMENDED)]
    assert "intact" in world.ok(world.logins["stat"], "audit", "verify").stdout
