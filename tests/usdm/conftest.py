"""The USDM tests run the installed command as the command tests do."""

from tests.cli.conftest import _no_ambient_settings, command, run

__all__ = ["_no_ambient_settings", "command", "run"]
