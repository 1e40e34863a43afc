"""The access matrix on PostgreSQL, role by role, through the command line and through raw SQL.

One trial (``access_fixtures.access_world``): coordinators at PKUIH and BJFH, a monitor at PKUIH,
a data manager, a statistician, a trial admin and a login with no grant, each logged in as
itself. Every cell runs one action as one login and checks its outcome; a refusal must leave
the database exactly as it was (every table hashed by the server, the draw sequences and the
group memberships: ``World.fingerprint``). Through the command line a refusal is one ``error:``
line, exit status 1, no traceback; through SQL it is an error raised by the server, or, for a
row of a site the login does not see, a statement that touches nothing.

"Own" is PKUIH (the coordinator's and the monitor's site), "other" is BJFH; all-sites roles
see both.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.integration.access_fixtures import (
    FIELDS,
    OTHER,
    OWN,
    PROTOCOL,
    World,
    access_world,
    days,
)

pytestmark = pytest.mark.postgres

WHO = {
    "coord_a": "coordinator at PKUIH",
    "coord_b": "coordinator at BJFH",
    "monitor": "monitor at PKUIH",
    "dm": "data manager",
    "stat": "statistician",
    "admin": "trial admin",
    "nogrant": "login with no grant",
    "superuser": "superuser",
}


@pytest.fixture(scope="module")
def world():
    with access_world() as built:
        yield built


def _values(world: World) -> dict[str, str]:
    return {
        **world.names,
        **world.events,
        "past": days(-200),
        "future": days(2000),
        "yesterday": days(-1),
        "in30": days(30),
        "in31": days(31),
        "spare": world.logins["spare"],
        "coord_b_login": world.logins["coord_b"],
        "new_site": f"A{world.suffix[:6].upper()}",
        "other_new_site": f"B{world.suffix[:6].upper()}",
    }


def _expand(world: World, args: tuple[str, ...]) -> list[str]:
    values = _values(world)
    out: list[str] = []
    for arg in args:
        if arg == "{fields}":
            out.extend(FIELDS)
        else:
            out.append(arg.format(**values))
    return out


# --- the command line ------------------------------------------------------------------------


@dataclass(frozen=True)
class Cli:
    who: str
    action: str
    site: str  # "own", "other" or "" (no site involved)
    args: tuple[str, ...]
    expect: str  # "write" (exit 0, database changed), "read" (exit 0, unchanged), "refused"
    says: str = ""  # refused: in the error line
    shows: tuple[str, ...] = ()  # allowed: in standard output
    hides: tuple[str, ...] = ()  # allowed: not in standard output

    @property
    def id(self) -> str:
        where = {"own": " at own site", "other": " at other site", "": ""}[self.site]
        verdict = "refused" if self.expect == "refused" else "allowed"
        return f"{WHO[self.who]} {self.action}{where} -> {verdict}"


SCREEN = ("screen", PROTOCOL, "--site")
P1, B1 = "PKUIH-NATARS-R-0001", "BJFH-NATARS-R-0001"
ALL_TIME = ("--from", "{past}", "--to", "{future}")
NO_PATIENT = "no patient with study id or screening number"
DENIED = "refused by the database: permission denied"
NO_SCHEMA = "may not use the sarcoma-sched schema"  # a login without USAGE on the schema

CLI_CELLS = [
    # Coordinator at PKUIH: everything for its own site's patients, nothing for BJFH's.
    Cli("coord_a", "screens a patient", "own", (*SCREEN, "PKUIH", "{fields}"), "write"),
    Cli(
        "coord_a",
        "screens a patient",
        "other",
        (*SCREEN, "BJFH", "{fields}"),
        "refused",
        says="row-level security",
    ),
    Cli("coord_a", "enrols", "own", ("enroll", "{p2}", "--consent-date", "{yesterday}"), "write"),
    Cli(
        "coord_a",
        "enrols",
        "other",
        ("enroll", "{b2}", "--consent-date", "{yesterday}"),
        "refused",
        says=NO_PATIENT,
    ),
    Cli(
        "coord_a",
        "allocates (drawn by the server)",
        "own",
        ("allocate", "{p3}", "--consent-date", "{yesterday}"),
        "write",
        shows=("PKUIH-NATARS-R-", "minimization"),
    ),
    Cli(
        "coord_a",
        "allocates",
        "other",
        ("allocate", "{b2}", "--consent-date", "{yesterday}"),
        "refused",
        says=NO_PATIENT,
    ),
    Cli(
        "coord_a",
        "records an event",
        "own",
        ("record", "{p1}", "{to_record}", "--status", "missed"),
        "write",
    ),
    Cli(
        "coord_a",
        "records an event",
        "other",
        ("record", "{b1}", "{b1_past}", "--status", "missed"),
        "refused",
        says=NO_PATIENT,
    ),
    Cli(
        "coord_a",
        "reschedules an event",
        "own",
        ("reschedule", "{p1}", "{to_move}", "--to", "{moved_to}"),
        "write",
    ),
    Cli(
        "coord_a",
        "reschedules an event",
        "other",
        ("reschedule", "{b1}", "{b1_move}", "--to", "{b1_to}"),
        "refused",
        says=NO_PATIENT,
    ),
    Cli(
        "coord_a",
        "withdraws a patient",
        "own",
        ("withdraw", "{p4}", "--reason", "consent"),
        "write",
    ),
    Cli(
        "coord_a",
        "withdraws a patient",
        "other",
        ("withdraw", "{b1}", "--reason", "consent"),
        "refused",
        says=NO_PATIENT,
    ),
    Cli(
        "coord_a",
        "exports a patient's calendar",
        "own",
        ("export", "ical", "{p1}"),
        "read",
        shows=("BEGIN:VCALENDAR", P1),
    ),
    Cli(
        "coord_a",
        "exports a patient's calendar",
        "other",
        ("export", "ical", "{b1}"),
        "refused",
        says=NO_PATIENT,
    ),
    Cli(
        "coord_a",
        "exports the site calendar",
        "own",
        ("export", "ical", "--site", "PKUIH", *ALL_TIME),
        "read",
        shows=(P1,),
        hides=("BJFH",),
    ),
    Cli(
        "coord_a",
        "exports the site calendar",
        "other",
        ("export", "ical", "--site", "BJFH", *ALL_TIME),
        "refused",
        says="no site 'BJFH'",
    ),
    Cli(
        "coord_a",
        "lists visits of every site it sees",
        "",
        ("visits", *ALL_TIME),
        "read",
        shows=(P1,),
        hides=("BJFH",),
    ),
    Cli(
        "coord_a",
        "lists visits",
        "other",
        ("visits", "--site", "BJFH", *ALL_TIME),
        "refused",
        says="no site 'BJFH'",
    ),
    Cli("coord_a", "lists overdue events", "", ("overdue",), "read", shows=(P1,), hides=("BJFH",)),
    Cli(
        "coord_a",
        "lists overdue events",
        "other",
        ("overdue", "--site", "BJFH"),
        "refused",
        says="no site 'BJFH'",
    ),
    Cli("coord_a", "reads a schedule", "own", ("schedule", "{p1}"), "read", shows=(P1,)),
    Cli(
        "coord_a",
        "reads a schedule",
        "other",
        ("schedule", "{b1}"),
        "refused",
        says=NO_PATIENT,
    ),
    Cli(
        "coord_a",
        "lists the allocations it sees (no reveal)",
        "",
        ("allocation", "list", PROTOCOL),
        "read",
        shows=(P1,),
        hides=("BJFH",),
    ),
    Cli(
        "coord_a",
        "verifies the sequence",
        "",
        ("allocation", "verify", PROTOCOL),
        "refused",
        says="sarcoma_trial_secret",
    ),
    Cli(
        "coord_a",
        "reveals the sequence",
        "",
        ("allocation", "list", PROTOCOL, "--reveal"),
        "refused",
        says="sarcoma_trial_secret",
    ),
    Cli(
        "coord_a",
        "sets the server's secret",
        "",
        ("allocation", "init-secret", "--server", PROTOCOL),
        "refused",
        says=DENIED,
    ),
    Cli("coord_a", "verifies the audit trail", "", ("audit", "verify"), "refused", says=DENIED),
    Cli(
        "coord_a",
        "grants access",
        "",
        ("access", "grant", "{spare}", "--role", "monitor", "--site", "PKUIH"),
        "refused",
        says=DENIED,
    ),
    Cli(
        "coord_a",
        "lists grants (its own only)",
        "",
        ("access", "list"),
        "read",
        hides=("{coord_b_login}", "trial_admin"),
    ),
    Cli(
        "coord_a",
        "sets a capacity",
        "own",
        ("site", "capacity", "PKUIH", "theatre", "--day", "tue=2"),
        "refused",
        says=DENIED,
    ),
    Cli(
        "coord_a",
        "relaxes its site's holiday rule",
        "own",
        ("site", "set", "PKUIH", "--inpatient-over-holidays", "allow"),
        "refused",
        says=DENIED,
    ),
    Cli(
        "coord_a",
        "adds a site",
        "",
        (
            "site",
            "add",
            "{other_new_site}",
            "--name",
            "X",
            "--time-zone",
            "Asia/Shanghai",
            "--holiday-country",
            "CN",
        ),
        "refused",
        says=DENIED,
    ),
    Cli(
        "coord_a",
        "writes under another --user",
        "own",
        ("--user", "someone_else", *SCREEN, "PKUIH", "{fields}"),
        "refused",
        says="is not the PostgreSQL login",
    ),
    Cli(
        "coord_a",
        "reads under another --user",
        "own",
        ("--user", "someone_else", "schedule", "{p1}"),
        "refused",
        says="is not the PostgreSQL login",
    ),
    # The other coordinator, the mirror image.
    Cli("coord_b", "reads a schedule", "own", ("schedule", "{b1}"), "read", shows=(B1,)),
    Cli(
        "coord_b",
        "reads a schedule",
        "other",
        ("schedule", "{p1}"),
        "refused",
        says=NO_PATIENT,
    ),
    # Data manager: reads every site, corrects records; no patient creation, no sequence.
    Cli(
        "dm",
        "lists visits of all sites",
        "",
        ("visits", *ALL_TIME),
        "read",
        shows=(P1, B1),
    ),
    Cli("dm", "reads a schedule", "other", ("schedule", "{b1}"), "read", shows=(B1,)),
    Cli(
        "dm",
        "corrects a record with a reason",
        "own",
        (
            "record",
            "{p1}",
            "{recorded}",
            "--status",
            "done",
            "--date",
            "{recorded_on}",
            "--correct",
            "--reason",
            "transcription error",
        ),
        "write",
    ),
    Cli(
        "dm",
        "records an event (README: coordinators only; see report)",
        "other",
        ("record", "{b1}", "{b1_past}", "--status", "missed"),
        "write",
    ),
    Cli(
        "dm",
        "reschedules an event (README: coordinators only; see report)",
        "other",
        ("reschedule", "{b1}", "{b1_move}", "--to", "{b1_to}"),
        "write",
    ),
    Cli("dm", "screens a patient", "own", (*SCREEN, "PKUIH", "{fields}"), "refused", says=DENIED),
    Cli(
        "dm",
        "allocates",
        "own",
        ("allocate", "{p5}", "--consent-date", "{yesterday}"),
        "refused",
        says=DENIED,
    ),
    Cli(
        "dm",
        "withdraws a patient",
        "own",
        ("withdraw", "{p1}", "--reason", "x"),
        "refused",
        says=DENIED,
    ),
    Cli(
        "dm",
        "verifies the sequence",
        "",
        ("allocation", "verify", PROTOCOL),
        "refused",
        says="sarcoma_trial_secret",
    ),
    Cli(
        "dm",
        "reveals the sequence",
        "",
        ("allocation", "list", PROTOCOL, "--reveal"),
        "refused",
        says="sarcoma_trial_secret",
    ),
    Cli("dm", "verifies the audit trail", "", ("audit", "verify"), "read", shows=("intact",)),
    # Monitor at PKUIH: reads its site, writes nothing, never sees BJFH.
    Cli("monitor", "reads a schedule", "own", ("schedule", "{p1}"), "read", shows=(P1,)),
    Cli(
        "monitor",
        "lists visits of the sites it sees",
        "",
        ("visits", *ALL_TIME),
        "read",
        shows=(P1,),
        hides=("BJFH",),
    ),
    Cli(
        "monitor",
        "exports a patient's calendar",
        "own",
        ("export", "ical", "{p1}"),
        "read",
        shows=("BEGIN:VCALENDAR",),
    ),
    Cli(
        "monitor",
        "reads a schedule",
        "other",
        ("schedule", "{b1}"),
        "refused",
        says=NO_PATIENT,
    ),
    Cli(
        "monitor",
        "lists visits",
        "other",
        ("visits", "--site", "BJFH"),
        "refused",
        says="no site 'BJFH'",
    ),
    Cli(
        "monitor",
        "screens a patient",
        "own",
        (*SCREEN, "PKUIH", "{fields}"),
        "refused",
        says=DENIED,
    ),
    Cli(
        "monitor",
        "allocates",
        "own",
        ("allocate", "{p5}", "--consent-date", "{yesterday}"),
        "refused",
        says=DENIED,
    ),
    Cli(
        "monitor",
        "records an event",
        "own",
        ("record", "{p1}", "{untouched}", "--status", "missed"),
        "refused",
        says=DENIED,
    ),
    Cli(
        "monitor",
        "corrects a record",
        "own",
        (
            "record",
            "{p1}",
            "{recorded}",
            "--status",
            "done",
            "--date",
            "{recorded_on}",
            "--correct",
            "--reason",
            "x",
        ),
        "refused",
        says=DENIED,
    ),
    Cli(
        "monitor",
        "reschedules an event",
        "own",
        ("reschedule", "{p1}", "{to_move}", "--to", "{alt_to}"),
        "refused",
        says=DENIED,
    ),
    Cli(
        "monitor",
        "withdraws a patient",
        "own",
        ("withdraw", "{p1}", "--reason", "x"),
        "refused",
        says=DENIED,
    ),
    Cli(
        "monitor",
        "verifies the sequence",
        "",
        ("allocation", "verify", PROTOCOL),
        "refused",
        says="sarcoma_trial_secret",
    ),
    Cli("monitor", "verifies the audit trail", "", ("audit", "verify"), "refused", says=DENIED),
    # Statistician: the sequence and the audit trail; no patient writes.
    Cli(
        "stat",
        "verifies the sequence",
        "",
        ("allocation", "verify", PROTOCOL),
        "read",
        shows=("confirmed",),
    ),
    Cli(
        "stat",
        "reveals the sequence (an audited note)",
        "",
        ("allocation", "list", PROTOCOL, "--reveal"),
        "write",
        shows=(P1, B1, "replayed"),
    ),
    Cli(
        "stat",
        "simulates the design",
        "",
        ("allocation", "simulate", PROTOCOL, "--patients", "20", "--trials", "3"),
        "read",
    ),
    Cli("stat", "verifies the audit trail", "", ("audit", "verify"), "read", shows=("intact",)),
    Cli("stat", "lists visits of all sites", "", ("visits", *ALL_TIME), "read", shows=(P1, B1)),
    Cli(
        "stat",
        "screens a patient",
        "own",
        (*SCREEN, "PKUIH", "{fields}"),
        "refused",
        says=DENIED,
    ),
    Cli(
        "stat",
        "allocates",
        "own",
        ("allocate", "{p5}", "--consent-date", "{yesterday}"),
        "refused",
        says=DENIED,
    ),
    Cli(
        "stat",
        "records an event",
        "own",
        ("record", "{p1}", "{untouched}", "--status", "missed"),
        "refused",
        says=DENIED,
    ),
    # Trial admin: sites, closures, capacities (grants: test_trial_admin_grants_lists_revokes).
    Cli(
        "admin",
        "adds a site",
        "",
        (
            "site",
            "add",
            "{new_site}",
            "--name",
            "New",
            "--time-zone",
            "Asia/Shanghai",
            "--holiday-country",
            "CN",
        ),
        "write",
    ),
    Cli(
        "admin",
        "closes a site",
        "",
        ("site", "close", "XJTU1", "--from", "{in30}", "--to", "{in31}", "--reason", "ward move"),
        "write",
    ),
    Cli(
        "admin",
        "sets a capacity",
        "",
        ("site", "capacity", "XJTU1", "theatre", "--day", "tue=2"),
        "write",
    ),
    Cli(
        "admin",
        "relaxes a site's holiday rule",
        "",
        ("site", "set", "XJTU1", "--inpatient-over-holidays", "allow"),
        "write",
    ),
    Cli("admin", "verifies the audit trail", "", ("audit", "verify"), "read", shows=("intact",)),
    Cli("admin", "reads a schedule", "other", ("schedule", "{b1}"), "read", shows=(B1,)),
    Cli(
        "admin",
        "screens a patient",
        "own",
        (*SCREEN, "PKUIH", "{fields}"),
        "refused",
        says=DENIED,
    ),
    Cli(
        "admin",
        "allocates",
        "own",
        ("allocate", "{p5}", "--consent-date", "{yesterday}"),
        "refused",
        says=DENIED,
    ),
    Cli(
        "admin",
        "records an event",
        "own",
        ("record", "{p1}", "{untouched}", "--status", "missed"),
        "refused",
        says=DENIED,
    ),
    Cli(
        "admin",
        "verifies the sequence",
        "",
        ("allocation", "verify", PROTOCOL),
        "refused",
        says="sarcoma_trial_secret",
    ),
    # No grant: nothing at all.
    Cli("nogrant", "lists visits", "", ("visits",), "refused", says=NO_SCHEMA),
    Cli("nogrant", "reads a schedule", "own", ("schedule", "{p1}"), "refused", says=NO_SCHEMA),
    Cli(
        "nogrant",
        "screens a patient",
        "own",
        (*SCREEN, "PKUIH", "{fields}"),
        "refused",
        says=NO_SCHEMA,
    ),
    Cli("nogrant", "lists grants", "", ("access", "list"), "refused", says=NO_SCHEMA),
]


def _refused_cleanly(done, cell_id: str) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1, f"{cell_id}: exit {done.returncode}\n{done.stdout}{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert done.stdout == "", done.stdout
    return lines[0]


@pytest.mark.parametrize("cell", [pytest.param(c, id=c.id) for c in CLI_CELLS])
def test_cli(world: World, cell: Cli) -> None:
    before = world.fingerprint()
    done = world.cli(world.logins[cell.who], *_expand(world, cell.args))
    after = world.fingerprint()
    if cell.expect == "refused":
        line = _refused_cleanly(done, cell.id)
        assert cell.says in line, line
        assert after == before, f"{cell.id}: the refusal changed the database"
        return
    assert done.returncode == 0, f"{cell.id}: exit {done.returncode}: {done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    for text in _expand(world, cell.shows):
        assert text in done.stdout, f"{cell.id}: {text!r} not shown"
    for text in _expand(world, cell.hides):
        assert text not in done.stdout, f"{cell.id}: {text!r} shown"
    if cell.expect == "write":
        assert after != before, f"{cell.id}: exit 0 but nothing was written"
    else:
        assert after == before, f"{cell.id}: a read changed the database"


def test_trial_admin_grants_lists_revokes(world: World) -> None:
    """Grant, list and revoke in one sequence: the spare login is a monitor at BJFH in between,
    sees BJFH's patient, and after the revocation sees nothing again."""
    admin, spare = world.logins["admin"], world.logins["spare"]
    before = world.fingerprint()
    granted = world.ok(admin, "access", "grant", spare, "--role", "monitor", "--site", "BJFH")
    assert spare in granted.stdout and "BJFH" in granted.stdout
    listed = world.ok(admin, "access", "list", "--format", "json")
    rows = json.loads(listed.stdout)
    assert {"login": spare, "role": "monitor", "site": "BJFH"}.items() <= next(
        r for r in rows if r["login"] == spare
    ).items()
    assert {r["login"] for r in rows} >= {world.logins[k] for k in ("coord_a", "dm", "stat")}
    assert any(r["granted_by"] == admin for r in rows)
    seen = world.ok(spare, "schedule", world.names["b1"])
    assert world.names["b1"] in seen.stdout
    assert world.fingerprint() != before
    revoked = world.ok(admin, "access", "revoke", spare)
    assert "revoked 1 grant" in revoked.stdout
    after_revoke = world.fingerprint()
    line = _refused_cleanly(world.cli(spare, "schedule", world.names["b1"]), "spare after revoke")
    assert NO_SCHEMA in line or NO_PATIENT in line, line
    assert world.fingerprint() == after_revoke


