"""Test-time training: the baseline a memory must beat with the same data (issue "the memory question").

Given the n shift-world mini-batches the evaluation hands the memory (:mod:`jepa_tui.evaluation.experience`), a copy
of the chosen parameters is fine-tuned on their prediction loss, the model is evaluated, and every parameter is put
back bitwise. ``eval.ttt_params``:

- ``predictor``: the predictor (with its modulator) only, on the cached latents: z_t (online) rolled out k steps
  with the experience the evaluation's buffer gives, against z̄_{t+k} (target), k the surprisal horizon;
- ``all``: every trainable parameter (encoder, predictor, memory) on the mini-batches' observations; the target
  encoder stays as it is.

Adam (``eval.ttt_lr``), ``eval.ttt_steps`` steps, mini-batch i mod n at step i, loss the mean squared error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch.nn import functional as F

from jepa_tui.evaluation.experience import ExperienceFeed
from jepa_tui.model.jepa import JEPAWorldModel


def _parameters(model: JEPAWorldModel, which: str) -> list[torch.nn.Parameter]:
    params = model.predictor.parameters() if which == "predictor" else model.trainable_parameters()
    return [p for p in params if p.requires_grad]


def _loss(model: JEPAWorldModel, feed: ExperienceFeed, index: int, which: str, slots: int | None) -> torch.Tensor:
    k = model.surprisal_horizon
    if which == "predictor":
        z, target = feed.latents[index]
        z = z.detach()
        with torch.no_grad():
            experience = model.experience(z, slots)
    else:
        frames = feed.observations[index]
        z = model.encode(frames[:, 0])
        target = model.encode_target(frames[:, 1])
        experience = model.experience(z, slots)
    predicted = model.predict(z, experience, horizons=(k,)).latents[:, 0]
    return F.mse_loss(predicted, target.detach())


@contextmanager
def adapted(model: JEPAWorldModel, feed: ExperienceFeed, steps: int, lr: float, which: str = "predictor"
            ) -> Iterator[list[float]]:
    """Inside the block the model is fine-tuned on ``feed``'s mini-batches; on leaving, every parameter is restored
    bitwise. Yields the loss of each step (the first is the loss before any update).

    Raises:
        ValueError: an unknown ``which``, or a feed without mini-batches (or, for "all", without observations).
    """
    if which not in ("predictor", "all"):
        raise ValueError(f"eval.ttt_params {which!r}; allowed: 'predictor', 'all'")
    if feed.pushed == 0 or (which == "all" and not feed.observations):
        raise ValueError("test-time training needs the evaluation's mini-batches (eval.n_experiences > 0)")
    params = _parameters(model, which)
    saved = [p.detach().clone() for p in params]
    slots = int(model.memory.buffer.size) if model.memory is not None else None
    losses: list[float] = []
    try:
        optimizer = torch.optim.Adam(params, lr=lr)
        with torch.enable_grad():
            for i in range(steps):
                loss = _loss(model, feed, i % feed.pushed, which, slots)
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
