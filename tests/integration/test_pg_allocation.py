"""The server's allocation decision (db/pg_allocation.py) is the Python allocator's, bit for bit.

Issue 19 moves the randomized decision into a PostgreSQL function so coordinators never hold the
secret; ``allocation verify`` keeps replaying in Python. Every decision here is computed both
ways and compared as canonical JSON, so floats (the draw, the scores) must have the same bits
and an integral float must still be a float.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, create_engine, text

from sarcoma_sched.allocation.blocks import block_arms
from sarcoma_sched.allocation.methods import allocate, method_fields
from sarcoma_sched.allocation.records import Decision, PriorAllocation, stratum_key
from sarcoma_sched.allocation.stream import DrawStream, derived_key, trial_key
from sarcoma_sched.db.pg_allocation import decide, ensure_pgcrypto, install
from sarcoma_sched.errors import AllocationError
from sarcoma_sched.protocol.allocation import (
    AssignedAllocation,
    BlockAllocation,
    Factor,
    FixedAllocation,
    MinimizationAllocation,
)
from sarcoma_sched.protocol.loader import LoadedProtocol, load_protocol, parse_protocol
from tests.databases import pg_schema_url

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
KEY = bytes(range(32))


@pytest.fixture(scope="module")
def pg():
    """One connection to a schema of its own with the functions installed; every call runs in a
    savepoint so that an expected error leaves the connection usable."""
    with pg_schema_url() as url:
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                ensure_pgcrypto(conn)
                install(conn)
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()


def sql_decide(conn: Connection, *args: Any) -> Decision:
    with conn.begin_nested():
        return decide(conn, *args)


def scalar(conn: Connection, sql: str, **params: Any) -> Any:
    with conn.begin_nested():
        return conn.execute(text(sql), params).scalar_one()


def canonical(d: Decision) -> str:
    """Everything the decision says; json.dumps writes floats by repr, i.e. exactly."""
    return json.dumps(
        {
            "arm": d.arm,
            "stratum": d.stratum,
            "factors": d.factors,
            "deterministic": d.deterministic,
            "detail": d.detail,
            "concealed": d.concealed,
        },
        sort_keys=True,
    )


def outcome(fn) -> str:
    """A decision's canonical JSON, or the error the allocator refused it with."""
    try:
        return canonical(fn())
    except (AllocationError, ValueError) as exc:  # block size: ValueError in Python
        return f"error: {exc}"


def both(conn, method, arms, history, factors, position, key) -> tuple[str, str]:
    python = outcome(lambda: allocate(method, arms, history, factors, position, DrawStream(key)))
    server = outcome(lambda: sql_decide(conn, method, arms, history, factors, position, key))
    return python, server


# --- strategies ----------------------------------------------------------------------------

ARM_IDS = st.sampled_from(["A", "B", "C", "SURGERY_ONLY", "NEOADJUVANT", "Ärm|2", "x=y", "日"])
FIELD_NAMES = st.sampled_from(["histology", "site", "grade", "f|=\\", "früh", "it's"])
SPECIAL = st.sampled_from(["|", "=", "\\", "\\|", "a=b", "|=\\", "true", "false", "LMS", "é"])
# PostgreSQL text cannot hold NUL; codec="utf-8" leaves out lone surrogates.
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=5)
LEVELS = st.one_of(st.booleans(), SPECIAL, TEXT)
WEIGHTS = st.one_of(
    st.sampled_from([1.0, 2.0, 3.0, 0.5, 0.1, 0.3, 1 / 3, 1e-3, 0.7]),
    st.floats(min_value=1e-3, max_value=100.0, allow_nan=False, allow_infinity=False),
)
PROBABILITIES = st.one_of(
    st.just(1.0), st.sampled_from([0.8, 0.75, 0.9]), st.floats(0.5, 1.0, exclude_min=True)
)
TRIAL_IDS = st.one_of(st.sampled_from(["NATARS-R", "", "t|r=i\\al"]), TEXT)


