"""Track C (EPM-JEPA, paper §3.4): per-sample LoRA deltas W_l' = W_l + B_l·diag(s_l)·A_l with s_l = G_l e
(bias-free), computed in factorised form, W_l x + B_l (s_l ⊙ (A_l x)), never materialising per-sample matrices."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from jepa_tui.config import MemoryConfig, ModelConfig
from jepa_tui.model.modulators import Modulator


class LoRAFactors(nn.Module):
    """Shared low-rank bases A (r × in), B (out × r) and a bias-free generator G (r × exp_dim) for one layer.

    B starts at zero (standard LoRA), so ΔW = 0 at initialisation even with a non-empty buffer.
    """

    def __init__(self, in_dim: int, out_dim: int, rank: int, exp_dim: int, scale: float = 1.0,
                 a_init: str = "kaiming_uniform") -> None:
        super().__init__()
        self.A = nn.Parameter(torch.empty(rank, in_dim))
        self.B = nn.Parameter(torch.zeros(out_dim, rank))
        if a_init == "kaiming_uniform":
            nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        else:  # "gaussian", as in the LoRA paper: N(0, 1/r)
            nn.init.normal_(self.A, std=1.0 / math.sqrt(rank))
        self.generator = nn.Linear(exp_dim, rank, bias=False)
        self.scale = scale

    def scales(self, e: torch.Tensor) -> torch.Tensor:
        """(N, exp_dim) experience -> (N, r) per-sample scales s = scale · G e (``memory.lora_scale``, 1 by
        default, plays the role of LoRA's α/r)."""
        s = self.generator(e)
        return s if self.scale == 1.0 else s * self.scale

    def delta(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """ΔW x for per-sample ΔW = B·diag(s)·A: (N, in), (N, r) -> (N, out)."""
        return F.linear(s * F.linear(x, self.A), self.B)

    def delta_frobenius(self, s: torch.Tensor) -> torch.Tensor:
        """‖B·diag(s)·A‖_F per sample, (N, r) -> (N,), via sᵀ((BᵀB) ⊙ (AAᵀ))s without building ΔW."""
        gram = (self.B.T @ self.B) * (self.A @ self.A.T)
        return torch.einsum("ni,ij,nj->n", s, gram, s).clamp_min(0.0).sqrt()

    def materialise(self, s: torch.Tensor) -> torch.Tensor:
        """Per-sample ΔW, (N, r) -> (N, out, in). For tests and analysis only."""
        return torch.einsum("or,nr,ri->noi", self.B, s, self.A)


@dataclass
class LoRAModulation:
    """Track C's modulation for one rollout: per-sample scales and the stacked weights of both layers.

    ``w1 = [W1 | B1]`` (H × (d + r)) so that W1' z = w1 · [z ; s1 ⊙ (A1 z)], and ``w2 = [W2 ; A2]`` ((d + r) × H)
    so that one product w2 · h yields both W2 h and A2 h, then W2' h = W2 h + B2 (s2 ⊙ A2 h). Built once per rollout.
    """

    s1: torch.Tensor  # (N, r)
    s2: torch.Tensor  # (N, r)
    w1: torch.Tensor
    w2: torch.Tensor

    def apply(self, predictor: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """W2' σ(W1' x + b1) + b2 per sample: (N, in) -> (N, d)."""
        low_rank = self.s1 * F.linear(x, predictor.lora1.A)  # (N, r)
        h = predictor.act(F.linear(torch.cat([x, low_rank], dim=-1), self.w1, predictor.w1.bias))
        both = F.linear(h, self.w2)  # (N, d + r): W2 h, then A2 h
        d = predictor.w2.out_features
        return both[:, :d] + predictor.w2.bias + F.linear(self.s2 * both[:, d:], predictor.lora2.B)


class LoRAModulator(Modulator):
    """Per-sample LoRA deltas of both predictor layers (layers ``lora1``, ``lora2``; ``memory.lora_rank``,
    ``lora_scale``, ``lora_a_init``)."""

    def build(self, model: ModelConfig, memory: MemoryConfig, in_dim: int) -> dict[str, nn.Module]:
        def factors(in_features: int, out_features: int) -> LoRAFactors:
            return LoRAFactors(in_features, out_features, memory.lora_rank, memory.exp_dim, memory.lora_scale,
                               memory.lora_a_init)

        return {"lora1": factors(in_dim, model.hidden_dim), "lora2": factors(model.hidden_dim, model.latent_dim)}

    def scales(self, predictor: nn.Module, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return predictor.lora1.scales(e), predictor.lora2.scales(e)

    def modulate(self, predictor: nn.Module, e: torch.Tensor,
                 scales: tuple[torch.Tensor, torch.Tensor] | None = None) -> LoRAModulation:
        s1, s2 = scales if scales is not None else self.scales(predictor, e)
        return LoRAModulation(s1, s2, torch.cat([predictor.w1.weight, predictor.lora1.B], dim=1),
                              torch.cat([predictor.w2.weight, predictor.lora2.A], dim=0))

    def norms(self, predictor: nn.Module, e: torch.Tensor,
              scales: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, ...]:
        """Batch-mean ‖ΔW1‖_F and ‖ΔW2‖_F of the LoRA deltas, from ``scales`` (the step's own) when given."""
        s1, s2 = scales if scales is not None else self.scales(predictor, e)
        return predictor.lora1.delta_frobenius(s1).mean(), predictor.lora2.delta_frobenius(s2).mean()


MODULATOR = LoRAModulator()
