"""Text helpers that several filters and stages share: words, per-document measurements of a
text column, regular-expression matches over a column."""
