"""Pipeline configuration: YAML files parsed into typed, validated pydantic objects.

A config is a `stages:` list (the order) plus one section per stage, and a `run:` section for
the executor. Every stage module defines its own `Config` model; this module assembles them.
A mistake (unknown key, wrong type, value out of range, missing resource file) becomes one
`UserError` line naming the file, the key and what is allowed.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, ValidationError, ValidationInfo,
                      create_model)

from curate import registry, storage
from curate.errors import UserError


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _resolve_resource(value, info: ValidationInfo) -> Path:
    """A local path (relative to the config file), or a URI whose object is fetched into a local
    cache: models and tokenizers are opened by C libraries that need a file path."""
    if isinstance(value, Path):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a file path or URI, got {value!r}")
    where = storage.location(os.path.expanduser(value))
    if storage.is_remote(where):
        try:
            return storage.stage_local(where)
        except FileNotFoundError:
            raise ValueError(f"file not found: {where}") from None
        except OSError as e:
            raise ValueError(f"cannot read {where}: {storage.explain(e)}") from None
    base = (info.context or {}).get("base_dir")
    if not where.is_absolute() and base is not None:
        where = Path(base) / where
    path = where.resolve()
    if not path.is_file() or not os.access(path, os.R_OK):
        raise ValueError(f"file not found or unreadable: {path}")
    return path


# A file the config names (a model, a tokenizer, a block list): a path relative to the config
# file, or a URI (s3://...). It is written back (run.json, fingerprints) as the user named it.
ResourcePath = Annotated[Path, PlainValidator(_resolve_resource),
                         PlainSerializer(lambda p: str(getattr(p, "source", p)), when_used="json")]


class StorageConfig(Section):
    endpoint: str | None = Field(None, description="object-store endpoint, e.g. http://127.0.0.1:8333 for MinIO or "
                                 "SeaweedFS; null: AWS_ENDPOINT_URL, else AWS S3")
    region: str | None = Field(None, description="S3 region; null: AWS_REGION, else the bucket's own")
    anonymous: bool = Field(False, description="send no credentials (public buckets such as s3://commoncrawl)")

    def options(self) -> storage.StoreOptions:
        return storage.StoreOptions(self.endpoint, self.region, self.anonymous)


class RunConfig(Section):
    workers: int = Field(0, ge=0, description="shards processed at once; 0 = one per CPU")
    shard_mb: float | None = Field(None, gt=0, description="input megabytes per extract shard (small files are grouped); "
                                   "null: 8 shards per worker, within 1-64 MB")
    batch_docs: int = Field(2000, ge=1, description="documents per process() call")
    batch_mb: float = Field(32.0, gt=0, description="text megabytes per process() call")
    task_retries: int = Field(2, ge=0, description="retries of a failed shard before the run stops")
    shard_timeout_s: float = Field(3600.0, gt=0, description="a shard running longer is killed and retried")
    doc_timeout_s: float = Field(300.0, gt=0, description="a document hanging a worker longer is removed as <stage>:error:timeout")
    object_store_mb: int = Field(256, ge=78, description="Ray object store of the embedded Ray")
    storage: StorageConfig = Field(default_factory=StorageConfig,
                                   description="how to reach s3:// paths (credentials come from the environment)")


def pipeline_model(data: dict | None = None) -> type[BaseModel]:
    """The top-level config model: one section per built-in stage, and per plugin stage that
    `data` names (in `stages:` or as a section), so installing a plugin changes no other config.
    A stage whose section depends on the config (quality's plugin filters) has `config_for`."""
    data = data if isinstance(data, dict) else {}
    listed = data.get("stages") if isinstance(data.get("stages"), list) else []
    fields: dict[str, Any] = {
        "stages": (list[str], Field(default_factory=registry.builtin_names)),
        "plugins": (list[str], Field(default_factory=list, description="import paths (module:attr) of filters, "
                                     "stages and readers of your own; installed plugins need no entry")),
        "run": (RunConfig, Field(default_factory=RunConfig)),
    }
    for name in registry.names():
        if name not in registry.STAGES and name not in listed and name not in data:
            continue
        cls = registry.stage_class(name)
        cfg = cls.config_for(data.get(name)) if hasattr(cls, "config_for") else cls.Config
        fields[name] = (cfg, Field(default_factory=cfg))
    return create_model("PipelineConfig", __base__=Section, **fields)


def default_config_text(name: str = "default.yaml") -> str:
    return resources.files("curate.configs").joinpath(name).read_text()


def parse_override(item: str) -> tuple[list[str], Any]:
    """`quality.gopher.min_doc_words=80` -> (['quality', 'gopher', 'min_doc_words'], 80)."""
    if "=" not in item:
        raise UserError(f"--set {item}: expected STAGE.KEY=VALUE")
    key, _, raw = item.partition("=")
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise UserError(f"--set {item}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def apply_overrides(data: dict, overrides: list[str]) -> dict[tuple[str, ...], str]:
    """Apply `--set` items to `data` in order; returns each changed key path and its item."""
    applied: dict[tuple[str, ...], str] = {}
    for item in overrides:
        parts, value = parse_override(item)
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise UserError(f"--set {item}: {part} is not a section")
            node = child
        node[parts[-1]] = value
        applied[tuple(parts)] = item
    return applied


def _origin(loc: tuple, source: str, applied: dict[tuple[str, ...], str]) -> str:
    """Who set the value at `loc`: the last `--set` on that key or a section around it (or a key
    inside it), else the config file."""
    loc = tuple(str(p) for p in loc)
    items = [item for path, item in applied.items() if loc[: len(path)] == path or path[: len(loc)] == loc]
    return f"--set {items[-1]}" if items and loc else source


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        ann = field.annotation if field else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return list(model.model_fields)


def _explain(err: dict, model: type[BaseModel]) -> str:
    loc = tuple(err["loc"])
    key = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        return f"{key}: unknown key; allowed: {', '.join(allowed)}{_plugin_of(loc)}"
    msg = err["msg"]
    if "input" in err and err["type"] not in ("missing",):
        shown = repr(err["input"])
        msg = f"{msg} (got {shown[:60]})"
    return f"{key}: {msg}{_plugin_of(loc)}"


def _plugin_of(loc: tuple) -> str:
    """`; in the section of plugin filter toxic (my_pkg.filters:Toxic)` for a key of a plugin."""
    plugin = None
    if len(loc) > 2 and loc[0] == "quality":
        plugin = registry.plugins("filter").get(str(loc[1]))
    if plugin is None and len(loc) > 1:
        plugin = registry.plugins("stage").get(str(loc[0]))
    return f"; in the section of {plugin.describe()}" if plugin is not None else ""


class Pipeline:
    """A validated config plus where it came from."""

    def __init__(self, model: BaseModel, source: str, base_dir: Path):
        self.model = model
        self.source = source
        self.base_dir = base_dir

    @property
    def stages(self) -> list[str]:
        return list(self.model.stages)

    @property
    def run(self) -> RunConfig:
        return self.model.run

    @property
    def plugins(self) -> list[str]:
        """The import paths the config names (workers register them too)."""
        return list(self.model.plugins)

    def plugins_used(self, stages: list[str]) -> list[str]:
        """Import paths of the plugin stages and filters `stages` run: part of their fingerprint,
        so a run made with another plugin of the same name is not resumed as if it were one."""
        stage_plugins, filter_plugins = registry.plugins("stage"), registry.plugins("filter")
        refs = [stage_plugins[s].ref for s in stages if s in stage_plugins]
        if "quality" in stages:
            refs += [filter_plugins[f].ref for f in self.section("quality").filters if f in filter_plugins]
        return refs

    def section(self, stage: str) -> BaseModel:
        return getattr(self.model, stage)

    def dump(self) -> dict:
        return self.model.model_dump(mode="json")

    def stage_hash(self, stage: str) -> str:
        """Fingerprint of everything that decides a stage's output: its section, the shard size
        (extract), the stages before it, and the content of the resource files it names."""
        parts = []
        for name in self.stages[: self.stages.index(stage) + 1]:
            section = self.section(name).model_dump(mode="json")
            parts.append([name, section, _resource_digests(self.section(name))])
        parts.append(self.run.shard_mb)
        plugins = self.plugins_used(self.stages[: self.stages.index(stage) + 1])
        if plugins:  # only then: a pipeline of built-in stages keeps the fingerprints it had
            parts.append(plugins)
        blob = json.dumps(parts, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.dump(), sort_keys=True).encode()).hexdigest()[:16]


def _resource_digests(section: BaseModel) -> dict[str, str]:
    out = {}

    def walk(value, key):
        if isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name), f"{key}.{name}")
        elif isinstance(value, Path) and value.is_file():
            h = hashlib.sha256()
            with open(value, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            out[key] = h.hexdigest()[:16]
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(v, f"{key}[{i}]")
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{key}.{k}")

    walk(section, "")
    return out


def _configure_storage(data: dict) -> None:
    """Store options first: the resource paths of every section may be URIs that need them. A
    mistake here is reported by the full validation that follows."""
    section = (data.get("run") or {}).get("storage") if isinstance(data.get("run"), dict) else None
    try:
        options = StorageConfig.model_validate(section or {}).options()
    except ValidationError:
        options = storage.StoreOptions()
    storage.configure(options)


def load(path: str | Path | None, overrides: list[str] = ()) -> Pipeline:
    """Load, override and validate a config; `None` means the packaged default.yaml."""
    if path is None:
        source, text, base_dir = "default.yaml", default_config_text(), Path.cwd()
    else:
        p = Path(path)
        if not p.is_file():
            raise UserError(f"config file not found: {p}")
        source, base_dir = str(p), p.resolve().parent
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"{p}: cannot read config: {e}") from None
    try:
        data = yaml.safe_load(text)  # safe_load: a config never constructs Python objects
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{source}:{where} invalid YAML: {getattr(e, 'problem', e)}") from None
    return from_dict(data, source, base_dir, overrides)


