"""An audit entry's hash is over the canonical JSON of its fields, however it is spelt.

``audit.entry_hash`` writes that JSON itself for the usual entry (an int and seven texts) and
falls back to ``canonical`` otherwise; PostgreSQL's trigger (migration 0006) and ``audit
verify`` hash the same bytes, so the two spellings must never differ, for any text at all.
"""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from sarcoma_sched.db.audit import canonical, entry_hash

_texts = st.text(st.characters(codec="utf-8"), max_size=40)


@given(
    seq=st.integers(min_value=-(2**63), max_value=2**63),
    fields=st.tuples(*[_texts] * 7),
)
def test_entry_hash_is_the_hash_of_the_canonical_list(seq, fields):
    expected = hashlib.sha256(canonical([seq, *fields]).encode()).hexdigest()
    assert entry_hash(seq, *fields) == expected


def test_a_known_entry_keeps_its_hash():
    # Pinned: a change to the spelling would break every chain already stored.
    digest = entry_hash(
        1,
        "2026-01-01T00:00:00+00:00",
        "ana",
        "screen",
        "patients",
        "1",
        '{"op":"insert"}',
        "0" * 64,
    )
    payload = (
        '[1,"2026-01-01T00:00:00+00:00","ana","screen","patients","1","{\\"op\\":\\"insert\\"}","'
        + "0" * 64
        + '"]'
    )
    assert digest == hashlib.sha256(payload.encode()).hexdigest()
