"""Track D (FiLM, Perez et al. 2018; the paper's §5.3 future work): h' = (1 + γ(e)) ⊙ h + β(e) on the hidden layer
(and, with ``memory.film_output``, on the output), γ and β linear maps of e initialised to zero, so that D starts as
a no-op, as LoRA's B = 0 does."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from jepa_tui.config import MemoryConfig, ModelConfig
from jepa_tui.model.modulators import Modulator


@dataclass
class FilmModulation:
    """Track D's modulation for one rollout: γ, β (N, H) of the hidden layer, and of the output (N, d) or None."""

    gamma: torch.Tensor
    beta: torch.Tensor
    gamma_out: torch.Tensor | None = None
    beta_out: torch.Tensor | None = None

    def apply(self, predictor: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """W2 ((1 + γ) ⊙ σ(W1 x + b1) + β) + b2, then (1 + γ_out) ⊙ · + β_out with ``memory.film_output``:
        (N, in) -> (N, d)."""
        h = (1 + self.gamma) * predictor.act(predictor.w1(x)) + self.beta
        out = predictor.w2(h)
        if self.gamma_out is not None and self.beta_out is not None:
            out = (1 + self.gamma_out) * out + self.beta_out
        return out


class FiLM(nn.Module):
    """γ(e), β(e) = Linear(d_e → H) each, zero-initialised (Perez et al. 2018), optionally also for the output.

    Bias-free by default (``memory.film_bias``), so that e = 0 (an empty buffer) gives Track A exactly at any
    weights, as B's injection and C's and E's generators do; with biases D learns an experience-independent
    modulation the memory cannot switch off.
    """

    def __init__(self, exp_dim: int, hidden: int, latent: int, output: bool, bias: bool = False) -> None:
        super().__init__()
        self.gamma, self.beta = nn.Linear(exp_dim, hidden, bias=bias), nn.Linear(exp_dim, hidden, bias=bias)
        self.gamma_out = nn.Linear(exp_dim, latent, bias=bias) if output else None
        self.beta_out = nn.Linear(exp_dim, latent, bias=bias) if output else None
        for layer in (self.gamma, self.beta, self.gamma_out, self.beta_out):
            if layer is not None:
                nn.init.zeros_(layer.weight)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)

    def modulation(self, e: torch.Tensor) -> FilmModulation:
        """(N, d_e) -> the per-sample γ, β."""
        if self.gamma_out is None or self.beta_out is None:
            return FilmModulation(self.gamma(e), self.beta(e))
        return FilmModulation(self.gamma(e), self.beta(e), self.gamma_out(e), self.beta_out(e))


class FilmModulator(Modulator):
    """FiLM of the predictor's hidden layer (layer ``film``; ``memory.film_output``, ``film_bias``)."""

    def build(self, model: ModelConfig, memory: MemoryConfig, in_dim: int) -> dict[str, nn.Module]:
        return {"film": FiLM(memory.exp_dim, model.hidden_dim, model.latent_dim, memory.film_output,
                             memory.film_bias)}

    def modulate(self, predictor: nn.Module, e: torch.Tensor,
                 scales: tuple[torch.Tensor, torch.Tensor] | None = None) -> FilmModulation:
        return predictor.film.modulation(e)

    def norms(self, predictor: nn.Module, e: torch.Tensor,
              scales: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, ...]:
        """Batch-mean ‖γ‖₂ and ‖β‖₂ of the hidden layer's FiLM."""
        modulation = predictor.film.modulation(e)
        return modulation.gamma.norm(dim=-1).mean(), modulation.beta.norm(dim=-1).mean()


MODULATOR = FilmModulator()
