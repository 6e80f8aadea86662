"""The reference model of `curate train`: a small decoder in the DeepSeekMoE / DeepSeek-V3 style.

Each block is pre-norm: x + Attention(RMSNorm(x)), then x + MoE(RMSNorm(x)).

- Attention (attention.py): causal self-attention with rotary positions, plain multi-head (MHA)
  or DeepSeek-V2/V3's multi-head latent attention (MLA).
- MoE (DeepSeekMoE, arXiv:2401.06066): many small "fine-grained" routed SwiGLU experts, of which
  each token uses top_k, plus shared experts that every token goes through.
- Routing (DeepSeek-V3, arXiv:2412.19437, section 2.1.2): sigmoid affinities; a per-expert bias is
  added to them only to choose the experts, while the mixing weights come from the unbiased
  affinities. The trainer moves the bias after each optimizer step (`update_routing_bias`), so the
  load balances without an auxiliary loss; V3's small sequence-wise balance loss is optional.
- Multi-token prediction (mtp.py, DeepSeek-V3 section 2.2): optional modules after the last
  block that predict tokens t+2 .. t+1+D, sharing the embedding and the output head.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from curate.trainer.attention import make_attention, rotary_dim, rotary_tables
from curate.trainer.config import ModelConfig
from curate.trainer.mtp import MTPModule, cross_entropy, mtp_losses


class SwiGLU(nn.Module):
    """A dense feed-forward layer: the shared experts (as one wider SwiGLU) and dense blocks."""

    def __init__(self, d_model: int, hidden: int):
        super().__init__()
        self.gate_up = nn.Linear(d_model, 2 * hidden, bias=False)
        self.down = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


def grouped_matmul(x: torch.Tensor, weights: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
    """Rows ends[e-1]:ends[e] of x [A, d_in] times weights[e] [d_in, d_out], in one call: [A, d_out].

    torch's grouped_mm is not on autocast's list, so it gets the autocast dtype by hand (its CUDA
    kernels want bf16)."""
    device = x.device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
        x, weights = x.to(dtype), weights.to(dtype)
    return F.grouped_mm(x, weights, offs=ends)


class RoutedExperts(nn.Module):
    """n SwiGLU experts with their weights stacked, so all of them run as two grouped matmuls.

    Measured on a CPU (scripts/train_bench.py --compare-experts), forward and backward: a Python
    loop over the experts took 1.1-1.3x as long; a zero-padded batched matmul was about as fast
    with an even load but 3.5-4x slower with a skewed one. It also needs no host sync for the
    per-expert counts."""

    def __init__(self, n_experts: int, d_model: int, hidden: int):
        super().__init__()
        self.gate_up = nn.Parameter(torch.empty(n_experts, d_model, 2 * hidden))
        self.down = nn.Parameter(torch.empty(n_experts, hidden, d_model))

    def forward(self, x: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        # x [A, d]: the token copies sorted by expert; counts [E]: how many rows each expert owns
        ends = counts.cumsum(0).to(torch.int32)  # [E]
        gate, up = grouped_matmul(x, self.gate_up, ends).chunk(2, dim=-1)  # each [A, hidden]
        return grouped_matmul(F.silu(gate) * up, self.down, ends)  # [A, d]


class Router(nn.Module):
    def __init__(self, d_model: int, n_experts: int, top_k: int):
        super().__init__()
        self.top_k = top_k
        self.weight = nn.Parameter(torch.empty(n_experts, d_model))
        # The balancing bias is set by a rule, not by gradients, so it is a buffer; a persistent
        # one, so checkpoints carry it.
        self.register_buffer("bias", torch.zeros(n_experts))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # x [N, d] -> chosen experts [N, k], their mixing weights [N, k], all affinities [N, E]
        scores = F.linear(x, self.weight).float().sigmoid()
        chosen = (scores + self.bias).topk(self.top_k, dim=-1).indices  # the bias only picks
        weights = scores.gather(-1, chosen)
        return chosen, weights / weights.sum(dim=-1, keepdim=True), scores


def sequence_balance_loss(chosen: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """DeepSeek-V3's complementary sequence-wise balance loss (eq. 17-20), before its alpha.

    chosen [B, T, k], scores [B, T, E]. It is 1 when every expert gets an even share of each
    sequence and grows as a few experts take both the picks and the affinity mass."""
    B, T, k = chosen.shape
    n_experts = scores.shape[-1]
    picks = F.one_hot(chosen, n_experts).sum(dim=(1, 2)).float()  # [B, E] picks per expert per sequence
    share = picks * n_experts / (k * T)  # f_i: 1 = an even share
    affinity = (scores / scores.sum(dim=-1, keepdim=True)).mean(dim=1)  # P_i [B, E]
    return (share * affinity).sum(dim=-1).mean()


class MoE(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.top_k = cfg.top_k
        self.balance_loss_coef = cfg.balance_loss_coef
        self.router = Router(cfg.d_model, cfg.n_routed_experts, cfg.top_k)
        self.experts = RoutedExperts(cfg.n_routed_experts, cfg.d_model, cfg.expert_hidden)
        shared_hidden = cfg.n_shared_experts * cfg.expert_hidden
        self.shared = SwiGLU(cfg.d_model, shared_hidden) if shared_hidden else None
        self.load: torch.Tensor | None = None  # [E] tokens sent to each expert by the last forward
        self.balance_loss: torch.Tensor | None = None  # set by a training forward when its coef > 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, d = x.shape
        k = self.top_k
        flat = x.reshape(B * T, d)  # [N, d]
        chosen, weights, scores = self.router(flat)  # [N, k], [N, k], [N, E]
        # Sort the N*k token copies by expert so each expert's rows are contiguous.
        order = chosen.flatten().argsort(stable=True)  # [N*k]
        self.load = torch.bincount(chosen.flatten(), minlength=scores.shape[-1])  # [E]
        # repeat_interleave + gather rather than flat[order // k]: every index is used once, so
        # the backward needs no scatter-add (no atomics, deterministic on GPU too).
        routed = self.experts(flat.repeat_interleave(k, dim=0)[order], self.load)  # [N*k, d]
        routed = routed[order.argsort()].view(B * T, k, d)  # back to token order
        y = (routed * weights.unsqueeze(-1).to(routed.dtype)).sum(dim=1)  # [N, d]
        if self.shared is not None:
            y = y + self.shared(flat)
        if self.training and self.balance_loss_coef > 0:
            loss = sequence_balance_loss(chosen.view(B, T, k), scores.view(B, T, -1))
            self.balance_loss = self.balance_loss_coef * loss
        return y.view(B, T, d)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, moe: bool):
        super().__init__()
        self.attn_norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.attn = make_attention(cfg)
        self.ffn_norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        # A dense block gets the hidden width a token uses in a MoE block.
        dense_hidden = (cfg.top_k + cfg.n_shared_experts) * cfg.expert_hidden
        self.ffn = MoE(cfg) if moe else SwiGLU(cfg.d_model, dense_hidden)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), cos, sin)
        return x + self.ffn(self.ffn_norm(x))


class MoETransformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.vocab_size <= 0:
            raise ValueError("ModelConfig.vocab_size must be set (the trainer takes it from the manifest)")
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg, moe=i >= cfg.n_dense_layers) for i in range(cfg.n_layer))
        self.norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        cos, sin = rotary_tables(cfg.seq_len, rotary_dim(cfg), cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)  # derived from the config
        self.register_buffer("rope_sin", sin, persistent=False)
        self._init_weights(self)
        # Built and initialised last, so the main model's initial weights do not depend on mtp_depth.
        self.mtp = nn.ModuleList(MTPModule(cfg, Block(cfg, moe=False)) for _ in range(cfg.mtp_depth))
        self._init_weights(self.mtp)
        self.mtp_losses: torch.Tensor | None = None  # [D]: each depth's loss in the last forward

    def _init_weights(self, module: nn.Module) -> None:
        # Projections that write into the residual stream start smaller, so the stream's
        # variance does not grow with depth (GPT-2); norms start at 1.
        residual_std = self.cfg.init_std / math.sqrt(2 * self.cfg.n_layer)
        for name, p in module.named_parameters():
            if p.dim() >= 2:
                writes_residual = name.endswith(("out.weight", "down.weight", "experts.down"))
                nn.init.normal_(p, 0.0, residual_std if writes_residual else self.cfg.init_std)

    def moe_layers(self) -> list[MoE]:
        return [b.ffn for b in self.blocks if isinstance(b.ffn, MoE)]

    def forward(self, tokens: torch.Tensor, targets: torch.Tensor | None = None):
        """tokens [B, T] -> logits [B, T, V], and the mean next-token cross-entropy if targets
        [B, T] are given; then the MTP modules' losses are left in self.mtp_losses."""
        T = tokens.shape[1]
        x = self.embed(tokens)  # [B, T, d]
        cos, sin = self.rope_cos[:T], self.rope_sin[:T]
        for block in self.blocks:
            x = block(x, cos, sin)
        logits = self.head(self.norm(x))  # [B, T, V]
        if targets is None:
            return logits, None
        if self.mtp:
            self.mtp_losses = mtp_losses(self.mtp, x, tokens, targets, self.embed, self.head, cos, sin)
        return logits, cross_entropy(logits, targets)

    def mtp_loss(self) -> torch.Tensor | float:
        """lambda times the mean of the MTP losses of the last forward (0 without MTP)."""
        return self.cfg.mtp_weight * self.mtp_losses.mean() if self.mtp else 0.0

    def balance_loss(self) -> torch.Tensor | float:
        """The summed sequence-level balance losses of the last training forward (0 when off)."""
        return sum(m.balance_loss for m in self.moe_layers() if m.balance_loss is not None)

    @torch.no_grad()
    def update_routing_bias(self, loads: list[torch.Tensor], rate: float) -> None:
        """bias_e += rate * sign(mean load - load_e) in every MoE layer: an overloaded expert gets
        picked less often from the next step on. loads: one [E] token count per MoE layer."""
        for moe, load in zip(self.moe_layers(), loads, strict=True):
            load = load.float()
            moe.router.bias += rate * torch.sign(load.mean() - load)