# --- raw SQL as each login -------------------------------------------------------------------


@dataclass(frozen=True)
class Sql:
    action: str
    site: str  # "own" (PKUIH), "other" (BJFH) or ""
    kind: str  # "count": SELECT count(*); "write": rowcount; "value": a non-null value
    build: Any  # World -> (statement, params)


def _count_patients(site: str):
    return lambda w: ("SELECT count(*) FROM patients WHERE site_code = %s", (site,))


def _count_events(site: str):
    return lambda w: (
        "SELECT count(*) FROM scheduled_events WHERE patient_id = ANY(%s)",
        (w.site_ids(site),),
    )


def _insert_copy(table: str, key: str, change: dict[str, Any]):
    """INSERT a copy of one of ``table``'s rows (read as superuser), changed by ``change``: the
    values are literals, so the insert meets the WITH CHECK of the policy, not the USING."""

    def build(w: World):
        pk = w.ids[key] if table == "patients" else _event_pk(w, key)
        row = w.row_json(table, pk)
        row.pop("id")
        row.update(
            {k: (v.format(suffix=w.suffix) if isinstance(v, str) else v) for k, v in change.items()}
        )
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in row)
        statement = sql.SQL(
            "INSERT INTO {table} ({columns}) SELECT {columns} FROM json_populate_record("
            "NULL::{table}, %s::json)"
        ).format(table=sql.Identifier(table), columns=columns)
        return statement, (json.dumps(row),)

    return build


