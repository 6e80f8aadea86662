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
    from importlib import resources
    from pathlib import Path

    if name_or_path in ("demo", "default", "fineweb") and not Path(name_or_path).exists():
        return Path(str(resources.files("curate.configs").joinpath(f"{name_or_path}.yaml")))
    return name_or_path


def resolve_input(path: str | None):
    """`demo` names the bundled demo corpus."""
    from pathlib import Path

    if path is None:
        return None
    if path == "demo" and not Path(path).exists():
        from importlib import resources

        return Path(str(resources.files("curate").joinpath("demo")))
    from curate.storage import location

    return location(path)
