"""Track B (EI-JEPA, paper §3.3): h = σ(W1 z + b1) + W_inj e, with W_inj bias-free so that e = 0 gives Track A
exactly (``model.injection_bias`` adds a bias)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from jepa_tui.config import MemoryConfig, ModelConfig
from jepa_tui.model.modulators import Modulator


def injection_layer(model: ModelConfig, memory: MemoryConfig) -> nn.Linear:
    """W_inj: Linear(d_e → H), bias-free unless ``model.injection_bias``."""
    return nn.Linear(memory.exp_dim, model.hidden_dim, bias=model.injection_bias)


@dataclass
class Injection:
    """One rollout's injection: the experience e (N, d_e), projected by W_inj at every step."""

    e: torch.Tensor

    def apply(self, predictor: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """W2 (σ(W1 x + b1) + W_inj e) + b2: (N, in) -> (N, d)."""
        return predictor.w2(predictor.act(predictor.w1(x)) + predictor.inj(self.e))


class InjectionModulator(Modulator):
    """Experience added to the predictor's hidden state (layer ``inj``)."""

    def build(self, model: ModelConfig, memory: MemoryConfig, in_dim: int) -> dict[str, nn.Module]:
        return {"inj": injection_layer(model, memory)}

    def modulate(self, predictor: nn.Module, e: torch.Tensor,
                 scales: tuple[torch.Tensor, torch.Tensor] | None = None) -> Injection:
        return Injection(e)


MODULATOR = InjectionModulator()
