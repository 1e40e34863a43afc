"""Issue 19: an anchor kept outside the database catches a log rewritten end to end.

Every attack here is played by someone with the owner's or a superuser's rights, after an anchor
was taken, and done consistently: each changed row and entry is re-hashed with the engine's own
``entry_hash``, every later entry re-linked and the head reset, so the plain ``audit verify``
passes (asserted each time: it shows why the anchor is needed). ``audit verify --anchor`` must
then name the first entry that is no longer what the anchor recorded.

On PostgreSQL the log is written by server triggers and refuses UPDATE and DELETE; the attacker
switches triggers off (``session_replication_role = replica``) as a superuser or owner can.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Date, delete, insert, select, text, update

from sarcoma_sched.db.audit import canonical, entry_hash
from sarcoma_sched.db.models import (
    AUDITED,
    Allocation,
    AuditEntry,
    AuditHead,
    Patient,
    ProtocolDefinition,
    ProtocolVersion,
)
from sarcoma_sched.db.session import Database
from sarcoma_sched.db.types import UtcDateTime
from sarcoma_sched.errors import InputError
from sarcoma_sched.protocol.concealment import server_allocation, site_definition
from sarcoma_sched.protocol.loader import parse_protocol
from sarcoma_sched.services.allocation import allocate_patient
from sarcoma_sched.services.audit import Anchor, read_anchor, take_anchor, verify_audit
from sarcoma_sched.services.screening import screen
from tests.cohort import ELIGIBLE_NATARS

DAY = dt.date(2026, 11, 2)
SECRET = hashlib.sha256(b"anchor test key").digest()
FIELDS = ("seq", "at", "actor", "action", "entity", "entity_id", "change", "prev_hash", "hash")

Entry = dict[str, Any]


# --- building the trial through the services ------------------------------------------------------


def _patient(db: Database, protocol: str, **allocation: Any) -> int:
    """Screen, enroll and allocate one patient through the services; their patient id."""
    outcome = screen(db, "nurse", protocol, "PKUIH", ELIGIBLE_NATARS, screened_on=DAY)
    done = allocate_patient(
        db, "nurse", outcome.screening_number, today=DAY, consent_date=DAY, **allocation
    )
    with db.read() as session:
        return session.scalar(select(Patient.id).where(Patient.study_id == done.study_id))


def _assigned(db: Database) -> int:
    return _patient(db, "NATARS", arm="NEOADJUVANT", basis="mdt_decision", reason="MDT 2026-11-02")


def _randomized(db: Database) -> int:
    return _patient(db, "NATARS-R", secret=SECRET)


@dataclass
class Trial:
    db: Database
    anchor: Anchor
    anchor_file: Path
    patients: list[int]  # NATARS (assigned), NATARS-R, NATARS-R
    before_last: int  # the head before the last transaction (patient 3's allocation)
    # The intact log, kept by a test that restores it (not in the repr of a failing example).
    log: list[Entry] | None = field(default=None, repr=False)


@pytest.fixture
def trial(database, tmp_path) -> Trial:
    """Three patients allocated through the services, then an anchor filed outside the
    database (written to a file and read back, as `audit anchor --out` would)."""
    patients = [_assigned(database), _randomized(database)]
    outcome = screen(database, "nurse", "NATARS-R", "PKUIH", ELIGIBLE_NATARS, screened_on=DAY)
    before_last = _head(database)[0]
    allocate_patient(
        database, "nurse", outcome.screening_number, today=DAY, consent_date=DAY, secret=SECRET
    )
    with database.read() as session:
        patients.append(
            session.scalar(
                select(Patient.id).where(Patient.screening_number == outcome.screening_number)
            )
        )
    path = tmp_path / "anchor.json"
    path.write_text(take_anchor(database).to_json() + "\n", encoding="utf-8")
    anchor = read_anchor(path)
    assert anchor.seq == _head(database)[0] > before_last
    assert verify_audit(database, anchor).problems == []
    return Trial(database, anchor, path, patients, before_last)


# --- the attacker ---------------------------------------------------------------------------------


def _head(db: Database) -> tuple[int, str]:
    with db.engine.connect() as conn:
        return tuple(conn.execute(select(AuditHead.seq, AuditHead.hash)).one())


def _entries(db: Database) -> list[Entry]:
    with db.engine.connect() as conn:
        return _read_entries(conn)


def _read_entries(conn: Connection) -> list[Entry]:
    table = AuditEntry.__table__
    return [dict(row) for row in conn.execute(select(table).order_by(table.c.seq)).mappings()]


def _change(entry: Entry) -> dict[str, Any]:
    return json.loads(entry["change"])


def _seq_of(entries: Iterable[Entry], entity: str, entity_id: object, op: str = "insert") -> int:
    return next(
        e["seq"]
        for e in entries
        if e["entity"] == entity and e["entity_id"] == str(entity_id) and _change(e)["op"] == op
    )


def _rechain(entries: list[Entry]) -> list[Entry]:
    """Number the entries 1..n and recompute every link and hash, as an attacker who knows the
    engine's hash function does."""
    prev = "0" * 64
    out = []
    for seq, entry in enumerate(entries, 1):
        entry = {**entry, "seq": seq, "prev_hash": prev}
        entry["hash"] = entry_hash(*(entry[f] for f in FIELDS[:-1]))
        prev = entry["hash"]
        out.append(entry)
    return out


