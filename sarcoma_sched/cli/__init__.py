"""The ``sarcoma-sched`` command: parse, call the library, format. Nothing else lives here.

Heavy imports (pydantic, the protocol models) happen inside commands so that ``--help`` stays
fast for a coordinator's shell.
"""

from __future__ import annotations

import os
import sys

import click

from sarcoma_sched import __version__
from sarcoma_sched.cli.lazy import LazyCommands
from sarcoma_sched.errors import SarcomaSchedError

__all__ = ["COMMANDS", "cli", "main"]

DEBUG_ENV = "SARCOMA_SCHED_DEBUG"

EXIT_REFUSED = 1
EXIT_USAGE = 2

# The exit status of each family of error, first match wins: the one place it is decided. A
# usage error attempted nothing; every family of sarcoma_sched.errors is a refusal that changed
# nothing, so the whole tree needs one row until a family needs a status of its own.
EXIT_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (click.UsageError, EXIT_USAGE),
    (click.ClickException, EXIT_REFUSED),
    (click.exceptions.Abort, EXIT_REFUSED),
    (SarcomaSchedError, EXIT_REFUSED),
)


class _WorkflowGroup(click.Group):
    """Lists commands in the order a coordinator meets them, not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(
    cls=_WorkflowGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="sarcoma-sched")
@click.option(
    "--db",
    "db_url",
    metavar="URL|PATH",
    envvar="SARCOMA_SCHED_DB",
    help="Database: an SQLite file path or a postgresql:// URL "
    "[env SARCOMA_SCHED_DB; default ~/.local/share/sarcoma-sched/schedule.db].",
)
@click.option(
    "--user",
    envvar="SARCOMA_SCHED_USER",
    help="Who is acting, written to the audit log [env SARCOMA_SCHED_USER; default: OS user].",
)
@click.option("--debug", is_flag=True, help="Show a traceback on errors (for bug reports).")
@click.pass_context
def cli(ctx: click.Context, db_url: str | None, user: str | None, debug: bool) -> None:
    """Study-arm allocation and treatment schedules for the TNT-STS and NATARS sarcoma trials.

    Every listing takes --format table|csv|json (listings and report tables also xlsx --out
    FILE); a table fits the terminal, --wide shows it all. Commands that act take --format
    json. Dates are YYYY-MM-DD, today, +7d or -3d.
    Exit status: 0 done, 1 refused (one `error:` line, nothing changed), 2 usage error.

    \b
    Example:
      sarcoma-sched demo
      sarcoma-sched --db trial.db init
      sarcoma-sched --db trial.db screen NATARS --site PKUIH --from-file patient.toml
      sarcoma-sched --db trial.db visits --site PKUIH
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug or bool(os.environ.get(DEBUG_ENV))
    ctx.obj["db_url"] = db_url
    ctx.obj["user"] = user


# Each command by its module, in the order a coordinator meets them (``--help`` lists them so).
# Imported only when asked for (``cli.lazy``): a read command loads its own module alone.
COMMANDS = {
    "demo": "sarcoma_sched.cli.demo:demo",
    "init": "sarcoma_sched.cli.database:init",
    "site": "sarcoma_sched.cli.sites:site",
    "protocol": "sarcoma_sched.cli.protocol:protocol",
    "plan": "sarcoma_sched.cli.plan:plan",
    "screen": "sarcoma_sched.cli.patients:screen",
    "screenings": "sarcoma_sched.cli.listings:screenings",
    "patients": "sarcoma_sched.cli.listings:patients",
    "enroll": "sarcoma_sched.cli.patients:enroll",
    "allocate": "sarcoma_sched.cli.patients:allocate",
    "schedule": "sarcoma_sched.cli.events:schedule",
    "record": "sarcoma_sched.cli.events:record",
    "reschedule": "sarcoma_sched.cli.events:reschedule",
    "withdraw": "sarcoma_sched.cli.patients:withdraw",
    "exclude": "sarcoma_sched.cli.patients:exclude",
    "transition": "sarcoma_sched.cli.amendments:transition",
    "visits": "sarcoma_sched.cli.queries:visits",
    "overdue": "sarcoma_sched.cli.queries:overdue",
    "deviations": "sarcoma_sched.cli.queries:deviations",
    "capacity": "sarcoma_sched.cli.queries:capacity",
    "report": "sarcoma_sched.cli.report:report",
    "export": "sarcoma_sched.cli.export:export",
    "allocation": "sarcoma_sched.cli.allocation:allocation",
    "audit": "sarcoma_sched.cli.database:audit",
    "access": "sarcoma_sched.cli.access:access",
    "db": "sarcoma_sched.cli.database:db",
}
# Subcommands defined beside related commands rather than with their group.
SUBCOMMANDS = {
    "audit": ["sarcoma_sched.cli.listings:audit_log"],
    "protocol": [
        "sarcoma_sched.cli.screening_template:protocol_fields",
        "sarcoma_sched.cli.usdm:from_usdm",
        "sarcoma_sched.cli.amendments:activate",
    ],
    "export": ["sarcoma_sched.cli.usdm:usdm"],
}
cli.commands = LazyCommands(COMMANDS, SUBCOMMANDS)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user mistakes become one line each and exit 1; usage errors exit 2."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or bool(os.environ.get(DEBUG_ENV))
    undecodable = _undecodable(args)
    if undecodable is not None:
        click.echo(f"error: {undecodable}", err=True)
        sys.exit(EXIT_USAGE)
    try:
        code = cli.main(args=args, prog_name="sarcoma-sched", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exit_status(exc))
    except click.exceptions.Abort as exc:
        click.echo("Aborted.", err=True)
        sys.exit(exit_status(exc))
    except SarcomaSchedError as exc:
        if debug:
            raise
        for line in exc.lines():
            click.echo(f"error: {line}", err=True)
        sys.exit(exit_status(exc))
    except Exception as exc:
        # An unreachable or refusing database server (wrong host, port, user, database), or a
        # --db file that is not a database ("file is not a database", a damaged file), is the
        # user's environment, not a bug: one line. Only those two classes: an integrity or
        # programming error stays a traceback. sqlalchemy is only imported if used.
        errors = sys.modules.get("sqlalchemy.exc")
        if not debug and errors is not None and isinstance(exc, errors.DBAPIError):
            # PostgreSQL refused what the login's role or site does not allow (a grant, a
            # row-level security policy, the append-only log): the user's answer, one line.
            from sarcoma_sched.db.session import server_refusal

            refusal = server_refusal(exc)
            if refusal is not None:
                click.echo(f"error: {refusal}", err=True)
                sys.exit(exit_status(refusal))
        environment = errors is not None and (
            isinstance(exc, errors.OperationalError) or type(exc) is errors.DatabaseError
        )
        if debug or not environment:
            raise
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        click.echo(f"error: database: {reason}", err=True)
        sys.exit(EXIT_REFUSED)
    sys.exit(code if isinstance(code, int) else 0)


def exit_status(exc: BaseException) -> int:
    """The exit status for an error of a family in ``EXIT_STATUS``."""
    return next(code for family, code in EXIT_STATUS if isinstance(exc, family))


def _undecodable(args: list[str]) -> str | None:
    """Bytes that are not UTF-8 on the command line (or in the settings read from the
    environment) arrive as lone surrogates; no database or terminal can store or show them."""
    settings = [os.environ.get(n, "") for n in ("SARCOMA_SCHED_DB", "SARCOMA_SCHED_USER")]
    for text in [*args, *settings]:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return f"{text!a} is not UTF-8 text: check the terminal's encoding (LANG)"
    return None
