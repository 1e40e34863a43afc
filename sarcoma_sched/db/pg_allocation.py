"""The randomized allocation decision as PostgreSQL functions, bit for bit the Python allocator's.

Multi-site trust (issue 19) keeps the trial secret in a table no site role can read; a
coordinator's SECURITY DEFINER call then decides the arm on the server. ``allocation verify``
(statisticians, Python) must keep replaying the same sequence, so the functions below compute
exactly what :func:`sarcoma_sched.allocation.methods.allocate` computes:

* the stream (:mod:`sarcoma_sched.allocation.stream`): labels with a type tag and a 4-byte
  big-endian length, ``derive`` and the counter-mode blocks as pgcrypto HMAC-SHA256, ``bits``
  consuming whole bytes from the front of the stream, ``randbelow`` by rejection sampling with
  the same byte consumption (``k = bit_length(n - 1)``, nothing consumed for ``n = 1``),
  ``uniform`` as ``bits(53) / 2**53``;
* permuted blocks (:mod:`~sarcoma_sched.allocation.blocks`): size by ``choice``, arms in
  protocol order repeated ``ratio * size / sum(ratio)`` times, then Fisher–Yates;
* minimization (:mod:`~sarcoma_sched.allocation.minimization`): integer imbalances in
  ``lcm / ratio`` units, float totals summed factor by factor in declared order (the order
  Python adds them), the same tie tolerance, the same biased coin and tie break;
* the decision (:mod:`~sarcoma_sched.allocation.methods`): stratum key escaping, factor levels
  (JSON booleans become ``true``/``false``), ``detail``, ``concealed`` and ``deterministic``.

Floats leave the server as JSON numbers that parse back to the same double: the shortest
round-trip text (``extra_float_digits = 1``), and an integral float keeps a ``.0`` so Python
reads a float, not an int (``2.0``, as ``json.dumps`` writes the Python decision).

Functions, all named ``sarcoma_*`` and installed into one schema by :func:`install`:

``sarcoma_trial_key(secret bytea, trial_id text) RETURNS bytea``
    :func:`~sarcoma_sched.allocation.stream.trial_key`.
``sarcoma_decide(method jsonb, arms text[], history jsonb, factors jsonb,
patient_position integer, key bytea) RETURNS jsonb``
    :func:`~sarcoma_sched.allocation.methods.allocate` for ``fixed``, ``stratified_blocks`` and
    ``minimization`` (``assigned`` needs the coordinator's arm and stays in Python). ``method``
    is the protocol's allocation section (``model_dump(mode="json")``), ``arms`` in protocol
    order, ``history`` a JSON array of ``{position, arm, factors}`` in position order (every
    earlier allocation, withdrawn patients too), ``factors`` the new patient's (text or JSON
    booleans), ``patient_position`` his 1-based trial position (``position`` is a keyword
    PostgreSQL refuses as a parameter name), ``key`` the trial key. Returns ``{arm, stratum,
    factors, detail, concealed, deterministic}``. What Python refuses with an
    :class:`~sarcoma_sched.errors.AllocationError` raises SQLSTATE ``SA001`` with the same
    message (so does a block size that is not a multiple of the ratio's sum, a ``ValueError``
    in Python; and a ratio that does not name the arms is listed arms first, in arm order, as
    jsonb keeps no key order).

and the pieces they are built from (``sarcoma_label_text``, ``sarcoma_label_int``,
``sarcoma_derive``, ``sarcoma_stream_block``, ``sarcoma_stream_randbelow``,
``sarcoma_block_arms``, ``sarcoma_locate``, ``sarcoma_stratum_key``, ``sarcoma_factor_level``,
``sarcoma_json_float``), which the tests compare one by one with their Python counterparts.

Name resolution does not depend on the caller's search_path, so a SECURITY DEFINER wrapper
(with its own fixed path) or any role gets the same result: the PL/pgSQL functions carry
``SET search_path = <schema>, <pgcrypto's schema>, pg_temp``, except the per-block pair
(``sarcoma_block_arms``, ``sarcoma_locate``), which qualify every name instead because a SET
clause costs more than the block itself; the SQL-bodied functions are bound to what they name
when they are created, pgcrypto's ``hmac`` by its schema.

Cost, measured with 3000 recorded allocations: a few tens of milliseconds per decision (three
passes over the history for minimization, two plus one per block of the stratum for blocks).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from sarcoma_sched.allocation.records import Decision, PriorAllocation
from sarcoma_sched.errors import AllocationError

__all__ = [
    "ALLOCATION_SQLSTATE",
    "DECIDE_SQL",
    "decide",
    "decide_sql",
    "ensure_pgcrypto",
    "history_json",
    "install",
    "pgcrypto_schema",
]

# What the functions raise where Python raises AllocationError (class "SA": implementation-
# defined, unused by PostgreSQL itself).
ALLOCATION_SQLSTATE = "SA001"

# The SQL, with placeholders filled in by decide_sql(): __SEARCH_PATH__ (the SET clause of the
# PL/pgSQL functions), __CRYPTO__ (pgcrypto's schema) and __SCHEMA__ (the functions' own, for
# the two hot loops that qualify names instead of paying for a SET clause on every call). No
# percent sign appears in it, so any driver executes it as is: messages are concatenated.
DECIDE_SQL = r"""
-- Stream labels: type tag, 4-byte big-endian byte length, bytes (allocation/stream.py _encode).
CREATE OR REPLACE FUNCTION sarcoma_label_text(label text) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN 's'::bytea || int4send(octet_length(convert_to(label, 'UTF8')))
       || convert_to(label, 'UTF8');

