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

import numpy as np
import torch

from jepa_tui.config import DataConfig
from jepa_tui.data.digits import load_digit_pool
from jepa_tui.data.stream import TrainingStream
from jepa_tui.data.trajectories import Physics, Trajectories, simulate

__all__ = ["SPLITS", "Physics", "Trajectories", "Worlds", "resize_pool", "simulate"]

SPLITS = ("train", "val", "test")


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
        base_seed, shift_seed, stream_seed = np.random.SeedSequence(seed).spawn(3)  # the first two as before
        worlds = {}
        for name, seed, physics, sizes in (("base", base_seed, Physics.base(cfg), cfg.base_splits),
                                           ("shift", shift_seed, Physics.shift(cfg), cfg.shift_splits)):
            positions, ids = simulate(sum(sizes), cfg, physics, len(pool), np.random.default_rng(seed))
            worlds[name] = _split(positions, ids, sizes, device)
        self.base: dict[str, Trajectories] = worlds["base"]
        self.shift: dict[str, Trajectories] = worlds["shift"]
        # [data.stream]: the training worlds of a changing stream (None: the base world alone, the paper's)
        self.stream = TrainingStream(cfg, stream_seed, len(pool), device) if cfg.stream.worlds > 0 else None
        self.base_context = torch.tensor(Physics.base(cfg).context(), device=device)
        self.shift_context = torch.tensor(Physics.shift(cfg).context(), device=device)
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
        seq, t = self.transition_starts(split, batch, k, generator)
        return self.observe(split, seq, torch.cat([t, t + k], dim=1))

    def transition_starts(self, split: Trajectories, batch: int, k: int, generator: torch.Generator
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """The draws of :meth:`sample_transitions`: sequence indices int64 (B,), then starts int64 (B, 1) in
        [C - 1, T - k)."""
        seq = torch.randint(len(split), (batch,), device=self.device, generator=generator)
        first = self.context - 1
        t = torch.randint(split.num_frames - k - first, (batch, 1), device=self.device, generator=generator) + first
        return seq, t