@st.composite
def designs(draw):
    n_arms = draw(st.integers(2, 3))
    arms = draw(st.lists(ARM_IDS, min_size=n_arms, max_size=n_arms, unique=True))
    ratio = {a: draw(st.integers(1, 3)) for a in arms}
    if draw(st.booleans()):
        total = sum(ratio.values())
        # Mostly the smallest block, so that a stratum often runs through several blocks.
        multiples = draw(st.lists(st.sampled_from([1, 1, 1, 2, 3]), min_size=1, max_size=3))
        method: Any = BlockAllocation(
            method="stratified_blocks",
            ratio=ratio,
            strata=draw(st.lists(FIELD_NAMES, max_size=2, unique=True)),
            block_sizes=[k * total for k in multiples],
        )
    else:
        fields = draw(st.lists(FIELD_NAMES, min_size=1, max_size=3, unique=True))
        method = MinimizationAllocation(
            method="minimization",
            ratio=ratio,
            factors=[Factor(field=f, weight=draw(WEIGHTS)) for f in fields],
            probability=draw(PROBABILITIES),
            imbalance=draw(st.sampled_from(["range", "variance"])),
        )
    levels = {f: draw(st.lists(LEVELS, min_size=1, max_size=3)) for f in method_fields(method)}
    return method, arms, levels


@st.composite
def trials(draw):
    """A design, a secret, and patients: (position gap, factors, an arbitrary arm)."""
    method, arms, levels = draw(designs())
    patient = st.fixed_dictionaries(
        {f: st.sampled_from(pool) for f, pool in levels.items()},
        optional={"unused": TEXT},  # a factor no method reads is ignored by both
    )
    # The count first: a list left to Hypothesis stays short and rarely reaches a second block.
    n = draw(st.integers(1, 30))
    patients = draw(
        st.lists(
            st.tuples(st.integers(1, 3), patient, st.sampled_from(arms)), min_size=n, max_size=n
        )
    )
    secret = draw(st.binary(min_size=32, max_size=32))
    trial = draw(TRIAL_IDS)
    # forward: the history is what the allocator decided; arbitrary: any arm was recorded.
    mode = draw(st.sampled_from(["forward", "forward", "arbitrary"]))
    return method, arms, patients, trial_key(secret, trial), mode


# --- the decision --------------------------------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trials())
def test_the_server_decides_what_python_decides(pg, trial):
    """At every position of a random trial, the whole decision is the same: arm, stratum,
    factors, detail (scores and draw to the bit), concealed block/size/slot, deterministic."""
    method, arms, patients, key, mode = trial
    stream = DrawStream(key)
    history: list[PriorAllocation] = []
    position = 0
    for gap, factors, arbitrary in patients:
        position += gap
        expected = allocate(method, arms, history, factors, position, stream)
        got = sql_decide(pg, method, arms, history, factors, position, key)
        assert canonical(got) == canonical(expected), (position, len(history))
        _events(expected)
        # Recorded with the factors as given (booleans too): both spell levels the same way.
        arm = expected.arm if mode == "forward" else arbitrary
        history.append(PriorAllocation(position, arm, factors))


def _events(d: Decision) -> None:
    """What a run exercised (shown by --hypothesis-show-statistics)."""
    if d.detail["method"] == "minimization":
        event(f"minimization {d.detail['imbalance']}, took {d.detail['took']}")
        if len(d.detail["preferred"]) > 1:
            event("minimization: a tie broken by randbelow")
    else:
        event(f"blocks: block {min(d.concealed['block'], 4)}{'+' * (d.concealed['block'] >= 4)}")
    if d.deterministic:
        event(f"{d.detail['method']}: deterministic")


