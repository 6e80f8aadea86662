"""`curate inspect`: look at sample documents of one stage."""

from __future__ import annotations

import click

from curate.cli.common import clean_errors


@click.command()
@click.argument("out", type=click.Path(file_okay=False), metavar="OUT")
@click.option("--stage", required=True, metavar="NAME", help="The stage whose output to show (extract, langid, ...).")
@click.option("--reason", default=None, metavar="PREFIX",
              help="Only removed documents whose reason starts with PREFIX, e.g. quality:gopher.")
@click.option("--kept", is_flag=True, help="Show kept documents instead of removed ones.")
@click.option("-n", "n", type=click.IntRange(min=1), default=5, show_default=True,
              help="Documents to show (for dedup: clusters).")
@click.option("--chars", type=click.IntRange(min=1), default=800, show_default=True,
              help="Characters of each document's text to show.")
@click.option("--seed", type=int, default=0, show_default=True, help="Another seed draws other documents.")
def inspect(out, stage, reason, kept, n, chars, seed):
    """Print sample documents of a stage in OUT, kept or removed, with their signals and reasons.

    For --stage dedup without --kept/--reason: the largest duplicate clusters, a few members
    side by side.

    \b
    Examples:
        curate inspect out/cc --stage quality --reason quality:gopher -n 3
        curate inspect out/cc --stage langid --kept
        curate inspect out/cc --stage dedup
    """
    with clean_errors():
        from rich.console import Console

        from curate.report import inspect as inspect_mod

        console = Console(width=None if Console().is_terminal else 140)
        inspect_mod.run(out, stage, reason, kept, n, chars, seed, console)
