"""The atomic file writer every export goes through: ``write_atomic`` and ``write_new``.

The code lives in ``sarcoma_sched.files`` because the pure core needs it too (the trial secret
key file) and the core may not import ``exports``; this module only re-exports it, so there is
one writer, found where the exporters are.
"""

from sarcoma_sched.files import AlreadyExists, FileWriteError, write_atomic, write_new

__all__ = ["AlreadyExists", "FileWriteError", "write_atomic", "write_new"]
