"""Objectives of the JEPA family beside the paper's L_pred + λ·L_var, each a setting that is off by default.

Our latents are one vector per frame, not patch tokens: a "token" below is one (sample, horizon) pair of the batch,
or one sample for the latent-dynamics terms. Norms ‖·‖₁ are per token (summed over latent dimensions), then
averaged over tokens.

- SIGReg (LeJEPA, Balestriero & LeCun 2025, arXiv 2511.08544, Algorithm 1): project the batch of latents on M random
  unit directions; for each projection p, the Epps–Pulley statistic N ∫ |φ̂_p(t) − e^{−t²/2}|² e^{−t²/2} dt
  between its empirical characteristic function φ̂_p(t) = mean_n e^{i t p_n} and that of N(0, 1), by the
  trapezoidal rule on 17 points of [−5, 5]; the mean over directions.
- Delta (seed 002, Eq. 5): ‖(z_{t+1} − z_t) − sg(h_{t+1} − h_t)‖₁, z online and h target latents.
- LD (Eq. 6): a 2-layer GELU MLP predicts sg(h_{t+1} − h_t) from z_t (from Z_dyn with FWM), L1 error.
- FWM (Eqs. 7–8): Z_app = the first D_app dimensions, Z_dyn the rest; L_static = mean |Z_app(t+1) − Z_app(t)|,
  L_orth = ‖C_appᵀ C_dyn‖²_F / N with C the batch-centred features.
- HW (Eqs. 9–11): per-token errors e_i get weights w_i = softmax(e/τ)_i · N (detached: they steer the gradient, they
  are not optimised), L_HW = mean(w · e), for the JEPA error and, with LD on, the LD error.
"""

from __future__ import annotations

import torch

from jepa_tui.config import TrainConfig

SIGREG_POINTS = 17
SIGREG_T_MAX = 5.0


