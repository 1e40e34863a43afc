"""Writing a protocol model back to TOML (used for round-trip checks and normalised output)."""

from __future__ import annotations

import tomli_w

from sarcoma_sched.protocol.model import Protocol

__all__ = ["dump_protocol"]


def dump_protocol(protocol: Protocol) -> str:
    # TOML has no null: unset optional values are left out and come back as their defaults.
    data = protocol.model_dump(mode="python", by_alias=True, exclude_none=True)
    return tomli_w.dumps(data)