CREATE OR REPLACE FUNCTION sarcoma_label_int(label bigint) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN 'i'::bytea || int4send(octet_length(label::text)) || convert_to(label::text, 'UTF8');

-- DrawStream(key).derive(*labels) has this key; labels already encoded and concatenated.
CREATE OR REPLACE FUNCTION sarcoma_derive(key bytea, labels bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN __CRYPTO__.hmac(decode('01', 'hex') || 'sarcoma-sched/derive/v1'::bytea || labels,
                       key, 'sha256');

-- Output block number `counter` (from 0) of the stream keyed `key`: 32 bytes.
CREATE OR REPLACE FUNCTION sarcoma_stream_block(key bytea, counter bigint) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN __CRYPTO__.hmac(decode('02', 'hex') || 'sarcoma-sched/draw/v1'::bytea || int8send(counter),
                       key, 'sha256');

CREATE OR REPLACE FUNCTION sarcoma_trial_key(secret bytea, trial_id text) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN __CRYPTO__.hmac('sarcoma-sched/trial-key/v1'::bytea || sarcoma_label_text(trial_id),
                       secret, 'sha256');

-- DrawStream.randbelow(n). The stream's state is (buf, used): every byte generated so far
-- (block i is bytes 32*i .. 32*i+31) and how many of them draws have consumed. Start from
-- ('', 0); pass the returned state to the next draw of the same stream.
CREATE OR REPLACE FUNCTION sarcoma_stream_randbelow(
    key bytea, n bigint, INOUT buf bytea, INOUT used integer, OUT value bigint)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE __SEARCH_PATH__
AS $body$
DECLARE
    k integer := 0;
    nbytes integer;
BEGIN
    IF n IS NULL OR n <= 0 THEN
        RAISE EXCEPTION USING MESSAGE = 'randbelow needs n >= 1, got ' || coalesce(n::text, 'NULL');
    END IF;
    IF n > 9007199254740992 THEN
        RAISE EXCEPTION USING MESSAGE = 'randbelow is implemented up to n = 2**53, got ' || n;
    END IF;
    WHILE (1::bigint << k) < n LOOP  -- k = (n - 1).bit_length()
        k := k + 1;
    END LOOP;
    nbytes := (k + 7) / 8;
    LOOP
        WHILE octet_length(buf) - used < nbytes LOOP
            buf := buf || sarcoma_stream_block(key, octet_length(buf) / 32);
        END LOOP;
        value := 0;
        FOR i IN 0 .. nbytes - 1 LOOP
            value := value * 256 + get_byte(buf, used + i);
        END LOOP;
        used := used + nbytes;
        value := value >> mod(8 - mod(k, 8), 8);
        EXIT WHEN value < n;
    END LOOP;
END
$body$;

-- A JSON number that parses back to exactly x, and to a float (2.0, not 2) when x is integral.
CREATE OR REPLACE FUNCTION sarcoma_json_float(x double precision) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE __SEARCH_PATH__ SET extra_float_digits = 1
AS $body$
BEGIN
    -- x::text is float8out: the shortest text that round-trips (extra_float_digits > 0);
    -- numeric keeps its exact value, and a scale of 1 writes an integral one as 48.0.
    IF x = trunc(x) THEN
        RETURN to_jsonb(round(x::text::numeric, 1));
    END IF;
    RETURN to_jsonb(x);
END
$body$;

-- records.py stratum_key: 'histology=LMS|site=PKUIH', separators escaped; 'all' if unstratified.
CREATE OR REPLACE FUNCTION sarcoma_stratum_escape(t text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN replace(replace(replace(t, E'\\', E'\\\\'), '|', E'\\|'), '=', E'\\=');

CREATE OR REPLACE FUNCTION sarcoma_stratum_key(fields text[], vals text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN coalesce(cardinality(fields), 0) = 0 THEN 'all' ELSE (
    SELECT string_agg(sarcoma_stratum_escape(f) || '=' || sarcoma_stratum_escape(v), '|'
                      ORDER BY i)
    FROM unnest(fields, vals) WITH ORDINALITY AS u(f, v, i)) END;

-- Python's repr() of a str, for messages ('name', or "it's").
CREATE OR REPLACE FUNCTION sarcoma_repr(t text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE WHEN strpos(t, '''') > 0 AND strpos(t, '"') = 0
            THEN '"' || replace(t, E'\\', E'\\\\') || '"'
            ELSE '''' || replace(replace(t, E'\\', E'\\\\'), '''', E'\\''') || '''' END;

-- methods.py _values / records.py factor_level for one field: the level's text, or SA001.
CREATE OR REPLACE FUNCTION sarcoma_factor_level(factors jsonb, field text, who text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE __SEARCH_PATH__
AS $body$
DECLARE
    v jsonb := factors -> field;
BEGIN
    IF v IS NULL OR v = 'null'::jsonb OR v = '""'::jsonb THEN
        RAISE EXCEPTION USING ERRCODE = 'SA001',
            MESSAGE = who || ' has no value for allocation factor ' || sarcoma_repr(field);
    END IF;
    CASE jsonb_typeof(v)
        WHEN 'string' THEN RETURN v #>> '{}';
        WHEN 'boolean' THEN RETURN v::text;  -- 'true' / 'false'
        ELSE RAISE EXCEPTION USING ERRCODE = 'SA001',
            MESSAGE = 'a factor value must be text or a boolean, not ' || v::text;
    END CASE;
END
$body$;

-- blocks.py block_arms: block number `block` (from 0) of `stratum`, in allocation order.
-- `ratio` per arm, in the order of `arms` (protocol order). The draws (choice of the size, then
-- Fisher-Yates) are sarcoma_stream_randbelow written out in place: this runs once per block of
-- the stratum at every allocation, and a call per draw would double its cost. No SET clause for
-- the same reason: the names it uses are qualified.
CREATE OR REPLACE FUNCTION sarcoma_block_arms(
    key bytea, stratum text, block integer, arms text[], ratio integer[], sizes integer[])
RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $body$
DECLARE
    skey bytea := __SCHEMA__.sarcoma_derive(key, __SCHEMA__.sarcoma_label_text('block')
        || __SCHEMA__.sarcoma_label_text(stratum) || __SCHEMA__.sarcoma_label_int(block));
    buf bytea := '';
    used integer := 0;
    bound integer;
    k integer;
    nbytes integer;
    r bigint;
    size integer;
    total integer := 0;
    per_unit integer;
    items text[] := '{}';
    i integer := 0;  -- Fisher-Yates index, 0-based as in Python; 0 while choosing the size
    swap text;
BEGIN
    IF coalesce(cardinality(sizes), 0) = 0 THEN
        RAISE EXCEPTION USING MESSAGE = 'cannot choose from an empty sequence (block sizes)';
    END IF;
    bound := cardinality(sizes);
    LOOP
        -- r := randbelow(bound)
        k := 0;
        WHILE (1 << k) < bound LOOP
            k := k + 1;
        END LOOP;
        nbytes := (k + 7) / 8;
        LOOP
            WHILE octet_length(buf) - used < nbytes LOOP
                buf := buf || __SCHEMA__.sarcoma_stream_block(skey, octet_length(buf) / 32);
            END LOOP;
            r := 0;
            FOR b IN 0 .. nbytes - 1 LOOP
                r := r * 256 + get_byte(buf, used + b);
            END LOOP;
            used := used + nbytes;
            r := r >> mod(8 - mod(k, 8), 8);
            EXIT WHEN r < bound;
        END LOOP;
        IF i = 0 THEN  -- size = choice(sizes); the block in protocol order
            size := sizes[r + 1];
            FOR a IN 1 .. cardinality(arms) LOOP
                total := total + ratio[a];
            END LOOP;
            IF mod(size, total) <> 0 THEN
                RAISE EXCEPTION USING ERRCODE = 'SA001', MESSAGE = 'block size ' || size
                    || ' is not a multiple of the ratio''s sum (' || total || ')';
            END IF;
            per_unit := size / total;
            FOR a IN 1 .. cardinality(arms) LOOP
                FOR c IN 1 .. ratio[a] * per_unit LOOP
                    items := items || arms[a];
                END LOOP;
            END LOOP;
            i := cardinality(items) - 1;
        ELSE  -- swap items[i], items[r]
            swap := items[i + 1];
            items[i + 1] := items[r + 1];
            items[r + 1] := swap;
            i := i - 1;
        END IF;
        EXIT WHEN i < 1;
        bound := i + 1;
    END LOOP;
    RETURN items;
END
$body$;

-- blocks.py locate: the block and slot of the patient after n_before in the stratum.
CREATE OR REPLACE FUNCTION sarcoma_locate(
    key bytea, stratum text, n_before bigint, arms text[], ratio integer[], sizes integer[],
    OUT block_index integer, OUT block_arms text[], OUT slot integer)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $body$
DECLARE
    start bigint := 0;
BEGIN
    block_index := 0;
    LOOP
        block_arms := __SCHEMA__.sarcoma_block_arms(key, stratum, block_index, arms, ratio, sizes);
        IF n_before < start + cardinality(block_arms) THEN
            slot := n_before - start;
            RETURN;
        END IF;
        start := start + cardinality(block_arms);
        block_index := block_index + 1;
    END LOOP;
END
$body$;

-- methods.py allocate(): the decision for the patient at `position`.
CREATE OR REPLACE FUNCTION sarcoma_decide(
    method jsonb, arms text[], history jsonb, factors jsonb, patient_position integer, key bytea)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE __SEARCH_PATH__ SET extra_float_digits = 1
AS $body$
DECLARE
    kind text := method ->> 'method';
    na integer := coalesce(cardinality(arms), 0);
    hist jsonb := coalesce(history, '[]'::jsonb);
    bad record;
    last bigint;
    fields text[];
    vals text[] := '{}';
    ratio integer[];
    stratum text;
    patient jsonb;
    -- blocks
    n_before bigint;
    loc record;
    forced integer;
    -- minimization
    nf integer;
    weights double precision[];
    probability double precision;
    imbalance text;
    g integer;
    lcm_ integer;
    m bigint[];
    counts integer[];
    x bigint[];
    d bigint;
    s bigint;
    q bigint;
    lo bigint;
    hi bigint;
    w double precision;
    totals double precision[];
    best double precision;
    lim double precision;
    denominator double precision;
    preferred integer[] := '{}';
    pool integer[] := '{}';
    skey bytea;
    head bytea;
    u double precision;
    chosen integer;
    draw record;
    scores jsonb := '{}';
BEGIN
    -- _check_arms
    IF na = 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'SA001', MESSAGE = 'a trial needs at least one arm';
    END IF;
    IF (SELECT count(DISTINCT a) FROM unnest(arms) AS a) <> na
       OR array_position(arms, NULL) IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'SA001',
            MESSAGE = 'arm ids repeat: ' || array_to_string(arms, ', ', 'None');
    END IF;
    -- _check_history: positions strictly increasing from 1, every arm known, `position` after.
    IF jsonb_typeof(hist) <> 'array' THEN
        RAISE EXCEPTION USING ERRCODE = 'SA001',
            MESSAGE = 'the allocation history is not a JSON array';
    END IF;
    SELECT e.pos, e.arm, e.last INTO bad
    FROM (SELECT h.i, (h.e ->> 'position')::bigint AS pos, h.e ->> 'arm' AS arm,
                 lag((h.e ->> 'position')::bigint, 1, 0::bigint) OVER (ORDER BY h.i) AS last
          FROM jsonb_array_elements(hist) WITH ORDINALITY AS h(e, i)) AS e
    WHERE e.pos IS NULL OR e.pos <= e.last OR e.arm IS NULL OR NOT e.arm = ANY (arms)
    ORDER BY e.i
    LIMIT 1;
    IF FOUND THEN
        IF bad.pos IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'SA001',
                MESSAGE = 'allocation history entry after position ' || bad.last
                    || ' has no position';
        ELSIF bad.pos <= bad.last THEN
            RAISE EXCEPTION USING ERRCODE = 'SA001',
                MESSAGE = 'allocation history out of order: position ' || bad.pos
                    || ' after ' || bad.last;
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'SA001', MESSAGE = 'allocation at position ' || bad.pos
            || ' is to unknown arm ' || coalesce(sarcoma_repr(bad.arm), 'None');
    END IF;
    last := coalesce((hist -> -1 ->> 'position')::bigint, 0);
    IF patient_position IS NULL OR patient_position <= last THEN
        RAISE EXCEPTION USING ERRCODE = 'SA001', MESSAGE = 'position '
            || coalesce(patient_position::text, 'None')
            || ' is not after the last recorded allocation (' || last || ')';
    END IF;

    IF kind = 'fixed' THEN
        IF NOT (method ->> 'arm') = ANY (arms) OR method ->> 'arm' IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'SA001', MESSAGE = 'the fixed arm '
                || coalesce(sarcoma_repr(method ->> 'arm'), 'None')
                || ' is not an arm of the trial';
        END IF;
        RETURN jsonb_build_object('arm', method ->> 'arm', 'stratum', NULL, 'factors', '{}'::jsonb,
            'deterministic', true, 'detail', jsonb_build_object('method', 'fixed'),
            'concealed', '{}'::jsonb);
    ELSIF kind = 'assigned' THEN
        RAISE EXCEPTION USING ERRCODE = 'SA001', MESSAGE = 'this trial''s arms are assigned by the '
            || 'coordinator: name the arm (one of ' || array_to_string(arms, ', ') || ')';
    ELSIF kind = 'stratified_blocks' THEN
        fields := ARRAY(SELECT f FROM jsonb_array_elements_text(coalesce(method -> 'strata', '[]'))
                                      WITH ORDINALITY AS u(f, i) ORDER BY i);
    ELSIF kind = 'minimization' THEN
        fields := ARRAY(SELECT f ->> 'field' FROM jsonb_array_elements(method -> 'factors')
                                                  WITH ORDINALITY AS u(f, i) ORDER BY i);
    ELSE
        RAISE EXCEPTION USING ERRCODE = 'SA001',
            MESSAGE = 'unknown allocation method ' || coalesce(sarcoma_repr(kind), 'None');
    END IF;

    -- _check_ratio
    IF jsonb_typeof(method -> 'ratio') IS DISTINCT FROM 'object'
       OR (SELECT count(*) FROM jsonb_object_keys(method -> 'ratio')) <> na
       OR EXISTS (SELECT 1 FROM unnest(arms) AS a WHERE NOT (method -> 'ratio') ? a) THEN
        -- jsonb keeps no key order: the names of arms in arm order, then the others.
        RAISE EXCEPTION USING ERRCODE = 'SA001', MESSAGE = 'the allocation ratio names '
            || coalesce((SELECT string_agg(r, ', ' ORDER BY array_position(arms, r), r)
                         FROM jsonb_object_keys(
                   CASE WHEN jsonb_typeof(method -> 'ratio') = 'object' THEN method -> 'ratio'
                        ELSE '{}' END) AS r), '')
            || ' but the arms are ' || array_to_string(arms, ', ');
    END IF;
    ratio := ARRAY(SELECT (method -> 'ratio' ->> a)::integer
                   FROM unnest(arms) WITH ORDINALITY AS u(a, i) ORDER BY i);

    -- _values: the new patient's levels first, then every recorded patient's.
    patient := coalesce(factors, '{}');
    FOR i IN 1 .. coalesce(cardinality(fields), 0) LOOP
        vals := vals || sarcoma_factor_level(patient, fields[i], 'the patient');
    END LOOP;
    SELECT h.e INTO bad
    FROM jsonb_array_elements(hist) WITH ORDINALITY AS h(e, i)
         CROSS JOIN unnest(fields) WITH ORDINALITY AS f(name, j)
    WHERE NOT coalesce(jsonb_typeof(h.e -> 'factors' -> f.name) = 'boolean'
                       OR (jsonb_typeof(h.e -> 'factors' -> f.name) = 'string'
                           AND h.e -> 'factors' -> f.name <> '""'::jsonb), false)
    ORDER BY h.i, f.j
    LIMIT 1;
    IF FOUND THEN
        FOR i IN 1 .. cardinality(fields) LOOP  -- raises at the first bad field, as Python does
            PERFORM sarcoma_factor_level(bad.e -> 'factors', fields[i],
                                         'position ' || (bad.e ->> 'position'));
        END LOOP;
    END IF;
    stratum := sarcoma_stratum_key(fields, vals);
    -- From here on every recorded level is a non-empty string or a boolean, and ->> gives its
    -- factor_level: the text, or 'true' / 'false'.

    IF kind = 'stratified_blocks' THEN
        IF key IS NULL OR octet_length(key) < 16 THEN
            RAISE EXCEPTION USING MESSAGE = 'a draw stream key needs at least 128 bits';
        END IF;
        -- Patients already in the stratum: the same level of every stratification field.
        SELECT count(*) INTO n_before
        FROM jsonb_array_elements(hist) AS h(e)
        WHERE NOT EXISTS (SELECT 1 FROM unnest(fields, vals) AS f(name, val)
                          WHERE (h.e -> 'factors' ->> f.name) IS DISTINCT FROM f.val);
        loc := sarcoma_locate(key, stratum, n_before, arms, ratio, ARRAY(
            SELECT b::integer FROM jsonb_array_elements_text(method -> 'block_sizes')
                                   WITH ORDINALITY AS u(b, i) ORDER BY i));
        -- blocks.py forced_from: the first slot from which every remaining arm is the same.
        forced := cardinality(loc.block_arms) - 1;  -- 0-based: the last slot
        WHILE forced > 0
              AND loc.block_arms[forced] = loc.block_arms[cardinality(loc.block_arms)] LOOP
            forced := forced - 1;
        END LOOP;
        RETURN jsonb_build_object(
            'arm', loc.block_arms[loc.slot + 1],
            'stratum', stratum,
            'factors', coalesce(
                (SELECT jsonb_object_agg(f, v) FROM unnest(fields, vals) AS u(f, v)), '{}'),
            'deterministic', loc.slot >= forced,
            'detail', jsonb_build_object('method', 'stratified_blocks'),
            'concealed', jsonb_build_object('block', loc.block_index,
                                            'block_size', cardinality(loc.block_arms),
                                            'slot', loc.slot));
    END IF;

    -- Minimization (minimization.py MinimizationRule).
    nf := cardinality(fields);
    weights := ARRAY(SELECT coalesce((f ->> 'weight')::double precision, 1.0)
                     FROM jsonb_array_elements(method -> 'factors') WITH ORDINALITY AS u(f, i)
                     ORDER BY i);
    probability := (method ->> 'probability')::double precision;
    imbalance := coalesce(method ->> 'imbalance', 'range');
    IF imbalance NOT IN ('range', 'variance') THEN
        RAISE EXCEPTION USING ERRCODE = 'SA001',
            MESSAGE = 'unknown imbalance measure ' || sarcoma_repr(imbalance);
    END IF;
    IF key IS NULL OR octet_length(key) < 16 THEN
        RAISE EXCEPTION USING MESSAGE = 'a draw stream key needs at least 128 bits';
    END IF;
    -- counts[f][a]: recorded patients in arm a sharing the new patient's level of factor f.
    counts := array_fill(0, ARRAY[nf, na]);
    FOR bad IN
        SELECT f.j, array_position(arms, h.e ->> 'arm') AS a, count(*)::integer AS c
        FROM jsonb_array_elements(hist) AS h(e)
             CROSS JOIN unnest(fields, vals) WITH ORDINALITY AS f(name, val, j)
        WHERE h.e -> 'factors' ->> f.name = f.val
        GROUP BY 1, 2
    LOOP
        counts[bad.j][bad.a] := bad.c;
    END LOOP;
    -- reduced_ratio, lcm, multipliers lcm / ratio: a factor's imbalance is an exact integer.
    g := ratio[1];
    FOR a IN 2 .. na LOOP
        g := gcd(g, ratio[a]);
    END LOOP;
    lcm_ := ratio[1] / g;
    FOR a IN 2 .. na LOOP
        lcm_ := lcm(lcm_, ratio[a] / g);
    END LOOP;
    m := ARRAY(SELECT (lcm_ / (r / g))::bigint
               FROM unnest(ratio) WITH ORDINALITY AS u(r, i) ORDER BY i);
    -- totals: the general loop of MinimizationRule.totals (its two-arm fast path adds the
    -- same products in the same order).
    totals := array_fill(0::double precision, ARRAY[na]);
    FOR f IN 1 .. nf LOOP
        w := weights[f];
        x := ARRAY(SELECT counts[f][i]::bigint * m[i] FROM generate_series(1, na) AS i ORDER BY i);
        FOR a IN 1 .. na LOOP
            x[a] := x[a] + m[a];
            IF imbalance = 'variance' THEN
                s := 0;
                q := 0;
                FOR i IN 1 .. na LOOP
                    s := s + x[i];
                    q := q + x[i] * x[i];
                END LOOP;
                d := na * q - s * s;
            ELSE
                lo := x[1];
                hi := x[1];
                FOR i IN 2 .. na LOOP
                    lo := least(lo, x[i]);
                    hi := greatest(hi, x[i]);
                END LOOP;
                d := hi - lo;
            END IF;
            x[a] := x[a] - m[a];
            totals[a] := totals[a] + w * d::double precision;
        END LOOP;
    END LOOP;
    -- preferred: within _TIE_TOLERANCE of the best total.
    best := totals[1];
    FOR a IN 2 .. na LOOP
        best := least(best, totals[a]);
    END LOOP;
    lim := best + '1e-9'::double precision * greatest(1.0::double precision, abs(best));
    FOR a IN 1 .. na LOOP
        IF totals[a] <= lim THEN
            preferred := preferred || a;
        END IF;
    END LOOP;
    -- choose: u = uniform() from stream.derive('minimization', position), then pick.
    skey := sarcoma_derive(key, sarcoma_label_text('minimization')
                                || sarcoma_label_int(patient_position));
    head := sarcoma_stream_block(skey, 0);
    d := 0;
    FOR i IN 0 .. 6 LOOP
        d := d * 256 + get_byte(head, i);
    END LOOP;
    u := (d >> 3)::double precision / '9007199254740992'::double precision;
    IF u < probability OR cardinality(preferred) = na THEN
        pool := preferred;
    ELSE
        FOR a IN 1 .. na LOOP
            IF NOT a = ANY (preferred) THEN
                pool := pool || a;
            END IF;
        END LOOP;
    END IF;
    IF cardinality(pool) = 1 THEN
        chosen := pool[1];
    ELSE
        draw := sarcoma_stream_randbelow(skey, cardinality(pool), head, 7);
        chosen := pool[draw.value + 1];
    END IF;
    -- natural units: the range, or population variance, of count / ratio.
    IF imbalance = 'variance' THEN
        denominator := (na::bigint * na * lcm_ * lcm_)::double precision;
    ELSE
        denominator := lcm_::double precision;
    END IF;
    FOR a IN 1 .. na LOOP
        scores := scores
            || jsonb_build_object(arms[a], sarcoma_json_float(totals[a] / denominator));
    END LOOP;
    RETURN jsonb_build_object(
        'arm', arms[chosen],
        'stratum', stratum,
        'factors', (SELECT jsonb_object_agg(f, v) FROM unnest(fields, vals) AS u(f, v)),
        'deterministic', probability >= 1.0 AND cardinality(preferred) = 1,
        'detail', jsonb_build_object(
            'method', 'minimization',
            'imbalance', imbalance,
            'scores', scores,
            'preferred', to_jsonb(ARRAY(SELECT arms[p] FROM unnest(preferred) WITH ORDINALITY
                                                             AS u(p, i) ORDER BY i)),
            'draw', sarcoma_json_float(u),
            'probability', sarcoma_json_float(probability),
            'took', CASE WHEN chosen = ANY (preferred) THEN 'preferred' ELSE 'other' END),
        'concealed', '{}'::jsonb);
END
$body$;
"""


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def decide_sql(schema: str, crypto_schema: str = "public") -> str:
    """:data:`DECIDE_SQL` for functions living in ``schema`` with pgcrypto in ``crypto_schema``."""
    search_path = f"SET search_path = {_ident(schema)}, {_ident(crypto_schema)}, pg_temp"
    return (
        DECIDE_SQL.replace("__SEARCH_PATH__", search_path)
        .replace("__CRYPTO__", _ident(crypto_schema))
        .replace("__SCHEMA__", _ident(schema))
    )


def pgcrypto_schema(connection: Connection) -> str | None:
    """The schema pgcrypto is installed in, or None when it is not installed."""
    return connection.execute(
        text(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
            " WHERE e.extname = 'pgcrypto'"
        )
    ).scalar_one_or_none()


def ensure_pgcrypto(connection: Connection, schema: str = "public") -> str:
    """pgcrypto's schema, creating the extension in ``schema`` first if it is not installed
    (which needs the privilege to create extensions). Another session creating it at the same
    moment is not an error."""
    found = pgcrypto_schema(connection)
    if found is not None:
        return found
    try:
        with connection.begin_nested():
            connection.exec_driver_sql(
                f"CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA {_ident(schema)}",
                execution_options={"no_parameters": True},
            )
    except IntegrityError:  # a concurrent CREATE EXTENSION won the race
        pass
    found = pgcrypto_schema(connection)
    if found is None:
        raise RuntimeError("CREATE EXTENSION pgcrypto did not install pgcrypto")
    return found


def install(connection: Connection, schema: str | None = None) -> None:
    """Create (or replace) the ``sarcoma_*`` functions in ``schema`` (default: the current
    schema), inside the caller's transaction. pgcrypto must be installed first
    (:func:`ensure_pgcrypto`)."""
    crypto = pgcrypto_schema(connection)
    if crypto is None:
        raise RuntimeError(
            "the PostgreSQL allocation functions need the pgcrypto extension: "
            "CREATE EXTENSION pgcrypto (as a role allowed to)"
        )
    if schema is None:
        schema = connection.execute(text("SELECT current_schema()")).scalar_one()
        if schema is None:
            raise RuntimeError("no current schema to install the allocation functions into")
    previous = connection.execute(text("SELECT current_setting('search_path')")).scalar_one()
    # The SQL-bodied functions resolve the names they use now, at creation: the target schema
    # first (the functions refer to each other unqualified), then pgcrypto's.
    connection.execute(
        text("SELECT set_config('search_path', :path, true)"),
        {"path": f"{_ident(schema)}, {_ident(crypto)}, pg_temp"},
    )
    connection.exec_driver_sql(
        decide_sql(schema, crypto), execution_options={"no_parameters": True}
    )
    # Not in a finally: after a failure the transaction is aborted and rolls the setting back.
    connection.execute(text("SELECT set_config('search_path', :path, true)"), {"path": previous})


def history_json(history: Sequence[PriorAllocation]) -> str:
    """The ``history`` argument of ``sarcoma_decide``."""
    return json.dumps(
        [{"position": p.position, "arm": p.arm, "factors": dict(p.factors)} for p in history]
    )


def decide(
    connection: Connection,
    method: Any,
    arm_ids: Sequence[str],
    history: Sequence[PriorAllocation],
    factors: Mapping[str, object],
    position: int,
    key: bytes,
    schema: str | None = None,
) -> Decision:
    """``allocate`` computed by the server's ``sarcoma_decide``: same arguments (the trial key
    instead of its stream), same :class:`Decision`, same :class:`AllocationError` messages.

    ``method`` is the protocol's allocation model (anything with ``model_dump``) or its JSON
    form as a dict."""
    data = method.model_dump(mode="json") if hasattr(method, "model_dump") else dict(method)
    name = "sarcoma_decide" if schema is None else f"{_ident(schema)}.sarcoma_decide"
    try:
        result = connection.execute(
            text(
                f"SELECT {name}(CAST(:method AS jsonb), CAST(:arms AS text[]),"
                " CAST(:history AS jsonb), CAST(:factors AS jsonb), :position, :key)"
            ),
            {
                "method": json.dumps(data),
                "arms": list(arm_ids),
                "history": history_json(history),
                "factors": json.dumps(dict(factors)),
                "position": position,
                "key": bytes(key),
            },
        ).scalar_one()
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == ALLOCATION_SQLSTATE:
            diag = getattr(exc.orig, "diag", None)
            message = getattr(diag, "message_primary", None) or str(exc.orig)
            raise AllocationError(message) from None
        raise
    return Decision(
        arm=result["arm"],
        stratum=result["stratum"],
        factors=dict(result["factors"]),
        deterministic=result["deterministic"],
        detail=dict(result["detail"]),
        concealed=dict(result["concealed"]),
    )