def _event_pk(w: World, key: str) -> int:
    event = w.events["untouched"] if key == "p1" else w.events["b1_past"]
    return int(
        w.scalar(
            "SELECT id FROM scheduled_events WHERE patient_id = %s AND event_id = %s",
            (w.ids[key], event),
        )
    )


def _update_patient(key: str):
    return lambda w: ("UPDATE patients SET sex = 'other' WHERE id = %s", (w.ids[key],))


def _delete_patient(key: str):
    return lambda w: ("DELETE FROM patients WHERE id = %s", (w.ids[key],))


def _update_event(key: str):
    return lambda w: (
        "UPDATE scheduled_events SET reason = 'raw sql' WHERE id = %s",
        (_event_pk(w, key),),
    )


def _delete_event(key: str):
    return lambda w: ("DELETE FROM scheduled_events WHERE id = %s", (_event_pk(w, key),))


def _fixed(statement: str, params: Any = None):
    return lambda w: (statement, params)


def _randomized_allocation(w: World):
    return (
        "INSERT INTO allocations (patient_id, protocol_id, position, arm, method, factors, "
        "detail, allocation_date, allocated_at, allocated_by) VALUES (%s, %s, 99, "
        "'NEOADJUVANT', 'minimization', '{}', '{}', current_date, now(), 'x')",
        (w.ids["p5"], PROTOCOL),
    )


