"""``protocol activate`` and ``transition``: an amendment site by site, a patient moved to it on
re-consenting."""

from __future__ import annotations

import datetime as dt

import click

from sarcoma_sched.cli.context import acting_user, open_db
from sarcoma_sched.cli.dates import DATE
from sarcoma_sched.cli.output import emit_json, format_option

__all__ = ["activate", "transition"]


@click.command()
@click.argument("protocol_id")
@click.argument("version")
@click.option(
    "--site", "site_code", required=True, help="The site whose ethics committee approved."
)
@click.option(
    "--approved",
    "approved_on",
    type=DATE,
    required=True,
    help="The ethics approval date at the site: the version runs there from this day.",
)
@format_option
@click.pass_context
def activate(
    ctx: click.Context,
    protocol_id: str,
    version: str,
    site_code: str,
    approved_on: dt.date,
    fmt: str,
) -> None:
    """Make a loaded VERSION of a protocol the one a site runs from its ethics approval date.

    Patients screened and enrolled at the site from that date on get this version; patients
    already enrolled keep theirs until they re-consent (`transition`). A trial's first version
    runs everywhere from the start; a later one runs only where it is activated. Refused for
    an approval dated after records the site already holds under another version. Trial admins
    only (the database refuses anyone else).

    \b
    Example:
      sarcoma-sched protocol activate NATARS 1.4 --site PKUIH --approved 2026-05-04
    """
    from sarcoma_sched.services.activations import activate_version

    outcome = activate_version(
        open_db(ctx), acting_user(ctx), protocol_id, version, site_code, approved_on
    )
    if fmt == "json":
        emit_json(
            {
                "protocol": outcome.protocol_id,
                "version": outcome.version,
                "site": outcome.site_code,
                "approved_on": outcome.approved_on.isoformat(),
                "previous": outcome.previous,
            }
        )
        return
    click.echo(
        f"{outcome.protocol_id} {outcome.version} active at {outcome.site_code} from "
        f"{outcome.approved_on} (it ran {outcome.previous} until then)"
    )


@click.command()
@click.argument("patient")
@click.option("--to", "to_version", required=True, help="The protocol version re-consented to.")
@click.option(
    "--reconsent-date",
    "reconsent_date",
    type=DATE,
    required=True,
    help="The day the patient signed the amended consent.",
)
@format_option
@click.pass_context
def transition(
    ctx: click.Context, patient: str, to_version: str, reconsent_date: dt.date, fmt: str
) -> None:
    """Move an enrolled PATIENT to another protocol version on re-consenting, and re-plan.

    The version must be active at the patient's site on the re-consent date (`protocol
    activate`). Recorded events stay as they are; open ones are planned again under the new
    version; an event it no longer has is cancelled (reason protocol_amendment), one it adds
    appears. Each changed event is printed old → new. Calendars exported again update in
    place: an event keeps its UID and its SEQUENCE goes up.

    \b
    Example:
      sarcoma-sched transition PKUIH-NATARS-0003 --to 1.4 --reconsent-date 2026-05-06
    """
    from sarcoma_sched.services.transitions import transition_patient

    outcome = transition_patient(
        open_db(ctx), acting_user(ctx), patient, to_version, reconsent_date
    )
    if fmt == "json":
        emit_json(
            {
                "patient": outcome.study_id,
                "protocol": outcome.protocol_id,
                "from_version": outcome.from_version,
                "to_version": outcome.to_version,
                "reconsent_date": outcome.reconsent_date.isoformat(),
                "changes": [c.as_json() for c in outcome.changes],
            }
        )
        return
    click.echo(
        f"{outcome.study_id}: {outcome.protocol_id} {outcome.from_version} → "
        f"{outcome.to_version} (re-consent {outcome.reconsent_date})"
    )
    if not outcome.allocated:
        click.echo("  not allocated yet: no calendar to re-plan")
        return
    if not outcome.changes:
        click.echo("  calendar unchanged")
        return
    for change in outcome.changes:
        old = "(new)" if change.before is None else str(change.before)
        click.echo(f"  {change.event_id} ({change.change}): {old} → {change.after}")
