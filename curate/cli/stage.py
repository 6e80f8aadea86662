"""`curate stage`: run one stage of the pipeline."""

from __future__ import annotations

import click

from curate.cli.common import clean_errors
from curate.cli.options import pipeline_options


@click.command()
@click.argument("name")
@click.option("--output", "output", required=True, type=click.Path(file_okay=False), metavar="OUT",
              help="Run root; the stage writes OUT/NAME/.")
@click.option("--input", "input_path", default=None, metavar="DIR",
              help="extract: the corpus directory. Other stages: a stage output directory "
                   "(default: OUT/<previous stage in the config>).")
@pipeline_options
def stage(name, output, input_path, config_path, workers, ray_address, overrides, fresh):
    """Run the single stage NAME (extract, langid, quality, dedup, bucket, tokenize, or a plugin stage).

    \b
    Examples:
        curate stage extract --input ../shared/corpora/web/jsonl --output out/cc
        curate stage quality --output out/cc --set quality.gopher.min_doc_words=80
    """
    with clean_errors():
        from curate import api

        cfg = api.load_config(config_path, overrides)
        api.run_stage(name, cfg, output, input=input_path, workers=workers, ray_address=ray_address, fresh=fresh,
                      log=lambda m: click.echo(m, err=True))