def random_directions(dim: int, count: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """(dim, count) random unit column vectors (SIGReg's slices), drawn from ``generator``."""
    a = torch.randn(dim, count, generator=generator, device=device)
    return a / a.norm(dim=0, keepdim=True).clamp_min(1e-12)


def sigreg(z: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """SIGReg of latents z (N, d) along unit directions (d, M): the mean Epps–Pulley statistic, 0-dim."""
    n = z.shape[0]
    t = torch.linspace(-SIGREG_T_MAX, SIGREG_T_MAX, SIGREG_POINTS, device=z.device, dtype=z.dtype)
    gauss = torch.exp(-0.5 * t * t)  # φ of N(0, 1), also the weight
    arg = (z @ directions).unsqueeze(-1) * t  # (N, M, T)
    real, imag = torch.cos(arg).mean(0), torch.sin(arg).mean(0)  # (M, T): the empirical characteristic function
    error = ((real - gauss) ** 2 + imag**2) * gauss
    statistic = torch.trapezoid(error, t, dim=-1) * n  # (M,)
    return statistic.mean()


def l1_per_token(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """‖a − b‖₁ over the last dimension: (..., d) -> (...)."""
    return (a - b).abs().sum(-1)


def hard_weights(errors: torch.Tensor, tau: float) -> torch.Tensor:
    """w = softmax(e / τ) · N over every token of ``errors`` (any shape), detached (seed 002, Eq. 9)."""
    flat = errors.detach().flatten()
    return (torch.softmax(flat / tau, dim=0) * flat.numel()).view_as(errors)


def weighted_mean(errors: torch.Tensor, tau: float | None) -> torch.Tensor:
    """mean(w · e) with hard weights at temperature ``tau``, or the plain mean when ``tau`` is None."""
    return errors.mean() if tau is None else (hard_weights(errors, tau) * errors).mean()


def delta_loss(z_t: torch.Tensor, z_next: torch.Tensor, h_t: torch.Tensor, h_next: torch.Tensor) -> torch.Tensor:
    """Seed 002, Eq. 5: mean over samples of ‖(z_{t+1} − z_t) − sg(h_{t+1} − h_t)‖₁; all (N, d)."""
    return l1_per_token(z_next - z_t, (h_next - h_t).detach()).mean()


def static_loss(app_t: torch.Tensor, app_next: torch.Tensor) -> torch.Tensor:
    """Seed 002, Eq. 7: mean |Z_app(t+1) − Z_app(t)| over samples and dimensions."""
    return (app_next - app_t).abs().mean()


def orth_loss(app: torch.Tensor, dyn: torch.Tensor) -> torch.Tensor:
    """Seed 002, Eq. 8: ‖C_appᵀ C_dyn‖²_F / N, C the batch-centred (N, ·) features."""
    c_app, c_dyn = app - app.mean(0, keepdim=True), dyn - dyn.mean(0, keepdim=True)
    return (c_app.T @ c_dyn).pow(2).sum() / app.shape[0]


def context_mask(batch: int, canvas: int, patch: int, ratio: float, generator: torch.Generator,
                 device: torch.device) -> torch.Tensor:
    """(B, 1, canvas, canvas) float mask, 0 on hidden ``patch``-px squares (each hidden with probability
    ``ratio``), 1 elsewhere: LeJEPA's masking of the context the online encoder sees, on images."""
    cells = canvas // patch
    keep = (torch.rand(batch, 1, cells, cells, generator=generator, device=device) >= ratio).float()
    return keep.repeat_interleave(patch, dim=2).repeat_interleave(patch, dim=3)


def add_objectives(total: torch.Tensor, names: list[str], train: TrainConfig, model, frames: torch.Tensor,
                   z: torch.Tensor, targets: torch.Tensor, latents: torch.Tensor, predicted_targets: torch.Tensor,
                   next_at: int | None, directions: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The step's loss with the switched-on objectives of the family added, each at its weight, and their values.

    Args:
        total: the paper's loss (0-dim).
        names: the active terms (``Trainer.aux_names``), the order of the returned values.
        train: their switches and weights (``train.*_lambda``, ``train.fwm``, ``train.hw_tau``).
        model: the :class:`~jepa_tui.model.jepa.JEPAWorldModel` (its encoders, LD head and Z_app width).
        frames: (B, 1 + F, C, H, W) the step's frames; z: (B, d) online latents of x_t; targets: (B, F, d) target
            latents of the frame horizons; latents: (B, K, d) the predictions; predicted_targets: (B, K, d).
        next_at: where x_{t+1}'s target latent is in ``targets`` (None: no objective needs it).
        directions: (d, M) SIGReg's unit directions, or None.

    Returns:
        the total (0-dim) and the terms' values (len(names),), in ``names``' order.
    """
    aux: dict[str, torch.Tensor] = {}
    if directions is not None:
        aux["loss_sigreg"] = sigreg(z, directions)
        total = total + train.sigreg_lambda * aux["loss_sigreg"]
    if next_at is not None:
        z_next = model.encode(frames[:, 1 + next_at])
        h_t, h_next = model.encode_target(frames[:, 0]), targets[:, next_at]
        if train.delta_lambda > 0:
            aux["loss_delta"] = delta_loss(z, z_next, h_t, h_next)
            total = total + train.delta_lambda * aux["loss_delta"]
        if model.dyn_head is not None:
            errors = l1_per_token(model.dyn_head(z[:, model.app_dim:]), (h_next - h_t).detach())
            aux["loss_ld"] = weighted_mean(errors, train.hw_tau if train.hw_lambda > 0 else None)
            total = total + train.ld_lambda * aux["loss_ld"]
        if train.fwm:
            aux["loss_static"] = static_loss(z[:, :model.app_dim], z_next[:, :model.app_dim])
            aux["loss_orth"] = orth_loss(z[:, :model.app_dim], z[:, model.app_dim:])
            total = total + train.static_lambda * aux["loss_static"] + train.orth_lambda * aux["loss_orth"]
    if train.hw_lambda > 0:
        errors = l1_per_token(latents, predicted_targets.detach())  # (B, K): one token each
        aux["loss_hw"] = weighted_mean(errors, train.hw_tau)
        total = total + train.hw_lambda * aux["loss_hw"]
    return total, torch.stack([aux[n] for n in names])