def _self_grant(w: World):
    return (
        "INSERT INTO access_grants (login, role, site_code, granted_at, granted_by) "
        "VALUES (session_user, 'coordinator', 'BJFH', now(), session_user)",
        None,
    )


def _assigned_allocation(w: World):
    """A randomized trial's patient allocated by hand, labelled as if the design were assigned:
    the arm chosen, no draw."""
    return (
        "INSERT INTO allocations (patient_id, protocol_id, position, arm, method, factors, "
        "detail, basis, reason, allocation_date, allocated_at, allocated_by) VALUES (%s, %s, "
        "%s, 'NEOADJUVANT', 'assigned', "
        "'{}', '{}', 'mdt_decision', 'chosen', current_date, now(), 'x')",
        # The next free position, which row-level security hides from a site (a coordinator
        # finds it by trying: a taken one is a unique-key error, nothing else).
        (w.ids["p5"], PROTOCOL, w.scalar("SELECT max(position) + 1 FROM allocations")),
    )


def _grant_function(w: World):
    return ("SELECT sarcoma_access_grant(%s, 'monitor', 'BJFH')", (w.logins["spare"],))


NEW_NUMBER = {"screening_number": "RAW-{suffix}", "study_id": None}
NEW_EVENT = {"uid": "raw-{suffix}", "event_id": "raw.{suffix}"}
ACTIONS = {
    "select_patients_own": Sql("counts patients", "own", "count", _count_patients("PKUIH")),
    "select_patients_other": Sql("counts patients", "other", "count", _count_patients("BJFH")),
    "select_events_own": Sql("counts scheduled events", "own", "count", _count_events("PKUIH")),
    "select_events_other": Sql("counts scheduled events", "other", "count", _count_events("BJFH")),
    "insert_patient_own": Sql(
        "inserts a patient", "own", "write", _insert_copy("patients", "p5", NEW_NUMBER)
    ),
    "insert_patient_other": Sql(
        "inserts a patient", "other", "write", _insert_copy("patients", "b2", NEW_NUMBER)
    ),
    "update_patient_own": Sql("updates a patient", "own", "write", _update_patient("p5")),
    "update_patient_other": Sql("updates a patient", "other", "write", _update_patient("b2")),
    "delete_patient_own": Sql("deletes a patient", "own", "write", _delete_patient("p5")),
    "delete_patient_other": Sql("deletes a patient", "other", "write", _delete_patient("b2")),
    "insert_event_own": Sql(
        "inserts a scheduled event",
        "own",
        "write",
        _insert_copy("scheduled_events", "p1", NEW_EVENT),
    ),
    "insert_event_other": Sql(
        "inserts a scheduled event",
        "other",
        "write",
        _insert_copy("scheduled_events", "b1", NEW_EVENT),
    ),
    "update_event_own": Sql("updates a scheduled event", "own", "write", _update_event("p1")),
    "update_event_other": Sql("updates a scheduled event", "other", "write", _update_event("b1")),
    "delete_event_own": Sql("deletes a scheduled event", "own", "write", _delete_event("p1")),
    "delete_event_other": Sql("deletes a scheduled event", "other", "write", _delete_event("b1")),
    "select_secrets": Sql(
        "reads trial_secrets", "", "count", _fixed("SELECT count(*) FROM trial_secrets")
    ),
    "secret_function": Sql(
        "calls sarcoma_trial_secret",
        "",
        "value",
        _fixed("SELECT sarcoma_trial_secret(%s)", (PROTOCOL,)),
    ),
    "insert_randomized": Sql(
        "inserts a randomized allocation directly", "own", "write", _randomized_allocation
    ),
    "select_audit": Sql(
        "reads the audit log", "", "count", _fixed("SELECT count(*) FROM audit_log")
    ),
    "update_audit": Sql(
        "updates the audit log", "", "write", _fixed("UPDATE audit_log SET actor = 'nobody'")
    ),
    "delete_audit": Sql("deletes from the audit log", "", "write", _fixed("DELETE FROM audit_log")),
    "truncate_audit": Sql("truncates the audit log", "", "write", _fixed("TRUNCATE audit_log")),
    "truncate_patients": Sql(
        "truncates patients", "", "write", _fixed("TRUNCATE patients CASCADE")
    ),
    "self_grant": Sql("inserts its own grant row at BJFH", "", "write", _self_grant),
    "grant_function": Sql("calls sarcoma_access_grant", "", "value", _grant_function),
    "insert_assigned": Sql(
        "inserts an 'assigned' allocation into a randomized trial",
        "own",
        "write",
        _assigned_allocation,
    ),
    "update_alloc_method": Sql(
        "relabels a drawn allocation as 'assigned'",
        "own",
        "write",
        lambda w: (
            "UPDATE allocations SET method = 'assigned' WHERE patient_id = %s",
            (w.ids["p1"],),
        ),
    ),
    "update_alloc_arm": Sql(
        "changes a drawn allocation's arm",
        "own",
        "write",
        lambda w: (
            "UPDATE allocations SET arm = CASE arm WHEN 'NEOADJUVANT' THEN 'SURGERY_ONLY' "
            "ELSE 'NEOADJUVANT' END WHERE patient_id = %s",
            (w.ids["p1"],),
        ),
    ),
    "update_patient_site": Sql(
        "moves a PKUIH patient to BJFH",
        "",
        "write",
        lambda w: ("UPDATE patients SET site_code = 'BJFH' WHERE id = %s", (w.ids["p5"],)),
    ),
    "update_site_setting": Sql(
        "relaxes PKUIH's holiday rule for inpatient stays",
        "own",
        "write",
        _fixed("UPDATE sites SET inpatient_over_holidays = true WHERE code = 'PKUIH'"),
    ),
    "update_event_patient": Sql(
        "hands a PKUIH event to a BJFH patient",
        "",
        "write",
        lambda w: (
            "UPDATE scheduled_events SET patient_id = %s, event_id = event_id || '.moved' "
            "WHERE id = %s",
            (w.ids["b1"], _event_pk(w, "p1")),
        ),
    ),
    "select_qualified": Sql(
        "counts patients named with their schema",
        "",
        "count",
        lambda w: (
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(w.schema, "patients")),
            None,
        ),
    ),
    # What would let a site predict the next arm (issue 19, item 6): the protocol's source with
    # its minimization probability, each allocation's place in the sequence and its scores, the
    # method the server draws with. A site role reads the concealed definition instead.
    "select_source": Sql(
        "reads protocol sources", "", "count", _fixed("SELECT count(source) FROM protocol_versions")
    ),
    "select_position": Sql(
        "reads allocation positions",
        "",
        "count",
        _fixed("SELECT count(position) FROM allocations"),
    ),
    "select_detail": Sql(
        "reads allocation scores", "", "count", _fixed("SELECT count(detail) FROM allocations")
    ),
    "select_draw_method": Sql(
        "reads the method the server draws with",
        "",
        "count",
        _fixed("SELECT count(allocation) FROM protocol_definitions"),
    ),
    "select_site_definition": Sql(
        "reads the concealed protocol definition",
        "",
        "count",
        _fixed("SELECT count(site_definition) FROM protocol_definitions"),
    ),
    # The draw once took the method from its caller: a coordinator could ask for p = 1.
    "draw_with_own_method": Sql(
        "draws with a method of its own choosing",
        "own",
        "value",
        lambda w: (
            'SELECT sarcoma_allocate(%s, \'{"method": "minimization", "probability": 1.0}\''
            "::jsonb, ARRAY['SURGERY_ONLY', 'NEOADJUVANT'], '{}'::jsonb, current_date)",
            (w.ids["p5"],),
        ),
    ),
}


