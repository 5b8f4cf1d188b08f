"""Test-time training: the baseline a memory must beat with the same data (issue "the memory question").

Given the n shift-world mini-batches the evaluation hands the memory (:mod:`jepa_tui.evaluation.experience`), a copy
of the chosen parameters is fine-tuned on their prediction loss, the model is evaluated, and every parameter is put
back bitwise. The loss is training's prediction term (spec §3.4) on the same samples (sequence and start t of each)
at every horizon of the model: the mean squared error between ẑ_{t+k} (z_t rolled out, with the experience the
evaluation's buffer gives) and z̄_{t+k}, over the samples whose t + k lies inside the sequence. ``eval.ttt_params``:

- ``predictor``: the predictor (with its modulator) only; the latents are encoded once;
- ``all``: every trainable parameter (encoder, predictor, memory), the observations encoded at every step; the
  target encoder stays as it is.

Adam (``eval.ttt_lr``), ``eval.ttt_steps`` steps, mini-batch i mod n at step i.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from jepa_tui.data.worlds import Worlds
from jepa_tui.evaluation.experience import ExperienceFeed
from jepa_tui.model.jepa import JEPAWorldModel


@dataclass(frozen=True)
class _Batch:
    """One mini-batch at every horizon: observations (B, 1 + K, C, H, W) at t then t + k, or, for the predictor
    alone, z_t (B, d) and targets (B, K, d); ``inside`` (B, K) marks the samples whose t + k is in the sequence."""

    frames: torch.Tensor | None
    z: torch.Tensor | None
    targets: torch.Tensor | None
    inside: torch.Tensor


def _parameters(model: JEPAWorldModel, which: str) -> list[torch.nn.Parameter]:
    params = model.predictor.parameters() if which == "predictor" else model.trainable_parameters()
    return [p for p in params if p.requires_grad]


def _batches(model: JEPAWorldModel, worlds: Worlds, feed: ExperienceFeed, which: str) -> list[_Batch]:
    horizons = torch.tensor(model.horizons, device=worlds.device)
    out = []
    for split, seq, t in feed.starts:
        ahead = t + horizons  # (B, K)
        inside = ahead < split.num_frames
        frames = worlds.observe(split, seq, torch.cat([t, ahead.clamp(max=split.num_frames - 1)], dim=1))
        if which == "all":
            out.append(_Batch(frames, None, None, inside))
            continue
        with torch.no_grad():
            z = model.encode(frames[:, 0])
            targets = model.encode_target(frames[:, 1:].flatten(0, 1)).view(len(seq), len(model.horizons), -1)
        out.append(_Batch(None, z, targets, inside))
    return out


def _loss(model: JEPAWorldModel, batch: _Batch, slots: int | None) -> torch.Tensor:
    if batch.frames is None:
        z, targets = batch.z, batch.targets
        with torch.no_grad():
            experience = model.experience(z, slots)
    else:
        n, k = batch.inside.shape
        z = model.encode(batch.frames[:, 0])
        with torch.no_grad():
            targets = model.encode_target(batch.frames[:, 1:].flatten(0, 1)).view(n, k, -1)
        experience = model.experience(z, slots)
    predicted = model.predict(z, experience).latents  # (B, K, d)
    squared = (predicted - targets).pow(2).mean(-1)  # (B, K)
    weight = batch.inside.to(squared.dtype)
    return (squared * weight).sum() / weight.sum().clamp(min=1.0)


@contextmanager
def adapted(model: JEPAWorldModel, feed: ExperienceFeed, steps: int, lr: float, which: str = "predictor"
            ) -> Iterator[list[float]]:
    """Inside the block the model is fine-tuned on ``feed``'s mini-batches; on leaving, every parameter is restored
    bitwise. Yields the loss of each step (the first is the loss before any update).

    Raises:
        ValueError: an unknown ``which``, or a feed without mini-batches.
    """
    if which not in ("predictor", "all"):
        raise ValueError(f"eval.ttt_params {which!r}; allowed: 'predictor', 'all'")
    if not feed.starts:
        raise ValueError("test-time training needs the evaluation's mini-batches (eval.n_experiences > 0)")
    batches = _batches(model, feed.worlds, feed, which)
    params = _parameters(model, which)
    saved = [p.detach().clone() for p in params]
    slots = int(model.memory.buffer.size) if model.memory is not None else None
    losses: list[float] = []
    try:
        optimizer = torch.optim.Adam(params, lr=lr)
        with torch.enable_grad():
            for i in range(steps):
                loss = _loss(model, batches[i % len(batches)], slots)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(float(loss.detach()))
        yield losses
    finally:
        with torch.no_grad():
            for p, value in zip(params, saved, strict=True):
                p.copy_(value)
                p.grad = None