def _tamper(
    db: Database,
    rows: Callable[[Connection], None] = lambda conn: None,
    entries: Callable[[list[Entry]], list[Entry]] | None = None,
) -> None:
    """One attacking transaction with the owner's rights: triggers off (PostgreSQL), the rows
    changed, the log replaced by ``entries(old log)`` re-chained, and the head reset."""
    with db.engine.begin() as conn:
        if db.backend == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        rows(conn)
        if entries is not None:
            _write_log(conn, _rechain(entries(_read_entries(conn))))


def _write_log(conn: Connection, entries: list[Entry]) -> None:
    conn.execute(delete(AuditEntry.__table__))
    if entries:
        conn.execute(insert(AuditEntry.__table__), entries)
    head = (entries[-1]["seq"], entries[-1]["hash"]) if entries else (0, "0" * 64)
    conn.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=head[0], hash=head[1]))


def _column_value(column, value: Any) -> Any:
    """A value from an audit image (JSON) as the column's type takes it."""
    if value is None:
        return None
    if isinstance(column.type, UtcDateTime):
        return dt.datetime.fromisoformat(value)
    if isinstance(column.type, Date):
        return dt.date.fromisoformat(value)
    return value


def _key(entity: str, entity_id: str):
    (pk,) = AUDITED[entity].__table__.primary_key.columns
    return pk, (int(entity_id) if pk.type.python_type is int else entity_id)


def _put_row(conn: Connection, entity: str, entity_id: str, image: dict | None) -> None:
    """Make a row what ``image`` says (None: no row), with plain SQL behind the engine."""
    table = AUDITED[entity].__table__
    pk, key = _key(entity, entity_id)
    if image is None:
        conn.execute(delete(table).where(pk == key))
        return
    values = {c.name: _column_value(c, image[c.name]) for c in table.columns}
    if not conn.execute(update(table).where(pk == key).values(values)).rowcount:
        conn.execute(insert(table).values(values))


def _undo_after(db: Database, cut: int) -> None:
    """Every row put back as it was before entry ``cut + 1`` (the before-images, newest
    first), those entries deleted and the head reset to entry ``cut``."""
    undone = [e for e in _entries(db) if e["seq"] > cut]

    def rows(conn: Connection) -> None:
        for entry in reversed(undone):
            _put_row(conn, entry["entity"], entry["entity_id"], _change(entry)["before"])

    _tamper(db, rows, lambda log: log[:cut])


