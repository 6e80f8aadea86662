"""Where each stage lives, and the plugins that add filters, stages and readers of a user's own.

The built-in stages ship with curate, in pipeline order. A plugin is a `Filter` or `Stage`
subclass, or a `Reader`, found one of two ways:
  - installed: a package declares it under the entry-point group `curate.filters`,
    `curate.stages` or `curate.readers` (see examples/curate-example-plugin);
  - named: the config's `plugins:` list gives its import path, `my_pkg.filters:ToxicWords`.
Registering is process-wide and idempotent: the driver registers while loading the config, each
worker registers the same list when it starts (`ShardWorker`), so both know the same names. A
plugin that cannot be imported, or is none of the three, is a `UserError` naming it.
"""

from __future__ import annotations

import importlib
import re
import sys
from dataclasses import dataclass
from importlib import metadata

from curate.errors import UserError

# name -> "module:Class", in pipeline order. Every stage ships with curate: a stage whose module
# fails to import is an error that surfaces as itself when the stage is used, never a missing stage.
STAGES = {
    "extract": "curate.stages.extract:ExtractStage",
    "langid": "curate.stages.langid:LangIdStage",
    "quality": "curate.stages.quality:QualityStage",
    "dedup": "curate.stages.dedup:DedupStage",
    "bucket": "curate.stages.bucket:BucketStage",
    "tokenize": "curate.stages.tokenize:TokenizeStage",
}
GROUPS = {"filter": "curate.filters", "stage": "curate.stages", "reader": "curate.readers"}
NAME = re.compile(r"^[a-z][a-z0-9_]*$")  # a plugin's name is a config key and a reason part


class PluginError(RuntimeError):
    """A plugin raised inside a shard: the message names the plugin (the executor retries the
    shard, then reports this line with the shard)."""


@dataclass(frozen=True)
class Plugin:
    kind: str  # filter, stage or reader
    name: str  # config key / stage name / reader format
    ref: str  # module:attr
    obj: object

    @property
    def module(self) -> str:
        return self.ref.split(":", 1)[0]

    def describe(self) -> str:
        return f"plugin {self.kind} {self.name} ({self.ref})"


PLUGINS: dict[tuple[str, str], Plugin] = {}  # (kind, name) -> plugin
_installed_loaded = False


def builtin_names() -> list[str]:
    return list(STAGES)


def names() -> list[str]:
    """Every stage name: the built-in ones in pipeline order, then registered plugin stages."""
    return builtin_names() + [p.name for p in PLUGINS.values() if p.kind == "stage"]


def stage_class(name: str):
    plugin = PLUGINS.get(("stage", name))
    if plugin is not None:
        return plugin.obj
    module, cls = STAGES[name].split(":")
    return getattr(importlib.import_module(module), cls)


def plugins(kind: str) -> dict[str, Plugin]:
    return {p.name: p for p in PLUGINS.values() if p.kind == kind}


def load_installed() -> None:
    """Register every plugin installed under the entry-point groups (once per process)."""
    global _installed_loaded
    if _installed_loaded:
        return
    for kind, group in GROUPS.items():
        for ep in sorted(metadata.entry_points(group=group), key=lambda e: e.name):
            try:
                obj = ep.load()
            except Exception as e:
                raise UserError(f"installed plugin {ep.name} ({ep.value}, entry point group {group}) cannot be "
                                f"imported: {type(e).__name__}: {e}") from None
            _register(obj, ep.value, f"installed plugin {ep.name} ({ep.value})", kind)
    _installed_loaded = True


def use(refs: list[str], where: str = "plugins") -> list[Plugin]:
    """Import and register each `module:attr` of a config's `plugins:` list."""
    return [_register(_import(ref, where), ref, f"{where}: {ref}") for ref in refs]


def _import(ref: str, where: str):
    module, colon, attr = ref.partition(":")
    if not colon or not module or not attr:
        raise UserError(f"{where}: {ref!r}: a plugin is named module:attr, e.g. my_pkg.filters:ToxicWords")
    try:
        obj = importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise UserError(f"{where}: {ref}: no module named {e.name!r} (is the package installed?)") from None
    except Exception as e:
        raise UserError(f"{where}: {ref}: importing {module} failed: {type(e).__name__}: {e}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UserError(f"{where}: {ref}: module {module} has no {attr!r}")
        obj = getattr(obj, part)
    return obj


def _register(obj, ref: str, what: str, expect: str | None = None) -> Plugin:
    from curate import readers
    from curate.filters import BUILTIN, FILTERS
    from curate.filters.base import Filter
    from curate.stage import Stage

    if isinstance(obj, type) and issubclass(obj, Filter):
        kind, name = "filter", getattr(obj, "name", None)
    elif isinstance(obj, type) and issubclass(obj, Stage):
        kind, name = "stage", getattr(obj, "name", None)
    elif isinstance(obj, readers.Reader):
        kind, name = "reader", obj.format
    else:
        raise UserError(f"{what}: not a curate.filters.base.Filter or curate.stage.Stage subclass, "
                        f"nor a curate.readers.Reader")
    if expect is not None and kind != expect:
        raise UserError(f"{what}: is a {kind}, but installed under the entry points of {GROUPS[expect]}")
    if not isinstance(name, str) or not NAME.match(name):
        raise UserError(f"{what}: its name {name!r} must be lower-case letters, digits and _")
    known = PLUGINS.get((kind, name))
    if known is not None:
        if known.obj is obj:
            return known
        raise UserError(f"{what}: {kind} {name!r} is already the plugin {known.ref}")
    builtin = {"filter": BUILTIN, "stage": STAGES, "reader": readers.builtin()}[kind]
    if name in builtin:
        raise UserError(f"{what}: {kind} {name!r} is built into curate; give the plugin another name")
    try:
        if kind == "filter":
            obj.check_contract()
        elif kind == "stage" and not hasattr(obj, "Config"):
            raise ValueError("a stage declares its Config (a curate.config.Section subclass)")
    except ValueError as e:
        raise UserError(f"{what}: {e}") from None
    plugin = Plugin(kind, name, ref, obj)
    PLUGINS[(kind, name)] = plugin
    if kind == "filter":
        FILTERS[name] = obj
    elif kind == "reader":
        readers.register(obj)
    return plugin


def plugin_of(exc: BaseException) -> Plugin | None:
    """The plugin whose code raised `exc`: the innermost traceback frame in a plugin's module
    (or in a module of its package, when no plugin lives in that very module)."""
    if not PLUGINS:
        return None
    modules = [tb.tb_frame.f_globals.get("__name__", "") for tb in _frames(exc)]
    for module in reversed(modules):
        exact = [p for p in PLUGINS.values() if p.module == module]
        if exact:
            return exact[0]
        top = module.split(".")[0]
        if top not in ("curate", *sys.stdlib_module_names):
            inside = [p for p in PLUGINS.values() if p.module.split(".")[0] == top]
            if inside:
                return inside[0]
    return None


def _frames(exc: BaseException):
    tb = exc.__traceback__
    while tb is not None:
        yield tb
        tb = tb.tb_next
