"""The metrics themselves, on latents already computed (spec §5.1, §5.2)."""

from __future__ import annotations

import torch


def normalised_error(predicted: torch.Tensor, target: torch.Tensor, current: torch.Tensor, eps: float,
                     formula: str = "per_sample") -> torch.Tensor:
    """Normalised prediction error per horizon; 1.0 for the persistence prediction, 0.0 for a perfect one.

    Args:
        predicted: (N, K, d) predictions ẑ_{t+k}.
        target: (N, K, d) target latents z̄_{t+k}.
        current: (N, d) target latents z̄_t (the persistence prediction).
        eps: samples whose denominator is below ``eps`` are excluded ("per_sample" only).
        formula: "per_sample": mean over valid samples of ‖ẑ − z̄_{t+k}‖² / ‖z̄_{t+k} − z̄_t‖² (the spec's
            reconstruction); "r2": Σ‖ẑ − z̄_{t+k}‖² / Σ‖z̄_{t+k} − mean z̄_{t+k}‖² (predicting the mean gives 1.0).

    Returns:
        (K,) error per horizon; NaN for a horizon with no valid sample.

    Raises:
        ValueError: for an unknown formula.
    """
    error = (predicted - target).pow(2).sum(-1)  # (N, K)
    if formula == "per_sample":
        denom = (target - current.unsqueeze(1)).pow(2).sum(-1)  # (N, K)
        valid = denom >= eps
        ratio = torch.where(valid, error / denom.clamp_min(eps), torch.zeros_like(error))
        return ratio.sum(0) / valid.sum(0)  # 0/0 = NaN when nothing is valid
    if formula == "r2":
        spread = (target - target.mean(0, keepdim=True)).pow(2).sum(-1)
        return error.sum(0) / spread.sum(0)
    raise ValueError(f"unknown D_shift formula {formula!r}; allowed: 'per_sample', 'r2'")


def sigma_z(predicted: torch.Tensor) -> float:
    """Mean over latent dimensions of the std over samples of predictions (N, d); collapse shows as → 0."""
    return float(predicted.std(dim=0).mean())