CORRUPTIONS = st.sampled_from(
    [
        "patient missing",
        "patient empty",
        "patient null",
        "patient number",
        "history missing",
        "history empty",
        "history null",
        "history number",
        "unknown arm",
        "out of order",
        "position not after",
        "ratio",
        "repeat arms",
    ]
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trials(), CORRUPTIONS, st.data())
def test_what_python_refuses_the_server_refuses_with_the_same_message(pg, trial, how, data):
    method, arms, patients, key, _ = trial
    stream = DrawStream(key)
    history: list[PriorAllocation] = []
    position = 0
    for gap, factors, _arm in patients[:-1]:
        position += gap
        decision = allocate(method, arms, history, factors, position, stream)
        history.append(PriorAllocation(position, decision.arm, factors))
    factors = dict(patients[-1][1])
    position += patients[-1][0]
    fields = method_fields(method)
    field = data.draw(st.sampled_from(fields)) if fields else None
    who, _, what = how.partition(" ")
    if who in ("patient", "history") and field is not None:
        if who == "history":
            if not history:
                return
            i = data.draw(st.integers(0, len(history) - 1))
            target = dict(history[i].factors)
        else:
            target = factors
        if what == "missing":
            target.pop(field, None)
        else:
            target[field] = {"empty": "", "null": None, "number": 3}[what]
        if who == "history":
            history[i] = PriorAllocation(history[i].position, history[i].arm, target)
    elif how == "unknown arm" and history:
        i = data.draw(st.integers(0, len(history) - 1))
        history[i] = PriorAllocation(history[i].position, "NOT_AN_ARM", history[i].factors)
    elif how == "out of order" and len(history) >= 2:
        history[0], history[1] = history[1], history[0]
    elif how == "position not after" and history:
        position = data.draw(st.integers(0, history[-1].position))
    elif how == "ratio":
        ratio = dict(method.ratio)
        ratio.pop(arms[-1])
        method = method.model_copy(update={"ratio": ratio})
    elif how == "repeat arms":
        arms = [*arms, arms[0]]
    python, server = both(pg, method, arms, history, factors, position, key)
    assert server == python
    event(f"{how}: {'refused' if python.startswith('error: ') else 'decided'}")


def test_fixed_and_assigned(pg):
    fixed = FixedAllocation(method="fixed", arm="TNT")
    history = [PriorAllocation(1, "TNT", {})]
    assert both(pg, fixed, ["TNT"], history, {}, 2, KEY)[1] == canonical(
        allocate(fixed, ["TNT"], history, {}, 2, DrawStream(KEY))
    )
    python, server = both(pg, FixedAllocation(method="fixed", arm="X"), ["TNT"], [], {}, 1, KEY)
    assert python.startswith("error: the fixed arm 'X'") and server == python
    assigned = AssignedAllocation(method="assigned")
    python, server = both(pg, assigned, ["A", "B"], [], {}, 1, KEY)
    assert python.startswith("error: this trial's arms are assigned") and server == python
    python, server = both(pg, assigned, [], [], {}, 1, KEY)
    assert server == python == "error: a trial needs at least one arm"


def test_a_block_size_that_is_not_a_multiple_of_the_ratio_is_refused_the_same_way(pg):
    method = BlockAllocation(method="stratified_blocks", ratio={"A": 1, "B": 2}, block_sizes=[4])
    python, server = both(pg, method, ["A", "B"], [], {}, 1, KEY)
    assert python == server == "error: block size 4 is not a multiple of the ratio's sum (3)"


# --- the bundled protocol ------------------------------------------------------------------


def _natars() -> LoadedProtocol:
    return load_protocol(ROOT / "protocols" / "natars-randomized.toml")


def _natars_blocks() -> LoadedProtocol:
    """NATARS-R with stratified permuted blocks (2:1 by histology) instead of minimization."""
    source = (ROOT / "protocols" / "natars-randomized.toml").read_text(encoding="utf-8")
    start, end = source.index("[allocation]"), source.index("[[arms]]")
    source = (
        source[:start]
        + '[allocation]\nmethod = "stratified_blocks"\n'
        + "ratio = { SURGERY_ONLY = 2, NEOADJUVANT = 1 }\n"
        + 'strata = ["histology", "site"]\nblock_sizes = [3, 6]\n\n'
        + source[end:]
    )
    return LoadedProtocol(parse_protocol(source, "natars-blocks.toml"), source, None)