def _set_change(entry: Entry, edit: Callable[[dict[str, Any]], None]) -> Entry:
    change = _change(entry)
    for image in (change["before"], change["after"]):
        if image is not None:
            edit(image)
    return {**entry, "change": canonical(change)}


def _first(problems: list[str]) -> int:
    """The entry number the first problem names."""
    assert problems, "tampering went unnoticed"
    assert problems[0].startswith("audit entry "), problems
    return int(problems[0].split()[2].rstrip(":"))


def _assert_consistent(db: Database) -> None:
    """Without the anchor, nothing is wrong: the chain, the rows and the protocol hashes agree."""
    assert verify_audit(db).problems == []


def _altered(anchor: Anchor, seq: int) -> str:
    return (
        f"audit entry {seq}: not the entry the anchor of {anchor.at} (entry {anchor.seq}) "
        "recorded (altered, or entries inserted or removed before it)"
    )


# --- the five attacks of issue 19 -----------------------------------------------------------------


def test_undoing_the_last_transaction_is_caught_as_a_log_cut_back(trial):
    """Attack 1: patient 3's allocation (enrollment, study id, allocation, events) undone, its
    entries deleted and the head put back, as if it had never been allocated."""
    db, anchor, cut = trial.db, trial.anchor, trial.before_last
    last = [e for e in _entries(db) if e["seq"] > cut]
    assert {e["action"] for e in last} == {"allocate"}
    assert {e["entity"] for e in last} >= {"allocations", "enrollments", "scheduled_events"}
    _undo_after(db, cut)
    assert _head(db)[0] == cut
    with db.read() as session:
        assert (
            session.scalar(select(Allocation.id).where(Allocation.patient_id == trial.patients[2]))
            is None
        )
    _assert_consistent(db)
    problems = verify_audit(db, anchor).problems
    assert problems == [
        f"audit entry {cut + 1}: missing since the anchor of {anchor.at} (entry {anchor.seq}): "
        f"the log was cut back to entry {cut}"
    ]


def test_a_consistent_rewrite_of_an_allocated_arm_is_caught_at_its_first_entry(trial):
    """Attack 2: the randomized patient's arm swapped in the row and in every entry about it,
    and the whole chain re-hashed."""
    db, anchor = trial.db, trial.anchor
    with db.read() as session:
        allocation = session.scalars(
            select(Allocation).where(Allocation.patient_id == trial.patients[1])
        ).one()
        allocation_id, arm = allocation.id, allocation.arm
    other = {"SURGERY_ONLY": "NEOADJUVANT", "NEOADJUVANT": "SURGERY_ONLY"}[arm]
    first = _seq_of(_entries(db), "allocations", allocation_id)

    def swap(image: dict[str, Any]) -> None:
        image["arm"] = other

    def rows(conn: Connection) -> None:
        conn.execute(update(Allocation).where(Allocation.id == allocation_id).values(arm=other))

    def log(entries: list[Entry]) -> list[Entry]:
        return [
            _set_change(e, swap)
            if (e["entity"], e["entity_id"]) == ("allocations", str(allocation_id))
            else e
            for e in entries
        ]

    _tamper(db, rows, log)
    _assert_consistent(db)
    problems = verify_audit(db, anchor).problems
    assert problems == [_altered(anchor, first)]


