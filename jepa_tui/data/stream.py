"""The training stream: worlds whose physics changes while the model trains (``[data.stream]``).

With one base world the experience buffer has nothing to tell the predictor: surprisal barely varies, boundary events
fire on batch noise and the experience vector is nearly constant. The stream gives memory a job. ``worlds`` training
worlds are drawn once from a family (gravity magnitude and direction, friction, speed: each a ``[low, high]`` range);
training stays in one world for ``segment_steps`` steps (or one batch), each batch from one world, and every segment
moves to another world, so surprisal rises at a switch and the buffer fills with the current world's transitions.

Worlds are visited in random permutations, one after another (every world once per round, never the same world
twice in a row). The world of a step is a pure function of (world seed, step): a resumed run sees exactly the
stream it would have seen.
"""

from __future__ import annotations

import numpy as np
import torch

from jepa_tui.config import DataConfig, StreamConfig
from jepa_tui.data.trajectories import Physics, Trajectories, simulate


def draw_physics(stream: StreamConfig, rng: np.random.Generator, wall_restitution: float) -> Physics:
    """One world of the family: each quantity uniform in its ``[low, high]`` range (direction 0° = down)."""
    magnitude = rng.uniform(*stream.gravity)
    direction = rng.uniform(*stream.gravity_direction_deg)
    return Physics.pointing(magnitude, direction, friction=rng.uniform(*stream.friction),
                            speed_scale=rng.uniform(*stream.speed_scale), restitution=wall_restitution)


class TrainingStream:
    """The stream's worlds and its schedule.

    Args:
        cfg: the data configuration (``cfg.stream.worlds`` >= 1).
        seed: the stream's own child of the world seed.
        pool_size: digits in the pool (digit ids are drawn below it).
        device: where the trajectories live.

    Attributes:
        physics: one :class:`Physics` per world.
        train: every world's train sequences in one :class:`Trajectories`, world w at rows
            ``[w * sequences, (w + 1) * sequences)``.
        context: float32 (W, 5) each world's physics as :meth:`Physics.context` (the oracle context's input).
    """

    def __init__(self, cfg: DataConfig, seed: np.random.SeedSequence, pool_size: int, device: torch.device) -> None:
        st = cfg.stream
        self.worlds, self.sequences, self.segment_steps = st.worlds, st.sequences, st.segment_steps
        physics_seed, schedule_seed, *world_seeds = seed.spawn(2 + st.worlds)
        rng = np.random.default_rng(physics_seed)
        self.physics = [draw_physics(st, rng, cfg.wall_restitution) for _ in range(st.worlds)]
        positions, ids = zip(*(simulate(st.sequences, cfg, p, pool_size, np.random.default_rng(s))
                               for p, s in zip(self.physics, world_seeds, strict=True)), strict=True)
        self.train = Trajectories(torch.from_numpy(np.rint(np.concatenate(positions)).astype(np.int16)).to(device),
                                  torch.from_numpy(np.concatenate(ids).astype(np.int64)).to(device))
        self.context = torch.tensor([p.context() for p in self.physics], dtype=torch.float32, device=device)
        self._schedule_entropy = int(schedule_seed.generate_state(1)[0])
        self._rounds: dict[int, np.ndarray] = {}

    def segment(self, step: int) -> int:
        """The segment a training step falls in (steps count from 0)."""
        return step if self.segment_steps == 0 else step // self.segment_steps

    def world_at(self, step: int) -> int:
        """The world training step ``step`` draws its batch from, in [0, worlds)."""
        return self.world_of_segment(self.segment(step))

    def world_of_segment(self, segment: int) -> int:
        if self.worlds == 1:
            return 0
        if self.worlds == 2:  # two worlds alternate
            return (segment + self._schedule_entropy) % 2
        round_, place = divmod(segment, self.worlds)
        return int(self._round(round_)[place])

    def _round(self, index: int) -> np.ndarray:
        """The order of the worlds in one round: a permutation whose first world is not the previous round's last."""
        if index not in self._rounds:
            if len(self._rounds) > 64:
                self._rounds.clear()
            order = self._permutation(index)
            if index > 0 and order[0] == self._permutation(index - 1)[-1]:
                order[[0, 1]] = order[[1, 0]]  # worlds >= 3: the last place is untouched by this swap
            self._rounds[index] = order
        return self._rounds[index]

    def _permutation(self, index: int) -> np.ndarray:
        return np.random.default_rng([self._schedule_entropy, index]).permutation(self.worlds)

    def describe(self, world: int) -> str:
        """World ``world``'s physics in a few words, e.g. "gravity 0.71 px/frame² at 35°, friction 0.02"."""
        return self.physics[world].describe()