def _natars_patients(protocol, n: int) -> list[dict[str, str]]:
    histologies = next(f for f in protocol.fields if f.id == "histology").values
    sites = [s.code for s in protocol.sites]
    # A fixed, uneven mix: every level appears, the common ones often.
    return [
        {
            "histology": histologies[(i * 7 + i // 3) % len(histologies) if i % 4 else 0],
            "site": sites[(i * 5 + i // 7) % len(sites) if i % 3 else 0],
        }
        for i in range(n)
    ]


@pytest.mark.parametrize("loaded", [_natars, _natars_blocks], ids=["minimization", "blocks"])
def test_the_bundled_natars_protocol_allocates_the_same_sequence(pg, loaded):
    protocol = loaded().protocol
    arms = [a.id for a in protocol.arms]
    key = trial_key(b"natars secret, 32 bytes long!!!!", protocol.id)
    stream = DrawStream(key)
    history: list[PriorAllocation] = []
    for position, factors in enumerate(_natars_patients(protocol, 120), start=1):
        expected = allocate(protocol.allocation, arms, history, factors, position, stream)
        got = sql_decide(pg, protocol.allocation, arms, history, factors, position, key)
        assert canonical(got) == canonical(expected), position
        history.append(PriorAllocation(position, expected.arm, expected.factors))
    assert {h.arm for h in history} == set(arms)


def test_natars_natural_scores_are_floats_even_when_integral(pg):
    """Two patients in, range scores are whole numbers: JSON must still say 1.0, not 1."""
    protocol = _natars().protocol
    arms = [a.id for a in protocol.arms]
    history = [
        PriorAllocation(1, arms[0], {"histology": "LMS", "site": "PKUIH"}),
        PriorAllocation(2, arms[0], {"histology": "LMS", "site": "BJFH"}),
    ]
    got = sql_decide(
        pg, protocol.allocation, arms, history, {"histology": "LMS", "site": "BJFH"}, 3, KEY
    )
    scores = got.detail["scores"]
    assert scores == {arms[0]: 5.0, arms[1]: 1.0}  # |3-0| + |2-0|, |2-1| + |1-1|
    assert all(type(v) is float for v in scores.values())
    assert type(got.detail["probability"]) is float and got.detail["probability"] == 0.8


def test_a_long_trial_is_decided_the_same_and_in_reasonable_time(pg):
    """Thousands of allocations: the server reads the history once per query, Python too."""
    for loaded in (_natars, _natars_blocks):
        protocol = loaded().protocol
        arms = [a.id for a in protocol.arms]
        patients = _natars_patients(protocol, 2001)
        history = [
            PriorAllocation(i, arms[(i * 31 // 7) % 2], f)
            for i, f in enumerate(patients[:-1], start=1)
        ]
        expected = allocate(protocol.allocation, arms, history, patients[-1], 2001, DrawStream(KEY))
        started = time.perf_counter()
        got = sql_decide(pg, protocol.allocation, arms, history, patients[-1], 2001, KEY)
        elapsed = time.perf_counter() - started
        assert canonical(got) == canonical(expected)
        assert elapsed < 5.0, f"{protocol.allocation.method}: {elapsed:.2f}s for 2000 records"


# --- the pieces ----------------------------------------------------------------------------

EDGE_LABELS = ["", "block", "all", "a" * 300, "histology=LMS|site=PKUIH", "\\|\\=", "日本語", "é"]


@pytest.mark.parametrize("secret_length", [0, 16, 32, 64, 65, 100])
def test_trial_key_matches_for_edge_trial_ids_and_secret_lengths(pg, secret_length):
    secret = bytes((7 * i + 3) % 256 for i in range(secret_length))
    for trial in [*EDGE_LABELS, "NATARS-R"]:
        got = scalar(pg, "SELECT sarcoma_trial_key(:s, :t)", s=secret, t=trial)
        assert bytes(got) == trial_key(secret, trial), trial


def test_derived_keys_and_first_stream_bytes_match(pg):
    for stratum in EDGE_LABELS:
        for index in [0, 1, 9, 10, 255, 256, 10**6, -1, 2**40]:
            got = scalar(
                pg,
                "SELECT sarcoma_derive(:k, sarcoma_label_text('block') || sarcoma_label_text(:s)"
                " || sarcoma_label_int(:i))",
                k=KEY,
                s=stratum,
                i=index,
            )
            assert bytes(got) == derived_key(KEY, "block", stratum, index), (stratum, index)
    got = scalar(
        pg,
        "SELECT sarcoma_stream_block(:k, 0) || sarcoma_stream_block(:k, 1)"
        " || sarcoma_stream_block(:k, 2)",
        k=KEY,
    )
    assert int.from_bytes(bytes(got), "big") == DrawStream(KEY).bits(3 * 256)


RANDBELOW = """
SELECT r.value, r.buf, r.used FROM sarcoma_stream_randbelow(:k, :n, :buf, :used) AS r
"""


def _server_randbelow(conn: Connection, key: bytes, bounds: Sequence[int]) -> list[int]:
    buf, used, out = b"", 0, []
    for n in bounds:
        with conn.begin_nested():
            value, buf, used = conn.execute(
                text(RANDBELOW), {"k": key, "n": n, "buf": buf, "used": used}
            ).one()
        out.append(value)
    return out


def test_randbelow_consumes_the_stream_as_python_does(pg):
    """Rejection sampling: same bits per try, same bytes per try, nothing consumed for n = 1."""
    bounds = [1, 2, 3, 1, 7, 8, 9, 255, 256, 257, 1000, 65536, 65537, 2**40 + 3, 2**53, 5, 3]
    for key in (KEY, trial_key(b"\xff" * 32, "x"), derived_key(KEY, "minimization", 1)):
        stream = DrawStream(key)
        assert _server_randbelow(pg, key, bounds) == [stream.randbelow(n) for n in bounds]


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=16, max_size=40), st.lists(st.integers(1, 300), max_size=40))
def test_randbelow_sequences(pg, key, bounds):
    stream = DrawStream(key)
    assert _server_randbelow(pg, key, bounds) == [stream.randbelow(n) for n in bounds]


@pytest.mark.parametrize(
    ("arms", "ratio", "sizes"),
    [
        (["A", "B"], {"A": 1, "B": 1}, [2, 4]),
        (["A", "B"], {"A": 2, "B": 1}, [3, 3, 6]),
        (["A", "B", "C"], {"A": 1, "B": 2, "C": 3}, [6, 12, 18]),
        (["A"], {"A": 1}, [1]),  # one size, one slot: no byte is drawn
        (["A", "B"], {"A": 1, "B": 1}, [600]),  # randbelow over 256: two bytes a try
    ],
)
def test_block_arms_match(pg, arms, ratio, sizes):
    for stratum in EDGE_LABELS:
        for index in range(4):
            got = scalar(
                pg,
                "SELECT sarcoma_block_arms(:k, :s, :i, CAST(:arms AS text[]),"
                " CAST(:ratio AS integer[]), CAST(:sizes AS integer[]))",
                k=KEY,
                s=stratum,
                i=index,
                arms=arms,
                ratio=[ratio[a] for a in arms],
                sizes=sizes,
            )
            assert got == block_arms(DrawStream(KEY), stratum, index, arms, ratio, sizes)


def test_stratum_keys_match(pg):
    fields = ["histology", "f|=\\", "site"]
    for values in (["LMS", "PKUIH", "x"], ["a|b", "=", "\\"], ["\\|", "|=", "é日"]):
        got = scalar(
            pg,
            "SELECT sarcoma_stratum_key(CAST(:f AS text[]), CAST(:v AS text[]))",
            f=fields,
            v=values,
        )
        assert got == stratum_key(fields, dict(zip(fields, values, strict=True)))
    assert scalar(pg, "SELECT sarcoma_stratum_key('{}', '{}')") == stratum_key([], {})


@pytest.mark.parametrize(
    "x",
    [
        0.0,
        1.0,
        2.0,
        48.0,
        0.1,
        1 / 3,
        0.8,
        1e-05,
        1e-300,
        5e-324,
        1e16,
        2.0**53,
        123456789.125,
        0.29698363073656553,
        1.7976931348623157e308,
        9e18,
        2.0**70,
    ],
)
def test_json_floats_read_back_as_the_same_float(pg, x):
    got = scalar(pg, "SELECT sarcoma_json_float(CAST(:x AS double precision))", x=x)
    assert type(got) is float and got == x


def test_the_functions_carry_their_own_search_path(pg):
    """A SECURITY DEFINER wrapper runs them under a fixed search_path; here the caller's path
    holds neither the functions' schema nor pgcrypto's, and the call is schema-qualified."""
    protocol = _natars().protocol
    arms = [a.id for a in protocol.arms]
    factors = {"histology": "LMS", "site": "BJFH"}
    schema = scalar(pg, "SELECT current_schema()")
    with pg.begin_nested() as nested:
        pg.execute(text("SELECT set_config('search_path', 'pg_catalog', true)"))
        got = decide(pg, protocol.allocation, arms, [], factors, 1, KEY, schema=schema)
        blocks = _natars_blocks().protocol
        got_blocks = decide(pg, blocks.allocation, arms, [], factors, 1, KEY, schema=schema)
        nested.rollback()
    assert canonical(got) == canonical(
        allocate(protocol.allocation, arms, [], factors, 1, DrawStream(KEY))
    )
    assert canonical(got_blocks) == canonical(
        allocate(blocks.allocation, arms, [], factors, 1, DrawStream(KEY))
    )
    assert scalar(pg, "SELECT current_setting('search_path')").startswith(schema)
