"""``access setup|grant|revoke|list``: people, roles and sites on a PostgreSQL database."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from sarcoma_sched.cli.context import acting_user, open_db
from sarcoma_sched.cli.output import emit_rows, format_option, sheet_format

if TYPE_CHECKING:
    from sarcoma_sched.services.access import GrantRow

__all__ = ["access"]

ROLE_NAMES = ("coordinator", "data_manager", "statistician", "monitor", "trial_admin")
COLUMNS = ("login", "role", "site", "granted_at", "granted_by")


@click.group()
def access() -> None:
    """Who may do what, enforced by PostgreSQL itself (roles, grants, row-level security).

    Each person logs in as their own PostgreSQL role; the database owner runs `access setup`
    once, then a trial admin grants each login a role, at named sites for coordinators and
    monitors. On SQLite there are no logins: file permissions are the only protection.

    \b
    Example:
      sarcoma-sched --db postgresql://owner@db/natars access setup
      sarcoma-sched --db postgresql://owner@db/natars access grant nurse_wang \\
        --role coordinator --site PKUIH
      sarcoma-sched --db postgresql://owner@db/natars access list
    """


@access.command("setup")
@click.option(
    "--prefix",
    metavar="NAME",
    help="Prefix of the group roles (default: the database's name), so two trial databases "
    "on one server do not share roles.",
)
@click.pass_context
def setup(ctx: click.Context, prefix: str | None) -> None:
    """Create the group roles and the owner role, grant each group its part, enable RLS.

    Run once by the database owner, and again after `db upgrade` (it is idempotent).

    \b
    Example:
      sarcoma-sched --db postgresql://owner@db/natars access setup --prefix natars
    """
    from sarcoma_sched.services.access import setup_access

    outcome = setup_access(open_db(ctx), acting_user(ctx), prefix)
    click.echo(f"access set up: owner {outcome.owner}; groups {', '.join(outcome.groups)}")
    click.echo("next: CREATE ROLE <login> LOGIN (with a password or certificate), then")
    click.echo("      sarcoma-sched access grant <login> --role ROLE [--site CODE]")


@access.command("grant")
@click.argument("login")
@click.option("--role", "role", type=click.Choice(ROLE_NAMES), required=True)
@click.option(
    "--site", "sites", multiple=True, metavar="CODE", help="A site (coordinator, monitor)."
)
@format_option
@click.pass_context
def grant(ctx: click.Context, login: str, role: str, sites: tuple[str, ...], fmt: str) -> None:
    """Give a login a role, at the named sites for coordinators and monitors (audited).

    \b
    Example:
      sarcoma-sched access grant nurse_wang --role coordinator --site PKUIH --site FJMUUH
    """
    from sarcoma_sched.services.access import grant_access

    rows = grant_access(open_db(ctx), acting_user(ctx), login, role, sites)
    emit_rows([_row(r) for r in rows], COLUMNS, fmt)


@access.command("revoke")
@click.argument("login")
@click.option("--role", "role", type=click.Choice(ROLE_NAMES))
@click.option("--site", metavar="CODE", help="Only the grant at this site.")
@click.pass_context
def revoke(ctx: click.Context, login: str, role: str | None, site: str | None) -> None:
    """Take a login's grants away: all, one role's, or one site's (audited).

    \b
    Example:
      sarcoma-sched access revoke nurse_wang --role coordinator --site FJMUUH
    """
    from sarcoma_sched.services.access import revoke_access

    removed = revoke_access(open_db(ctx), acting_user(ctx), login, role, site)
    click.echo(f"revoked {removed} grant(s) of {login}")


@access.command("list")
@click.option("--login", metavar="LOGIN", help="Only this login's grants.")
@sheet_format
@click.pass_context
def list_(ctx: click.Context, login: str | None, fmt: str) -> None:
    """The grants you may see: every grant for all-sites roles, your own otherwise.

    \b
    Example:
      sarcoma-sched access list --format csv
    """
    from sarcoma_sched.services.access import list_access

    emit_rows([_row(r) for r in list_access(open_db(ctx), login)], COLUMNS, fmt)


def _row(grant: GrantRow) -> dict[str, object]:
    return {
        "login": grant.login,
        "role": grant.role,
        "site": grant.site,
        "granted_at": grant.granted_at.isoformat(timespec="seconds"),
        "granted_by": grant.granted_by,
    }
