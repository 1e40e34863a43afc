# usdm4 ships no type information (no py.typed): its classes are Any here, on purpose.
# mypy: disable-error-code="import-untyped"
"""Writing the USDM JSON of a protocol version, atomically."""

from __future__ import annotations

import json
from pathlib import Path

from sarcoma_sched.exports.files import write_atomic
from sarcoma_sched.protocol.model import Protocol

__all__ = ["write_usdm"]


def write_usdm(protocol: Protocol, out: Path) -> Path:
    from sarcoma_sched.exports.usdm.design import build_study

    wrapper = build_study(protocol)
    # usdm4's own serialisation (aliases, dates as ISO 8601), re-indented for review in a diff.
    text = json.dumps(json.loads(wrapper.to_json()), indent=2, ensure_ascii=False) + "\n"
    write_atomic(out, text.encode())
    return out