# Outcomes: "all" (sees every such row: the superuser's count, > 0), "some" (wrote a row; rolled
# back), "none" (no error, nothing seen or touched: row-level security), "denied" (the server
# raised; the text is what its message says).
PERM = "permission denied"
RLS = "row-level security"
GUARD = "drawn by the server"
NEVER_CHANGED = "are never changed"
APPEND = "append-only"
SCHEMA = "permission denied for schema"
HIDDEN = "does not exist"
ANY_REFUSAL = "42501"  # insufficient_privilege, whichever check raises it

# Holes this matrix found, kept as strict xfails until they are closed: the allocation guard
# (db/access.py, sarcoma_guard_allocation) trusts the method the row declares.
GUARD_HOLE = (
    "sarcoma_guard_allocation refuses only rows whose method is stratified_blocks or "
    "minimization: a row declaring 'assigned' for a randomized trial, or relabelling a drawn "
    "allocation as 'assigned', passes"
)
KNOWN_HOLES: dict[tuple[str, str], str] = {}  # the guard hole is closed


_SITE_CONCEALED = {
    "select_source": PERM,
    "select_position": PERM,
    "select_detail": PERM,
    "select_draw_method": PERM,
    "select_site_definition": "all",
    "draw_with_own_method": HIDDEN,
}
_CENTRAL_READS = {
    **dict.fromkeys(
        ("select_source", "select_position", "select_detail", "select_draw_method"), "all"
    ),
    "select_site_definition": "all",
    "draw_with_own_method": HIDDEN,
}

