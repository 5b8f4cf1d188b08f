"""The predictor P (paper §3.2-§3.4; spec §3.1-§3.4).

The base predictor is the two-layer MLP ẑ = W2·σ(W1·z + b1) + b2 (d → H → d), rolled out autoregressively to
reach the horizons: ẑ_{t+1} = P(z_t), ẑ_{t+k} = P(ẑ_{t+k-1}) with the same experience vector at every step. How
experience reaches it is the track's modulator (:mod:`jepa_tui.model.modulators`: none, injection, LoRA, FiLM, a
hypernetwork); every modulator leaves the base predictor exactly when e = 0 (an empty buffer gives Track A).

LeJEPA's options (seed 001), each off by default: ``model.predict_residual`` makes P output a change, ẑ = z + Δz;
``model.dynamics_prior`` adds a small MLP's default change, ẑ = z + Δz_prior(z) + Δz_residual; and
``model.horizon_mode = "conditioned"`` feeds the horizon k to P through a time embedding Linear(1 → 4)
concatenated to its input, so P predicts z_{t+k} in one application instead of k.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import nn

from jepa_tui.config import MemoryConfig, ModelConfig
from jepa_tui.config.tracks import track as registered
from jepa_tui.model.encoder import ACTIVATIONS
from jepa_tui.model.modulators import Modulation, load_modulator

TIME_EMBED = 4  # width of a conditioned predictor's time embedding Linear(1 → 4) (seed 001)


class Predictor(nn.Module):
    """The predictor of one track; see the module docstring.

    Args:
        cfg: model configuration (latent_dim d, hidden_dim H, activation, horizons).
        track: a registered track's letter ("A" …); its registry entry names the modulator kind.
        memory: the memory configuration the modulator reads (exp_dim d_e, Track C's LoRA rank, …); the defaults
            when None.
        **options: ``memory`` fields to override, e.g. ``exp_dim=8, lora_rank=2``.

    Attributes:
        modulator: the modulator kind, e.g. "lora"; its layers are submodules named by the kind's
            :meth:`~jepa_tui.model.modulators.Modulator.build` (``inj``, ``lora1``/``lora2``, ``film``, ``hyper``).
    """

    def __init__(self, cfg: ModelConfig, track: str, memory: MemoryConfig | None = None, **options: Any) -> None:
        super().__init__()
        memory = replace(memory or MemoryConfig(), **options)
        self.track = track
        self.modulator = registered(track).modulator
        self._kind = load_modulator(self.modulator)
        self.horizons = tuple(sorted(cfg.horizons))
        self.conditioned = cfg.horizon_mode == "conditioned"
        self.residual = cfg.predict_residual or cfg.dynamics_prior
        in_dim = cfg.latent_dim + (TIME_EMBED if self.conditioned else 0)
        self.w1 = nn.Linear(in_dim, cfg.hidden_dim)
        self.act = ACTIVATIONS[cfg.predictor_activation]()
        self.w2 = nn.Linear(cfg.hidden_dim, cfg.latent_dim)
        self.time: nn.Linear | None = nn.Linear(1, TIME_EMBED) if self.conditioned else None
        self.prior: nn.Sequential | None = None
        if cfg.dynamics_prior:
            self.prior = nn.Sequential(nn.Linear(cfg.latent_dim, cfg.prior_hidden), nn.GELU(),
                                       nn.Linear(cfg.prior_hidden, cfg.latent_dim))
        for name, module in self._kind.build(cfg, memory, in_dim).items():
            self.add_module(name, module)

    def step(self, z: torch.Tensor, e: torch.Tensor | None = None, modulation: Modulation | None = None,
             k: float | None = None) -> torch.Tensor:
        """One application of P: (N, d) -> (N, d).

        ``modulation`` (from :meth:`modulate`, once per rollout) is how experience reaches P; given only ``e``
        (N, d_e), it is computed from e here. Passing neither gives the base predictor (no injection, no
        modulation), as the boundary detector needs. ``k`` is the horizon a conditioned predictor predicts
        (required then, ignored otherwise). With residual prediction the output is z plus the predicted change
        (plus the dynamics prior's).
        """
        x = z if self.time is None else torch.cat([z, self.time(z.new_full((z.shape[0], 1), float(k)))], dim=-1)
        if modulation is None and e is not None:
            modulation = self.modulate(e)
        out = self.w2(self.act(self.w1(x))) if modulation is None else modulation.apply(self, x)
        if not self.residual:
            return out
        return z + out if self.prior is None else z + self.prior(z) + out

    def lora_scales(self, e: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Track C's per-sample scales (s1, s2), each (N, r), from e; None for other tracks or no experience."""
        return None if e is None else self._kind.scales(self, e)

    def modulate(self, e: torch.Tensor | None, scales: tuple[torch.Tensor, torch.Tensor] | None = None
                 ) -> Modulation | None:
        """The per-rollout modulation from experience e (N, d_e) (Track C: from ``scales`` when given); None for
        Track A or no experience."""
        return None if e is None else self._kind.modulate(self, e, scales)

    def modulation_norms(self, e: torch.Tensor | None, scales: tuple[torch.Tensor, torch.Tensor] | None = None
                         ) -> tuple[torch.Tensor, ...]:
        """The two modulation statistics of the track (its registry entry's ``modulation_stats``), 0-dim batch
        means, or () for a track without or no experience; Track C from ``scales`` when given."""
        return () if e is None else self._kind.norms(self, e, scales)

    def rollout(self, z: torch.Tensor, e: torch.Tensor | None = None,
                scales: tuple[torch.Tensor, torch.Tensor] | None = None,
                horizons: tuple[int, ...] | None = None) -> torch.Tensor:
        """Predictions at every horizon: (N, d) -> (N, len(horizons), d), horizons ascending (the model's unless
        given). Rolled out autoregressively, P applied k times for z_{t+k}; a conditioned predictor instead
        predicts each horizon directly. Track C's scales are derived from ``e`` unless given.
        """
        horizons = tuple(sorted(horizons or self.horizons))
        modulation = self.modulate(e, scales)
        if self.conditioned:
            return torch.stack([self.step(z, modulation=modulation, k=k) for k in horizons], dim=1)
        outputs, current = [], z
        for k in range(1, horizons[-1] + 1):
            current = self.step(current, modulation=modulation)
            if k in horizons:
                outputs.append(current)
        return torch.stack(outputs, dim=1)
