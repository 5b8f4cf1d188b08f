"""How experience reaches the predictor: one module per modulator kind (paper §3.2-§3.4, §5.3; spec §3.1-§3.4).

A track's registry entry (:mod:`jepa_tui.config.tracks`) names its modulator kind; the module of this package with
that name holds the kind's layers and its per-rollout modulation and exposes ``MODULATOR``, an instance of
:class:`Modulator`. Adding a modulator is one module here plus the track's registry entry (README, "Development"):

- ``none`` (Track A): no experience.
- ``injection`` (Track B, EI-JEPA): e added to the predictor's hidden state.
- ``lora`` (Track C, EPM-JEPA): per-sample low-rank deltas of the predictor's weights.
- ``film`` (Track D): per-sample scale and shift of the hidden layer (Perez et al. 2018).
- ``hypernetwork`` (Track E): full-rank per-sample weight deltas from a hypernetwork (Ha et al. 2017).

The predictor's base layers are ``w1`` (Linear in → H), ``act`` and ``w2`` (Linear H → d); a modulator's layers
become the predictor's submodules under the names :meth:`Modulator.build` gives them (``predictor.lora1.A`` …), so
checkpoints name the same parameters whichever module holds the code.
"""

from __future__ import annotations

import importlib
from typing import Protocol

import torch
from torch import nn

from jepa_tui.config import MemoryConfig, ModelConfig


class Modulation(Protocol):
    """One rollout's modulation, computed once from experience e (N, d_e) and applied at every rollout step."""

    def apply(self, predictor: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """One modulated application of the predictor's base layers: (N, in) input -> (N, d) output (before the
        residual of ``model.predict_residual``)."""
        ...


class Modulator:
    """A modulator kind: the layers it adds to the predictor and how experience modulates it.

    Subclasses override :meth:`build` and, for a track with memory, :meth:`modulate`; :meth:`norms` gives the two
    modulation statistics a modulated track's registry entry names (``modulation_stats``). The instance holds no
    state: the layers live on the predictor.
    """

    def build(self, model: ModelConfig, memory: MemoryConfig, in_dim: int) -> dict[str, nn.Module]:
        """The layers this kind adds to the predictor, by attribute name (their parameters are named
        ``predictor.<name>.*``). ``in_dim`` is the predictor's input width (d, plus the time embedding of a
        conditioned predictor)."""
        raise NotImplementedError

    def modulate(self, predictor: nn.Module, e: torch.Tensor,
                 scales: tuple[torch.Tensor, torch.Tensor] | None = None) -> Modulation | None:
        """The per-rollout modulation from experience e (N, d_e) (Track C: from its ``scales`` when given), or None:
        the base predictor."""
        return None

    def scales(self, predictor: nn.Module, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Track C's per-sample LoRA scales (s1, s2), each (N, r), from e; None for every other kind."""
        return None

    def norms(self, predictor: nn.Module, e: torch.Tensor,
              scales: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, ...]:
        """The size of e's effect on the predictor: the two 0-dim batch means of the track's
        ``modulation_stats``, or () for a kind without."""
        return ()


def load_modulator(kind: str) -> Modulator:
    """The ``MODULATOR`` of module ``jepa_tui.model.modulators.<kind>``.

    Raises:
        ValueError: naming the kind, when there is no such module or it defines no ``MODULATOR``.
    """
    try:
        module = importlib.import_module(f"{__name__}.{kind}")
    except ModuleNotFoundError as error:
        if error.name != f"{__name__}.{kind}":
            raise
        raise ValueError(f"modulator kind {kind!r} has no module jepa_tui/model/modulators/{kind}.py") from None
    modulator = getattr(module, "MODULATOR", None)
    if not isinstance(modulator, Modulator):
        raise ValueError(f"jepa_tui/model/modulators/{kind}.py defines no MODULATOR (a Modulator instance)")
    return modulator
