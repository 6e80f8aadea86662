"""Causal self-attention with rotary positions: plain multi-head (MHA) or DeepSeek's latent (MLA).

MLA (DeepSeek-V2, arXiv:2405.04434, section 2.1; kept in V3): keys and values are rebuilt from
one shared low-rank latent c = W_down x per token, so an inference cache holds c (kv_latent_dim
numbers) instead of every head's key and value (2 * d_model numbers). Rotary positions cannot
pass through the up-projection (it would have to be re-applied to every cached latent), so a
separate small rotary key of rope_head_dim, shared by all heads, is cached beside c, and each
query head gets a matching rotary part. Queries can be compressed too (q_latent_dim), which
saves activation memory in training but nothing in the cache.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from curate.trainer.config import ModelConfig


def rotary_tables(seq_len: int, dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of each position times each rotary frequency: two [seq_len, dim/2]."""
    freqs = theta ** -(torch.arange(0, dim, 2, dtype=torch.float32) / dim)  # [dim/2]
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), freqs)  # [T, dim/2]
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each (first half, second half) pair of x [B, H, T, dim] by its position's angle."""
    x1, x2 = x.float().chunk(2, dim=-1)  # each [B, H, T, dim/2]
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).type_as(x)


def rotary_dim(cfg: ModelConfig) -> int:
    """Dimensions per head that rotate: all of a head in MHA, the decoupled part in MLA."""
    return cfg.mla_rope_dim if cfg.attention == "mla" else cfg.d_model // cfg.n_head


def kv_cache_values_per_token(cfg: ModelConfig) -> int:
    """Numbers an inference KV cache keeps per token, over all layers (multiply by the dtype's
    bytes): a key and a value of d_model each for MHA; the latent and the rotary key for MLA."""
    per_layer = cfg.mla_kv_dim + cfg.mla_rope_dim if cfg.attention == "mla" else 2 * cfg.d_model
    return cfg.n_layer * per_layer


class Attention(nn.Module):
    """Multi-head attention: queries, keys and values all d_model wide, rotary on whole heads."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.out = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.n_head, C // self.n_head)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, H, T, hd]
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # [B, H, T, hd]
        return self.out(y.transpose(1, 2).reshape(B, T, C))


class LatentAttention(nn.Module):
    """Multi-head latent attention. Per head: a content part of head_dim (from the latent) and a
    rotary part of rope_dim in queries and keys; values of head_dim. Scores are scaled by
    1/sqrt(head_dim + rope_dim), as in DeepSeek-V2."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_head, self.head_dim = cfg.n_head, cfg.head_dim
        self.kv_dim, self.rope_dim = cfg.mla_kv_dim, cfg.mla_rope_dim
        q_width = cfg.n_head * (self.head_dim + self.rope_dim)
        if cfg.q_latent_dim:
            self.q = nn.Sequential(nn.Linear(cfg.d_model, cfg.q_latent_dim, bias=False),
                                   nn.RMSNorm(cfg.q_latent_dim, eps=cfg.norm_eps),
                                   nn.Linear(cfg.q_latent_dim, q_width, bias=False))
        else:
            self.q = nn.Linear(cfg.d_model, q_width, bias=False)
        # The latent and the shared rotary key come from one matmul: together they are the cache.
        self.kv_down = nn.Linear(cfg.d_model, self.kv_dim + self.rope_dim, bias=False)
        self.kv_norm = nn.RMSNorm(self.kv_dim, eps=cfg.norm_eps)
        self.kv_up = nn.Linear(self.kv_dim, cfg.n_head * 2 * self.head_dim, bias=False)
        self.out = nn.Linear(cfg.n_head * self.head_dim, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        H, hd, rd = self.n_head, self.head_dim, self.rope_dim
        q = self.q(x).view(B, T, H, hd + rd).transpose(1, 2)  # [B, H, T, hd + rd]
        q_content, q_rope = q.split([hd, rd], dim=-1)
        latent, k_rope = self.kv_down(x).split([self.kv_dim, rd], dim=-1)  # [B, T, kv], [B, T, rd]
        kv = self.kv_up(self.kv_norm(latent)).view(B, T, H, 2 * hd).transpose(1, 2)
        k_content, v = kv.split([hd, hd], dim=-1)  # each [B, H, T, hd]
        k_rope = apply_rotary(k_rope.unsqueeze(1), cos, sin).expand(B, H, T, rd)  # one key for all heads
        q = torch.cat((q_content, apply_rotary(q_rope, cos, sin)), dim=-1)
        k = torch.cat((k_content, k_rope), dim=-1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # [B, H, T, hd]
        return self.out(y.transpose(1, 2).reshape(B, T, H * hd))


def make_attention(cfg: ModelConfig) -> nn.Module:
    return LatentAttention(cfg) if cfg.attention == "mla" else Attention(cfg)
