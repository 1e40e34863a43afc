"""The optional packages some exports need (the ``sdtm`` and ``usdm`` extras), asked for before
any file is written, so a missing one is one line naming the install command, never a traceback."""

from __future__ import annotations

from importlib.util import find_spec

from sarcoma_sched.errors import SarcomaSchedError

__all__ = ["require"]


def require(what: str, *modules: str, extra: str = "sdtm") -> None:
    """Refuse ``what`` unless every module in ``modules`` can be imported."""
    missing = [m for m in modules if find_spec(m) is None]
    if missing:
        raise SarcomaSchedError(
            f"{what} needs {', '.join(missing)}: pip install 'sarcoma-sched[{extra}]'"
        )
