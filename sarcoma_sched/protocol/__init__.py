"""Protocol definitions: validated models, loading from TOML, content hash, readable summary."""

from sarcoma_sched.protocol.allocation import (
    Allocation,
    AssignedAllocation,
    BlockAllocation,
    Factor,
    FixedAllocation,
    MinimizationAllocation,
)
from sarcoma_sched.protocol.loader import (
    LoadedProtocol,
    bundled_protocol_dir,
    find_protocol,
    list_protocols,
    load_protocol,
    parse_protocol,
    validate_protocol,
)
from sarcoma_sched.protocol.model import Protocol
from sarcoma_sched.protocol.schedule import (
    ALLOCATION,
    Arm,
    Component,
    Constraint,
    Event,
    EventRef,
    Repeat,
    Series,
    SeriesPhase,
    Span,
    Timing,
    Window,
)
from sarcoma_sched.protocol.writer import dump_protocol

__all__ = [
    "ALLOCATION",
    "Allocation",
    "Arm",
    "AssignedAllocation",
    "BlockAllocation",
    "Component",
    "Constraint",
    "Event",
    "EventRef",
    "Factor",
    "FixedAllocation",
    "LoadedProtocol",
    "MinimizationAllocation",
    "Protocol",
    "Repeat",
    "Series",
    "SeriesPhase",
    "Span",
    "Timing",
    "Window",
    "bundled_protocol_dir",
    "dump_protocol",
    "find_protocol",
    "list_protocols",
    "load_protocol",
    "parse_protocol",
    "validate_protocol",
]
