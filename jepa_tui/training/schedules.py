"""Learning-rate and EMA-τ schedules as functions of training progress p ∈ [0, 1] (spec §2.2, §4).

Progress is steps done / step budget, or seconds trained / seconds budget, so both follow the budget in force.
"""

from __future__ import annotations

import math


def learning_rate(progress: float, base_lr: float, warmup_frac: float, restart_period: float = 0.0,
                  restart_mult: float = 1.0) -> float:
    """Linear warm-up over the first ``warmup_frac`` of training, then cosine decay to 0 at p = 1 (spec §2.2).

    With ``restart_period`` T_0 > 0, cosine annealing with warm restarts after the warm-up (SGDR, Loshchilov &
    Hutter 2017; the paper's §3.3 names it without its periods): the lr returns to ``base_lr`` at the start of each
    cycle, the first cycle T_0 long and each next ``restart_mult`` times longer, in units of the post-warm-up span
    (T_0 = 0.25, mult 1: four cycles). The last cycle is cut where training ends.
    """
    p = min(max(progress, 0.0), 1.0)
    if warmup_frac > 0 and p < warmup_frac:
        return base_lr * p / warmup_frac
    span = 1.0 - warmup_frac
    q = (p - warmup_frac) / span if span > 0 else 1.0
    if restart_period > 0:
        q = _cycle_position(q, restart_period, restart_mult)
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * q))


def _cycle_position(q: float, period: float, mult: float) -> float:
    """Where in its SGDR cycle the post-warm-up position q ∈ [0, 1] falls, in [0, 1)."""
    if mult == 1.0:
        cycles = q / period
        return cycles - math.floor(cycles)
    index = math.floor(math.log(1.0 + q * (mult - 1.0) / period, mult))
    start = period * (mult ** index - 1.0) / (mult - 1.0)
    return min(max((q - start) / (period * mult ** index), 0.0), 1.0 - 1e-12)


def ema_tau(progress: float, tau_base: float, tau_end: float) -> float:
    """τ(p) = τ_end − (τ_end − τ_base)·(1 + cos πp)/2: τ_base at p = 0, τ_end at p = 1 (BYOL form)."""
    p = min(max(progress, 0.0), 1.0)
    return tau_end - (tau_end - tau_base) * (1.0 + math.cos(math.pi * p)) / 2.0
