"""The metrics themselves, on latents already computed (spec §5.1, §5.2)."""

from __future__ import annotations

import torch

# Every reading of the paper's lost D_shift formula (spec §5.1); evaluations record all of them.
FORMULAS = ("per_sample", "ratio_of_sums", "median", "r2")


def normalised_error(predicted: torch.Tensor, target: torch.Tensor, current: torch.Tensor, eps: float,
                     formula: str = "per_sample") -> torch.Tensor:
    """Normalised prediction error per horizon; 1.0 for the persistence prediction, 0.0 for a perfect one.

    Args:
        predicted: (N, K, d) predictions ẑ_{t+k}.
        target: (N, K, d) target latents z̄_{t+k}.
        current: (N, d) target latents z̄_t (the persistence prediction).
        eps: samples whose persistence error ‖z̄_{t+k} − z̄_t‖² is below ``eps`` are excluded (all formulas but
            "r2").
        formula: "per_sample": mean over valid samples of r = ‖ẑ − z̄_{t+k}‖² / ‖z̄_{t+k} − z̄_t‖² (the spec's
            reconstruction); "ratio_of_sums": Σ‖ẑ − z̄_{t+k}‖² / Σ‖z̄_{t+k} − z̄_t‖² over valid samples, so samples
            whose digits barely move do not dominate; "median": the median of r over valid samples (the lower
            middle value for an even count, as ``torch.median``); "r2": Σ‖ẑ − z̄_{t+k}‖² / Σ‖z̄_{t+k} − mean
            z̄_{t+k}‖² (predicting the mean gives 1.0).

    Returns:
        (K,) error per horizon; NaN for a horizon with no valid sample.

    Raises:
        ValueError: for an unknown formula.
    """
    error = (predicted - target).pow(2).sum(-1)  # (N, K)
    if formula == "r2":
        spread = (target - target.mean(0, keepdim=True)).pow(2).sum(-1)
        return error.sum(0) / spread.sum(0)
    if formula not in FORMULAS:
        raise ValueError(f"unknown D_shift formula {formula!r}; allowed: {', '.join(map(repr, FORMULAS))}")
    denom = (target - current.unsqueeze(1)).pow(2).sum(-1)  # (N, K)
    valid = denom >= eps
    if formula == "ratio_of_sums":
        zero = torch.zeros_like(error)
        return torch.where(valid, error, zero).sum(0) / torch.where(valid, denom, zero).sum(0)
    ratio = torch.where(valid, error / denom.clamp_min(eps), torch.zeros_like(error))
    if formula == "per_sample":
        return ratio.sum(0) / valid.sum(0)  # 0/0 = NaN when nothing is valid
    masked = torch.where(valid, ratio, torch.full_like(ratio, float("nan")))
    return masked.nanmedian(dim=0).values  # NaN when nothing is valid


def all_normalised_errors(predicted: torch.Tensor, target: torch.Tensor, current: torch.Tensor, eps: float
                          ) -> dict[str, torch.Tensor]:
    """:func:`normalised_error` under every formula of :data:`FORMULAS`: formula -> (K,) error per horizon."""
    return {formula: normalised_error(predicted, target, current, eps, formula) for formula in FORMULAS}


def sigma_z(predicted: torch.Tensor) -> float:
    """Mean over latent dimensions of the std over samples of predictions (N, d); collapse shows as → 0."""
    return float(predicted.std(dim=0).mean())


def effective_rank(singular_values: torch.Tensor) -> float:
    """exp of the Shannon entropy of the normalised singular values (Roy & Vetterli 2007); 1 ≤ value ≤ len."""
    s = singular_values[singular_values > 0]
    if s.numel() == 0:
        return 0.0
    p = s / s.sum()
    return float(torch.exp(-(p * p.log()).sum()))


def latent_rank(latents: torch.Tensor) -> float:
    """RankMe (Garrido et al. 2023): the effective rank of (N, d) latents, from their singular values."""
    return effective_rank(torch.linalg.svdvals(latents.double()))