_COMMON_DENIED = {
    "select_secrets": PERM,
    "update_audit": PERM,
    "delete_audit": PERM,
    "truncate_audit": PERM,
    "truncate_patients": PERM,
    "self_grant": PERM,
}
SQL_MATRIX: dict[str, dict[str, str]] = {
    "coord_a": {
        "select_patients_own": "all",
        "select_patients_other": "none",
        "select_events_own": "all",
        "select_events_other": "none",
        "insert_patient_own": "some",
        "insert_patient_other": RLS,
        "update_patient_own": "some",
        "update_patient_other": "none",
        "delete_patient_own": PERM,
        "delete_patient_other": PERM,
        "insert_event_own": "some",
        "insert_event_other": RLS,
        "update_event_own": "some",
        "update_event_other": "none",
        "delete_event_own": PERM,
        "delete_event_other": PERM,
        "secret_function": PERM,
        "insert_randomized": GUARD,
        "insert_assigned": ANY_REFUSAL,
        "update_alloc_method": ANY_REFUSAL,
        "update_alloc_arm": NEVER_CHANGED,
        "update_patient_site": RLS,
        "update_event_patient": RLS,
        "update_site_setting": PERM,
        "select_audit": PERM,
        "grant_function": PERM,
        **_COMMON_DENIED,
        **_SITE_CONCEALED,
    },
    "monitor": {
        "select_patients_own": "all",
        "select_patients_other": "none",
        "select_events_own": "all",
        "select_events_other": "none",
        **{
            action: PERM
            for action in ACTIONS
            if action.startswith(("insert_", "update_", "delete_"))
        },
        "secret_function": PERM,
        "select_audit": PERM,
        "grant_function": PERM,
        **_COMMON_DENIED,
        **_SITE_CONCEALED,
    },
    "dm": {
        "select_patients_own": "all",
        "select_patients_other": "all",
        "select_events_own": "all",
        "select_events_other": "all",
        "insert_patient_own": PERM,
        "insert_patient_other": PERM,
        "update_patient_own": "some",
        "update_patient_other": "some",
        "delete_patient_own": PERM,
        "delete_patient_other": PERM,
        "insert_event_own": PERM,
        "insert_event_other": PERM,
        "update_event_own": "some",
        "update_event_other": "some",
        "delete_event_own": PERM,
        "delete_event_other": PERM,
        "secret_function": PERM,
        "insert_randomized": PERM,
        "insert_assigned": PERM,
        "update_alloc_method": ANY_REFUSAL,
        "update_alloc_arm": NEVER_CHANGED,
        # All sites are the data manager's: moving a patient between them is an update.
        "update_patient_site": "some",
        "update_event_patient": "some",
        "update_site_setting": PERM,
        "select_audit": "all",
        "grant_function": PERM,
        **_COMMON_DENIED,
        **_CENTRAL_READS,
    },
    "stat": {
        "select_patients_own": "all",
        "select_patients_other": "all",
        "select_events_own": "all",
        "select_events_other": "all",
        **{
            action: PERM
            for action in ACTIONS
            if action.startswith(("insert_", "update_", "delete_"))
        },
        "secret_function": "some",
        "select_audit": "all",
        "grant_function": PERM,
        **_COMMON_DENIED,
        **_CENTRAL_READS,
    },
    "admin": {
        "select_patients_own": "all",
        "select_patients_other": "all",
        "select_events_own": "all",
        "select_events_other": "all",
        **{
            action: PERM
            for action in ACTIONS
            if action.startswith(("insert_", "update_", "delete_"))
        },
        # Sites are the trial admin's: their planning rules with them.
        "update_site_setting": "some",
        "secret_function": PERM,
        "select_audit": "all",
        "grant_function": "some",
        **_COMMON_DENIED,
        **_CENTRAL_READS,
    },
    # Without USAGE on the schema, search_path skips it: nothing in it even has a name; named
    # with its schema, a table is refused outright.
    "nogrant": {**dict.fromkeys(ACTIONS, HIDDEN), "select_qualified": SCHEMA},
    # PostgreSQL cannot restrain a superuser, but the log's own triggers still refuse.
    "superuser": {
        "update_audit": APPEND,
        "delete_audit": APPEND,
        "truncate_audit": APPEND,
        "truncate_patients": APPEND,
    },
}

