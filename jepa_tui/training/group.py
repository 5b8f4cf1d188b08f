"""Run groups: K runs that differ only in seed, trained as one vectorised step (``train --seeds 42 43 44``).

Each member is an ordinary :class:`~jepa_tui.training.trainer.Trainer` driven by its own
:class:`~jepa_tui.training.loop.RunLoop` (on its own thread), with its own sampler, experience buffer, boundary
detector, freezes, evaluations and run directory, so every member's directory is exactly what a single run writes
and resumes as a single run. What the group shares is the differentiable part of the step: the members' parameters
and buffers are stacked along a leading K axis (each member's tensors become views of its slice), the step's
forward and backward run once under :func:`torch.func.vmap` over :func:`torch.func.functional_call`, and one fused
AdamW updates the stacked tensors (AdamW is elementwise, so this is each member's own AdamW). Everything after the
optimiser step (EMA, detector, buffer push, statistics) is each member's :meth:`Trainer.finish_step`.

A member's ``train_step`` waits until every active member has asked for a step; the last to ask performs the group's
step. A member whose run ends leaves the group; the others go on. vmap turns convolutions into grouped
convolutions, which some PyTorch builds run slowly: ``benchmarks/run_groups.py`` compares a group with K sequential
runs and K processes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict

import torch
from torch import nn
from torch.func import functional_call, vmap

from jepa_tui.config import Config
from jepa_tui.threads import ThreadGovernor
from jepa_tui.training.build import build_optimizer
from jepa_tui.training.loop import RunLoop, Sink
from jepa_tui.training.session import PreparedRun
from jepa_tui.training.trainer import Trainer


class GroupError(ValueError):
    """The runs cannot be trained as one group (the message says which setting stands in the way)."""


def _without_seed(config: Config) -> dict:
    values = asdict(config)
    values["train"].pop("seed")
    return values


def check_groupable(configs: Sequence[Config], steps: Sequence[int] = ()) -> None:
    """Raise :class:`GroupError` unless runs of these configurations (at these steps) can share one vectorised step:
    at least two, one configuration apart from ``train.seed``, distinct seeds, the same step, eager
    (``train.compile = "off"``), and no setting whose step draws extra random numbers or couples the parameters
    (context masks, SIGReg, a conditioned predictor, gradient clipping over all parameters)."""
    if len(configs) < 2:
        raise GroupError("a run group needs at least two seeds")
    first = configs[0]
    seeds = [c.train.seed for c in configs]
    if len(set(seeds)) != len(seeds):
        raise GroupError(f"a run group needs distinct seeds, got {seeds}")
    if any(_without_seed(c) != _without_seed(first) for c in configs[1:]):
        raise GroupError("the runs of a group must have one configuration apart from train.seed")
    if len(set(steps)) > 1:
        raise GroupError("the runs of a group must start at the same step")
    t, m = first.train, first.model
    blockers = [name for name, on in (
        ('train.compile (use "off")', t.compile != "off"), ("train.cuda_graphs", t.cuda_graphs),
        ("train.grad_clip (use 0)", t.grad_clip > 0),
        ("train.mask_ratio (use 0)", t.mask_ratio > 0), ('train.regularizer = "sigreg"', t.regularizer == "sigreg"),
        ('model.horizon_mode = "conditioned"', m.horizon_mode == "conditioned"),
        ("memory.oracle_context", first.memory.oracle_context)) if on]
    if blockers:
        raise GroupError("run groups do not support " + ", ".join(blockers) + "; train these seeds as separate runs")


class _Step(nn.Module):
    """The differentiable part of one member's step as a module, so that functional_call can swap its tensors."""

    def __init__(self, trainer: Trainer) -> None:
        super().__init__()
        self.trainer = trainer
        self.model = trainer.model
        self.layout: list[str] = []  # per output of forward_loss: "none", "tensor" or "pair" (stacked here)

    def forward(self, frames: torch.Tensor, slots: int) -> tuple[torch.Tensor, ...]:
        outputs = self.trainer.forward_loss(frames, slots)
        self.layout = ["none" if o is None else "pair" if isinstance(o, tuple) else "tensor" for o in outputs]
        return tuple(o if not isinstance(o, tuple) else torch.stack(o) for o in outputs if o is not None)


def _set_tensor(module: nn.Module, name: str, value: torch.Tensor, parameter: bool) -> None:
    owner_name, _, leaf = name.rpartition(".")
    owner = module.get_submodule(owner_name) if owner_name else module
    if parameter:
        getattr(owner, leaf).data = value
    else:
        owner._buffers[leaf] = value


