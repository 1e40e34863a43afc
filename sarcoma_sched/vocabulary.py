"""The kinds of scheduled event, in the order of a patient's pathway.

A module of its own with no imports, so the command line can offer them as choices without
loading the protocol models (pydantic) on start-up.
"""

__all__ = ["EVENT_KINDS", "TREATMENT_KINDS", "WORKLOAD_KINDS"]

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

# The kinds that are the allocated intervention itself (the CONSORT "received" question and the
# SDTM elements use the same list).
TREATMENT_KINDS = ("radiotherapy", "infusion", "oral", "surgery")

# The kinds that are ward, theatre or clinic load: every kind but oral home medication, in the
# order of a patient's pathway (the workload report counts these).
WORKLOAD_KINDS = tuple(kind for kind in EVENT_KINDS if kind != "oral")
