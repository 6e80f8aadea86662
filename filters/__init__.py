"""Quality filters, one home each (`filters/<name>.py`, or a package `filters/<name>/` for a
filter with a model or detector of its own; import as `curate.filters.<name>`), applied by the
quality stage (stages/quality.py) in the order of its `filters:` list.

`FILTERS` maps a filter's name (its config section and the middle of its reasons,
`quality:<name>:<rule>`) to its class. Adding a filter to curate is one module and one line
here: write filters/<name>.py with a `curate.filters.base.Filter` subclass (name, Config, rules,
signals, sources, a vectorised `measure`), then register it below. Its config section and
its place in the default order come from this table; `curate report --what-if` finds its rules
here too. A filter of a user's own needs no edit here: a plugin (curate.registry) adds itself
to `FILTERS` when it is registered, and runs when the quality stage's `filters:` names it.
"""

from __future__ import annotations

from curate.filters.academic import AcademicFilter
from curate.filters.base import Filter
from curate.filters.c4 import C4QualityFilter
from curate.filters.classifier import ClassifierFilter
from curate.filters.code import CodeFilter
from curate.filters.decontam import DecontamFilter
from curate.filters.fineweb import FineWebQualityFilter
from curate.filters.gopher import GopherQualityFilter
from curate.filters.gopher_repetition import GopherRepetitionFilter
from curate.filters.pii import PiiFilter
from curate.filters.url import UrlFilter

# name -> class, in the default order of application (cheap and coarse first; C4 rewrites the
# text, so the filters after it measure the cleaned text, as in the FineWeb recipe).
FILTERS: dict[str, type[Filter]] = {
    cls.name: cls
    for cls in (
        UrlFilter,
        DecontamFilter,  # early: a benchmark copy is named as such, and cut text is what the rest judge
        GopherQualityFilter,
        GopherRepetitionFilter,
        C4QualityFilter,
        FineWebQualityFilter,
        CodeFilter,
        AcademicFilter,
        ClassifierFilter,  # after the rules: its reason means "passed every rule, scored low"
        PiiFilter,  # last: every other filter measures the text as it came
    )
}
BUILTIN: tuple[str, ...] = tuple(FILTERS)  # the default `quality.filters`; plugins are added by name
