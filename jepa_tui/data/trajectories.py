"""Trajectories of bouncing digits and the physics that moves them (paper §4.1; spec §1).

Physics per frame (semi-implicit Euler, spec §1 [GUESS]): first ``v_y += g``, then ``p += v``; a digit leaving
``[0, canvas - digit_size]`` on an axis is mirrored back and that velocity component negated (elastic walls, floor
included). A world's :class:`Physics` adds gravity as a vector, friction (applied after the move and the bounce), a
speed change (initial velocities scaled) and the wall restitution. :mod:`jepa_tui.data.worlds` renders frames from
the stored positions; :mod:`jepa_tui.data.stream` draws many worlds for a training stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from jepa_tui.config import DataConfig, PhysicsConfig


@dataclass(frozen=True)
class Trajectories:
    """Stored sequences of one split.

    Attributes:
        positions: int16 (N, T, D, 2) top-left (row, col) of each digit per frame, in px, on the device.
        digit_ids: int64 (N, D) index of each digit in the pool, on the device.
    """

    positions: torch.Tensor
    digit_ids: torch.Tensor

    def __len__(self) -> int:
        return int(self.positions.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.positions.shape[1])


@dataclass(frozen=True)
class Physics:
    """One world's physics: gravity (row, col) in px/frame², friction μ (velocity × (1 − μ) each frame), the initial
    velocity scale, and the wall restitution (share of the speed kept at a bounce)."""

    gravity_row: float = 0.0
    gravity_col: float = 0.0
    friction: float = 0.0
    speed_scale: float = 1.0
    restitution: float = 1.0

    @classmethod
    def pointing(cls, magnitude: float, direction_deg: float, **others: float) -> Physics:
        """Gravity of ``magnitude`` px/frame² in direction ``direction_deg`` (0° = down, 90° = right), the other
        quantities as given; components within 1e-12 of zero are exactly zero (so "down" has no sideways part)."""
        angle = math.radians(direction_deg)
        row, col = magnitude * math.cos(angle), magnitude * math.sin(angle)
        return cls(gravity_row=0.0 if abs(row) < 1e-12 else row, gravity_col=0.0 if abs(col) < 1e-12 else col,
                   **others)

    @classmethod
    def of(cls, table: PhysicsConfig, default_gravity: float, wall_restitution: float) -> Physics:
        """A world's physics from its ``[data.base]`` / ``[data.shift]`` table (unset gravity: ``default_gravity``
        straight down; unset restitution: ``wall_restitution``)."""
        return cls.pointing(default_gravity if table.gravity is None else table.gravity, table.gravity_direction_deg,
                            friction=table.friction, speed_scale=table.speed_scale,
                            restitution=wall_restitution if table.restitution is None else table.restitution)

    @classmethod
    def base(cls, cfg: DataConfig) -> Physics:
        """The base world of ``[data.base]``: by default ``data.base_gravity`` straight down (the paper's 0), the
        walls of ``data.wall_restitution``."""
        return cls.of(cfg.base, cfg.base_gravity, cfg.wall_restitution)

    @classmethod
    def shift(cls, cfg: DataConfig) -> Physics:
        """The shift world of ``[data.shift]`` (gravity ``data.shift_gravity`` down when nothing else is set)."""
        return cls.of(cfg.shift, cfg.shift_gravity, cfg.wall_restitution)

    def context(self) -> tuple[float, float, float, float, float]:
        """The physics as its departure from the paper's base world (no gravity, no friction, speed ×1, elastic
        walls): (gravity_row, gravity_col, friction, speed_scale − 1, restitution − 1); all zero for that world.
        The oracle context's input (``memory.oracle_context``)."""
        return (self.gravity_row, self.gravity_col, self.friction, self.speed_scale - 1.0, self.restitution - 1.0)

    def describe(self) -> str:
        """The physics in a few words, e.g. "gravity 0.71 px/frame² at 35°, friction 0.02" (0° = down)."""
        parts = []
        magnitude = math.hypot(self.gravity_row, self.gravity_col)
        if magnitude:
            angle = math.degrees(math.atan2(self.gravity_col, self.gravity_row)) % 360.0
            parts.append(f"gravity {magnitude:.3g} px/frame² at {angle:.0f}°")
        if self.friction:
            parts.append(f"friction {self.friction:.3g}")
        if self.speed_scale != 1.0:
            parts.append(f"speed ×{self.speed_scale:.3g}")
        if self.restitution != 1.0:
            parts.append(f"restitution {self.restitution:.3g}")
        return ", ".join(parts) or "no gravity, no friction"


def simulate(num: int, cfg: DataConfig, gravity: float | Physics, pool_size: int, rng: np.random.Generator,
             bounces: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Simulate ``num`` sequences of ``cfg.num_digits`` bouncing digits (physics in the module docstring).

    ``gravity`` is a world's :class:`Physics`, or just a downward gravity in px/frame² (with
    ``data.wall_restitution``). ``bounces``, when given, a bool (num, frames, digits) array, is set where a digit
    hit a wall on the way to that frame (``benchmarks/shift_calibration.py``).

    Returns:
        positions: float64 (num, frames, digits, 2) in px (row, col); digit_ids: int64 (num, digits).
    """
    physics = gravity if isinstance(gravity, Physics) else Physics(gravity_row=gravity,
                                                                    restitution=cfg.wall_restitution)
    limit = float(cfg.canvas - cfg.digit_size)
    shape = (num, cfg.num_digits, 2)
    low_start, high_start = (0.0, limit) if cfg.start_positions == "uniform" else (limit / 4, 3 * limit / 4)
    pos = rng.uniform(low_start, high_start, size=shape)
    vel = rng.uniform(-cfg.velocity_max, cfg.velocity_max, size=shape)
    if physics.speed_scale != 1.0:
        vel = vel * physics.speed_scale
    digit_ids = rng.integers(0, pool_size, size=(num, cfg.num_digits))
    r = physics.restitution
    out = np.empty((num, cfg.frames, cfg.num_digits, 2))
    out[:, 0] = pos

    def accelerate() -> None:
        vel[..., 0] += physics.gravity_row
        if physics.gravity_col:
            vel[..., 1] += physics.gravity_col

    for frame in range(1, cfg.frames):
        if cfg.integration == "semi_implicit":
            accelerate()
            pos = pos + vel
        else:
            pos = pos + vel
            accelerate()
        low, high = pos < 0.0, pos > limit
        if bounces is not None:
            bounces[:, frame] = (low | high).any(-1)
        if r == 1.0:  # elastic: the mirror image, exactly as without a restitution factor
            pos = np.where(low, -pos, np.where(high, 2.0 * limit - pos, pos))
            vel = np.where(low | high, -vel, vel)
        else:
            pos = np.where(low, -r * pos, np.where(high, limit - r * (pos - limit), pos))
            vel = np.where(low | high, -r * vel, vel)
        if physics.friction:
            vel = vel * (1.0 - physics.friction)
        pos = np.clip(pos, 0.0, limit)
        out[:, frame] = pos
    return out, digit_ids
