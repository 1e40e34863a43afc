"""Write docs/cli.md, the command reference, from the commands' own ``--help``.

    python scripts/gen_cli_docs.py           # rewrite docs/cli.md
    python scripts/gen_cli_docs.py --check   # exit 1 if docs/cli.md is out of date

The reference is the help a coordinator sees, so it is rendered by click itself, not re-typed:
one section per command, in the order ``sarcoma-sched --help`` lists them (the order a
coordinator meets them), each group followed by its subcommands.
tests/cli/test_cli_reference.py renders it again and fails when the file disagrees.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "cli.md"
REFRESH = "python scripts/gen_cli_docs.py"

# What an 80-column terminal shows (click keeps two columns free): fixed, so the file does not
# depend on the terminal of whoever regenerates it.
WIDTH = 78

HEADER = f"""\
# Command reference

Every `sarcoma-sched` command with its `--help`: usage, description, example and options.
Generated from the commands themselves by `{REFRESH}`; do not edit by hand.
`tests/cli/test_cli_reference.py` fails when this file and the commands disagree.
Conventions shared by every command (dates, `--format`, `--db`, `--user`, exit status) are in
the top-level help below and in the [README](../README.md).
"""


def commands(
    command: click.Command, ctx: click.Context
) -> Iterator[tuple[click.Command, click.Context]]:
    """The command and, for a group, every subcommand after it, depth first, in listed order."""
    yield command, ctx
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            yield from commands(sub, click.Context(sub, ctx, name, **sub.context_settings))


def render() -> str:
    """The whole reference, as docs/cli.md should hold it."""
    from sarcoma_sched.cli import cli

    root = click.Context(cli, None, "sarcoma-sched", terminal_width=WIDTH, **cli.context_settings)
    sections = []
    toc = []
    for command, ctx in commands(cli, root):
        path = ctx.command_path
        depth = path.count(" ")
        anchor = path.replace(" ", "-")
        toc.append(f"{'  ' * depth}- [{path}](#{anchor})")
        help_text = command.get_help(ctx).rstrip()
        sections.append(f"## {path}\n\n```text\n{help_text}\n```\n")
    return "\n".join([HEADER, *toc, "", *sections])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="only report whether docs/cli.md is current"
    )
    args = parser.parse_args(argv)
    text = render()
    current = REFERENCE.read_text(encoding="utf-8") if REFERENCE.exists() else None
    if args.check:
        if current != text:
            print(f"{REFERENCE.relative_to(ROOT)} is out of date: run {REFRESH}", file=sys.stderr)
            return 1
        return 0
    if current != text:
        REFERENCE.parent.mkdir(exist_ok=True)
        REFERENCE.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
