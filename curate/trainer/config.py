"""What `curate train` can be told: the model, the optimisation and the curriculum.

A YAML config has up to three sections; whatever it leaves out keeps the defaults below, which
train on a laptop CPU in minutes: 4 layers of width 256, 8 experts (top-2) + 1 shared.
Parameters: 8.14M outside the embeddings (3.42M active per token); 24.52M in all (11.61M active)
with a 32,000-token vocabulary, 9.16M (3.93M active) with 2,000. Bigger setups live in
configs/train/.

    model:      {d_model: 768, n_layer: 8, n_routed_experts: 16, seq_len: 1024}
    train:      {steps: 20000, batch_size: 64, lr: 6.0e-4}
    curriculum:
      - {fraction: 0.3, weights: {easy: 0.6, general: 0.4}}
      - {fraction: 0.7, weights: {general: 0.5, reasoning: 0.3, code: 0.2}}

This module needs no torch, so a bad config is reported before torch is imported.
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

import yaml
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from curate.errors import UserError


class Section(BaseModel):
    # strict: a YAML "256" or 1.0 where an int belongs is a mistake, not something to coerce.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ModelConfig(Section):
    vocab_size: int = 0  # filled in from the shards manifest; never set in a config file
    seq_len: int = Field(256, gt=0)  # tokens per training window (the context length)
    n_layer: int = Field(4, gt=0)  # transformer blocks
    d_model: int = Field(256, gt=0)  # width of the residual stream
    n_head: int = Field(4, gt=0)  # attention heads; head dim = d_model / n_head, must be even (rotary)
    n_dense_layers: int = Field(0, ge=0)  # leading blocks with a dense FFN instead of MoE (DeepSeek uses 1-3)
    n_routed_experts: int = Field(8, gt=0)  # routed experts per MoE layer
    top_k: int = Field(2, gt=0)  # routed experts each token goes to
    n_shared_experts: int = Field(1, ge=0)  # experts every token goes through, beside the routed ones
    expert_hidden: int = Field(256, gt=0)  # SwiGLU hidden width of one expert: small = fine-grained
    balance_loss_coef: float = Field(0.0, ge=0)  # DeepSeek-V3's sequence-wise balance loss alpha (V3: 1e-4); 0 = off
    attention: Literal["mha", "mla"] = "mha"  # mla: DeepSeek-V2/V3 multi-head latent attention
    kv_latent_dim: int = Field(0, ge=0)  # mla: the cached key-value latent per token; 0 = 4 * head dim (V2)
    rope_head_dim: int = Field(0, ge=0)  # mla: decoupled rotary dims per head, even; 0 = head dim / 2 (V2)
    q_latent_dim: int = Field(0, ge=0)  # mla: query compression width; 0 = queries not compressed
    mtp_depth: int = Field(0, ge=0)  # DeepSeek-V3 multi-token prediction: modules for tokens t+2..t+1+D
    mtp_weight: float = Field(0.3, ge=0)  # lambda: the MTP losses' weight (their mean) in the objective
    rope_theta: float = Field(10000.0, gt=0)  # rotary base period
    norm_eps: float = Field(1e-6, gt=0)
    init_std: float = Field(0.02, gt=0)  # std of the initial weights (output projections: scaled by depth)

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        if self.d_model % self.n_head or (self.d_model // self.n_head) % 2:
            raise ValueError(f"d_model {self.d_model} must split into {self.n_head} heads of even size")
        if self.top_k > self.n_routed_experts:
            raise ValueError(f"top_k {self.top_k} exceeds n_routed_experts {self.n_routed_experts}")
        if self.n_dense_layers > self.n_layer:
            raise ValueError(f"n_dense_layers {self.n_dense_layers} exceeds n_layer {self.n_layer}")
        latent = [k for k in ("kv_latent_dim", "rope_head_dim", "q_latent_dim") if getattr(self, k)]
        if self.attention == "mha" and latent:
            raise ValueError(f"{', '.join(latent)}: only for attention: mla")
        if self.mla_rope_dim % 2:
            raise ValueError(f"rope_head_dim {self.mla_rope_dim} must be even (rotary pairs)")
        return self

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    @property
    def mla_kv_dim(self) -> int:
        return self.kv_latent_dim or 4 * self.head_dim

    @property
    def mla_rope_dim(self) -> int:
        return self.rope_head_dim or self.head_dim // 2


# The routing bias must move about as fast as the router's affinities, which move with the
# learning rate; DeepSeek-V3's gamma of 1e-3 (at a peak lr of 2.2e-4) is far too slow at a small
# model's lr. Measured on the tiny config (seq_len 64, batch 8, 300 steps on BPE-4096 shards of
# the shared web text; each layer's mean max/mean expert load over the last 60 steps, and the
# worst 10-step interval of the run):
#   gamma 1e-3 (V3's):     1.59 / 2.65, the second layer collapsing (worst 3.9)
#   2.5 x lr (5e-3):       1.26 / 1.21
#   5 x lr (1e-2):         1.17 / 1.15, but 7 intervals above 2 after warmup (worst 3.78)
#   10 x lr (2e-2):        1.19 / 1.16, above 2 for 3 intervals (worst 2.76), lowest final loss
# Tying gamma to the scheduled, decaying lr did worse at the end of the run (1.36 / 1.46 at
# 5 x peak), as did a step proportional to the load error (1.62 / 1.30); V3's sequence-wise
# balance loss alone (alpha 1e-4) gave 1.71 / 1.76. So: the sign rule, gamma = 10 x peak lr.
# The tiny config as shipped (context 128, batch 16) on the pipeline's 32k-vocabulary shards of
# the same text, 60 steps: its last 10 steps' imbalance is 1.18 / 1.18 with it, 1.44 / 4.00
# (every token in the same 2 of 8 experts) with 1e-3.
# Other configs, same shards and proxy (context 64, batch 8, 300 steps, warmup scaled down):
# the built-in defaults (gamma 1e-2) 1.21 / 1.20 / 1.14 / 1.20 per layer against 1.65 / 1.70 /
# 1.52 / 2.07 with 1e-3 (final loss 6.51 both); small (gamma 1e-2) 1.26 / 1.14 / 1.15 / 1.18 /
# 1.11 / 1.11 against 1.81 / 1.75 / 1.46 / 1.66 / 1.97 / 1.55 (final loss 6.58 against 6.51).
# moe-100m (gamma 6e-3) was not measured: too slow for the CPUs this was tuned on.
BIAS_RATE_PER_LR = 10.0


class TrainConfig(Section):
    steps: int = Field(1000, gt=0)  # optimizer steps; the LR schedule and curriculum span them
    batch_size: int = Field(8, gt=0)  # sequences per optimizer step
    micro_batch_size: int = Field(8, gt=0)  # sequences per forward pass; fewer = gradient accumulation
    lr: float = Field(1e-3, gt=0)  # peak learning rate, reached after warmup
    min_lr: float = Field(1e-4, ge=0)  # the cosine decay ends here
    warmup_steps: int = Field(50, ge=0)  # linear warmup from lr / warmup_steps
    weight_decay: float = Field(0.1, ge=0)  # AdamW decay on matrices; none on norms and biases
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.95, ge=0, lt=1)
    grad_clip: float = Field(1.0, gt=0)  # max global gradient norm
    # Routing-bias step per optimizer step (DeepSeek-V3's gamma); 0 = off; unset: BIAS_RATE_PER_LR x lr.
    bias_update_rate: float | None = Field(None, ge=0)
    seed: int = Field(0, ge=0)  # decides the initial weights and every batch
    log_every: int = Field(10, gt=0)  # steps between log lines
    checkpoint_every: int = Field(200, gt=0)  # steps between checkpoints (and one at the end)
    prefetch: int = Field(4, gt=0)  # batches prepared ahead by the background reader
    threads: int = Field(0, ge=0)  # torch CPU threads; 0 = $OMP_NUM_THREADS, else every usable core

    @property
    def bias_rate(self) -> float:
        return BIAS_RATE_PER_LR * self.lr if self.bias_update_rate is None else self.bias_update_rate

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.batch_size % self.micro_batch_size:
            raise ValueError(f"batch_size {self.batch_size} is not a multiple of "
                             f"micro_batch_size {self.micro_batch_size}")
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr {self.min_lr} exceeds lr {self.lr}")
        return self


class Phase(Section):
    fraction: float = Field(gt=0, le=1)  # share of the total steps this phase lasts
    weights: dict[str, float]  # bucket name -> mixing weight (renormalised over buckets that exist)

    @model_validator(mode="after")
    def _non_negative(self) -> Phase:
        if any(w < 0 for w in self.weights.values()):
            raise ValueError(f"weights must be >= 0, got {self.weights}")
        return self


# The default ramp: easy text first, then general text, then reasoning, code only at the end.
DEFAULT_CURRICULUM = [
    Phase(fraction=0.3, weights={"easy": 0.6, "general": 0.4}),
    Phase(fraction=0.4, weights={"easy": 0.2, "general": 0.5, "reasoning": 0.3}),
    Phase(fraction=0.3, weights={"general": 0.4, "reasoning": 0.3, "code": 0.3}),
]


class Config(Section):
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    curriculum: list[Phase] = Field(default_factory=lambda: list(DEFAULT_CURRICULUM), min_length=1)

    @model_validator(mode="after")
    def _fractions_sum_to_one(self) -> Config:
        total = sum(p.fraction for p in self.curriculum)
        if abs(total - 1) > 1e-6:
            raise ValueError(f"curriculum fractions must add up to 1, they add up to {total:g}")
        return self


class _YamlLoader(yaml.SafeLoader):
    """SafeLoader that reads 3e-4 as a number: YAML 1.1 wants 3.0e-4, ML configs rarely comply."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$"), list("-+0123456789.")
)


