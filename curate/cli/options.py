"""Options shared by the commands that run stages, defined once."""

from __future__ import annotations

import functools

import click


def pipeline_options(fn):
    """--config, --workers, --ray-address, --set, --fresh."""

    @click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                  help="Pipeline YAML (default: the packaged configs/default.yaml).")
    @click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
                  help="Shards processed at once (0: one per CPU, or run.workers of the config).")
    @click.option("--ray-address", default=None, metavar="ADDR",
                  help="Join an existing Ray cluster (host:port) instead of starting an embedded one.")
    @click.option("--set", "overrides", multiple=True, metavar="STAGE.KEY=VALUE",
                  help="Override a config value, e.g. --set quality.gopher.min_doc_words=80 (repeatable).")
    @click.option("--fresh", is_flag=True,
                  help="Accept a changed config: redo the first changed stage and every stage after it "
                       "(with no change, start over).")
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    return wrapper
