"""The predictor P and how experience reaches it in each track (paper §3.2-§3.4; spec §3.1-§3.4).

The base predictor is the two-layer MLP ẑ = W2·σ(W1·z + b1) + b2 (d → H → d), rolled out autoregressively to
reach the horizons: ẑ_{t+1} = P(z_t), ẑ_{t+k} = P(ẑ_{t+k-1}) with the same experience vector at every step.

- Track A: no experience. A frozen W_inj-shaped dummy is carried for parameter-count comparability; unused.
- Track B (EI-JEPA): h = σ(W1 z + b1) + W_inj e, with W_inj bias-free so e = 0 gives Track A exactly
  (``model.injection_bias`` adds a bias).
- Track C (EPM-JEPA): per-sample LoRA deltas W_l' = W_l + B_l·diag(s_l)·A_l with s_l = G_l e (bias-free),
  computed in factorised form, W_l x + B_l (s_l ⊙ (A_l x)), never materialising per-sample matrices.

LeJEPA's options (seed 001), each off by default: ``model.predict_residual`` makes P output a change, ẑ = z + Δz;
``model.dynamics_prior`` adds a small MLP's default change, ẑ = z + Δz_prior(z) + Δz_residual; and
``model.horizon_mode = "conditioned"`` feeds the horizon k to P through a time embedding Linear(1 → 4)
concatenated to its input, so P predicts z_{t+k} in one application instead of k.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from jepa_tui.config import ModelConfig
from jepa_tui.model.encoder import ACTIVATIONS

TIME_EMBED = 4  # width of a conditioned predictor's time embedding Linear(1 → 4) (seed 001)


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


class Predictor(nn.Module):
    """The predictor of one track; see the module docstring.

    Args:
        cfg: model configuration (latent_dim d, hidden_dim H, activation, horizons).
        track: "A", "B" or "C".
        exp_dim: experience vector size d_e (memory.exp_dim).
        lora_rank: r for Track C.
    """

    def __init__(self, cfg: ModelConfig, track: str, exp_dim: int, lora_rank: int, lora_scale: float = 1.0,
                 lora_a_init: str = "kaiming_uniform") -> None:
        super().__init__()
        self.track = track
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
        self.inj: nn.Linear | None = None
        self.lora1: LoRAFactors | None = None
        self.lora2: LoRAFactors | None = None
        if track in ("A", "B"):
            self.inj = nn.Linear(exp_dim, cfg.hidden_dim, bias=cfg.injection_bias)
            self.inj.requires_grad_(track == "B")  # Track A carries it frozen and never uses its output
        if track == "C":
            self.lora1 = LoRAFactors(in_dim, cfg.hidden_dim, lora_rank, exp_dim, lora_scale, lora_a_init)
            self.lora2 = LoRAFactors(cfg.hidden_dim, cfg.latent_dim, lora_rank, exp_dim, lora_scale, lora_a_init)

    def step(self, z: torch.Tensor, e: torch.Tensor | None = None, lora: LoRAModulation | None = None,
             k: float | None = None) -> torch.Tensor:
        """One application of P: (N, d) -> (N, d).

        ``e`` (N, d_e) is used by Track B; ``lora`` (from :meth:`modulation`) by Track C. Passing neither gives the
        base predictor (no injection, no LoRA), as the boundary detector needs. ``k`` is the horizon a conditioned
        predictor predicts (required then, ignored otherwise). With residual prediction the output is z plus the
        predicted change (plus the dynamics prior's).
        """
        x = z if self.time is None else torch.cat([z, self.time(z.new_full((z.shape[0], 1), float(k)))], dim=-1)
        if lora is not None and self.lora1 is not None and self.lora2 is not None:
            low_rank = lora.s1 * F.linear(x, self.lora1.A)  # (N, r)
            h = self.act(F.linear(torch.cat([x, low_rank], dim=-1), lora.w1, self.w1.bias))
            both = F.linear(h, lora.w2)  # (N, d + r): W2 h, then A2 h
            d = self.w2.out_features
            out = both[:, :d] + self.w2.bias + F.linear(lora.s2 * both[:, d:], self.lora2.B)
        else:
            h = self.act(self.w1(x))
            if e is not None and self.track == "B" and self.inj is not None:
                h = h + self.inj(e)
            out = self.w2(h)
        if not self.residual:
            return out
        return z + out if self.prior is None else z + self.prior(z) + out

    def lora_scales(self, e: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Track C's per-sample scales (s1, s2), each (N, r), from e; None for other tracks or no experience."""
        if e is None or self.lora1 is None or self.lora2 is None:
            return None
        return self.lora1.scales(e), self.lora2.scales(e)

    def modulation(self, scales: tuple[torch.Tensor, torch.Tensor] | None) -> LoRAModulation | None:
        """The :class:`LoRAModulation` for given scales, or None."""
        if scales is None or self.lora1 is None or self.lora2 is None:
            return None
        return LoRAModulation(scales[0], scales[1], torch.cat([self.w1.weight, self.lora1.B], dim=1),
                              torch.cat([self.w2.weight, self.lora2.A], dim=0))

    def rollout(self, z: torch.Tensor, e: torch.Tensor | None = None,
                scales: tuple[torch.Tensor, torch.Tensor] | None = None,
                horizons: tuple[int, ...] | None = None) -> torch.Tensor:
        """Predictions at every horizon: (N, d) -> (N, len(horizons), d), horizons ascending (the model's unless
        given). Rolled out autoregressively, P applied k times for z_{t+k}; a conditioned predictor instead
        predicts each horizon directly. Track C's scales are derived from ``e`` unless given.
        """
        horizons = tuple(sorted(horizons or self.horizons))
        lora = self.modulation(scales if scales is not None else self.lora_scales(e))
        if self.conditioned:
            return torch.stack([self.step(z, e, lora, k) for k in horizons], dim=1)
        outputs, current = [], z
        for k in range(1, horizons[-1] + 1):
            current = self.step(current, e, lora)
            if k in horizons:
                outputs.append(current)
        return torch.stack(outputs, dim=1)
