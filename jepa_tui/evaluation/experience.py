"""The experiences an evaluation hands the memory (spec §5 step 3), and the controls on their content.

An experience is one mini-batch of random transitions (x_t, x_{t+k}) at the surprisal horizon k, pushed into the
experience buffer as its batch-mean latent transition, ungated (as training's buffer entries, §3.5b). Sources
(``eval.experience_source``):

- ``shift``: mini-batches of the shift world's *train* split (the protocol's; never the test split);
- ``base``: mini-batches of the base world's train split (the content control: same pathway, the other world);
- ``shuffled``: shift mini-batches whose entry has its latent dimensions permuted (one random permutation per entry,
  the same for both tokens): the entries' statistics stay, their content goes.

The latents of the mini-batches and where they were drawn (sequence and start of each sample) are kept, so a baseline
can be evaluated on exactly the same n mini-batches (test-time training reads those samples at every horizon). With
the oracle context (``memory.oracle_context``) the experience vector comes from the physics the feed names
(:meth:`ExperienceFeed.context`) instead of the buffer: the adaptation curve then runs from "physics unknown" (n = 0)
to "physics known" (n > 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from jepa_tui.config import Config
from jepa_tui.data.worlds import Trajectories, Worlds
from jepa_tui.model.jepa import JEPAWorldModel
from jepa_tui.model.memory import WORLD_BASE, WORLD_SHIFT

SOURCES = ("shift", "base", "shuffled")
CONTENT_SEED_OFFSET = 7_919  # the content control's generator: seeded apart from the protocol's


def eval_generator(config: Config, step: int, device: torch.device, offset: int = 0) -> torch.Generator:
    """The evaluation's own generator, seeded by (seed, step[, offset]); the training RNG is never touched."""
    generator = torch.Generator(device=device)
    generator.manual_seed(config.train.seed * 1_000_003 + step + offset * 1_000_000_007)
    return generator


@dataclass
class ExperienceFeed:
    """Pushes experiences of one source into a model's buffer (when it has one) and keeps what it pushed.

    Attributes:
        source: "shift", "base" or "shuffled".
        latents: per mini-batch pushed, (z_t (B, d) online latents, z̄_{t+k} (B, d) target latents).
        starts: per mini-batch pushed, (split, sequence indices (B,), starts t (B, 1)): where its samples come from.
    """

    model: JEPAWorldModel
    worlds: Worlds
    config: Config
    source: str
    generator: torch.Generator
    step: int = 0
    keep_latents: bool = True  # False: a model without memory draws nothing (no baseline needs the mini-batches)
    latents: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    starts: list[tuple[Trajectories, torch.Tensor, torch.Tensor]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"eval.experience_source {self.source!r}; allowed: {', '.join(map(repr, SOURCES))}")

    counted: int = 0  # experiences "pushed" to a model without memory and not drawn (keep_latents off)

    @property
    def pushed(self) -> int:
        return len(self.latents) + self.counted

    def context(self) -> torch.Tensor:
        """The physics (5,) the oracle context (``memory.oracle_context``) is told after these experiences: none
        (zeros) before the first, else the physics of the world they came from ("shuffled": its components rolled
        by one place, the same values telling the wrong physics)."""
        if self.pushed == 0:
            return torch.zeros_like(self.worlds.shift_context)
        if self.source == "base":
            return self.worlds.base_context
        return self.worlds.shift_context.roll(1) if self.source == "shuffled" else self.worlds.shift_context

    def push(self, count: int) -> None:
        """Draw and push ``count`` more experiences (a model without memory only keeps their latents, or, with
        ``keep_latents`` off, only counts them: its predictions cannot depend on them)."""
        if self.model.memory is None and not self.keep_latents:
            self.counted += count
            return
        world = self.worlds.base if self.source == "base" else self.worlds.shift
        split = world["train"]
        k = self.model.surprisal_horizon  # the horizon of training's buffer entries
        batch = min(self.config.train.batch_size, len(split))
        memory = self.model.memory
        for _ in range(count):
            seq, t = self.worlds.transition_starts(split, batch, k, self.generator)
            frames = self.worlds.observe(split, seq, torch.cat([t, t + k], dim=1))  # (B, 2, C, H, W)
            z, target = self.model.encode(frames[:, 0]), self.model.encode_target(frames[:, 1])
            self.latents.append((z, target))
            self.starts.append((split, seq, t))
            if memory is None:
                continue
            entry = self.model.buffer_entry(frames[:, 0], z, target)
            if self.source == "shuffled":
                perm = torch.randperm(entry.shape[-1], device=entry.device, generator=self.generator)
                entry = entry[:, perm]
            memory.buffer.push(entry, True, step=self.step, world=WORLD_BASE if self.source == "base"
                               else WORLD_SHIFT)
