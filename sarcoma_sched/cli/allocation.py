"""``allocation init-secret|verify|list|simulate``: the statistician's side of allocation."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from sarcoma_sched.cli.context import acting_user, open_db
from sarcoma_sched.cli.numbers import WholeNumber
from sarcoma_sched.cli.output import emit_json, emit_rows, result_format, sheet_format
from sarcoma_sched.errors import VerifyFailed
from sarcoma_sched.limits import (
    MAX_SIMULATED_DRAWS,
    MAX_SIMULATED_PATIENTS,
    MAX_SIMULATED_TRIALS,
    MAX_STORED_INT,
)

__all__ = ["allocation", "read_secret", "secret_option"]

SECRET_FILE_ENV = "SARCOMA_SCHED_SECRET_FILE"

F = TypeVar("F", bound=Callable[..., Any])


def default_secret_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "sarcoma-sched" / "trial.key"


def secret_option(func: F) -> F:
    return click.option(
        "--secret-file",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar=SECRET_FILE_ENV,
        help="Trial secret key file (mode 600) [env SARCOMA_SCHED_SECRET_FILE; default "
        "~/.config/sarcoma-sched/trial.key]. SARCOMA_SCHED_SECRET (hex) overrides it.",
    )(func)


def read_secret(path: Path | None) -> bytes:
    from sarcoma_sched.allocation import load_secret

    return load_secret(path or default_secret_file())


@click.group()
def allocation() -> None:
    """The concealed allocation sequence: secret, verification, reveal, simulation.

    \b
    Example:
      sarcoma-sched allocation init-secret
      sarcoma-sched allocation simulate NATARS-R --patients 120 --trials 1000 --seed 7
    """


@allocation.command("init-secret")
@secret_option
@click.option(
    "--server",
    "server_protocol",
    metavar="PROTOCOL",
    help="PostgreSQL: have the server make (or, with --secret-file, take) PROTOCOL's secret and "
    "keep it where no site role can read it; it then draws every arm itself.",
)
@click.pass_context
def init_secret(ctx: click.Context, secret_file: Path | None, server_protocol: str | None) -> None:
    """Create the trial secret key file (owner-only), never overwriting one; or, with --server,
    the secret held by the PostgreSQL server.

    Keep a key file outside the database and back it up: without it, no randomized allocation
    can be made or verified. Whoever reads it can predict the next assignments: on a multi-site
    PostgreSQL database prefer --server, so no coordinator ever holds it.

    \b
    Example:
      sarcoma-sched allocation init-secret --secret-file /secure/natars.key
      sarcoma-sched --db postgresql://stat@db/natars allocation init-secret --server NATARS-R
    """
    from sarcoma_sched.allocation import write_secret_file
    from sarcoma_sched.errors import Conflict

    if server_protocol is not None:
        from sarcoma_sched.services.allocation import init_server_secret

        given = read_secret(secret_file) if secret_file is not None else None
        fingerprint = init_server_secret(open_db(ctx), acting_user(ctx), server_protocol, given)
        click.echo(
            f"{server_protocol.upper()}: the server holds the trial secret "
            f"(fingerprint {fingerprint[:16]}…, committed in the audit log)"
        )
        return

    path = secret_file or default_secret_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:  # a file where the directory should be, no permission
        raise Conflict(f"cannot create the directory {path.parent}: {exc.strerror}") from None
    write_secret_file(path)
    click.echo(f"trial secret written to {path} (mode 600); back it up somewhere safe")


@allocation.command("verify")
@click.argument("protocol")
@secret_option
@result_format
@click.pass_context
def verify(ctx: click.Context, protocol: str, secret_file: Path | None, fmt: str) -> None:
    """Replay every past allocation from the secret and confirm each recorded arm.

    \b
    Example:
      sarcoma-sched allocation verify NATARS-R
    """
    from sarcoma_sched.services.allocation import key_file_needed, server_secret
    from sarcoma_sched.services.allocation_audit import verify_allocations

    # A replay only reads: it runs on a file or with a login that may not write.
    database = open_db(ctx, read_only=True)
    secret = (
        read_secret(secret_file)
        if key_file_needed(database, protocol)
        else server_secret(database, protocol)
    )
    result = verify_allocations(database, protocol, secret)
    if fmt == "json":
        emit_json(
            {
                "ok": not result.mismatches,
                "protocol": result.protocol_id,
                "method": result.method,
                "checked": result.checked,
                "mismatches": result.mismatches,
                "unrecorded_draws": result.unrecorded_draws,
            }
        )
    if result.mismatches:
        more = len(result.mismatches) - 1
        if fmt == "json" and more:
            # Every mismatch is in the document: stderr says in one line that it failed.
            raise VerifyFailed([f"{result.mismatches[0]} (and {more} more, listed in the JSON)"])
        raise VerifyFailed(result.mismatches)
    for call in result.unrecorded_draws:
        click.echo(
            f"warning: server draw {call} of {result.protocol_id} was made but never recorded "
            "(an allocation rolled back after its arm was drawn: a preview, or a failure)",
            err=True,
        )
    if fmt == "text":
        click.echo(
            f"{result.protocol_id} ({result.method}): all {result.checked} allocations confirmed"
        )


@allocation.command("list")
@click.argument("protocol")
@click.option(
    "--reveal",
    is_flag=True,
    help="Include what was concealed (needs the secret; the reveal is written to the audit log).",
)
@secret_option
@sheet_format
@click.pass_context
def list_(
    ctx: click.Context, protocol: str, reveal: bool, secret_file: Path | None, fmt: str
) -> None:
    """List the allocation sequence; --reveal adds the concealed block details.

    \b
    Example:
      sarcoma-sched allocation list NATARS-R --reveal --format csv
    """
    from sarcoma_sched.services.allocation import key_file_needed, server_secret
    from sarcoma_sched.services.allocation_audit import reveal_sequence
    from sarcoma_sched.services.queries import ALLOCATION_COLUMNS, allocation_listing

    database = open_db(ctx)
    if reveal:
        secret = (
            read_secret(secret_file)
            if key_file_needed(database, protocol)
            else server_secret(database, protocol)
        )
        rows = reveal_sequence(database, acting_user(ctx), protocol, secret)
        columns = [
            "position",
            "study_id",
            "site",
            "date",
            "stratum",
            "arm",
            "replayed",
            "deterministic",
            "concealed",
            "by",
        ]
        emit_rows(rows, columns, fmt)
        return
    with database.read() as session:
        rows = allocation_listing(session, protocol)
    emit_rows(rows, ALLOCATION_COLUMNS, fmt)


@allocation.command("simulate")
@click.argument("protocol")
@click.option(
    "--patients",
    type=WholeNumber(1, MAX_SIMULATED_PATIENTS),
    default=100,
    show_default=True,
    help="Patients per simulated trial.",
)
@click.option(
    "--trials",
    type=WholeNumber(1, MAX_SIMULATED_TRIALS),
    default=1000,
    show_default=True,
    help=f"Simulated trials; --patients x --trials at most {MAX_SIMULATED_DRAWS:,}.",
)
@click.option("--seed", type=WholeNumber(0, MAX_STORED_INT), default=1, show_default=True)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--exact",
    is_flag=True,
    help="Allocate every simulated patient with the production allocator itself, one by one "
    "(slow; the same report as the default vectorised path).",
)
def simulate(protocol: str, patients: int, trials: int, seed: int, fmt: str, exact: bool) -> None:
    """Simulate the protocol's randomized method against simple randomization and blocks.

    Reports final and maximum imbalance, marginal and within-stratum imbalance, predictability
    (Blackwell-Hodges convergence guessing) and the share of deterministic assignments. Needs
    no database and no secret: patients and draws come from --seed through the simulation's own
    counter-based generator (NumPy's Philox), not the trial secret's HMAC stream real
    allocations use. A simulated trial has nothing to conceal, and the operating
    characteristics are the rule's, whichever uniform generator feeds it; so a given --seed's
    report differs from the one versions before this generator printed, figure by figure, but
    not in distribution. Trials are simulated many at once (NumPy); --exact runs the production
    allocator on the same stream instead, one patient at a time, and gives the same report.

    \b
    Example:
      sarcoma-sched allocation simulate NATARS-R --patients 120 --trials 2000 --seed 7
    """
    from rich.progress import Progress

    from sarcoma_sched.allocation import default_distributions
    from sarcoma_sched.allocation import simulate as run_simulation
    from sarcoma_sched.protocol import find_protocol

    if patients * trials > MAX_SIMULATED_DRAWS:
        # Each draw takes tens of microseconds: beyond this a run takes hours, not minutes.
        raise click.UsageError(
            f"--patients {patients} x --trials {trials} is {patients * trials:,} draws; "
            f"at most {MAX_SIMULATED_DRAWS:,} are simulated in one run"
        )
    proto = find_protocol(protocol).protocol
    with Progress(transient=True, disable=fmt == "json") as progress:
        task = progress.add_task(f"simulating {proto.id}", total=trials)
        report = run_simulation(
            proto.allocation,
            [a.id for a in proto.arms],
            default_distributions(proto),
            patients,
            trials,
            seed,
            progress=lambda n: progress.advance(task, n),
            exact=exact,
        )
    click.echo(report.to_json() if fmt == "json" else report.to_text())
