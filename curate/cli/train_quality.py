"""`curate train-quality`: train the fastText quality classifier the `classifier` filter uses."""

from __future__ import annotations

import click

from curate.cli.common import clean_errors

SOURCES = ("web", "code", "academic", "text")


@click.command("train-quality")
@click.option("--positive", "positive", multiple=True, type=click.Path(), metavar="PATH",
              help="Text you want more of: JSONL (`text`), Parquet (`text` column), text files, or a folder "
                   "of them, e.g. OUT/quality (its kept documents). Repeatable.")
@click.option("--negative", "negative", multiple=True, type=click.Path(), metavar="PATH",
              help="Text you want less of, same formats; e.g. OUT/quality/removed. Repeatable.")
@click.option("--labelled", "labelled", multiple=True, type=click.Path(), metavar="PATH",
              help="JSONL or Parquet records with `text` and a 0/1 `label` (1 = positive). Repeatable.")
@click.option("--from-run", "from_run", type=click.Path(file_okay=False), metavar="OUT",
              help="Make labels from a curate run without human labels: documents the quality rules kept "
                   "(with --margin) are positives, documents they removed (quality:* reasons) negatives. "
                   "Add reference positives (--reference-source academic, or --positive PATH): measured, "
                   "rule labels alone do not beat the rules themselves (see the README).")
@click.option("--run-source", "run_sources", multiple=True, type=click.Choice(SOURCES), default=("web", "text"),
              show_default=True, help="--from-run: the sources whose documents are labelled (repeatable).")
@click.option("--reference-source", "reference_sources", multiple=True, type=click.Choice(SOURCES),
              help="--from-run: every kept document of this source is a positive, e.g. academic (repeatable).")
@click.option("--margin", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="--from-run: a positive must pass every rule with its threshold made this much "
                   "(relative) stricter, e.g. 0.1: min_doc_words 50 -> 55.")
@click.option("--output", "output", required=True, type=click.Path(dir_okay=False), metavar="MODEL",
              help="The model file to write (fastText .bin); its card is written to MODEL.json.")
@click.option("--valid-fraction", type=click.FloatRange(0, 0.5), default=0.1, show_default=True,
              help="Share of each class held out for the metrics (0: train on all, no metrics).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split, the shuffle and fastText.")
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Score at which a held-out document counts as predicted positive (precision/recall/F1).")
@click.option("--word-ngrams", type=click.IntRange(1, 5), default=None, help="fastText wordNgrams [2].")
@click.option("--dim", type=click.IntRange(2, 1000), default=None, help="fastText dim [100].")
@click.option("--epoch", type=click.IntRange(1, 1000), default=None, help="fastText epoch [10].")
@click.option("--lr", type=click.FloatRange(0, 5, min_open=True), default=None, help="fastText lr [0.1].")
@click.option("--min-count", type=click.IntRange(1), default=None, help="fastText minCount [2].")
@click.option("--bucket", type=click.IntRange(0), default=None, help="fastText bucket, hashed n-gram rows [100000].")
def train_quality(positive, negative, labelled, from_run, run_sources, reference_sources, margin, output,
                  valid_fraction, seed, threshold, word_ngrams, dim, epoch, lr, min_count, bucket):
    """Train the fastText quality classifier used by the quality stage's `classifier` filter.

    Texts are normalised exactly as the filter will score them; a seeded, stratified share is
    held out and its precision, recall, F1 and AUC are printed. The model (fastText .bin) and
    a JSON card beside it (MODEL.json: data sizes, parameters, metrics, version, seed) are
    written. Training is single-threaded and deterministic for a seed.

    \b
    Examples:
        curate train-quality --positive wiki.jsonl --negative spam/ --output models/quality.bin
        curate train-quality --labelled labels.jsonl --output models/quality.bin --dim 64 --epoch 5
        # no labels: labels from a run's rule decisions, with its academic text as reference
        curate train-quality --from-run out/cc --reference-source academic --output models/quality.bin
    """
    from dataclasses import replace
    from pathlib import Path

    with clean_errors():
        from curate.filters.classifier.labels import Labelled, bootstrap_from_run, read_labelled, read_texts
        from curate.filters.classifier.model import card_path
        from curate.filters.classifier.train import TrainParams, fit
        from curate.errors import UserError

        if not (positive or negative or labelled or from_run):
            raise UserError("no training data: give --positive and --negative, --labelled, or --from-run")
        if not from_run and (reference_sources or margin):
            raise UserError("--reference-source and --margin only apply with --from-run")
        if Path(output).is_dir():
            raise UserError(f"--output {output} is a directory; name the model file, e.g. {output}/quality.bin")

        parts, provenance, skipped = [], {}, 0
        for paths, label in ((positive, 1), (negative, 0)):
            for p in paths:
                texts, n_skipped = read_texts(Path(p))
                skipped += n_skipped
                parts.append(Labelled.of(texts, label))
        for p in labelled:
            parts.append(read_labelled(Path(p)))
        if from_run:
            boot, summary = bootstrap_from_run(Path(from_run), run_sources, reference_sources, margin)
            parts.append(boot)
            provenance["bootstrap"] = summary
            click.echo(f"from {from_run}: {summary['positives_with_margin']} rule-kept positives (margin {margin:g}), "
                       f"{summary['positives_reference']} reference positives, {summary['negatives']} rule-removed "
                       "negatives", err=True)
            if not (reference_sources or positive or labelled):
                click.echo("note: no reference positives; labels from the rules alone teach the model the rules' "
                           "own mistakes (measured: worse than the rules, see the README)", err=True)
        provenance.update({"positive_paths": list(positive), "negative_paths": list(negative),
                           "labelled_paths": list(labelled), "binary_files_skipped": skipped})
        data = Labelled.join(parts)

        params = TrainParams()
        given = dict(word_ngrams=word_ngrams, dim=dim, epoch=epoch, lr=lr, min_count=min_count, bucket=bucket)
        params = replace(params, **{k: v for k, v in given.items() if v is not None})
        card = fit(data, params, seed, valid_fraction, Path(output), threshold, provenance)

        d = card["data"]
        click.echo(f"trained on {d['train']} documents ({d['positive']} positive, {d['negative']} negative in all, "
                   f"{d['empty_skipped']} empty skipped) in {card['train_seconds']:.1f}s")
        m = card["metrics"]["valid"]
        if m:
            click.echo(f"held out {m['n']}: precision {m['precision']:.3f}  recall {m['recall']:.3f}  "
                       f"F1 {m['f1']:.3f}  AUC {m['auc']:.3f}  (threshold {m['threshold']:g})")
            q = m["score_quantiles"]
            shown = [q[side][k] for side in ("positive", "negative") for k in ("0.1", "0.5", "0.9")]
            text = _distinct(shown)
            click.echo(f"held-out scores, 10/50/90th percentile: positives {' '.join(text[:3])}, "
                       f"negatives {' '.join(text[3:])}")
        for warning in card["warnings"]:
            click.echo(f"warning: {warning}", err=True)
        click.echo(f"wrote {output} and {card_path(Path(output))}")


def _distinct(values: list[float]) -> list[str]:
    """The values with the fewest decimals (3 to 6) that keep different values apart: scores
    packed around 0.5 still show the order the AUC measured."""
    for digits in range(3, 7):
        text = [f"{v:.{digits}f}" for v in values]
        if len(set(text)) == len(set(values)):
            break
    return text
