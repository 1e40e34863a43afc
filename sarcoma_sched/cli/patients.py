"""The coordinator's patient commands: screen, enroll, allocate, withdraw, exclude."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from sarcoma_sched.cli.allocation import read_secret, secret_option
from sarcoma_sched.cli.context import acting_user, open_db
from sarcoma_sched.cli.dates import DATE, now, today
from sarcoma_sched.cli.output import emit_json, emit_rows, format_option, result_format
from sarcoma_sched.cli.reasons import reason_options
from sarcoma_sched.cli.schedule_output import emit_calendar, plan_rows
from sarcoma_sched.errors import InputFileError, Problem
from sarcoma_sched.limits import MAX_INPUT_FILE_BYTES
from sarcoma_sched.vocabulary import REASON_CODES, SEXES, EndKind, Sex

__all__ = ["allocate", "enroll", "exclude", "screen", "withdraw"]


def _file_values(from_file: Path | None) -> dict[str, Any]:
    if from_file is None:
        return {}
    from sarcoma_sched.input_files import load_table

    source = str(from_file)
    # A regular UTF-8 file of bounded size and nesting, TOML or (.json) JSON: a FIFO, a device
    # or a 100,000-deep array is one error line, not a hang or a traceback.
    data = load_table(from_file)
    if not isinstance(data, dict):
        raise InputFileError([Problem(source, "", "expected a table of field = value")])
    return data


def _typed_fields(fields: tuple[str, ...]) -> dict[str, str]:
    values: dict[str, str] = {}
    problems = []
    for item in fields:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            problems.append(Problem("--field", item, "expected NAME=VALUE"))
            continue
        values[name.strip()] = value.strip()
    if problems:
        raise InputFileError(problems)
    return values


class _ScreenGroup(click.Group):
    """``screen PROTOCOL ...`` screens; ``screen void SCREENING ...`` voids one.

    A group whose own arguments are the screening's: a first word that names a subcommand
    (``void``) is that subcommand, anything else is the protocol of a screening."""

    allow_interspersed_args = True

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] in self.commands:
            # Only the defaults of the screening's own options: the subcommand parses the rest.
            super(click.Group, self).parse_args(ctx, [])
            ctx._protected_args, ctx.args = args[:1], args[1:]
            return ctx.args
        return super().parse_args(ctx, args)


class _ProtocolArgument(click.Argument):
    def get_usage_pieces(self, ctx: click.Context) -> list[str]:
        # click names a subcommand by its parent's path and arguments: ``screen void``, not
        # ``screen [PROTOCOL] void``.
        return super().get_usage_pieces(ctx) if isinstance(ctx.command, _ScreenGroup) else []


@click.group(
    cls=_ScreenGroup,
    invoke_without_command=True,
    subcommand_metavar="| void SCREENING ...",
)
@click.argument("protocol", required=False, cls=_ProtocolArgument)
@click.option("--site", help="Enrolling site code (a new patient).")
@click.option("--patient", "patient_ref", help="Re-screen this screening number.")
@click.option(
    "--field",
    "fields",
    multiple=True,
    metavar="NAME=VALUE",
    help="A screening value; repeat for each field.",
)
@click.option(
    "--from-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Field values from a TOML or JSON table (one patient), or a screening log, .xlsx or "
    ".csv, one patient per row (all rows or none stored) "
    f"[a regular file of at most {MAX_INPUT_FILE_BYTES >> 20} MiB, 8 MiB for .xlsx].",
)
@click.option(
    "--date",
    "screened_on",
    type=DATE,
    help="Screening date, not later than today at the site [default: today at the site].",
)
@click.option(
    "--sex",
    type=click.Choice(SEXES),
    default=Sex.UNKNOWN.value,
    show_default=True,
)
@click.option(
    "--dry-run", is_flag=True, help="Check and evaluate, print the result, store nothing."
)
@format_option
@click.pass_context
def screen(
    ctx: click.Context,
    protocol: str | None,
    site: str | None,
    patient_ref: str | None,
    fields: tuple[str, ...],
    from_file: Path | None,
    screened_on: dt.date | None,
    sex: str,
    dry_run: bool,
    fmt: str,
) -> None:
    """Screen a patient: the result per criterion, stored whether eligible or not.

    A criterion not passed prints its reason; a value missing counts as not passed. Screen
    failures are kept for the CONSORT flow. A screening with no values at all, or dated after
    today in the site's time zone, is refused.

    A screening log (--from-file LOG.xlsx or .csv) has a header row of field ids (columns
    site, patient, date and sex optional; `protocol fields` writes a template) and one patient
    per row; one bad row refuses the whole file, naming every row and column at fault.

    \b
    Example:
      sarcoma-sched screen NATARS --site PKUIH --from-file patient.toml
      sarcoma-sched screen TNT-STS --site FJMUUH --field age_years=61 --field ecog=1
      sarcoma-sched screen NATARS --site PKUIH --from-file log.xlsx --dry-run
    """
    if ctx.invoked_subcommand is not None:
        return
    if protocol is None:
        raise click.UsageError("Missing argument 'PROTOCOL'.", ctx)
    if from_file is not None and from_file.suffix.lower() in (".xlsx", ".csv"):
        if fields or patient_ref:
            raise click.UsageError(
                "a screening log (.xlsx, .csv) holds every value: no --field or --patient "
                "(use its patient column to re-screen)",
                ctx,
            )
        _screen_log(ctx, protocol, from_file, site, screened_on, sex, dry_run, fmt)
        return
    from sarcoma_sched.services.screening import screen as run_screen

    outcome = run_screen(
        open_db(ctx),
        acting_user(ctx),
        protocol,
        site,
        # None, not {}: no file is not an empty file, and the refusal of no values says which.
        None if from_file is None else _file_values(from_file),
        screened_on=screened_on,
        sex=sex,
        patient_ref=patient_ref,
        source=str(from_file) if from_file else "--from-file",
        field_values=_typed_fields(fields),
        now=now(),  # the service takes the date at the site from it
        dry_run=dry_run,
    )
    rows = [
        {"criterion": c.id, "kind": c.kind, "outcome": c.outcome, "reason": c.reason}
        for c in outcome.result.criteria
    ]
    if fmt == "json":
        # A script needs the verdict and the number, not only the criteria.
        summary = {
            "screening_number": outcome.screening_number,
            "protocol": outcome.protocol_id,
            "site": outcome.site_code,
            "screened_on": outcome.screened_on.isoformat(),
            "eligible": outcome.result.eligible,
            "stored": outcome.stored,
            "criteria": rows,
        }
        emit_json(summary)
        return
    emit_rows(rows, ["criterion", "kind", "outcome", "reason"], fmt)
    if fmt == "table":
        verdict = "ELIGIBLE" if outcome.result.eligible else "NOT ELIGIBLE"
        stored = "" if outcome.stored else "; dry run, nothing stored"
        click.echo(
            f"{outcome.screening_number}: {verdict} ({outcome.protocol_id}, "
            f"site {outcome.site_code}, screened {outcome.screened_on}{stored})"
        )


def _screen_log(
    ctx: click.Context,
    protocol: str,
    path: Path,
    site: str | None,
    screened_on: dt.date | None,
    sex: str,
    dry_run: bool,
    fmt: str,
) -> None:
    from sarcoma_sched.services.screening_import import import_screenings

    outcome = import_screenings(
        open_db(ctx),
        acting_user(ctx),
        protocol,
        path,
        site=site,
        screened_on=screened_on,
        sex=sex,
        now=now(),
        dry_run=dry_run,
    )
    rows = [
        {
            "row": number,
            "screening_number": o.screening_number,
            "site": o.site_code,
            "screened_on": o.screened_on.isoformat(),
            "eligible": o.result.eligible,
            "failed": " ".join(o.result.failed),
            "missing": " ".join(o.result.missing),
        }
        for number, o in outcome.rows
    ]
    if fmt == "json":
        emit_json({"file": outcome.source, "stored": outcome.stored, "screenings": rows})
        return
    columns = ["row", "screening_number", "site", "screened_on", "eligible", "failed", "missing"]
    emit_rows(rows, columns, fmt)
    if fmt == "table":
        eligible = sum(1 for r in rows if r["eligible"])
        done = "stored" if outcome.stored else "checked (dry run, nothing stored)"
        click.echo(f"{len(rows)} screenings {done} from {path}: {eligible} eligible")


@screen.command("void")
@click.argument("screening", type=click.IntRange(min=1))
@click.option(
    "--reason-code",
    type=click.Choice(REASON_CODES),
    required=True,
    help="Why, as a code (data_error for a value mistyped or the wrong patient).",
)
@click.option(
    "--reason",
    metavar="TEXT",
    help="A note in words, kept in the database; listings show the code only.",
)
@click.pass_context
def screen_void(ctx: click.Context, screening: int, reason_code: str, reason: str | None) -> None:
    """Void a screening recorded by mistake: it is kept and audited, and counts no more.

    SCREENING is the number in the `screenings` listing. A voided screening leaves the
    CONSORT flow (which reports how many were voided) and no longer decides enrolment; the
    screening a patient was enrolled on cannot be voided.

    \b
    Example:
      sarcoma-sched screen void 12 --reason-code data_error --reason "wrong patient's values"
    """
    from sarcoma_sched.services.screening_voids import void_screening

    outcome = void_screening(open_db(ctx), acting_user(ctx), screening, reason_code, reason)
    now = (
        f"screening {outcome.counting_id} counts now"
        if outcome.counting_id is not None
        else "no screening counts now: screen the patient again"
    )
    click.echo(
        f"screening {outcome.screening_id} of {outcome.screening_number} "
        f"({outcome.protocol_id}, screened {outcome.screened_on}) voided: "
        f"{outcome.reason_code}; {now}"
    )


@click.command()
@click.argument("patient")
@click.option("--consent-date", type=DATE, required=True, help="Date of written consent.")
@click.pass_context
def enroll(ctx: click.Context, patient: str, consent_date: dt.date) -> None:
    """Enrol a screened-eligible, consented patient; prints the new study id.

    \b
    Example:
      sarcoma-sched enroll PKUIH-NATARS-S0007 --consent-date 2026-11-20
    """
    from sarcoma_sched.services.enrollment import enroll as run_enroll

    outcome = run_enroll(open_db(ctx), acting_user(ctx), patient, consent_date, today=today())
    click.echo(
        f"{outcome.screening_number} enrolled as {outcome.study_id} "
        f"(consent {outcome.consent_date})"
    )


@click.command()
@click.argument("patient")
@click.option("--consent-date", type=DATE, help="Enrol first, with this consent date.")
@click.option(
    "--date",
    "allocation_date",
    type=DATE,
    default="today",
    show_default=True,
    help="Allocation date: day 0 of the calendar.",
)
@click.option("--arm", help="Assigned designs: the arm chosen.")
@click.option("--basis", help="Assigned designs: mdt_decision, patient_preference or other.")
@click.option("--reason", help="Assigned designs: why (e.g. the MDT meeting and decision).")
@secret_option
@format_option
@click.pass_context
def allocate(
    ctx: click.Context,
    patient: str,
    consent_date: dt.date | None,
    allocation_date: dt.date,
    arm: str | None,
    basis: str | None,
    reason: str | None,
    secret_file: Path | None,
    fmt: str,
) -> None:
    """Allocate a patient and generate the calendar, in one transaction.

    Fixed designs give the one arm; assigned designs record --arm, --basis and --reason;
    randomized designs draw from the concealed sequence (needs the trial secret).

    \b
    Example:
      sarcoma-sched allocate FJMUUH-TNT-STS-S0001 --consent-date today
      sarcoma-sched allocate PKUIH-NATARS-0007 --arm NEOADJUVANT --basis mdt_decision \\
        --reason "MDT 2026-11-18: borderline resectable"
    """
    from sarcoma_sched.services.allocation import allocate_patient, key_file_needed
    from sarcoma_sched.services.lookups import find_patient

    database = open_db(ctx)
    with database.read() as session:
        protocol_id = find_patient(session, patient).protocol_id
    # A PostgreSQL database that holds the trial's secret draws the arm itself: no key file.
    secret = read_secret(secret_file) if key_file_needed(database, protocol_id) else None
    outcome = allocate_patient(
        database,
        acting_user(ctx),
        patient,
        today=today(),
        allocation_date=allocation_date,
        consent_date=consent_date,
        arm=arm,
        basis=basis,
        reason=reason,
        secret=secret,
    )
    where = "" if outcome.position is None else f"position {outcome.position}, "
    emit_calendar(
        fmt,
        title=f"{outcome.study_id}: {outcome.arm} ({where}{outcome.method}, allocated "
        f"{outcome.allocation_date})",
        facts={
            "study_id": outcome.study_id,
            "protocol": outcome.protocol_id,
            "arm": outcome.arm,
            "site": outcome.site_code,
            "time_zone": outcome.time_zone,
            "position": outcome.position,
            "method": outcome.method,
            "allocation_date": outcome.allocation_date.isoformat(),
        },
        rows=plan_rows(outcome.plan),
        warnings=outcome.warnings,
    )


def _end(
    ctx: click.Context,
    patient: str,
    kind: str,
    reason: str | None,
    date: dt.date,
    criterion: str | None,
    reason_code: str | None,
    fmt: str,
) -> None:
    from sarcoma_sched.services.participation import end_participation

    outcome = end_participation(
        open_db(ctx),
        acting_user(ctx),
        patient,
        kind,
        reason or "",
        effective_date=date,
        today=today(),
        criterion_id=criterion,
        reason_code=reason_code,
    )
    if fmt == "json":
        emit_json(
            {
                "study_id": outcome.study_id,
                "status": outcome.kind,
                "effective_date": outcome.effective_date.isoformat(),
                "criterion": criterion,
                "cancelled": outcome.cancelled,
            }
        )
        return
    click.echo(
        f"{outcome.study_id}: {kind} from {outcome.effective_date}; "
        f"{len(outcome.cancelled)} planned event(s) cancelled, none deleted"
    )


@click.command()
@click.argument("patient")
@reason_options("Needed (or --reason-code).")
@click.option("--date", type=DATE, default="today", show_default=True, help="Effective date.")
@result_format
@click.pass_context
def withdraw(
    ctx: click.Context,
    patient: str,
    reason_code: str | None,
    reason: str | None,
    date: dt.date,
    fmt: str,
) -> None:
    """Record a withdrawal: planned events are cancelled, the patient stays in the ITT analysis.

    \b
    Example:
      sarcoma-sched withdraw PKUIH-NATARS-0007 --reason-code patient_request \\
        --reason "withdrew consent"
    """
    _end(ctx, patient, EndKind.WITHDRAWN, reason, date, None, reason_code, fmt)


@click.command()
@click.argument("patient")
@reason_options("Needed (or --reason-code; default code: ineligible).")
@click.option("--criterion", help="The post-allocation criterion, e.g. EXC-02.")
@click.option("--date", type=DATE, default="today", show_default=True, help="Effective date.")
@result_format
@click.pass_context
def exclude(
    ctx: click.Context,
    patient: str,
    reason_code: str | None,
    reason: str | None,
    criterion: str | None,
    date: dt.date,
    fmt: str,
) -> None:
    """Record a post-allocation exclusion (e.g. final pathology shows WDLPS); never a deletion.

    \b
    Example:
      sarcoma-sched exclude PKUIH-NATARS-0007 --criterion EXC-02 --reason "final pathology WDLPS"
    """
    _end(ctx, patient, EndKind.EXCLUDED, reason, date, criterion, reason_code, fmt)
