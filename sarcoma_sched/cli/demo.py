"""``sarcoma-sched demo``: the README's first command, a whole trial network in one go."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sarcoma_sched.cli.dates import DATE

if TYPE_CHECKING:
    from sarcoma_sched.demo.scenario import DemoResult

__all__ = ["demo"]

DEFAULT_DIR = Path("sarcoma-demo")


@click.command()
@click.option(
    "--db",
    "db_path",
    metavar="PATH|sqlite:///PATH",
    help="The demo's SQLite file [default: sarcoma-demo/demo.db].",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DIR,
    show_default=True,
    help="Where the .ics calendars go.",
)
@click.option("--as-of", type=DATE, default="today", show_default=True, help="The demo's today.")
@click.option("--replace", is_flag=True, help="Delete an earlier demo database first.")
def demo(db_path: str | None, out_dir: Path, as_of: dt.date, replace: bool) -> None:
    """Run the demonstration: both trials, ~30 synthetic patients, calendars to import.

    Creates a fresh SQLite database with the bundled protocols, the NATARS sites and their
    theatre, infusion and RT capacities; screens 32 synthetic patients (some fail), allocates
    the eligible ones in TNT-STS (fixed arm), NATARS (arm by MDT decision) and NATARS-R
    (minimization); records what happened up to today, including delays that move later
    events, a missed visit, a skipped cycle, a withdrawal, a ward closure and a surgery moved
    to the next free theatre session; writes one .ics per patient and two site calendars.

    \b
    Example:
      sarcoma-sched demo
      sarcoma-sched --db sarcoma-demo/demo.db visits --site PKUIH --from today --to +28d
    """
    from sarcoma_sched.db.engine import sqlite_file

    db_file = sqlite_file(db_path) if db_path else out_dir / "demo.db"
    _run(db_file, out_dir, as_of, replace)


def _run(db_path: Path, out_dir: Path, as_of: dt.date, replace: bool) -> None:
    from sarcoma_sched.db.session import Database
    from sarcoma_sched.demo.scenario import run_demo
    from sarcoma_sched.errors import Conflict

    if db_path.exists():
        if not replace:
            raise Conflict(
                f"{db_path} exists: give --replace to start the demo afresh, or --db NEW.db"
            )
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    db_path.touch()
    database = Database(str(db_path), check_schema=False)
    try:
        result = run_demo(
            database, out_dir, as_of, progress=lambda line: click.echo(f"… {line}", err=True)
        )
    finally:
        database.dispose()
    key = _write_demo_key(out_dir)
    _summary(result, db_path, out_dir, key)


def _write_demo_key(out_dir: Path) -> Path:
    # The demo's published key, beside its database (owner-only, as any key file), so that
    # `allocation verify` can replay the demo's draws; a trial database refuses this key.
    from sarcoma_sched.allocation.secret import DEMO_SECRET
    from sarcoma_sched.files import write_atomic

    key = out_dir / "demo.key"
    write_atomic(key, DEMO_SECRET.hex() + "\n", mode=0o600)
    return key


def _summary(result: DemoResult, db_path: Path, out_dir: Path, key: Path) -> None:
    failures = [(n, p, f) for n, p, ok, f in result.screened if not ok]
    click.echo(f"sarcoma-sched demo, as of {result.as_of}")
    click.echo(f"database   {db_path} (SQLite)")
    click.echo(
        f"screened   {len(result.screened)} synthetic patients; {len(failures)} not eligible:"
    )
    for number, protocol, failed in failures:
        click.echo(f"             {number} ({protocol}) failed {', '.join(failed)}")
    arms: dict[tuple[str, str, str], int] = {}
    for _, protocol, arm, method in result.allocated:
        arms[(protocol, arm, method)] = arms.get((protocol, arm, method), 0) + 1
    click.echo(f"allocated  {len(result.allocated)}:")
    for (protocol, arm, method), n in sorted(arms.items()):
        click.echo(f"             {protocol:<9} {arm:<13} {n:>2}  ({method})")
    click.echo(f"recorded   {result.recorded} events up to two days ago; what moved:")
    for line in [*result.delays, *result.closure]:
        click.echo(f"             {line}")
    for line in result.capacity:
        click.echo(f"capacity   {line}")
    patients = [p for p in result.calendars if not p.name.startswith("site-")]
    sites = [p.name for p in result.calendars if p.name.startswith("site-")]
    click.echo(f"calendars  {len(patients)} patient calendars and {', '.join(sites)} in {out_dir}/")
    db = f"sarcoma-sched --db {db_path}"
    click.echo("try next:")
    for line in (
        f"{db} visits --from today --to +14d",
        f"{db} overdue",
        f"{db} deviations",
        f"{db} schedule {result.allocated[0][0]}",
        f"{db} report enrollment --by protocol,site",
        f"{db} capacity --site PKUIH",
        f"{db} audit verify",
        f"{db} allocation verify NATARS-R --secret-file {key}",
    ):
        click.echo(f"  {line}")