class RunGroup:
    """K trainers stepped together (see the module docstring).

    Args:
        trainers: the members, built from one configuration apart from ``train.seed`` and at the same step (fresh
            or resumed from their own checkpoints).

    Raises:
        GroupError: the trainers cannot share a step (:func:`check_groupable`).

    After construction the group is each trainer's :attr:`~Trainer.delegate`: the trainer's ``train_step`` takes
    part in the group's step and its ``state_dict`` writes standalone tensors (its own slice of the optimiser's
    moments, no views), so checkpoints are a single run's.
    Call :meth:`leave` with a member's index when its run loop ends.
    """

    def __init__(self, trainers: Sequence[Trainer]) -> None:
        check_groupable([t.config for t in trainers], [t.progress.step for t in trainers])
        self.trainers = list(trainers)
        self.device = trainers[0].device
        for trainer in self.trainers:
            for encoder in (trainer.model.encoder, getattr(trainer.model, "target_encoder", None)):
                if encoder is not None:
                    encoder.channels_last = False
        self._steps = [_Step(t) for t in self.trainers]
        self._names = [n for n, _ in self._steps[0].named_parameters()]
        self._buffer_names = [n for n, _ in self._steps[0].named_buffers()]
        self.params = self._stack(self._names, parameter=True)
        self.buffers = self._stack(self._buffer_names, parameter=False)
        trainable = {id(p) for p in trainers[0].model.trainable_parameters()}
        own = dict(self._steps[0].named_parameters())
        self._trainable = [n for n in self._names if id(own[n]) in trainable]
        self.optimizer = self._optimizer()
        self._active = set(range(len(self.trainers)))
        self._waiting: set[int] = set()
        self._generation = 0
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        for trainer in self.trainers:
            trainer.delegate = self

    # -- stacking ----------------------------------------------------------------------------------------------
    def _stack(self, names: list[str], parameter: bool) -> dict[str, torch.Tensor]:
        stacked = {}
        members = [dict(s.named_parameters() if parameter else s.named_buffers()) for s in self._steps]
        for name in names:
            tensors = [member[name] for member in members]
            value = torch.stack([t.detach() for t in tensors]).contiguous()
            if parameter:
                value.requires_grad_(tensors[0].requires_grad)
            stacked[name] = value
            for k, step in enumerate(self._steps):
                _set_tensor(step, name, value.detach()[k], parameter)  # the member's tensor is a view of its slice
        return stacked

    def _optimizer(self) -> torch.optim.AdamW:
        """One AdamW over the stacked trainable tensors, with the members' moments when they were resumed."""
        optimizer = build_optimizer([self.params[n] for n in self._trainable], self.trainers[0].config.train)
        optimizer.param_groups[0]["lr"] = self.trainers[0].optimizer.param_groups[0]["lr"]  # the rate in force
        states = [self._member_moments(k) for k in range(len(self.trainers))]
        if all(states):
            for name in self._trainable:
                optimizer.state[self.params[name]] = {
                    "step": states[0][name]["step"].clone(),
                    # laid out as the stacked parameter is: the fused AdamW kernel walks both in memory order
                    "exp_avg": torch.stack([s[name]["exp_avg"] for s in states]).contiguous(),
                    "exp_avg_sq": torch.stack([s[name]["exp_avg_sq"] for s in states]).contiguous()}
        return optimizer

    def _member_moments(self, index: int) -> dict[str, dict] | None:
        own = dict(self._steps[index].named_parameters())
        states = {name: self.trainers[index].optimizer.state.get(own[name]) for name in self._trainable}
        return states if all(states.values()) else None

    # -- the step ----------------------------------------------------------------------------------------------
    def member_step(self, trainer: Trainer) -> None:
        """A member asks for its step (:meth:`Trainer.train_step`): it waits until every active member has asked;
        the last to ask performs the group's step."""
        index = self.trainers.index(trainer)
        with self._cond:
            self._waiting.add(index)
            generation = self._generation
            if self._waiting >= self._active:
                self._step_waiting()
            else:
                while generation == self._generation and self._error is None:
                    self._cond.wait()
            if self._error is not None:
                raise RuntimeError(f"the run group's step failed: {self._error}") from self._error

    def leave(self, index: int) -> None:
        """Member ``index``'s run has ended: the group steps without it from now on."""
        with self._cond:
            self._active.discard(index)
            if self._waiting and self._waiting >= self._active:
                self._step_waiting()

    def _step_waiting(self) -> None:
        """Called with the lock held once every active member waits: one step for those members."""
        members = sorted(self._waiting)
        try:
            self.step(members)
        except BaseException as exc:
            self._error = exc
        finally:
            self._waiting.clear()
            self._generation += 1
            self._cond.notify_all()

    def step(self, members: Sequence[int]) -> None:
        """One training step for ``members`` (indices); the others' slices get a zero loss and are not read again.

        Same order of work and random draws per member as :meth:`Trainer.train_step`.
        """
        started = time.perf_counter()
        first = self.trainers[members[0]]
        lr = first.current_lr()
        taus = {k: self.trainers[k].current_tau() for k in members}
        frames = {k: self.trainers[k].step_inputs()[0] for k in members}
        batch = torch.stack([frames.get(k, frames[members[0]]) for k in range(len(self.trainers))])
        slots = max(self.trainers[k].slots_bound for k in members)

        def one(params: dict, buffers: dict, member_frames: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return functional_call(self._steps[0], (params, buffers), (member_frames, slots))

        with first.autocast():
            outputs = vmap(one)(self.params, self.buffers, batch)
        weight = torch.zeros(len(self.trainers), device=self.device)
        weight[list(members)] = 1.0
        first.optimise((outputs[0] * weight).sum(), lr, self.optimizer)
        for k in members:
            self.trainers[k].finish_step(self._unpack(k, outputs), frames[k], taus[k], started)

    def _unpack(self, k: int, outputs: tuple[torch.Tensor, ...]) -> tuple:
        """Member k's slice of the vmapped outputs in :meth:`Trainer.forward_loss`'s layout (Nones put back)."""
        values = iter(o[k] for o in outputs)
        return tuple(None if kind == "none" else tuple(next(values).unbind(0)) if kind == "pair" else next(values)
                     for kind in self._steps[0].layout)

    # -- checkpoints -------------------------------------------------------------------------------------------
    def member_state(self, trainer: Trainer, own_state: Callable[[], dict]) -> dict:
        """A member's :meth:`Trainer.state_dict` with standalone tensors and its slice of the moments."""
        index = self.trainers.index(trainer)
        own = dict(self._steps[index].named_parameters())
        with self._cond:
            for name in self._trainable:
                state = self.optimizer.state.get(self.params[name])
                if state:
                    trainer.optimizer.state[own[name]] = {
                        "step": state["step"].clone(), "exp_avg": state["exp_avg"][index].clone(),
                        "exp_avg_sq": state["exp_avg_sq"][index].clone()}
            for group in trainer.optimizer.param_groups:
                group["lr"] = self.optimizer.param_groups[0]["lr"]
            state = own_state()
        state["model"] = {k: v.clone() for k, v in state["model"].items()}
        return state


def train_group(runs: Sequence[PreparedRun], sinks: Sequence[Sequence[Sink]],
                should_stop: Callable[[], str | None] | None = None,
                threads: ThreadGovernor | None = None) -> list[dict]:
    """Train prepared runs as one :class:`RunGroup`, each under its own :class:`~jepa_tui.training.loop.RunLoop`
    on its own thread; returns their summaries in order. Blocks until every run has ended; the calling thread
    stays free to take signals (``should_stop`` is polled by every loop). ``threads``, the process's thread
    governor, is shared by the members' loops (each applies its count to its own thread).

    Raises:
        GroupError: the runs cannot share a step.
        RunDirError: a run directory could not be written (after every other run has ended).
    """
    group = RunGroup([run.trainer for run in runs])
    summaries: list[dict | None] = [None] * len(runs)
    errors: list[BaseException | None] = [None] * len(runs)

    def work(index: int) -> None:
        run = runs[index]
        try:
            loop = RunLoop(run.trainer, run.directory, sinks[index], should_stop=should_stop, thermal=run.thermal,
                           notices=run.notices, replay=run.replay, threads=threads)
            summaries[index] = loop.run()
        except BaseException as exc:  # reported below, once every member has ended
            errors[index] = exc
        finally:
            group.leave(index)

    workers = [threading.Thread(target=work, args=(k,), name=f"run-{run.directory.run_id}", daemon=True)
               for k, run in enumerate(runs)]
    for thread in workers:
        thread.start()
    while any(thread.is_alive() for thread in workers):
        for thread in workers:
            thread.join(0.2)
    failure = next((e for e in errors if e is not None), None)
    if failure is not None:
        raise failure
    return [s for s in summaries if s is not None]
