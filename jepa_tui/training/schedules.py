"""Learning-rate and EMA-τ schedules as functions of training progress p ∈ [0, 1] (spec §2.2, §4).

Progress is steps done / step budget, or seconds trained / seconds budget, so both follow the budget in force.
"""

from __future__ import annotations

import math


def learning_rate(progress: float, base_lr: float, warmup_frac: float) -> float:
    """Linear warm-up over the first ``warmup_frac`` of training, then cosine decay to 0 at p = 1."""
    p = min(max(progress, 0.0), 1.0)
    if warmup_frac > 0 and p < warmup_frac:
        return base_lr * p / warmup_frac
    span = 1.0 - warmup_frac
    q = (p - warmup_frac) / span if span > 0 else 1.0
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * q))


def ema_tau(progress: float, tau_base: float, tau_end: float) -> float:
    """τ(p) = τ_end − (τ_end − τ_base)·(1 + cos πp)/2: τ_base at p = 0, τ_end at p = 1 (BYOL form)."""
    p = min(max(progress, 0.0), 1.0)
    return tau_end - (tau_end - tau_base) * (1.0 + math.cos(math.pi * p)) / 2.0
