"""Moving MNIST base and shift worlds (paper §4.1; spec §1).

Each world is a set of stored trajectories: the top-left pixel of every digit in every frame and the pool index of
every digit. Frames are rendered from them on the training device per batch, so preparing both worlds is a few
megabytes and well under a second once the digit pool is loaded.

Physics per frame (semi-implicit Euler, spec §1 [GUESS]): first ``v_y += g``, then ``p += v``; a digit leaving
``[0, canvas - digit_size]`` on an axis is mirrored back and that velocity component negated (elastic walls, floor
included). ``g = 0`` in the base world and ``0.5`` px/frame² (downwards, towards larger row index) in the shift world.
The shift world's physics is ``[data.shift]`` (:class:`Physics`): gravity as a vector, friction (applied after the
move and the bounce), a speed change (initial velocities scaled), the wall restitution; by default the paper's gravity
0.5 down. Each guess is a setting: ``data.integration = "explicit"`` moves first and accelerates after;
``data.wall_restitution`` r < 1 keeps the fraction r of the speed and of the overshoot at a bounce;
``data.start_positions = "central_half"`` starts digits inside the middle half of the free range; ``data.digit_size``
resamples the 28 px digits.
Everything is deterministic given the world seed (``data.data_seed``, or the run's seed when it is "run"): the base
and shift worlds use independent child seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from jepa_tui.config import DataConfig, PhysicsConfig
from jepa_tui.data.digits import load_digit_pool

SPLITS = ("train", "val", "test")


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
    def of(cls, table: PhysicsConfig, default_gravity: float, wall_restitution: float) -> Physics:
        """A world's physics from its ``[data.base]`` / ``[data.shift]`` table (unset gravity: ``default_gravity``
        straight down; unset restitution: ``wall_restitution``)."""
        g = default_gravity if table.gravity is None else table.gravity
        angle = math.radians(table.gravity_direction_deg)
        row, col = g * math.cos(angle), g * math.sin(angle)
        return cls(gravity_row=0.0 if abs(row) < 1e-12 else row, gravity_col=0.0 if abs(col) < 1e-12 else col,
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

    def vector(self) -> tuple[float, float, float, float, float]:
        """(gravity_row, gravity_col, friction, speed_scale, restitution): the parameters as numbers."""
        return (self.gravity_row, self.gravity_col, self.friction, self.speed_scale, self.restitution)


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


def resize_pool(pool: np.ndarray, size: int) -> np.ndarray:
    """The (P, 28, 28) uint8 digit pool resampled to (P, size, size) (bilinear, antialiased), or as it is."""
    if pool.shape[1] == size:
        return pool
    images = torch.from_numpy(pool.astype(np.float32)).unsqueeze(1)
    resized = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", antialias=True,
                                              align_corners=False)
    return resized.squeeze(1).round().clamp(0, 255).to(torch.uint8).numpy()


def _split(positions: np.ndarray, ids: np.ndarray, sizes: tuple[int, ...], device: torch.device
           ) -> dict[str, Trajectories]:
    pixels = torch.from_numpy(np.rint(positions).astype(np.int16))
    ids_t = torch.from_numpy(ids.astype(np.int64))
    out, start = {}, 0
    for name, size in zip(SPLITS, sizes, strict=True):
        out[name] = Trajectories(pixels[start:start + size].to(device), ids_t[start:start + size].to(device))
        start += size
    return out


class Worlds:
    """The base world (no gravity) and the shift world, with a renderer on ``device``.

    Attributes:
        digits: float32 (P, 28, 28) digit pool in [0, 1] on the device.
        base, shift: split name ("train", "val", "test") -> :class:`Trajectories`.
    """

    def __init__(self, cfg: DataConfig, device: torch.device, pool: np.ndarray | None = None,
                 seed: int | None = None) -> None:
        pool = resize_pool(load_digit_pool(cfg.digits) if pool is None else pool, cfg.digit_size)
        self.cfg = cfg
        self.device = device
        self.digits = torch.from_numpy(pool).to(device=device, dtype=torch.float32).div_(255.0)
        if seed is None:
            if cfg.data_seed == "run":
                raise ValueError("data.data_seed = \"run\": pass the run's seed (Config.world_seed)")
            seed = int(cfg.data_seed)
        self.seed = seed
        base_seed, shift_seed = np.random.SeedSequence(seed).spawn(2)
        worlds = {}
        for name, seed, physics, sizes in (("base", base_seed, Physics.base(cfg), cfg.base_splits),
                                           ("shift", shift_seed, Physics.shift(cfg), cfg.shift_splits)):
            positions, ids = simulate(sum(sizes), cfg, physics, len(pool), np.random.default_rng(seed))
            worlds[name] = _split(positions, ids, sizes, device)
        self.base: dict[str, Trajectories] = worlds["base"]
        self.shift: dict[str, Trajectories] = worlds["shift"]
        ar = torch.arange(cfg.digit_size, device=device, dtype=torch.int64)
        self._offsets = (ar[:, None] * cfg.canvas + ar[None, :]).view(-1)  # (digit_size²,) flat offsets in the canvas

    def render(self, split: Trajectories, seq: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Render frames of chosen sequences.

        Args:
            split: the trajectories to draw from.
            seq: int64 (B,) sequence indices into ``split``.
            frames: int64 (B, F) frame indices per sequence.

        Returns:
            float32 (B, F, 1, H, W) frames in [0, 1] on the device (H = W = ``data.canvas``).
        """
        pos = split.positions[seq[:, None], frames].long()  # (B, F, D, 2)
        batch, num_frames, num_digits, _ = pos.shape
        size = self.cfg.canvas
        # Each digit pixel lands at flat canvas index (row0 + i) * W + (col0 + j); layers meet by max or sum.
        corner = pos[..., 0] * size + pos[..., 1]  # (B, F, D)
        area = self.cfg.digit_size ** 2
        index = (corner.unsqueeze(-1) + self._offsets).view(batch * num_frames, num_digits * area)
        pixels = self.digits[split.digit_ids[seq]].view(batch, 1, num_digits * area)
        pixels = pixels.expand(batch, num_frames, -1).reshape(batch * num_frames, -1)
        canvas = torch.zeros(batch * num_frames, size * size, device=self.device)
        if self.cfg.compositing == "max":
            canvas.scatter_reduce_(1, index, pixels, reduce="amax", include_self=True)
        else:
            canvas.scatter_add_(1, index, pixels).clamp_(max=1.0)
        return canvas.view(batch, num_frames, 1, size, size)

    def render_sequences(self, split: Trajectories, seq: torch.Tensor) -> torch.Tensor:
        """All frames of the given sequences: float32 (B, T, 1, H, W)."""
        frames = torch.arange(split.num_frames, device=self.device).expand(seq.shape[0], -1)
        return self.render(split, seq, frames)

    @property
    def context(self) -> int:
        """C = ``data.context_frames``: how many consecutive frames one observation holds."""
        return self.cfg.context_frames

    def observe(self, split: Trajectories, seq: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Observations ending at chosen frames: what the encoders see (spec §2.1; ``data.context_frames``).

        Args:
            seq: int64 (B,) sequence indices; frames: int64 (B, F) the last frame of each observation, each
                >= C - 1.

        Returns:
            float32 (B, F, C, H, W): channel c is frame f - (C - 1) + c, so the last channel is x_f. With C = 1
            this is :meth:`render` exactly.
        """
        c = self.context
        if c == 1:
            return self.render(split, seq, frames)
        lags = torch.arange(1 - c, 1, device=self.device)  # (C,): -(C-1) ... 0
        rendered = self.render(split, seq, (frames.unsqueeze(-1) + lags).flatten(1))  # (B, F*C, 1, H, W)
        batch, num = frames.shape
        return rendered.view(batch, num, c, *rendered.shape[-2:])

    def observe_sequences(self, split: Trajectories, seq: torch.Tensor) -> torch.Tensor:
        """Every observation of the given sequences, ending at frames C - 1 … T - 1: (B, T - C + 1, C, H, W)."""
        last = torch.arange(self.context - 1, split.num_frames, device=self.device).expand(seq.shape[0], -1)
        return self.observe(split, seq, last)

    def sample_transitions(self, split: Trajectories, batch: int, k: int, generator: torch.Generator
                           ) -> torch.Tensor:
        """A mini-batch of random transitions k frames apart: (B, 2, C, H, W) observations ending at x_t and x_{t+k}.

        Draws the sequences, then the starts t ∈ [C - 1, T - k), from ``generator`` (the buffer entries of the
        evaluation protocol and the analyses; spec §5).
        """
        seq = torch.randint(len(split), (batch,), device=self.device, generator=generator)
        first = self.context - 1
        t = torch.randint(split.num_frames - k - first, (batch, 1), device=self.device, generator=generator) + first
        return self.observe(split, seq, torch.cat([t, t + k], dim=1))
