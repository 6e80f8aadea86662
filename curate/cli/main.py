"""The `curate` command: a root group; each subcommand lives in its own module."""

from __future__ import annotations

import importlib

import click

from curate import __version__

# "module:command" of every subcommand; modules import their heavy dependencies lazily.
COMMANDS = [
    "curate.cli.run:run",
    "curate.cli.stage:stage",
    "curate.cli.report:report",
    "curate.cli.inspect:inspect",
    "curate.cli.train:train",
    "curate.cli.train_quality:train_quality",
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="curate")
def cli() -> None:
    """curate: turn raw web pages, code and papers into deduplicated, filtered, tokenized shards.

    \b
    Try it on the bundled demo corpus:
        curate run --config demo --input demo --output out/demo
    """


for _target in COMMANDS:  # an error inside a command module surfaces as itself
    _module, _name = _target.split(":")
    cli.add_command(getattr(importlib.import_module(_module), _name))


def main() -> None:
    cli()
