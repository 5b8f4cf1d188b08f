"""The evaluation protocol: D_shift^{n} on the shift test split, sigma_z, and d_base (spec §5, [GUESS] #24).

1. Snapshot the experience buffer; evaluation never changes training state.
2. ``d_base``: the normalised error on the base-world validation split, with the training buffer as it is.
3. Start the evaluation buffer from the training buffer (``eval.buffer_start = "training"``) or empty, and push
   n = ``eval.n_experiences`` shift-world experiences, ungated: each is the batch-mean latent transition of one
   mini-batch of shift-world *train* sequences (never the test split).
4. ``D_shift``: the normalised error over every (sequence, start t) of the shift test split and every horizon,
   with that buffer frozen; ``sigma_z`` from the horizon-1 (smallest horizon) predictions of the same samples.
   With ``eval.val_selection`` (ours) the same is computed on the shift *validation* split (``d_shift_val``), so
   a report can pick each run's step on validation data instead of on the test split, as the paper did.
5. Restore the buffer. Sampling uses its own generator seeded from (seed, step), not the training RNG.

Every error is computed under each formula of :data:`~jepa_tui.evaluation.metrics.FORMULAS` from the same
predictions (``formulas`` in the result); ``d_shift``, ``d_base`` and ``d_shift_val`` use ``eval.formula``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from jepa_tui.config import Config
from jepa_tui.data.worlds import Trajectories, Worlds
from jepa_tui.evaluation.metrics import all_normalised_errors, latent_rank, sigma_z
from jepa_tui.evaluation.probe import probe_scores
from jepa_tui.model.jepa import JEPAWorldModel
from jepa_tui.model.memory import WORLD_SHIFT

ENCODE_CHUNK = 1024  # frames per encoder call during evaluation


@dataclass
class EvalResult:
    """One evaluation, under ``eval.formula``; per-horizon values are keyed by horizon k (a string, for JSON).

    Attributes:
        d_shift_val: D_shift on the shift validation split (None when ``eval.val_selection`` is off).
        formulas: formula -> {"d_shift", "d_shift_per_horizon", "d_base", "d_base_per_horizon"[, "d_shift_val",
            "d_shift_val_per_horizon"]}, for every formula, from the same predictions.
        seconds: the whole evaluation; val_seconds: the part spent on the validation split (wall seconds).
    """

    step: int
    d_shift: float
    sigma_z: float
    d_base: float
    d_shift_per_horizon: dict[str, float] = field(default_factory=dict)
    d_shift_val: float | None = None
    formulas: dict[str, dict] = field(default_factory=dict)
    seconds: float = 0.0
    val_seconds: float = 0.0
    effective_rank: float | None = None  # RankMe of the online latents of the shift test split (eval.diagnostics)
    probe_r2: dict[str, dict[str, float]] | None = None  # kinematic probe: world -> {"position", "velocity"} R²


def _encode(encoder: torch.nn.Module, frames: torch.Tensor) -> torch.Tensor:
    return torch.cat([encoder(chunk) for chunk in frames.split(ENCODE_CHUNK)])


def split_latents(model: JEPAWorldModel, worlds: Worlds, split: Trajectories, count: int
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Online and target latents of every frame of the first ``count`` sequences: two (count, T, d) tensors."""
    online, target = [], []
    seqs = torch.arange(count, device=worlds.device)
    for chunk in seqs.split(max(1, ENCODE_CHUNK // split.num_frames)):
        frames = worlds.render_sequences(split, chunk).flatten(0, 1)  # (n*T, 1, H, W)
        online.append(_encode(model.encoder, frames).view(len(chunk), split.num_frames, -1))
        target.append(_encode(model.target_encoder, frames).view(len(chunk), split.num_frames, -1))
    return torch.cat(online), torch.cat(target)


def eval_horizons(model: JEPAWorldModel, config: Config) -> tuple[int, ...]:
    """The horizons D_shift is measured at: ``eval.horizons``, or the model's (ascending)."""
    return tuple(sorted(config.eval.horizons or model.horizons))


def start_latents(model: JEPAWorldModel, online: torch.Tensor, horizons: tuple[int, ...] | None = None
                  ) -> torch.Tensor:
    """The (N, d) latents of every start t with t + max k inside its sequence, from (S, T, d) online latents."""
    return online[:, :online.shape[1] - max(horizons or model.horizons)].flatten(0, 1)


def predict_split(model: JEPAWorldModel, online: torch.Tensor, target: torch.Tensor,
                  horizons: tuple[int, ...] | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Predictions over every (sequence, start t) with t + max k inside the sequence, at ``horizons`` (the
    model's when None).

    Args:
        online, target: (S, T, d) latents of S sequences.

    Returns:
        predicted (N, K, d), targets (N, K, d), current target latents (N, d), with N = S·(T − max k).
    """
    horizons = tuple(sorted(horizons or model.horizons))
    ks = torch.tensor(horizons, device=online.device)
    starts = online.shape[1] - int(ks.max())
    z = start_latents(model, online, horizons)
    current = target[:, :starts].flatten(0, 1)
    t = torch.arange(starts, device=online.device)
    future = target[:, t[:, None] + ks]  # (S, starts, K, d)
    slots = int(model.memory.buffer.size) if model.memory is not None else None
    experience = model.experience(z, slots)
    predicted = model.predict(z, experience, horizons=horizons).latents
    return predicted, future.flatten(0, 1), current


def accumulate_shift_experience(model: JEPAWorldModel, worlds: Worlds, config: Config, step: int,
                                generator: torch.Generator) -> None:
    """Push ``eval.n_experiences`` shift-world batch-mean transitions into the model's buffer, ungated."""
    assert model.memory is not None
    split = worlds.shift["train"]
    k = model.surprisal_horizon  # the horizon of training's buffer entries
    batch = min(config.train.batch_size, len(split))
    for _ in range(config.eval.n_experiences):
        seq = torch.randint(len(split), (batch,), device=worlds.device, generator=generator)
        t = torch.randint(split.num_frames - k, (batch, 1), device=worlds.device, generator=generator)
        frames = worlds.render(split, seq, torch.cat([t, t + k], dim=1))  # (B, 2, 1, H, W)
        entry = model.buffer_entry(frames[:, 0], model.encode(frames[:, 0]), model.encode_target(frames[:, 1]))
        model.memory.buffer.push(entry, True, step=step, world=WORLD_SHIFT)


def _errors(model: JEPAWorldModel, online: torch.Tensor, target: torch.Tensor, config: Config
            ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per-horizon errors (K,) under every formula, and the predictions (N, d) at the σ_z horizon
    (``eval.sigma_z_horizon``, the smallest horizon by default)."""
    horizons = eval_horizons(model, config)
    predicted, future, current = predict_split(model, online, target, horizons)
    k = config.eval.sigma_z_horizon or horizons[0]
    errors = all_normalised_errors(predicted, future, current, config.eval.denominator_eps)
    return errors, predicted[:, horizons.index(k)]


def _split_errors(model: JEPAWorldModel, worlds: Worlds, split: Trajectories, count: int, config: Config
                  ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """Errors and σ_z predictions (as :func:`_errors`) and the online latents (S, T, d) of the split."""
    online, target = split_latents(model, worlds, split, min(count, len(split)))
    return (*_errors(model, online, target, config), online)


def _by_horizon(horizons: tuple[int, ...], values: torch.Tensor) -> dict[str, float]:
    return {str(k): float(v) for k, v in zip(horizons, values, strict=True)}


def _finished(device: torch.device) -> float:
    """perf_counter once the device has finished its queued work (CUDA runs asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


@contextmanager
def buffer_restored(model: JEPAWorldModel) -> Iterator[None]:
    """Whatever is pushed into the experience buffer inside the block, it is put back as it was on leaving."""
    memory = model.memory
    snapshot = {k: v.clone() for k, v in memory.buffer.state_dict().items()} if memory is not None else None
    try:
        yield
    finally:
        if memory is not None and snapshot is not None:
            memory.buffer.load_state_dict(snapshot)


def prepare_shift_buffer(model: JEPAWorldModel, worlds: Worlds, config: Config, step: int) -> None:
    """Step 3 of the protocol: start from the training buffer (or empty) and push the n shift-world experiences,
    sampled from a generator seeded by (seed, step). Use inside :func:`buffer_restored`."""
    memory = model.memory
    if memory is None:
        return
    if config.eval.buffer_start == "empty":
        memory.buffer.load_state_dict({k: torch.zeros_like(v) if k in ("size", "ptr") else v
                                       for k, v in memory.buffer.state_dict().items()})
    generator = torch.Generator(device=worlds.device)
    generator.manual_seed(config.train.seed * 1_000_003 + step)
    accumulate_shift_experience(model, worlds, config, step, generator)


@torch.no_grad()
def evaluate(model: JEPAWorldModel, worlds: Worlds, config: Config, step: int) -> EvalResult:
    """Run the protocol of the module docstring and return the metrics; the model's state is left unchanged."""
    was_training = model.training
    model.eval()
    val: dict[str, torch.Tensor] | None = None
    val_seconds = 0.0
    diagnostics: dict = {}
    horizons = eval_horizons(model, config)
    try:
        with buffer_restored(model):
            base = worlds.base["val"]
            base_errors, _, base_online = _split_errors(model, worlds, base, config.eval.base_sequences or len(base),
                                                        config)
            prepare_shift_buffer(model, worlds, config, step)
            test = worlds.shift["test"]
            shift_errors, first, test_online = _split_errors(model, worlds, test, len(test), config)
            if config.eval.val_selection:
                started = _finished(worlds.device)
                val = _split_errors(model, worlds, worlds.shift["val"], len(worlds.shift["val"]), config)[0]
                val_seconds = _finished(worlds.device) - started
            if config.eval.diagnostics:
                diagnostics = {"effective_rank": latent_rank(test_online.flatten(0, 1)),
                               "probe_r2": probe_scores(model, worlds, config, base_online, test_online)}
    finally:
        model.train(was_training)
    formulas = {}
    for name, per_horizon in shift_errors.items():
        entry = {"d_shift": float(per_horizon.mean()), "d_shift_per_horizon": _by_horizon(horizons, per_horizon),
                 "d_base": float(base_errors[name].mean()),
                 "d_base_per_horizon": _by_horizon(horizons, base_errors[name])}
        if val is not None:
            entry["d_shift_val"] = float(val[name].mean())
            entry["d_shift_val_per_horizon"] = _by_horizon(horizons, val[name])
        formulas[name] = entry
    chosen = formulas[config.eval.formula]
    return EvalResult(
        step=step,
        d_shift=chosen["d_shift"],
        sigma_z=sigma_z(first),
        d_base=chosen["d_base"],
        d_shift_per_horizon=chosen["d_shift_per_horizon"],
        d_shift_val=chosen.get("d_shift_val"),
        formulas=formulas,
        val_seconds=round(val_seconds, 3),
        **diagnostics,
    )
