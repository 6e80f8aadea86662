"""An example curate plugin: `blockwords` (a quality filter), `length` (a stage) and `csv` (a
reader). Each is declared under curate's entry-point groups in pyproject.toml."""
