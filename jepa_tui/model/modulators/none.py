"""Track A (vanilla JEPA): no experience reaches the predictor. A frozen W_inj-shaped layer is carried for parameter
count comparability with Track B; its output is never used."""

from __future__ import annotations

from torch import nn

from jepa_tui.config import MemoryConfig, ModelConfig
from jepa_tui.model.modulators import Modulator
from jepa_tui.model.modulators.injection import injection_layer


class NoModulator(Modulator):
    """The base predictor only (layer ``inj``, frozen and unused)."""

    def build(self, model: ModelConfig, memory: MemoryConfig, in_dim: int) -> dict[str, nn.Module]:
        return {"inj": injection_layer(model, memory).requires_grad_(False)}


MODULATOR = NoModulator()