SQL_CELLS = [
    pytest.param(
        who,
        action,
        expected,
        id=(
            f"{WHO[who]} {ACTIONS[action].action}"
            + {"own": " at own site", "other": " at other site", "": ""}[ACTIONS[action].site]
            + f" -> {'allowed' if expected in ('all', 'some') else 'refused'}"
            + ("" if expected in ("all", "some") else f" ({expected})")
        ),
        marks=(
            [pytest.mark.xfail(strict=True, reason=KNOWN_HOLES[who, action])]
            if (who, action) in KNOWN_HOLES
            else []
        ),
    )
    for who, row in SQL_MATRIX.items()
    for action, expected in row.items()
]


def _as(world: World, who: str, statement: Any, params: Any) -> tuple[str, Any]:
    """Run one statement as ``who`` and roll back whatever it did: ("ok", its count, rowcount
    or value) or ("error", the server's message)."""
    login = world.superuser if who == "superuser" else world.logins[who]
    conn = psycopg.connect(world.conninfo(login), options=f"-csearch_path={world.schema}")
    try:
        try:
            cur = conn.execute(statement, params)
        except psycopg.Error as exc:
            return "error", f"{exc.sqlstate}: {exc.diag.message_primary}"
        if cur.description is not None:
            return "ok", cur.fetchone()[0]
        return "ok", cur.rowcount
    finally:
        conn.rollback()
        conn.close()


@pytest.mark.parametrize(("who", "action", "expected"), SQL_CELLS)
def test_raw_sql(world: World, who: str, action: str, expected: str) -> None:
    spec = ACTIONS[action]
    statement, params = spec.build(world)
    before = world.fingerprint()
    outcome, value = _as(world, who, statement, params)
    assert world.fingerprint() == before, f"{who} {action}: the database changed"
    if expected in ("all", "some", "none"):
        assert outcome == "ok", f"{who} {action}: refused: {value}"
        if spec.kind == "count":
            truth = world.scalar(statement, params)
            assert truth > 0, f"{action}: nothing to see in the fixture"
            assert value == (truth if expected == "all" else 0), (value, truth)
        elif spec.kind == "write":
            assert value == (0 if expected == "none" else 1), value
        elif action == "secret_function":
            assert isinstance(value, bytes) and len(value) >= 32
        else:
            assert expected == "some", expected
    else:
        assert outcome == "error", f"{who} {action}: allowed ({value})"
        assert expected in value, value


# --- the audit trail -------------------------------------------------------------------------


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_a_site_reads_the_protocol_without_what_predicts_the_next_arm(world: World) -> None:
    """A coordinator and a monitor read NATARS-R as design, ratio and factors: no probability,
    no weights, no positions, whether from the command line or from SQL. The statistician reads
    it all."""
    for who in ("coord_a", "monitor"):
        login = world.logins[who]
        with world.connect(login) as conn:
            (definition,) = conn.execute(
                "SELECT d.site_definition FROM protocol_definitions d JOIN protocol_versions v "
                "ON v.id = d.version_id WHERE v.protocol_id = %s",
                (PROTOCOL,),
            ).fetchone()
        allocation = json.loads(definition)["allocation"]
        assert allocation["method"] == "concealed", allocation
        assert allocation["design"] == "minimization"
        assert allocation["factors"] == ["histology", "site"]
        assert not {"probability", "weight", "block_sizes", "imbalance"} & set(
            json.dumps(allocation).replace('"', " ").split()
        ), allocation
        listed = json.loads(
            world.ok(login, "allocation", "list", PROTOCOL, "--format", "json").stdout
        )
        assert listed and all(row["position"] is None for row in listed), listed
    stat = world.logins["stat"]
    listed = json.loads(world.ok(stat, "allocation", "list", PROTOCOL, "--format", "json").stdout)
    assert [row["position"] for row in listed] == list(range(1, len(listed) + 1))


def test_a_coordinator_cannot_steer_the_draw_through_its_factors(world: World) -> None:
    """The server draws with the method of the patient's protocol version and checks the factors
    it is given: none missing, none extra, the site the patient's own."""
    before = world.fingerprint()
    key = "p5"
    screening, version = world.admin(
        "SELECT s.id, s.protocol_version_id FROM screenings s WHERE s.patient_id = %s "
        "ORDER BY s.id DESC LIMIT 1",
        (world.ids[key],),
    )[0]
    attempts = {
        "another site": {"histology": "DDLPS", "site": OTHER},
        "a factor missing": {"site": OWN},
        "a factor added": {"histology": "DDLPS", "site": OWN, "sex": "F"},
    }
    for what, factors in attempts.items():
        with world.connect(world.logins["coord_a"]) as conn:
            conn.execute(
                "INSERT INTO enrollments (patient_id, protocol_version_id, screening_id, "
                "consent_date, enrolled_at, enrolled_by) VALUES (%s, %s, %s, current_date, "
                "now(), session_user)",
                (world.ids[key], version, screening),
            )
            with pytest.raises(psycopg.Error) as refused:
                conn.execute(
                    "SELECT sarcoma_allocate(%s, %s::jsonb, current_date)",
                    (world.ids[key], json.dumps(factors)),
                )
            conn.rollback()
        message = refused.value.diag.message_primary or ""
        assert "factor" in message, (what, message)
    assert world.fingerprint() == before


