"""The kinds of scheduled event, in the order of a patient's pathway.

A module of its own with no imports, so the command line can offer them as choices without
loading the protocol models (pydantic) on start-up.
"""

__all__ = ["EVENT_KINDS"]

EVENT_KINDS = (
    "baseline",
    "radiotherapy",
    "labs",
    "infusion",
    "oral",
    "imaging",
    "surgery",
    "postop",
    "follow_up",
    "visit",
)
