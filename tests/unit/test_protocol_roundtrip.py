"""A protocol written out as TOML and read back is the same protocol, with the same hash."""

from hypothesis import given

from sarcoma_sched.protocol import dump_protocol, parse_protocol
from tests.strategies import protocols


@given(protocols())
def test_any_valid_protocol_survives_a_toml_round_trip(protocol):
    text = dump_protocol(protocol)
    again = parse_protocol(text, "<roundtrip>")
    assert again == protocol
    assert again.content_hash == protocol.content_hash


@given(protocols())
def test_writing_is_stable_after_one_round_trip(protocol):
    once = dump_protocol(protocol)
    assert dump_protocol(parse_protocol(once)) == once