def test_a_forged_backdated_entry_in_the_middle_is_caught_where_it_was_inserted(trial):
    """Attack 3: an update of the assigned patient's allocation reason, backdated to the
    instant of the allocation itself and slipped in right after its entry (so it reads as part
    of that transaction); everything after renumbered and re-hashed, the row changed to match."""
    db, anchor = trial.db, trial.anchor
    entries = _entries(db)
    with db.read() as session:
        allocation_id = session.scalar(
            select(Allocation.id).where(Allocation.patient_id == trial.patients[0])
        )
    at = _seq_of(entries, "allocations", allocation_id)
    original = entries[at - 1]
    after = _change(original)["after"]
    forged_reason = "MDT 2026-10-30: patient preference, chemotherapy declined"
    forged = {
        **original,
        "change": canonical(
            {"op": "update", "before": after, "after": {**after, "reason": forged_reason}}
        ),
    }

    def rows(conn: Connection) -> None:
        conn.execute(
            update(Allocation).where(Allocation.id == allocation_id).values(reason=forged_reason)
        )

    _tamper(db, rows, lambda log: [*log[:at], forged, *log[at:]])
    assert _head(db)[0] == anchor.seq + 1
    forged_entry, following = _entries(db)[at : at + 2]
    assert (forged_entry["seq"], forged_entry["at"]) == (at + 1, original["at"])
    assert forged_entry["at"] < following["at"]  # dated before the entry it now precedes
    _assert_consistent(db)
    assert verify_audit(db, anchor).problems == [_altered(anchor, at + 1)]


def _patient_tables() -> list[str]:
    return [name for name, model in AUDITED.items() if "patient_id" in model.__table__.columns]


def _about_patient(entry: Entry, patient_id: int) -> bool:
    if entry["entity"] == "patients":
        return entry["entity_id"] == str(patient_id)
    if entry["entity"] not in _patient_tables():
        return False
    change = _change(entry)
    image = change["after"] or change["before"]
    return image["patient_id"] == patient_id


def _erase_patient(db: Database, patient_id: int) -> int:
    """Attack 4: every row of the patient and every entry about them gone, the chain
    renumbered and re-hashed. The first entry removed."""
    removed = [e["seq"] for e in _entries(db) if _about_patient(e, patient_id)]

    def rows(conn: Connection) -> None:
        for name in reversed(_patient_tables()):  # children before the rows they refer to
            table = AUDITED[name].__table__
            conn.execute(delete(table).where(table.c.patient_id == patient_id))
        patients = AUDITED["patients"].__table__
        conn.execute(delete(patients).where(patients.c.id == patient_id))

    _tamper(db, rows, lambda log: [e for e in log if not _about_patient(e, patient_id)])
    return removed[0]


def test_erasing_a_patient_and_renumbering_is_caught_at_their_first_entry(trial):
    db, anchor = trial.db, trial.anchor
    total = len(_entries(db))
    # The first NATARS-R patient, between the other two: their screening is the first to go.
    screened = _seq_of(_entries(db), "patients", trial.patients[1])
    first = _erase_patient(db, trial.patients[1])
    assert first == screened
    assert len(_entries(db)) < total
    _assert_consistent(db)
    assert verify_audit(db, anchor).problems == [_altered(anchor, first)]


PROBABILITY = ("probability = 0.8", "probability = 1.0")


def _natars_r(db: Database) -> tuple[int, str, str, str]:
    with db.read() as session:
        row = session.execute(
            select(
                ProtocolVersion.id,
                ProtocolVersion.source,
                ProtocolVersion.source_name,
                ProtocolVersion.content_hash,
            ).where(ProtocolVersion.protocol_id == "NATARS-R")
        ).one()
    assert row.source.count(PROBABILITY[0]) == 1
    return row.id, row.source.replace(*PROBABILITY), row.source_name, row.content_hash


