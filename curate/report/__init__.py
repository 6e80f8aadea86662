"""`curate report` and `curate inspect`: what a run did, read back from OUT's files only.

    outdir    OUT as a set of stage outputs: run.json, <stage>/_stats.json, Parquet parts
    rules     the thresholds a run applied: filters' Rule declarations + run.json's config
    summary   the numbers: funnel, removals by reason/source/language, dedup clusters, mix
    whatif    removals recomputed from stored signals with changed thresholds
    samples   sample documents (kept, or removed for a reason) and the largest dup clusters
    terminal  the rich rendering of the above
    plots     matplotlib figures as inline SVG
    html      the self-contained report.html

Nothing here re-runs a stage or imports a stage module: a report works on a partial run and
on a machine that only has OUT.
"""
