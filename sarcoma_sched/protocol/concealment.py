"""What of a protocol each reader gets: the source for those who may predict nothing from it,
a concealed definition for site roles, and the allocation method for the server's draw.

Both derived texts are pure functions of the registered source; ``audit verify`` derives them
again and reports a stored one that differs (a method rewritten where only the server reads it).
"""

from __future__ import annotations

import json
from typing import Any

from sarcoma_sched.protocol.allocation import conceal
from sarcoma_sched.protocol.loader import validate_protocol
from sarcoma_sched.protocol.model import Protocol

__all__ = ["parse_site_definition", "server_allocation", "site_definition"]


def _dumps(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def site_definition(protocol: Protocol) -> str:
    """The definition as JSON, a randomized method reduced to design, ratio and factors."""
    data = protocol.model_dump(mode="json", by_alias=True)
    concealed = conceal(protocol.allocation, protocol.content_hash)
    if concealed is not None:
        data["allocation"] = concealed
    return _dumps(data)


def server_allocation(protocol: Protocol) -> str:
    """The method and the arms in protocol order: all the server's draw function reads."""
    return _dumps(
        {
            "method": protocol.allocation.model_dump(mode="json", by_alias=True),
            "arms": [a.id for a in protocol.arms],
        }
    )


def parse_site_definition(text: str, name: str) -> Protocol:
    return validate_protocol(json.loads(text), name)