def test_a_protocol_rewritten_to_deterministic_allocation_is_caught_by_the_anchor(trial):
    """Attack 5: NATARS-R's minimization made deterministic (probability 0.8 -> 1.0): source
    and content hash rewritten in the row and in its entries, the chain re-hashed."""
    db, anchor = trial.db, trial.anchor
    version_id, source, source_name, old_hash = _natars_r(db)
    rewritten = parse_protocol(source, source_name)
    assert rewritten.allocation.probability == 1.0
    new_hash = rewritten.content_hash
    assert new_hash != old_hash
    first = _seq_of(_entries(db), "protocol_versions", version_id)

    def rewrite(image: dict[str, Any]) -> None:
        image.update(source=source, content_hash=new_hash)

    def rows(conn: Connection) -> None:
        conn.execute(
            update(ProtocolVersion)
            .where(ProtocolVersion.id == version_id)
            .values(source=source, content_hash=new_hash)
        )
        # And what the server draws with and site roles read, derived from the new source.
        conn.execute(
            update(ProtocolDefinition)
            .where(ProtocolDefinition.version_id == version_id)
            .values(
                site_definition=site_definition(rewritten),
                allocation=server_allocation(rewritten),
            )
        )

    def log(entries: list[Entry]) -> list[Entry]:
        return [
            _set_change(e, rewrite)
            if (e["entity"], e["entity_id"]) == ("protocol_versions", str(version_id))
            else e
            for e in entries
        ]

    _tamper(db, rows, log)
    _assert_consistent(db)
    assert verify_audit(db, anchor).problems == [_altered(anchor, first)]


@pytest.mark.parametrize("entries_too", [False, True], ids=["row-only", "row-and-entries"])
def test_a_lazily_rewritten_protocol_source_is_caught_without_the_anchor(trial, entries_too):
    """Attack 5, lazily: the source rewritten but not its content hash. Even with its audit
    entries rewritten to match (and the chain re-hashed), re-hashing the source catches it."""
    db, anchor = trial.db, trial.anchor
    version_id, source, _name, old_hash = _natars_r(db)

    def rows(conn: Connection) -> None:
        conn.execute(
            update(ProtocolVersion).where(ProtocolVersion.id == version_id).values(source=source)
        )

    def log(entries: list[Entry]) -> list[Entry]:
        def rewrite(image: dict[str, Any]) -> None:
            image["source"] = source

        return [
            _set_change(e, rewrite)
            if (e["entity"], e["entity_id"]) == ("protocol_versions", str(version_id))
            else e
            for e in entries
        ]

    _tamper(db, rows, log if entries_too else None)
    problems = verify_audit(db).problems
    rehashed = parse_protocol(source, "x.toml").content_hash
    content = (
        f"protocol_versions {version_id} (NATARS-R): its source hashes to {rehashed[:19]}, "
        f"not the stored {old_hash[:19]} (the source was rewritten)"
    )
    row = (
        f"protocol_versions {version_id}: differs from its last audit entry in source "
        "(changed behind the engine)"
    )
    # The definitions derived from the registered source no longer match the rewritten one.
    derived = [
        f"protocol_versions {version_id} (NATARS-R): the method the server draws with is not "
        "its source's (protocol_definitions.allocation was rewritten)",
        f"protocol_versions {version_id} (NATARS-R): the definition site roles read is not "
        "its source's (protocol_definitions.site_definition was rewritten)",
    ]
    content = [content, *derived]
    assert problems == (content if entries_too else [row, *content])
    anchored = verify_audit(db, anchor).problems
    if entries_too:
        first = _seq_of(_entries(db), "protocol_versions", version_id)
        assert anchored == [_altered(anchor, first), *content]
    else:
        # The log itself is untouched: the anchor agrees, the row and hash checks do not.
        assert anchored == problems


# --- normal use after the anchor ------------------------------------------------------------------


def test_entries_appended_after_the_anchor_still_match_it(trial):
    db, anchor = trial.db, trial.anchor
    _randomized(db)
    _assigned(db)
    report = verify_audit(db, anchor)
    assert report.problems == []
    assert report.entries > anchor.seq


def test_an_anchor_vouches_only_for_entries_up_to_it(trial):
    """The documented limit: a transaction written after the anchor and undone before the next
    one is taken is invisible to it. File anchors often."""
    db, anchor = trial.db, trial.anchor
    cut = _head(db)[0]
    _randomized(db)
    _undo_after(db, cut)
    assert verify_audit(db, anchor).problems == []


# --- any single edit at or before the anchor, consistently re-hashed ------------------------------


