"""`curate train`: train the reference MoE model on the tokenized shards."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from curate.cli.common import clean_errors

TORCH_MISSING = "curate train needs PyTorch: pip install 'curate-pipeline[trainer]'"


@click.command()
@click.option("--shards", "shards_dir", required=True, type=click.Path(path_type=Path), metavar="DIR",
              help="The shards/ folder the tokenize stage wrote (manifest.json, <bucket>/part-*.bin/.idx).")
@click.option("--config", "config_path", default=None, metavar="FILE",
              help="Train config YAML, or a built-in one: tiny, small, moe-100m "
                   "(default: a 4-layer, width-256 model that trains on a CPU).")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Optimizer steps (overrides train.steps). More than a checkpoint's: the run is extended, "
                   "its learning rate decaying on from where it stands to min_lr at the new end.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="auto: CUDA when torch sees a GPU, else the CPU.")
@click.option("--checkpoint", "checkpoint_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              metavar="DIR", help="Write checkpoint.pt and train.jsonl here; if DIR holds a checkpoint, resume it.")
@click.option("--log", "log_path", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="JSONL log of the training (default: DIR/train.jsonl with --checkpoint).")
def train(shards_dir, config_path, steps, device, checkpoint_dir, log_path):
    """Train the reference MoE language model (DeepSeekMoE style) on tokenized shards.

    Buckets are mixed by the config's curriculum (easy text first, code last by default);
    every log line gives loss, learning rate, tokens/s, data-wait share, curriculum phase and
    each MoE layer's expert load imbalance (max/mean). Killed runs resume from --checkpoint;
    Ctrl-C finishes the current step and writes a checkpoint first.

    \b
    Example:
        curate train --shards out/demo/shards --config tiny --steps 200 --checkpoint out/demo/train
    """
    with clean_errors():
        from curate.errors import UserError

        try:
            import torch  # noqa: F401  (optional: the `trainer` extra)
        except ImportError:
            raise UserError(TORCH_MISSING) from None
        from curate.trainer.config import load_config
        from curate.trainer.train import CHECKPOINT_NAME, train as run_training

        if not shards_dir.is_dir():
            raise UserError(f"shards directory not found: {shards_dir}")
        config = load_config(config_path, steps)
        try:
            run_training(config, shards_dir, device=device, checkpoint_dir=checkpoint_dir, log_path=log_path,
                         echo=click.echo)
        except KeyboardInterrupt:
            # Only a checkpoint makes the same command resume; without one it starts over.
            if checkpoint_dir and (checkpoint_dir / CHECKPOINT_NAME).is_file():
                click.echo("interrupted: run the same command again to resume", err=True)
            else:
                click.echo("interrupted: nothing was saved (give --checkpoint DIR to make a run resumable)", err=True)
            sys.exit(130)