def builtin_config_names() -> list[str]:
    """Configs shipped in configs/train/, usable as `--config NAME`."""
    try:
        folder = resources.files("curate.configs").joinpath("train")
    except ModuleNotFoundError:  # running from a checkout that is not installed
        return []
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _explain(err: dict) -> str:
    key = ".".join(str(p) for p in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        return f"{key}: unknown key"
    shown = f" (got {err['input']!r:.60})" if err["type"] not in ("missing", "value_error") else ""
    return f"{key}: {err['msg']}{shown}"


def parse_config(data: dict, source: str = "config") -> Config:
    if not isinstance(data, dict):
        raise UserError(f"{source}: a train config is a mapping with model:, train: and curriculum: sections")
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        raise UserError(f"{source}: {_explain(e.errors()[0])}{more}") from None


def load_config(path: str | Path | None, steps: int | None = None) -> Config:
    """The config from a YAML file, a built-in name (tiny, small, moe-100m) or the defaults (None);
    `steps` overrides train.steps."""
    if path is None:
        data, source = {}, "defaults"
    else:
        file = Path(os.path.expanduser(str(path)))
        if not file.is_file() and str(path) in builtin_config_names():
            file = resources.files("curate.configs").joinpath("train", f"{path}.yaml")
        elif not file.is_file():
            names = ", ".join(builtin_config_names()) or "none installed"
            raise UserError(f"config file not found: {path} (built-in configs: {names})")
        source = str(path)
        try:
            data = yaml.load(file.read_text(encoding="utf-8"), Loader=_YamlLoader) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            raise UserError(f"{source}: cannot read YAML: {str(e).splitlines()[0]}") from None
    if isinstance(data, dict) and "vocab_size" in (data.get("model") or {}):
        raise UserError(f"{source}: model.vocab_size comes from the shards manifest; remove it")
    if steps is not None and isinstance(data, dict):
        data = {**data, "train": {**(data.get("train") or {}), "steps": steps}}
    return parse_config(data, source)
