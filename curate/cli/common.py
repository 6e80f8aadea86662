"""Turning run failures into one clear line and an exit code."""

from __future__ import annotations

import contextlib
import sys

import click

from curate.errors import UserError


@contextlib.contextmanager
def clean_errors():
    """UserError -> exit 2; a failed run (pipeline, ledger, disk) -> exit 1; both as one line."""
    from curate.executor import PipelineError
    from curate.ledger import LedgerError

    try:
        yield
    except UserError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except (PipelineError, LedgerError) as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    except OSError as e:
        where = f": {e.filename}" if getattr(e, "filename", None) else ""
        click.echo(f"error: {e.strerror or e}{where}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted: run the same command again to resume", err=True)
        sys.exit(130)


def resolve_config(name_or_path: str | None):
    """`demo`, `default` or `fineweb` name a packaged config; anything else is a file path."""
    from curate.api import config_path

    return config_path(name_or_path)
