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
"""

from __future__ import annotations

import torch

from jepa_tui.config import Config
from jepa_tui.data.worlds import Trajectories, Worlds
from jepa_tui.model.jepa import JEPAWorldModel

ENCODE_CHUNK = 1024


def kinematics(split: Trajectories, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions and velocities of the first ``count`` sequences, frames 0 … T − 2, digits ordered left to right:
    two (count·(T − 1), 2·digits) float tensors, in px and px/frame."""
    p = split.positions[:count].float()  # (S, T, D, 2)
    position, velocity = p[:, :-1], p[:, 1:] - p[:, :-1]
    order = torch.argsort(position[..., 1] * 10_000 + position[..., 0], dim=-1)  # by column, then row
    index = order.unsqueeze(-1).expand(-1, -1, -1, 2)
    position, velocity = position.gather(2, index), velocity.gather(2, index)
    return position.flatten(2).flatten(0, 1), velocity.flatten(2).flatten(0, 1)


def online_latents(model: JEPAWorldModel, worlds: Worlds, split: Trajectories, count: int) -> torch.Tensor:
    """(count, T, d) online latents of every frame of the first ``count`` sequences."""
    out = []
    for chunk in torch.arange(count, device=worlds.device).split(max(1, ENCODE_CHUNK // split.num_frames)):
        frames = worlds.render_sequences(split, chunk).flatten(0, 1)
        out.append(model.encoder(frames).view(len(chunk), split.num_frames, -1))
    return torch.cat(out)


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


def probe_scores(model: JEPAWorldModel, worlds: Worlds, config: Config, base_online: torch.Tensor,
                 shift_online: torch.Tensor) -> dict[str, dict[str, float]]:
    """Fit on base train frames, score on the base validation and shift test latents already computed.

    Args:
        base_online: (S_b, T, d) online latents of the first S_b base validation sequences.
        shift_online: (S_s, T, d) online latents of the shift test sequences.

    Returns:
        {"base": {"position": R², "velocity": R²}, "shift": {...}}.
    """
    train = worlds.base["train"]
    count = min(config.eval.probe_sequences, len(train))
    x_fit = online_latents(model, worlds, train, count)[:, :-1].flatten(0, 1)
    position, velocity = kinematics(train, count)
    fitted = fit_ridge(x_fit, torch.cat([position, velocity], dim=1), config.eval.probe_ridge)
    mean, std, weights, y_mean = fitted
    half = position.shape[1]
    scores = {}
    for world, online, split in (("base", base_online, worlds.base["val"]), ("shift", shift_online,
                                                                               worlds.shift["test"])):
        x = online[:, :-1].flatten(0, 1).double()
        predicted = ((x - mean) / std) @ weights + y_mean
        true_position, true_velocity = kinematics(split, online.shape[0])
        scores[world] = {"position": r2(true_position, predicted[:, :half]),
                         "velocity": r2(true_velocity, predicted[:, half:])}
    return scores