def _backdate(entry: Entry, seconds: int) -> Entry:
    at = dt.datetime.fromisoformat(entry["at"]) - dt.timedelta(seconds=seconds)
    return {**entry, "at": at.isoformat()}


def _annotate(entry: Entry, _n: int) -> Entry:
    change = _change(entry)
    change["comment"] = "reviewed"  # verify reads only "after": the rows still match
    return {**entry, "change": canonical(change)}


EDITS: dict[str, Callable[[Entry, int], Entry]] = {
    "at": _backdate,
    "actor": lambda e, n: {**e, "actor": f"mallory{n}"},
    "action": lambda e, n: {**e, "action": f"{e['action']} (corrected {n})"},
    "change": _annotate,
}


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_single_entry_edit_rehashed_is_named_exactly_by_the_anchor(trial, data):
    db, anchor = trial.db, trial.anchor
    if trial.log is None:  # the first example (the fixture is shared by all of them)
        _randomized(db)  # entries after the anchor too: the edit is re-hashed through them
        trial.log = _entries(db)
    original = trial.log
    seq = data.draw(st.integers(1, anchor.seq), label="seq")
    column = data.draw(st.sampled_from(sorted(EDITS)), label="column")
    n = data.draw(st.integers(1, 86_400), label="n")
    try:
        _tamper(
            db,
            entries=lambda log: [EDITS[column](e, n) if e["seq"] == seq else e for e in log],
        )
        assert _entries(db)[seq - 1] != original[seq - 1]
        _assert_consistent(db)
        problems = verify_audit(db, anchor).problems
        assert problems == [_altered(anchor, seq)]
        assert _first(problems) == seq
    finally:
        with db.engine.begin() as conn:
            if db.backend == "postgresql":
                conn.execute(text("SET LOCAL session_replication_role = replica"))
            _write_log(conn, original)
    assert _entries(db) == original


# --- malformed and edited anchor files ------------------------------------------------------------


def _anchor_json(trial: Trial) -> dict[str, Any]:
    return json.loads(trial.anchor_file.read_text(encoding="utf-8"))


def _edited_digest(data: dict[str, Any], seq: int) -> dict[str, Any]:
    digests = bytearray(base64.b64decode(data["entry_digests"]))
    digests[(seq - 1) * 8] ^= 0xFF
    return {**data, "entry_digests": base64.b64encode(bytes(digests)).decode()}


MALFORMED: dict[str, Callable[[dict[str, Any]], str | None]] = {
    "empty": lambda d: "",
    "not-json": lambda d: "seq = 87\n",
    "truncated": lambda d: json.dumps(d)[:100],
    "a-list": lambda d: json.dumps([d]),
    "other-format": lambda d: json.dumps({**d, "format": "sarcoma-sched audit anchor v0"}),
    "no-hash": lambda d: json.dumps({k: v for k, v in d.items() if k != "hash"}),
    "seq-edited": lambda d: json.dumps({**d, "seq": d["seq"] - 1}),
    "short-hash": lambda d: json.dumps({**d, "hash": d["hash"][:63]}),
    "not-base64": lambda d: json.dumps({**d, "entry_digests": "%%%" + d["entry_digests"]}),
    "seq-not-a-number": lambda d: json.dumps({**d, "seq": "eighty"}),
    "missing": lambda d: None,
}


@pytest.fixture(scope="module")
def anchor_json() -> dict[str, Any]:
    """A well-formed anchor of 87 entries (no database needed to read one)."""
    digests = hashlib.shake_256(b"entries").digest(87 * 8)
    anchor = Anchor(87, "ab" * 32, "2026-11-02T09:00:00+00:00", "sqlite:///trial.db", digests)
    return json.loads(anchor.to_json())


