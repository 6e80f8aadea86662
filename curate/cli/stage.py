"""`curate stage`: run one stage of the pipeline."""

from __future__ import annotations

import click

from curate.cli.common import clean_errors, resolve_config, resolve_input
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
    """Run the single stage NAME (extract, langid, quality, dedup, bucket, tokenize).

    \b
    Examples:
        curate stage extract --input ../shared/corpora/web/jsonl --output out/cc
        curate stage quality --output out/cc --set quality.gopher.min_doc_words=80
    """
    with clean_errors():
        from curate import config, pipeline, registry, storage
        from curate.errors import UserError

        cfg = config.load(resolve_config(config_path), overrides)
        if name not in registry.names():
            raise UserError(f"unknown stage {name!r}; stages: {', '.join(registry.names())}")
        if name not in cfg.stages:
            raise UserError(f"stage {name!r} is not in {cfg.source}'s stages: {', '.join(cfg.stages)}")
        src = resolve_input(input_path)
        if src is not None:
            storage.check_input(src)
        pipeline.execute(cfg, output, [name], src, workers, ray_address, fresh,
                       log=lambda m: click.echo(m, err=True))
