"""The JEPA world model of one track: encoder, EMA target encoder, predictor and memory (paper §3, Fig. 1)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from jepa_tui.config import MEMORY_TRACKS, Config
from jepa_tui.model.encoder import ConvEncoder, make_target
from jepa_tui.model.heads import DynamicsHead
from jepa_tui.model.memory import PHYSICS_DIM, ExperienceMemory, OracleContext
from jepa_tui.model.predictor import Predictor


@dataclass
class Prediction:
    """One forward pass of the predictor path.

    Attributes:
        latents: (N, K, d) predictions ẑ_{t+k}, horizons ascending.
        experience: (N, d_e) experience vectors e, or None for Track A.
        lora_scales: Track C's (s1, s2), each (N, r), or None.
    """

    latents: torch.Tensor
    experience: torch.Tensor | None
    lora_scales: tuple[torch.Tensor, torch.Tensor] | None


class JEPAWorldModel(nn.Module):
    """Encoder f_θ, target encoder f_θ̄, predictor P and (Tracks B-E) the experience memory.

    Track A carries no memory: its predictor never sees experience. Tracks B-E share everything but how e reaches
    the predictor (spec §3.3, §3.4: B adds it to the hidden state, C generates LoRA deltas, D FiLM, E a hypernetwork).
    """

    def __init__(self, config: Config) -> None:
        super().__init__()
        track = config.train.track
        self.track = track
        self.horizons = tuple(sorted(config.model.horizons))
        self.encoder = ConvEncoder(config.model, config.data.canvas, config.data.context_frames)
        # model.target = "stopgrad": no target encoder; targets are the online encoder's under stop-gradient
        self.has_target = config.model.target == "ema"
        self.target_encoder = make_target(self.encoder) if self.has_target else self.encoder
        mem = config.memory
        self.predictor = Predictor(config.model, track, mem)
        self.memory = (ExperienceMemory(mem, config.model.latent_dim, config.kappa) if track in MEMORY_TRACKS
                       else None)
        # memory.oracle_context: e from the true physics of the world a batch comes from (world_context, set by the
        # trainer each step and by the evaluation per world) instead of from the buffer
        self.oracle = OracleContext(mem.exp_dim) if mem.oracle_context and self.memory is not None else None
        self.register_buffer("world_context", torch.zeros(PHYSICS_DIM), persistent=False)
        self.surprisal_horizon = mem.surprisal_horizon or self.horizons[0]
        self.surprisal_index = self.horizons.index(self.surprisal_horizon)
        self.surprisal_norm = mem.surprisal_norm
        self.entry_kind = mem.entry
        t = config.train
        self.dyn_head: DynamicsHead | None = None  # seed 002's latent-dynamics head, when LD is on
        self.app_dim = round(t.fwm_app_fraction * config.model.latent_dim) if t.fwm else 0
        if t.ld_lambda > 0:
            self.dyn_head = DynamicsHead(config.model.latent_dim - self.app_dim, t.ld_hidden, config.model.latent_dim)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Online latents: (N, C, H, W) observations -> (N, d)."""
        return self.encoder(frames)

    @torch.no_grad()
    def encode_target(self, frames: torch.Tensor) -> torch.Tensor:
        """Stop-gradient target latents: (N, C, H, W) observations -> (N, d)."""
        return self.target_encoder(frames)

    def predict(self, z: torch.Tensor, experience: torch.Tensor | None = None,
                horizons: tuple[int, ...] | None = None) -> Prediction:
        """Predictions from z (N, d) at every horizon (the model's unless given), with experience e (N, d_e) or
        none: rolled out, or one conditioned application per horizon."""
        scales = self.predictor.lora_scales(experience)
        latents = self.predictor.rollout(z, experience, scales, horizons)
        return Prediction(latents, experience, scales)

    def experience(self, z: torch.Tensor, slots: int | None = None) -> torch.Tensor | None:
        """Aggregated experience (N, d_e) for latents z (N, d), or None for Track A.

        ``slots``: an upper bound on the filled buffer slots, to skip encoding empty ones (None: encode all). With
        ``memory.oracle_context`` e is the oracle's embedding of :attr:`world_context`, the same for every sample.
        """
        if self.memory is None:
            return None
        if self.oracle is not None:
            return self.oracle(self.world_context).expand(z.shape[0], -1)
        return self.memory.experience(z, slots)[0]

    @torch.no_grad()
    def set_world_context(self, physics: torch.Tensor) -> None:
        """The physics (5,) the oracle context reads (:class:`~jepa_tui.model.memory.OracleContext`); zeros: none
        known."""
        self.world_context.copy_(physics)

    @torch.no_grad()
    def base_surprisal(self, z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Batch-mean surprisal of the base predictor (no LoRA, no injection, no gradient), 0-dim (spec §3.5a).

        ``z`` (N, d) current latents, ``target`` (N, d) target latents at the surprisal horizon k
        (``memory.surprisal_horizon``, the smallest horizon by default); the base predictor is rolled out k steps.
        "mse" (default): the mean squared error over batch and latent dimensions; "l2": the batch mean of the
        error's L2 norm.
        """
        current = z
        if self.predictor.conditioned:
            current = self.predictor.step(current, k=self.surprisal_horizon)
        else:
            for _ in range(self.surprisal_horizon):
                current = self.predictor.step(current)
        if self.surprisal_norm == "l2":
            return (current - target).norm(dim=-1).mean()
        return (current - target).pow(2).mean()

    @torch.no_grad()
    def buffer_entry(self, frames_t: torch.Tensor, z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The experience buffer entry (2, d) of a batch: its batch-mean latent transition (spec §3.5b).

        ``frames_t`` (N, C, H, W) the observations at t, ``z`` (N, d) their online latents, ``target`` (N, d) the target
        latents at the surprisal horizon. The first token is the batch-mean online z_t ("online_target", default)
        or target z̄_t ("target_target", ``memory.entry``); the second the batch-mean target z̄_{t+k}.
        """
        first = z.mean(0) if self.entry_kind == "online_target" else self.encode_target(frames_t).mean(0)
        return torch.stack([first, target.mean(0)])

    @torch.no_grad()
    def non_finite_parameters(self) -> list[str]:
        """Names of parameters (trainable or EMA) holding NaN or ±inf: one reduction over every parameter and one
        host read; the names are looked up only when something is not finite."""
        named = list(self.named_parameters())
        finite = torch.stack([torch.isfinite(p).all() for _, p in named])
        if bool(finite.all()):
            return []
        return [name for (name, _), ok in zip(named, finite.tolist(), strict=True) if not ok]

    def modulation_norms(self, experience: torch.Tensor | None,
                         scales: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, ...]:
        """The size of the experience's effect on the predictor, two 0-dim batch means, or empty (Tracks A, B; no
        experience): Track C ‖ΔW1‖_F, ‖ΔW2‖_F of the LoRA deltas (from the step's own ``scales`` when given); D ‖γ‖₂,
        ‖β‖₂ of the hidden layer's FiLM; E ‖ΔW1‖_F, ‖ΔW2‖_F of the generated weights (on the first 8 samples)."""
        return self.predictor.modulation_norms(experience, scales)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Every parameter with requires_grad (one AdamW group, spec §4)."""
        return [p for p in self.parameters() if p.requires_grad]