def test_a_well_formed_anchor_reads_back_as_written(anchor_json, tmp_path):
    path = tmp_path / "anchor.json"
    path.write_text(json.dumps(anchor_json), encoding="utf-8")
    anchor = read_anchor(path)
    assert (anchor.seq, anchor.hash, len(anchor.digests)) == (87, "ab" * 32, 87 * 8)


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_anchor_file_is_one_input_error(anchor_json, tmp_path, case):
    path = tmp_path / f"{case}.json"
    content = MALFORMED[case](anchor_json)
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read_anchor(path)
    assert caught.value.lines() == [str(caught.value)]
    assert str(caught.value).startswith(f"{path}: ")
    assert "\n" not in str(caught.value)


def test_an_edited_anchor_names_the_entry_it_no_longer_matches(trial, tmp_path):
    db, data = trial.db, _anchor_json(trial)
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(_edited_digest(data, 5)), encoding="utf-8")
    assert verify_audit(db, read_anchor(edited)).problems == [_altered(read_anchor(edited), 5)]
    head = "f" * 64 if data["hash"] != "f" * 64 else "e" * 64
    edited.write_text(json.dumps({**data, "hash": head}), encoding="utf-8")
    assert verify_audit(db, read_anchor(edited)).problems == [
        f"audit entry {data['seq']}: its hash is not the one the anchor of {data['at']} "
        f"(entry {data['seq']}) recorded"
    ]


# --- the installed command, end to end ------------------------------------------------------------


@pytest.fixture(scope="module")
def command() -> str:
    found = shutil.which("sarcoma-sched", path=str(Path(sys.executable).parent))
    assert found, "sarcoma-sched is not installed in this environment (pip install -e .)"
    return found


@pytest.fixture
def run(command, tmp_path, db_url):
    scrubbed = ("SARCOMA_SCHED_DEBUG", "SARCOMA_SCHED_DB", "SARCOMA_SCHED_USER")
    env = {k: v for k, v in os.environ.items() if k not in scrubbed}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg-data")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg-config")

    def _run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [command, "--db", db_url, *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=60,
        )

    return _run


def _one_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_the_command_anchors_and_names_the_first_entry_of_an_erased_patient(
    database, run, tmp_path
):
    patients = [_assigned(database), _randomized(database), _randomized(database)]
    out = tmp_path / "anchors" / "2026-11-02.json"
    out.parent.mkdir()
    anchored = run("audit", "anchor", "--out", str(out))
    assert anchored.returncode == 0, anchored.stderr
    seq = _head(database)[0]
    assert anchored.stdout.startswith(f"anchored entry {seq} (")
    assert read_anchor(out).seq == seq
    intact = run("audit", "verify", "--anchor", str(out))
    assert intact.returncode == 0, intact.stderr
    assert f"matches the anchor at entry {seq}" in intact.stdout

    _randomized(database)  # normal use after the anchor
    later = run("audit", "verify", "--anchor", str(out))
    assert later.returncode == 0, later.stderr

    first = _erase_patient(database, patients[1])
    plain = run("audit", "verify")
    assert plain.returncode == 0, plain.stderr  # the chain alone is consistent
    caught = run("audit", "verify", "--anchor", str(out))
    assert caught.stdout == ""
    assert _one_error(caught) == f"error: audit verify: {_altered(read_anchor(out), first)}"


@pytest.mark.parametrize("case", ["seq-edited", "edited-digest"])
def test_the_command_reports_a_bad_anchor_file_in_one_line(trial, run, tmp_path, case):
    path = tmp_path / f"{case}.json"
    data = _anchor_json(trial)
    if case == "edited-digest":
        path.write_text(json.dumps(_edited_digest(data, 3)), encoding="utf-8")
        expected = f"error: audit verify: {_altered(read_anchor(path), 3)}"
    else:
        content = MALFORMED[case](data)
        if content is not None:
            path.write_text(content, encoding="utf-8")
        with pytest.raises(InputError) as caught:
            read_anchor(path)
        expected = f"error: {caught.value}"
    assert _one_error(run("audit", "verify", "--anchor", str(path))) == expected
