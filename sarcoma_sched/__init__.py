"""sarcoma_sched: study-arm allocation and treatment-schedule engine for sarcoma trials."""

__version__ = "0.1.0"

__all__ = ["__version__"]
