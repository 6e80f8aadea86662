"""`curate report`: what a run did, in the terminal and as one self-contained HTML file."""

from __future__ import annotations

import click

from curate.cli.common import clean_errors


@click.command()
@click.argument("out", type=click.Path(file_okay=False), metavar="OUT")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Where to write the HTML report (default: OUT/report.html).")
@click.option("--no-html", is_flag=True, help="Print the terminal summary only.")
@click.option("--what-if", "what_ifs", multiple=True, metavar="STAGE.FILTER.PARAM=VALUE",
              help="Recompute a stage's removals from the stored signals with a changed threshold, "
                   "e.g. quality.gopher.min_doc_words=80 or langid.min_score=0.5; null turns a rule "
                   "off (repeatable; no stage runs again).")
def report(out, html_path, no_html, what_ifs):
    """Summarise the run in OUT: the funnel per stage, removals per reason (by source and
    language), duplicate clusters, the curriculum mix, signal histograms with their thresholds.

    Works on a partial run: it reports the stages that ran. The HTML report opens offline.

    \b
    Examples:
        curate report out/cc
        curate report out/cc --html /tmp/cc.html
        curate report out/cc --no-html --what-if quality.gopher.min_doc_words=80 --what-if langid.min_score=0.5
    """
    with clean_errors():
        from rich.console import Console

        from curate.report import summary as summary_mod
        from curate.report import terminal, whatif
        from curate.report.outdir import RunDir

        run = RunDir(out)
        changes = [whatif.parse(item) for item in what_ifs]
        results = whatif.compute(run, changes) if changes else []
        console = Console(width=None if Console().is_terminal else 140)
        summary = summary_mod.summarize(run)
        terminal.render(summary, console)
        terminal.render_what_if(results, console)
        if not no_html:
            from curate.report import html
            from curate import storage

            target = storage.location(html_path) if html_path else run.out / "report.html"
            storage.write_bytes(target, html.render(summary, results).encode("utf-8"))
            click.echo(f"wrote {target}", err=True)