def test_coordinators_at_two_sites_allocate_an_assigned_trial(world: World) -> None:
    """Neither site sees the other's allocations, nor any position: the server numbers each one,
    so the second site's allocation does not collide with the first's."""
    positions = []
    for who, site in (("coord_a", OWN), ("coord_b", OTHER)):
        login = world.logins[who]
        world.ok(login, "screen", "NATARS", "--site", site, "--date", days(-30), *FIELDS)
        number = world.scalar(
            "SELECT screening_number FROM patients WHERE site_code = %s AND protocol_id = "
            "'NATARS' ORDER BY id DESC LIMIT 1",
            (site,),
        )
        done = world.ok(
            login,
            "allocate",
            number,
            "--consent-date",
            days(-29),
            "--date",
            days(-28),
            "--arm",
            "SURGERY_ONLY",
            "--basis",
            "mdt_decision",
            "--reason",
            "MDT",
        )
        assert "position" not in done.stdout, done.stdout
        positions.append(
            world.scalar(
                "SELECT a.position FROM allocations a JOIN patients p ON p.id = a.patient_id "
                "WHERE p.screening_number = %s",
                (number,),
            )
        )
    assert positions == [1, 2]


def test_audit_actors_are_logins_and_times_are_the_servers(world: World) -> None:
    """After the matrix: every entry names a login role that exists (never a --user label),
    its time lies between the world's creation and now on the server's clock, and a write made
    with raw SQL is stamped with the login and the server's time of it."""
    dm = world.logins["dm"]
    conn = psycopg.connect(world.conninfo(dm), options=f"-csearch_path={world.schema}")
    try:
        row = conn.execute(
            "UPDATE scheduled_events SET reason = 'audit stamp check' WHERE id = %s RETURNING id",
            (_event_pk(world, "b1"),),
        ).fetchone()
        assert row is not None
        conn.commit()
    finally:
        conn.close()
    now = world.scalar("SELECT now()")
    newest = world.admin(
        "SELECT actor, action, entity, at FROM audit_log ORDER BY seq DESC LIMIT 1"
    )[0]
    assert newest[:3] == (dm, "sql", "scheduled_events")
    assert abs((_at(newest[3]) - now).total_seconds()) < 5, (newest, now)

    entries = world.admin("SELECT actor, at FROM audit_log ORDER BY seq")
    logins = {r[0] for r in world.admin("SELECT rolname FROM pg_roles WHERE rolcanlogin")}
    ours = {world.superuser, *world.logins.values()}
    actors = {actor for actor, _ in entries}
    assert actors <= logins and actors <= ours, actors - ours
    assert "someone_else" not in actors
    assert world.started is not None
    for actor, at in entries:
        stamp = _at(at)
        assert world.started - dt.timedelta(seconds=1) <= stamp <= now, (actor, at)
    # Each kind of entry names who really acted.
    by_entity = dict(
        world.admin(
            "SELECT entity, array_agg(DISTINCT actor ORDER BY actor) FROM audit_log GROUP BY entity"
        )
    )
    assert set(by_entity["allocations"]) == {world.logins["coord_a"], world.logins["coord_b"]}
    assert world.logins["admin"] in by_entity["access_grants"]
    assert by_entity["trial_keys"] == [world.logins["stat"]]


def test_after_the_matrix_the_trail_and_sequence_still_verify(world: World) -> None:
    """No refused draw burned a number or left a gap; the chain is whole."""
    stat = world.logins["stat"]
    assert "intact" in world.ok(stat, "audit", "verify").stdout
    verified = world.ok(stat, "allocation", "verify", PROTOCOL).stdout
    assert "confirmed" in verified and "gap" not in verified, verified


def test_only_the_trial_admin_loads_a_protocol_version(world: World) -> None:
    """Issue 22: a coordinator cannot bring in a protocol (the database refuses the insert,
    through the command and in raw SQL); the trial admin can, and the load is audited as
    theirs."""
    from sarcoma_sched.protocol.loader import bundled_protocol_dir

    text = (bundled_protocol_dir() / "natars-randomized.toml").read_text(encoding="utf-8")
    amended = world.cwd / "natars-r-9.9.toml"
    amended.write_text(text.replace('version = "1.2"', 'version = "9.9"', 1), encoding="utf-8")
    before = world.fingerprint()
    for who in ("coord_a", "monitor", "dm"):
        line = _refused_cleanly(world.cli(world.logins[who], "protocol", "load", str(amended)), who)
        assert "permission denied" in line, line
        with (
            pytest.raises(psycopg.errors.InsufficientPrivilege),
            world.connect(world.logins[who]) as conn,
        ):
            conn.execute(
                "INSERT INTO protocol_versions (protocol_id, version, content_hash, source_name, "
                "source, loaded_at, loaded_by) VALUES ('NATARS-R', '9.8', 'x', 'x', 'x', now(), "
                "current_user)"
            )
    assert world.fingerprint() == before
    admin = world.logins["admin"]
    assert "NATARS-R v9.9 loaded" in world.ok(admin, "protocol", "load", str(amended)).stdout
    rows = world.admin(
        "SELECT actor FROM audit_log WHERE entity = 'protocol_versions' ORDER BY seq DESC LIMIT 1"
    )
    assert rows == [(admin,)]
    listed = world.ok(world.logins["coord_a"], "protocol", "versions", PROTOCOL).stdout
    assert "9.9" in listed


def test_a_coordinators_sdtm_export_holds_only_their_sites_patients(world: World) -> None:
    """Issue 23: the subject datasets are read through the login's own session, so row-level
    security decides who is in them; a data manager's export holds every site's patients."""
    import csv

    seen = {}
    for who in ("coord_a", "coord_b", "dm"):
        out = world.cwd / f"sdtm-{who}"
        world.ok(world.logins[who], "export", "sdtm", PROTOCOL, "--out", str(out))
        with (out / "dm.csv").open(encoding="utf-8") as handle:
            seen[who] = {row["SITEID"] for row in csv.DictReader(handle)}
        for name in ("sv.csv", "ds.csv"):
            with (out / name).open(encoding="utf-8") as handle:
                subjects = {row["USUBJID"] for row in csv.DictReader(handle)}
            assert all(OTHER not in s for s in subjects) or who != "coord_a", (who, name)
    assert seen["coord_a"] == {OWN}
    assert seen["coord_b"] == {OTHER}
    assert seen["dm"] == {OWN, OTHER}
