"""A kinematic probe: does the latent carry the physics the shift changes?

A closed-form ridge regression from frozen online latents z_t (standardised on the fit set) to the true kinematics
of frame t, fitted on base-world *train* frames and scored by R² on base-world validation frames and shift-world
test frames, at every evaluation (``eval.diagnostics``).

Targets per frame t (every frame with a successor, t = 0 … T − 2), with the digits in the order of their position
at frame t, left to right (by column, then row), so the order can be read off the image:

- position: the top-left corner (row, col) of each digit, in px (2 × digits values);
- velocity: p_{t+1} − p_t of each digit, in px/frame (2 × digits values), from the stored (rounded) positions.

R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)² per target value, averaged over the position values and over the velocity values
(ȳ is the mean over the scored frames; predicting it gives 0, a perfect probe 1).

:class:`PositionDecoder` is the same regression fitted on *target* latents to positions: it decodes predicted latents
to pixels for ``pos_rmse_px``.
"""

from __future__ import annotations

import torch

from jepa_tui.config import Config
from jepa_tui.data.worlds import Trajectories


def ordered_positions(split: Trajectories, count: int) -> torch.Tensor:
    """Digit positions of every frame of the first ``count`` sequences, the digits of each frame ordered left to
    right (by column, then row): float (count, T, 2·digits), in px."""
    p = split.positions[:count].float()  # (S, T, D, 2)
    order = torch.argsort(p[..., 1] * 10_000 + p[..., 0], dim=-1)
    return p.gather(2, order.unsqueeze(-1).expand(-1, -1, -1, 2)).flatten(2)


def kinematics(split: Trajectories, count: int, first: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions and velocities of the first ``count`` sequences, frames ``first`` … T − 2, digits ordered left to
    right: two (count·(T − 1 − first), 2·digits) float tensors, in px and px/frame."""
    p = split.positions[:count].float()  # (S, T, D, 2)
    position, velocity = p[:, first:-1], p[:, first + 1:] - p[:, first:-1]
    order = torch.argsort(position[..., 1] * 10_000 + position[..., 0], dim=-1)  # by column, then row
    index = order.unsqueeze(-1).expand(-1, -1, -1, 2)
    position, velocity = position.gather(2, index), velocity.gather(2, index)
    return position.flatten(2).flatten(0, 1), velocity.flatten(2).flatten(0, 1)


def fit_ridge(x: torch.Tensor, y: torch.Tensor, ridge: float) -> tuple[torch.Tensor, ...]:
    """Ridge regression y ≈ ((x − μ)/σ) W + ȳ in closed form (float64): returns (μ, σ, W, ȳ)."""
    x, y = x.double(), y.double()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-8)
    xs = (x - mean) / std
    y_mean = y.mean(0)
    gram = xs.T @ xs + ridge * torch.eye(xs.shape[1], dtype=xs.dtype, device=xs.device)
    weights = torch.linalg.solve(gram, xs.T @ (y - y_mean))
    return mean, std, weights, y_mean


def r2(y: torch.Tensor, predicted: torch.Tensor) -> float:
    """Mean over target values of 1 − Σ(y − ŷ)² / Σ(y − ȳ)² (values without spread are left out)."""
    y, predicted = y.double(), predicted.double()
    spread = (y - y.mean(0)).pow(2).sum(0)
    ok = spread > 1e-12
    if not bool(ok.any()):
        return float("nan")
    return float((1 - (y - predicted).pow(2).sum(0)[ok] / spread[ok]).mean())


def probe_scores(config: Config, fit_online: torch.Tensor, fit_split: Trajectories, scored: dict[str, tuple[
                 torch.Tensor, Trajectories]], first: int = 0) -> dict[str, dict[str, float]]:
    """Fit on base train latents, score on latents already computed.

    Args:
        fit_online: (S_f, T', d) online latents of the first S_f sequences of ``fit_split`` (base train).
        scored: world -> ((S, T', d) online latents of the first S sequences, the split they come from).
        first: the frame of latent index 0 (``data.context_frames`` − 1; T' = T − first).

    Returns:
        {"base": {"position": R², "velocity": R²}, "shift": {...}}.
    """
    x_fit = fit_online[:, :-1].flatten(0, 1)
    position, velocity = kinematics(fit_split, fit_online.shape[0], first)
    mean, std, weights, y_mean = fit_ridge(x_fit, torch.cat([position, velocity], dim=1), config.eval.probe_ridge)
    half = position.shape[1]
    scores = {}
    for world, (online, split) in scored.items():
        x = online[:, :-1].flatten(0, 1).double()
        predicted = ((x - mean) / std) @ weights + y_mean
        true_position, true_velocity = kinematics(split, online.shape[0], first)
        scores[world] = {"position": r2(true_position, predicted[:, :half]),
                         "velocity": r2(true_velocity, predicted[:, half:])}
    return scores


class PositionDecoder:
    """The kinematic probe as a decoder of digit positions: a ridge regression from *target* latents to the
    positions of the frame they end at (fitted on base-world train frames), applied to predicted latents, so a
    prediction's error can be read in pixels (``pos_rmse_px``), a figure that does not drift with the
    representation.

    Args:
        latents: (M, d) target latents; positions: (M, 2·digits) their frames' ordered positions in px.
    """

    def __init__(self, latents: torch.Tensor, positions: torch.Tensor, ridge: float) -> None:
        self.mean, self.std, self.weights, self.y_mean = fit_ridge(latents, positions, ridge)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(..., d) latents -> (..., 2·digits) positions in px (float64)."""
        return ((latents.double() - self.mean) / self.std) @ self.weights + self.y_mean
