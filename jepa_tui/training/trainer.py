"""The trainer: model, optimiser, data sampling and one training step (paper §4; spec §4 "per-step order").

It knows nothing of run directories, consoles or UIs: :mod:`jepa_tui.training.loop` drives it. Per-step statistics
stay on the device and are read every ``train.log_every_steps`` steps, so a GPU step never waits on the host.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

import torch

from jepa_tui.config import Config
from jepa_tui.config.tracks import track
from jepa_tui.data.worlds import Worlds
from jepa_tui.evaluation.evaluate import EvalResult, evaluate
from jepa_tui.model.encoder import ema_update
from jepa_tui.model.jepa import JEPAWorldModel
from jepa_tui.training.build import HORIZON_SEED, Progress, build_optimizer, compile_mode
from jepa_tui.training.losses import jepa_loss, prediction_loss
from jepa_tui.training.objectives import add_objectives, context_mask, random_directions
from jepa_tui.training.schedules import ema_tau, learning_rate

# The step's statistics slots; the two modulation norms are written under the track's own record names
# (config/tracks.py, ``modulation_stats``).
STAT_NAMES = ("loss", "loss_pred", "loss_var", "modulation_norm_1", "modulation_norm_2")


class StepDelegate(Protocol):
    """What takes over a trainer's step and checkpoint state while it trains as a member of a run group
    (:class:`jepa_tui.training.group.RunGroup`); see :attr:`Trainer.delegate`."""

    def member_step(self, trainer: Trainer) -> None:
        """Perform ``trainer``'s step (together with the other members')."""

    def member_state(self, trainer: Trainer, own_state: Callable[[], dict]) -> dict:
        """``trainer``'s checkpoint state: ``own_state()`` once the member's optimiser holds its own moments."""


class Trainer:
    """Owns one track's model, optimiser and sampler, and performs training steps and evaluations.

    Args:
        config: the resolved configuration.
        device: where the model, the worlds and the sampler live.
        worlds: prepared worlds (built from ``config.data`` when omitted).
        compile_backend: the ``torch.compile`` backend when ``train.compile`` is on ("inductor" by default;
            tests pass a counting backend to see every graph compiled).

    Raises:
        ValueError: ``train.cuda_graphs`` on a device that is not CUDA; worlds built from another configuration.
    """

    def __init__(self, config: Config, device: torch.device, worlds: Worlds | None = None,
                 compile_backend: str | Callable | None = None) -> None:
        self.config = config
        self.device = device
        if config.train.cuda_graphs and device.type != "cuda":
            raise ValueError(f"train.cuda_graphs = true needs a CUDA device, and this run is on {device.type}: set "
                             "train.cuda_graphs = false, or train with --device cuda.")
        if worlds is not None and (worlds.cfg != config.data or worlds.seed != config.world_seed):
            raise ValueError("the worlds passed in were built from another data configuration or world seed")
        self.worlds = worlds if worlds is not None else Worlds(config.data, device, seed=config.world_seed)
        torch.manual_seed(config.train.seed)
        self.model = JEPAWorldModel(config).to(device)
        self.model.encoder.to(memory_format=torch.channels_last)
        self.model.target_encoder.to(memory_format=torch.channels_last)
        self.optimizer = build_optimizer(self.model.trainable_parameters(), config.train)
        # a run group's member: the group performs its steps and assembles its checkpoint state (None: alone)
        self.delegate: StepDelegate | None = None
        self.sampler = torch.Generator(device=device)
        self.sampler.manual_seed(config.train.seed)
        # The conditioned predictor's horizon k is a host value (it picks the frames and the predictor's input):
        # drawn on the host, by the sampler itself on the CPU, by a host generator beside it on a GPU (drawing it on
        # the GPU would read it back to the host at every step).
        self.horizon_sampler = self.sampler if device.type == "cpu" else \
            torch.Generator().manual_seed(config.train.seed * HORIZON_SEED + 1)
        self.progress = Progress()
        self.buffer_frozen = False
        self.ema_frozen = False
        self.boundary_events = torch.zeros((), dtype=torch.long, device=device)
        self._layout(config)
        self._stats = torch.zeros(len(STAT_NAMES) + len(self.aux_names), device=device)
        self._stat_steps = 0
        # Host-side upper bound on filled buffer slots: at most one push per step, made exact at every stats read.
        self._slots_bound = 0
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = config.train.precision == "tf32"
            torch.backends.cudnn.allow_tf32 = config.train.precision == "tf32"
        self._compiled = config.train.compile != "off" or config.train.cuda_graphs
        self.compile_seconds: float | None = None  # the first compiled call (compilation included), once known
        self._forward = self.forward_loss if not self._compiled else torch.compile(
            self.forward_loss, fullgraph=True, mode=compile_mode(config.train.compile, config.train.cuda_graphs),
            backend=compile_backend or "inductor")

    # -- schedules -------------------------------------------------------------------------------------------
    def fraction_done(self) -> float:
        """Training progress p ∈ [0, 1]: steps / step budget or training seconds / seconds budget."""
        t = self.config.train
        if t.steps is not None:
            return min(1.0, self.progress.step / t.steps)
        return min(1.0, self.progress.seconds / float(t.seconds or 1.0))

    def budget_done(self) -> bool:
        return self.fraction_done() >= 1.0

    def current_lr(self) -> float:
        t = self.config.train
        return learning_rate(self.fraction_done(), t.learning_rate, t.warmup_frac, t.sgdr_t0, t.sgdr_mult)

    def current_tau(self) -> float:
        """EMA τ in force: 1.0 while the EMA target is frozen."""
        if self.ema_frozen:
            return 1.0
        m = self.config.model
        return ema_tau(self.fraction_done(), m.ema_tau_base, m.ema_tau_end)

    # -- one step --------------------------------------------------------------------------------------------
    def _layout(self, config: Config) -> None:
        """Which frames a batch holds after x_t, and where the predicted, surprisal and next-frame targets are.

        Rollout (the paper's): x_{t+k} for each of the model's horizons, then x_{t+1} if an objective needs it and
        1 is not a horizon. Conditioned (LeJEPA multi-k): x_{t+k} for this step's k, x_{t+k_s} for the detector,
        then x_{t+1} when needed.
        """
        t, m = config.train, self.model
        self.aux_names = [name for name, on in (
            ("loss_sigreg", t.regularizer == "sigreg"), ("loss_delta", t.delta_lambda > 0),
            ("loss_ld", t.ld_lambda > 0), ("loss_hw", t.hw_lambda > 0),
            ("loss_static", t.fwm), ("loss_orth", t.fwm)) if on]
        self._needs_next = t.delta_lambda > 0 or t.ld_lambda > 0 or t.fwm
        self._conditioned = m.predictor.conditioned
        if self._conditioned:
            extra = (1,) if self._needs_next else ()
            self._frame_horizons = (t.k_set[0], m.surprisal_horizon, *extra)  # the first replaced each step
            self._predicted, self._surprisal_at, self._next_at = 1, 1, 2 if self._needs_next else None
        else:
            extra = (1,) if self._needs_next and 1 not in m.horizons else ()
            self._frame_horizons = (*m.horizons, *extra)
            self._predicted, self._surprisal_at = len(m.horizons), m.surprisal_index
            self._next_at = (m.horizons.index(1) if 1 in m.horizons else len(m.horizons)) if self._needs_next \
                else None
        self._offsets = torch.tensor((0, *self._frame_horizons), device=self.device)
        # every conditioned step's frame offsets made once: a new tensor per step would be a host-to-device copy
        self._offsets_for = {k: torch.tensor((0, k, *self._frame_horizons[1:]), device=self.device)
                             for k in t.k_set} if self._conditioned else {}

    def sample_batch(self) -> torch.Tensor:
        """A batch of base-world training observations (B, 1 + F, C, H, W): the one ending at x_t, then those ending
        at x_{t+k} for each frame horizon (the model's horizons, in the paper's configuration; see :meth:`_layout`).
        C = ``data.context_frames`` (1: single frames, as the paper); starts t >= C - 1. With ``[data.stream]`` the
        batch comes from this step's world of the stream (:meth:`stream_world`)."""
        stream = self.worlds.stream
        batch = self.config.train.batch_size
        if stream is None:
            split = self.worlds.base["train"]
            seq = torch.randint(len(split), (batch,), device=self.device, generator=self.sampler)
        else:  # [data.stream]: every sequence of the batch from this step's world
            split, world = stream.train, self.stream_world()
            seq = torch.randint(stream.sequences, (batch,), device=self.device, generator=self.sampler)
            seq = seq + world * stream.sequences
        first = self.worlds.context - 1
        last_start = split.num_frames - max(self._frame_horizons) - first
        t = torch.randint(last_start, (batch, 1), device=self.device, generator=self.sampler) + first
        return self.worlds.observe(split, seq, t + self._offsets)

    def stream_world(self) -> int | None:
        """The stream world the next training step draws from (``[data.stream]``), or None without a stream."""
        stream = self.worlds.stream
        return None if stream is None else stream.world_at(self.progress.step)

    def world_context(self) -> torch.Tensor:
        """The physics (5,) of the world the next step trains in: the stream's current world, else the base world's
        (the oracle context's input, ``memory.oracle_context``)."""
        stream = self.worlds.stream
        return self.worlds.base_context if stream is None else stream.context[self.stream_world()]

    @staticmethod
    def _host_flag(fired: torch.Tensor) -> bool:
        """CPU only: whether the detector fired this step, read on the host (free on the CPU, where it lets most steps
        skip the buffer push; a GPU step passes the flag on the device instead)."""
        return bool(fired)

    def _sample_k(self) -> int:
        """This step's horizon for a conditioned predictor, drawn from ``train.k_set`` on the host (no device read;
        on the CPU by the training sampler itself, so CPU runs draw what they always drew)."""
        k_set = self.config.train.k_set
        draw = torch.randint(len(k_set), (1,), generator=self.horizon_sampler, device=self.horizon_sampler.device)
        k = k_set[int(draw)]
        self._frame_horizons = (k, *self._frame_horizons[1:])
        self._offsets = self._offsets_for[k]
        return k

    def forward_loss(self, frames: torch.Tensor, slots: int | None, k: int | None = None,
                     mask: torch.Tensor | None = None, directions: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor,
                                torch.Tensor, torch.Tensor | None, tuple[torch.Tensor, torch.Tensor] | None]:
        """The differentiable part of a step, compiled as one graph when ``train.compile`` is on (spec §4, steps
        1-3): online and target latents, experience, the predictor's predictions and the loss, plus the JEPA
        family's objectives that are switched on (:mod:`jepa_tui.training.objectives`).

        Args:
            frames: (B, 1 + F, C, H, W) x_t then the frame horizons' frames (:meth:`_layout`).
            slots: an upper bound on the filled buffer slots (None: every slot, under its validity mask).
            k: this step's horizon (conditioned predictor only).
            mask: (B, 1, H, W) context mask for the online encoder, or None.
            directions: (d, M) SIGReg's unit directions, or None.

        Returns:
            total, prediction term, variance-hinge term (0-dim each); the active auxiliary terms (A,) in the order of
            :attr:`aux_names`, or None; z (B, d) online latents; targets (B, F, d) of every frame horizon; the
            experience e (B, d_e) the predictor saw, or None (Track A); Track C's LoRA scales (s1, s2), each
            (B, r), or None.
        """
        t, m = self.config.train, self.model
        batch = frames.shape[0]
        z = m.encode(frames[:, 0] if mask is None else frames[:, 0] * mask)
        targets = m.encode_target(frames[:, 1:].flatten(0, 1)).view(batch, len(self._frame_horizons), -1)
        predicted_targets = targets[:, :self._predicted]
        prediction = m.predict(z, m.experience(z, slots=slots), horizons=(k,) if k is not None else None)
        if t.regularizer == "variance_hinge":
            terms = jepa_loss(prediction.latents, predicted_targets, t.lambda_var, t.gamma, t.var_eps)
            total, pred, var = terms.total, terms.pred, terms.var
        else:
            pred = prediction_loss(prediction.latents, predicted_targets)
            total, var = pred, torch.zeros((), device=z.device)
        if not self.aux_names:
            return total, pred, var, None, z, targets, prediction.experience, prediction.lora_scales
        total, aux = add_objectives(total, self.aux_names, t, m, frames, z, targets, prediction.latents,
                                    predicted_targets, self._next_at, directions)
        return total, pred, var, aux, z, targets, prediction.experience, prediction.lora_scales

    def train_step(self) -> None:
        """One optimisation step, EMA update, boundary detection and buffer push (spec §4, steps 1-6): the step's
        inputs (:meth:`step_inputs`), its loss (:meth:`forward_loss`), the update (:meth:`optimise`) and the rest
        (:meth:`finish_step`). A run group's member hands the step to its group (:attr:`delegate`), which runs the
        same stages for all members at once."""
        if self.delegate is not None:
            self.delegate.member_step(self)
            return
        started = time.perf_counter()
        lr, tau = self.current_lr(), self.current_tau()
        frames, k, mask, directions = self.step_inputs()
        # Compiled, the whole buffer is encoded under its validity mask (static shapes: one graph for the run).
        slots = None if self._compiled else self._slots_bound
        with self.autocast():
            compile_started = time.perf_counter()
            outputs = self._forward(frames, slots, k, mask, directions)
            if self._compiled and self.compile_seconds is None:
                self.compile_seconds = time.perf_counter() - compile_started  # tracing and code generation
        self.optimise(outputs[0], lr)
        self.finish_step(outputs, frames, tau, started)

    def autocast(self) -> AbstractContextManager:
        """The step's forward precision: bfloat16 autocast with ``train.precision = "bf16"``, else a no-op."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.train.precision == "bf16")

    def optimise(self, loss: torch.Tensor, lr: float, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Backward from the 0-dim ``loss`` and one update at learning rate ``lr`` (gradients clipped to
        ``train.grad_clip`` when set), by this trainer's optimiser or a run group's."""
        optimizer = optimizer or self.optimizer
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.train.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.trainable_parameters(), self.config.train.grad_clip)
        optimizer.step()

    @property
    def slots_bound(self) -> int:
        """A host-side upper bound on the filled buffer slots (at most one push per step; exact at every stats
        read): how many slots the next step encodes."""
        return self._slots_bound

    def step_inputs(self) -> tuple[torch.Tensor, int | None, torch.Tensor | None, torch.Tensor | None]:
        """This step's draws from the training sampler: frames (B, 1 + F, C, H, W), the horizon k (conditioned
        predictor, else None), the context mask (or None) and SIGReg's directions (or None)."""
        t = self.config.train
        k = self._sample_k() if self._conditioned else None
        frames = self.sample_batch()
        if self.model.oracle is not None:
            self.model.set_world_context(self.world_context())
        mask = directions = None
        if t.mask_ratio > 0:
            mask = context_mask(frames.shape[0], self.config.data.canvas, t.mask_patch, t.mask_ratio, self.sampler,
                                self.device)
        if t.regularizer == "sigreg":
            directions = random_directions(self.config.model.latent_dim, t.sigreg_directions, self.sampler,
                                           self.device)
        return frames, k, mask, directions

    def finish_step(self, outputs: tuple, frames: torch.Tensor, tau: float, started: float) -> None:
        """Everything after the optimiser step (spec §4, steps 4-6): the EMA update, the boundary detector and the
        buffer push, the loss statistics and the counters.

        Args:
            outputs: what :meth:`forward_loss` returned for this step.
            frames: the step's batch (B, 1 + F, C, H, W).
            tau: the EMA τ in force for this step (:meth:`current_tau` before the step).
            started: ``time.perf_counter()`` when the step began (its seconds count towards the budget).
        """
        t = self.config.train
        total, pred, var, aux, z, targets, experience, scales = outputs
        if t.precision == "bf16":  # the detector, the buffer and the statistics stay in fp32
            z, targets = z.float(), targets.float()
            experience = experience.float() if experience is not None else None
            scales = tuple(s.float() for s in scales) if scales is not None else None
        if self.model.has_target:  # model.target = "stopgrad" has no target encoder to move
            ema_update(self.model.target_encoder, self.model.encoder, tau)

        memory = self.model.memory
        if memory is not None:
            z_now = z.detach()
            target_k = targets[:, self._surprisal_at]
            fired = memory.detector.observe(self.model.base_surprisal(z_now, target_k))
            self.boundary_events += fired.long()
            if not self.buffer_frozen:
                # Reading the flag costs a GPU a sync but a CPU nothing, and most steps fire no boundary event:
                # on CPU those skip the push's tensor writes (a no-op for them anyway).
                when = self._host_flag(fired) if self.device.type == "cpu" else fired
                if when is not False:
                    entry = self.model.buffer_entry(frames[:, 0], z_now, target_k)
                    memory.buffer.push(entry, when, step=self.progress.step)
                self._slots_bound = min(memory.buffer.capacity, self._slots_bound + 1)

        with torch.no_grad():
            self._stats[:3] += torch.stack([total.detach(), pred.detach(), var.detach()])
            if aux is not None:
                self._stats[len(STAT_NAMES):] += aux.detach().float()
            if (self.progress.step + 1) % t.log_every_steps == 0:  # sampled on logged steps only
                # Track C: the step's own scales, as always; D and E: from the step's experience
                norms = self.model.modulation_norms(experience, scales)
                if norms:
                    self._stats[3:len(STAT_NAMES)] = torch.stack(norms)
        self._stat_steps += 1
        self.progress.step += 1
        if self.device.type == "cuda" and self.progress.step % t.log_every_steps == 0:
            # CUDA queues work: wait for it on logged steps, so each window of steps counts the time its work took
            # (budgets, seconds-mode schedules and steps/s are then right over every logging window).
            torch.cuda.synchronize(self.device)
        self.progress.seconds += time.perf_counter() - started

    def drain_stats(self) -> dict[str, float]:
        """Means of the loss terms since the last call (one host read), the LoRA ΔW norms of the last logged step
        (Track C), and the buffer and event counters."""
        values = self._stats.tolist()
        values[:3] = [v / max(1, self._stat_steps) for v in values[:3]]
        values[len(STAT_NAMES):] = [v / max(1, self._stat_steps) for v in values[len(STAT_NAMES):]]
        self._stats.zero_()
        self._stat_steps = 0
        out = dict(zip((*STAT_NAMES, *self.aux_names), values, strict=True))
        memory = self.model.memory
        out["buffer_size"] = int(memory.buffer.size) if memory is not None else 0
        self._slots_bound = out["buffer_size"]
        out["boundary_events"] = int(self.boundary_events)
        if memory is not None:
            out["surprisal_mu"] = float(memory.detector.mu)
            out["surprisal_sigma"] = float(memory.detector.sigma)
        norms = (out.pop("modulation_norm_1"), out.pop("modulation_norm_2"))
        return {**out, **track(self.model.track).modulation_record(*norms)}

    # -- evaluation ------------------------------------------------------------------------------------------
    def evaluate(self) -> EvalResult:
        """Evaluate at the current step and update the peak (lowest D_shift) bookkeeping."""
        started = time.perf_counter()
        result = evaluate(self.model, self.worlds, self.config, self.progress.step)
        result.seconds = time.perf_counter() - started
        p = self.progress
        if p.peak_d_shift is None or result.d_shift < p.peak_d_shift:
            p.peak_step, p.peak_d_shift, p.sigma_z_at_peak = result.step, result.d_shift, result.sigma_z
        return result

    # -- state -----------------------------------------------------------------------------------------------
    def non_finite_parameters(self) -> list[str]:
        """Names of trainable or EMA parameters holding NaN or ±inf (checked before each checkpoint)."""
        return self.model.non_finite_parameters()

    def state_dict(self) -> dict:
        """Everything needed to continue exactly: model (with target encoder, buffer contents and pointer, detector
        statistics), optimiser (with the LR schedule's position through ``progress``), counters (step, seconds
        trained, peak so far), freeze states, the statistics accumulated since the last log, and RNG states. A run
        group's member gets its state through its group (:attr:`delegate`), which gives it its own moments first."""
        if self.delegate is not None:
            return self.delegate.member_state(self, self._own_state)
        return self._own_state()

    def _own_state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "progress": vars(self.progress).copy(),
            "boundary_events": int(self.boundary_events),
            "buffer_frozen": self.buffer_frozen,
            "ema_frozen": self.ema_frozen,
            "slots_bound": self._slots_bound,
            "stats": self._stats.detach().cpu().clone(),
            "stat_steps": self._stat_steps,
            "sampler_device": self.device.type,
            "sampler_rng": self.sampler.get_state(),
            "torch_rng": torch.get_rng_state(),
            **({"horizon_rng": self.horizon_sampler.get_state()} if self.horizon_sampler is not self.sampler else {}),
        }

    def _match_moment_layouts(self) -> None:
        """Give every optimiser moment its parameter's memory layout (a run group's checkpoint stores them
        contiguous, our encoders are channels-last): the fused AdamW kernel walks a parameter and its moments in
        memory order, so a moment laid out differently would update the wrong elements."""
        for param, values in self.optimizer.state.items():
            for key, value in values.items():
                if isinstance(value, torch.Tensor) and value.shape == param.shape and value.stride() != param.stride():
                    values[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)

    def load_state_dict(self, state: dict) -> list[str]:
        """Restore a :meth:`state_dict` (the configuration must match the one this trainer was built with).

        Returns:
            notices: what could not be restored exactly. A sampler state saved on another device type (a CPU
            run resumed on CUDA, say) cannot be loaded; the sampler is then reseeded from (seed, step), so the
            run goes on deterministically but not as the original device would have.
        """
        notices = []
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._match_moment_layouts()
        self.progress = Progress(**state["progress"])
        self.boundary_events.fill_(state["boundary_events"])
        self.buffer_frozen = state["buffer_frozen"]
        self.ema_frozen = state["ema_frozen"]
        if state.get("sampler_device", self.device.type) == self.device.type:
            self.sampler.set_state(state["sampler_rng"])
        else:
            self.sampler.manual_seed(self.config.train.seed * 1_000_003 + self.progress.step)
            notices.append(f"the data sampler was saved on {state['sampler_device']} and is reseeded for "
                           f"{self.device.type}: batches from step {self.progress.step} on differ from the original")
        if self.horizon_sampler is not self.sampler:  # a GPU run's host generator for the horizon k
            if "horizon_rng" in state:
                self.horizon_sampler.set_state(state["horizon_rng"])
            else:  # a checkpoint written on the CPU: reseeded as the sampler is
                self.horizon_sampler.manual_seed(self.config.train.seed * HORIZON_SEED + self.progress.step)
        self._slots_bound = state["slots_bound"]
        if "stats" in state:
            self._stats.copy_(state["stats"])
            self._stat_steps = state["stat_steps"]
        torch.set_rng_state(state["torch_rng"])
        return notices
