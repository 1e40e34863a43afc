"""``sarcoma-sched demo``: the README's main job on the embedded default.

For now it validates and shows the bundled protocols; it grows into the full demo (database,
synthetic patients, calendars) as the engine does.
"""

from __future__ import annotations

import click

__all__ = ["demo"]


@click.command()
def demo() -> None:
    """Run the demonstration: validate every bundled protocol and show each one.

    \b
    Example:
      sarcoma-sched demo
    """
    from sarcoma_sched.protocol import bundled_protocol_dir, list_protocols
    from sarcoma_sched.protocol.describe import describe_protocol

    directory = bundled_protocol_dir()
    loaded = list_protocols(directory)
    click.echo(f"Bundled protocols in {directory}: {len(loaded)} valid")
    for item in loaded:
        name = item.path.name if item.path else item.id
        click.echo(
            f"  ok  {name:<24} {item.id} v{item.protocol.version}  "
            f"{item.protocol.content_hash[:19]}"
        )
    for item in loaded:
        click.echo("")
        click.echo("=" * 100)
        click.echo(describe_protocol(item.protocol))
