"""The training objective L = L_pred + λ·L_var (paper Eq. 1; spec §4)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F


@dataclass
class LossTerms:
    """Total loss and its components, each a 0-dim tensor (the total carries the graph)."""

    total: torch.Tensor
    pred: torch.Tensor
    var: torch.Tensor


def prediction_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE between ẑ_{t+k} and stop-gradient z̄_{t+k}, averaged over batch, dims and horizons.

    Both (N, K, d); the target is detached here.
    """
    return F.mse_loss(predicted, target.detach())


def variance_hinge(predicted: torch.Tensor, gamma: float, eps: float) -> torch.Tensor:
    """VICReg variance term on predictor outputs: mean over horizons and dims of max(0, γ − √(Var_batch + ε)).

    ``predicted`` (N, K, d); the variance is over the batch dimension N (unbiased).
    """
    std = torch.sqrt(predicted.var(dim=0) + eps)  # (K, d)
    return F.relu(gamma - std).mean()


def jepa_loss(predicted: torch.Tensor, target: torch.Tensor, lambda_var: float, gamma: float, eps: float
              ) -> LossTerms:
    """L = L_pred + λ·L_var for predictions and targets of shape (N, K, d)."""
    pred = prediction_loss(predicted, target)
    var = variance_hinge(predicted, gamma, eps)
    return LossTerms(pred + lambda_var * var, pred, var)
