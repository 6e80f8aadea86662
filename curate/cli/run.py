"""`curate run`: the whole pipeline of a config, from a corpus directory to OUT."""

from __future__ import annotations

import click

from curate.cli.common import clean_errors
from curate.cli.options import pipeline_options


@click.command()
@click.option("--input", "input_path", required=True, metavar="DIR",
              help="Corpus directory (or one file); `demo` is the bundled demo corpus.")
@click.option("--output", "output", required=True, type=click.Path(file_okay=False), metavar="OUT",
              help="Run root: every stage writes OUT/<stage>/, plus OUT/run.json.")
@pipeline_options
def run(input_path, output, config_path, workers, ray_address, overrides, fresh):
    """Run every stage of the config on a corpus directory.

    Re-running the same command resumes an interrupted run: finished shards are kept, the
    rest are done. A changed config is refused unless --fresh.

    \b
    Example:
        curate run --config configs/demo.yaml --input curate/demo --output out/demo
        curate run --input /data/crawl --output /data/out --workers 16 --set dedup.threshold=0.85
    """
    with clean_errors():
        from curate import api

        cfg = api.load_config(config_path, overrides)
        api.run(cfg, input_path, output, workers=workers, ray_address=ray_address, fresh=fresh,
                log=lambda m: click.echo(m, err=True))
        click.echo(f"done: {output}", err=True)
