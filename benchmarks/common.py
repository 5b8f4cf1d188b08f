"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import torch

from jepa_tui.training.trainer import Trainer


def fill_buffer(trainer: Trainer) -> None:
    """Fill the experience buffer to capacity, the steady state of a run after about 4,000 steps.

    The entries are standard-normal latents: the cost of encoding and attending to them does not depend on their
    values, and a fresh trainer would otherwise be timed with an empty buffer, which is not what a run spends its
    time with.
    """
    memory = trainer.model.memory
    if memory is None:
        return
    generator = torch.Generator(device=trainer.device).manual_seed(0)
    latent_dim = memory.buffer.entries.shape[-1]
    for _ in range(memory.buffer.capacity):
        memory.buffer.push(torch.randn(2, latent_dim, device=trainer.device, generator=generator))