def parameter_counts(model: MoETransformer) -> tuple[int, int]:
    """(total, active): active counts what one token's matmuls use, i.e. without the embedding
    table (a lookup) and without the routed experts it is not sent to. MTP modules, when there
    are any, count in both (they run for every training token)."""
    cfg = model.cfg
    total = sum(p.numel() for p in model.parameters())
    routed = sum(p.numel() for m in model.moe_layers() for p in m.experts.parameters())
    skipped = routed * (cfg.n_routed_experts - cfg.top_k) // cfg.n_routed_experts
    return total, total - model.embed.weight.numel() - skipped


def flops_per_token(cfg: ModelConfig, active_params: int) -> int:
    """Training FLOPs per token, forward and backward: 6 per active parameter, 6 more per output
    head weight for each MTP depth (the shared head runs again), plus attention's
    6 * layers * context * heads * (query-key dim + value dim), which is PaLM's
    12 * layers * width * context for MHA (appendix B: the full, not the causal half, attention
    matrix), so MFU figures compare with PaLM's and nanoGPT's."""
    qk = cfg.head_dim + (cfg.mla_rope_dim if cfg.attention == "mla" else 0)
    attention = 6 * (cfg.n_layer + cfg.mtp_depth) * cfg.seq_len * cfg.n_head * (qk + cfg.head_dim)
    return 6 * active_params + 6 * cfg.mtp_depth * cfg.d_model * cfg.vocab_size + attention