def from_dict(data: Any, source: str = "<dict>", base_dir: Path | None = None, overrides: list[str] = ()) -> Pipeline:
    """Validate a config given as a mapping (what a YAML file holds); resource paths are relative
    to `base_dir` (default: the current directory). Plugins it names are imported here."""
    base_dir = Path.cwd() if base_dir is None else Path(base_dir)
    data = {} if data is None else copy.deepcopy(data)
    if not isinstance(data, dict):
        raise UserError(f"{source}: a config is a mapping with a `stages:` list and one section per stage")
    applied = apply_overrides(data, list(overrides))
    _configure_storage(data)
    _load_plugins(data, _origin(("plugins",), source, applied))
    model_cls = pipeline_model(data)
    try:
        model = model_cls.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as e:
        first = e.errors()[0]
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        raise UserError(f"{_origin(tuple(first['loc']), source, applied)}: {_explain(first, model_cls)}{more}") from None
    _check_order(model.stages, _origin(("stages",), source, applied))
    return Pipeline(model, source, base_dir)


def _load_plugins(data: dict, where: str) -> None:
    """Installed plugins, then those the config names: before the model is built (their sections
    are part of it) and before Ray starts (a misspelt path is a config mistake)."""
    registry.load_installed()
    refs = data.get("plugins") or []
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise UserError(f"{where}: plugins: a list of import paths, e.g. [my_pkg.filters:ToxicWords]")
    registry.use(refs, f"{where}: plugins")


def _check_order(stages: list[str], where: str) -> None:
    """Known names, none twice; the built-in stages in pipeline order, plugin stages anywhere."""
    known = registry.names()
    for name in stages:
        if name not in known:
            raise UserError(f"{where}: stages: unknown stage {name!r}; allowed: {', '.join(known)}")
    if len(set(stages)) != len(stages):
        raise UserError(f"{where}: stages: a stage is listed twice")
    builtin = [s for s in stages if s in registry.STAGES]
    if builtin != [s for s in registry.STAGES if s in stages]:
        raise UserError(f"{where}: stages: must follow the pipeline order {', '.join(registry.STAGES)}")
