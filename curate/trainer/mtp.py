"""DeepSeek-V3's multi-token prediction (arXiv:2412.19437, section 2.2).

Module k (1..D) predicts the token k+1 places ahead. At position i it joins two things: the
previous depth's representation h^{k-1}_i (the main model's last hidden state for k = 1) and the
embedding of token t_{i+k}, each RMS-normed, projects the pair back to d_model, runs one
transformer block, and reads logits for t_{i+1+k} through the main model's output head. The
modules are sequential, so each depth keeps the causal chain of the ones before it; the
embedding and the head are shared, so they add only a projection, a block and two norms each.
They densify the training signal and are dropped at inference (or kept for speculative decoding).

Our blocks here use a dense FFN of the width a token uses in a MoE block, so routing statistics
and the balancing bias stay those of the main model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from curate.trainer.config import ModelConfig


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of logits [B, T, V] against targets [B, T], in fp32."""
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1))


class MTPModule(nn.Module):
    def __init__(self, cfg: ModelConfig, block: nn.Module):
        super().__init__()
        self.hidden_norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.embed_norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.proj = nn.Linear(2 * cfg.d_model, cfg.d_model, bias=False)
        self.block = block
        self.out_norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)  # before the shared head

    def forward(self, hidden: torch.Tensor, embedded: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        # hidden, embedded [B, n, d] -> this depth's representation [B, n, d]
        joined = torch.cat((self.hidden_norm(hidden), self.embed_norm(embedded)), dim=-1)
        return self.block(self.proj(joined), cos, sin)


def mtp_losses(modules: nn.ModuleList, hidden: torch.Tensor, tokens: torch.Tensor, targets: torch.Tensor,
               embed: nn.Embedding, head: nn.Linear, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Each depth's mean cross-entropy: [D]. hidden [B, T, d] is the main model's last hidden
    state; tokens, targets [B, T] its inputs and next-token targets (targets[i] = tokens[i + 1]).

    Depth k sees positions 0 .. T-1-k: those whose token k+1 ahead is inside the window."""
    T = tokens.shape[1]
    losses = []
    for k, module in enumerate(modules, start=1):
        n = T - k
        hidden = module(hidden[:, :n], embed(tokens[:, k:]), cos[:n], sin[:n])  # [B, n, d]
        losses.append(cross_entropy(head(module.out_norm(hidden)), targets[:, k:]))
    return torch.stack(losses)
