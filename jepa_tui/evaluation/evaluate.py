"""The evaluation protocol: D_shift^{n} on the shift test split, sigma_z, and d_base (spec §5, [GUESS] #24), with the
instruments that tell memory apart from the shift (adaptation curve, content control, raw and pixel-space errors,
test-time training).

1. Snapshot the experience buffer; evaluation never changes training state.
2. ``d_base``: the normalised error on the base-world validation split, with the training buffer as it is.
3. Start the evaluation buffer from the training buffer (``eval.buffer_start = "training"``) or empty, and push
   shift-world experiences, ungated: each is the batch-mean latent transition of one mini-batch of shift-world
   *train* sequences (never the test split; :mod:`jepa_tui.evaluation.experience`).
4. ``D_shift``: the normalised error over every (sequence, start t) of the shift test split and every horizon,
   with the buffer as it is after n = ``eval.n_experiences`` experiences; ``sigma_z`` from the smallest horizon's
   predictions of the same samples. With ``eval.val_selection`` (ours) the same on the shift *validation* split
   (``d_shift_val``), so a report can pick each run's step without the test split.
5. The **adaptation curve**: D_shift after each n of ``eval.n_curve`` (and n_experiences), pushing on from the same
   start buffer; **memory gain** = D(n = 0) − D(n = n_experiences) (> 0: experience helps; exactly 0 for Track A).
6. The **content control** (``eval.content_control``): D_shift after n base-world experiences instead, from the
   same start buffer; **content effect** = D(base entries) − D(shift entries) (> 0: the *content* of shift
   experience helps, not just having entries).
7. **Raw numbers** per horizon in each world: latent MSE and persistence MSE (per latent dimension), D normalised by
   the *base* world's persistence error (``d_shift_base_norm``: comparable across worlds), and ``pos_rmse_px``:
   predicted latents decoded to digit positions by a probe fitted on target latents, against the true positions,
   in px (with the persistence prediction's and the probe's own floor beside it).
8. **Test-time training** (``eval.ttt_steps`` > 0): a copy of the predictor (or every parameter) fine-tuned on the
   same n shift mini-batches, evaluated, discarded (:mod:`jepa_tui.evaluation.ttt`).
9. Restore the buffer. Sampling uses its own generator seeded from (seed, step), not the training RNG.

Every error is computed under each formula of :data:`~jepa_tui.evaluation.metrics.FORMULAS` from the same
predictions (``formulas`` in the result); ``d_shift``, ``d_base``, ``d_shift_val``, the gains and effects use
``eval.formula``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from jepa_tui.config import Config
from jepa_tui.data.worlds import Trajectories, Worlds
from jepa_tui.evaluation.experience import CONTENT_SEED_OFFSET, ExperienceFeed, eval_generator
from jepa_tui.evaluation.metrics import all_normalised_errors, latent_rank, sigma_z
from jepa_tui.evaluation.probe import PositionDecoder, ordered_positions, probe_scores
from jepa_tui.evaluation.ttt import adapted
from jepa_tui.model.jepa import JEPAWorldModel

ENCODE_CHUNK = 1024  # frames per encoder call during evaluation


@dataclass
class EvalResult:
    """One evaluation, under ``eval.formula``; per-horizon values are keyed by horizon k (a string, for JSON).

    Attributes:
        d_shift_val: D_shift on the shift validation split (None when ``eval.val_selection`` is off).
        formulas: formula -> {"d_shift", "d_shift_per_horizon", "d_base", "d_base_per_horizon"[, "d_shift_val",
            "d_shift_val_per_horizon"]}, for every formula, from the same predictions.
        seconds: the whole evaluation; val_seconds: the part spent on the validation split (wall seconds).
        n_curve: the adaptation curve {"source", "n": [n, ...], "d_shift": {formula: [D at each n]},
            "d_shift_per_horizon": {formula: {k: [D at each n]}}}.
        memory_gain: D(n = 0) − D(n = n_experiences) under ``eval.formula`` (None when 0 is not in the curve).
        content: the content control {"source": "base", "n", "d_shift": {formula: D}, "d_shift_per_horizon": ...}.
        content_effect: D(base entries) − D(the protocol's entries), at n_experiences, under ``eval.formula``.
        raw: world ("base", "shift") -> {"latent_mse", "persistence_mse", "pos_rmse_px", "pos_rmse_px_persistence",
            "pos_rmse_px_floor": {k: value}}; ``raw["shift"]["d_base_norm"]``: shift latent MSE / base
            persistence MSE per horizon.
        d_shift_base_norm: the mean over horizons of ``raw["shift"]["d_base_norm"]``.
        pos_rmse_px: the shift test's mean over horizons of ``raw["shift"]["pos_rmse_px"]`` (px).
        ttt: test-time training {"steps", "lr", "params", "losses": [first, last], "d_shift": {formula: D},
            "d_shift_per_horizon": ...}, or None; d_shift_ttt: its D_shift under ``eval.formula``.
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
    n_experiences: int = 0
    n_curve: dict | None = None
    memory_gain: float | None = None
    content: dict | None = None
    content_effect: float | None = None
    raw: dict | None = None
    d_shift_base_norm: float | None = None
    pos_rmse_px: float | None = None
    ttt: dict | None = None
    d_shift_ttt: float | None = None


def _encode(encoder: torch.nn.Module, frames: torch.Tensor) -> torch.Tensor:
    return torch.cat([encoder(chunk) for chunk in frames.split(ENCODE_CHUNK)])


def split_latents(model: JEPAWorldModel, worlds: Worlds, split: Trajectories, count: int
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Online and target latents of every observation of the first ``count`` sequences: two (count, T', d)
    tensors, index i the observation ending at frame i + C − 1 (T' = T − C + 1, C = ``data.context_frames``)."""
    online, target = [], []
    seqs = torch.arange(count, device=worlds.device)
    length = split.num_frames - worlds.context + 1
    for chunk in seqs.split(max(1, ENCODE_CHUNK // length)):
        frames = worlds.observe_sequences(split, chunk).flatten(0, 1)  # (n*T', C, H, W)
        online.append(_encode(model.encoder, frames).view(len(chunk), length, -1))
        target.append(_encode(model.target_encoder, frames).view(len(chunk), length, -1))
    return torch.cat(online), torch.cat(target)


def eval_horizons(model: JEPAWorldModel, config: Config) -> tuple[int, ...]:
    """The horizons D_shift is measured at: ``eval.horizons``, or the model's (ascending)."""
    return tuple(sorted(config.eval.horizons or model.horizons))


def curve_points(config: Config) -> tuple[int, ...]:
    """The adaptation curve's experience counts: ``eval.n_curve`` with ``eval.n_experiences``, ascending."""
    return tuple(sorted({*config.eval.n_curve, config.eval.n_experiences}))


def start_latents(model: JEPAWorldModel, online: torch.Tensor, horizons: tuple[int, ...] | None = None
                  ) -> torch.Tensor:
    """The (N, d) latents of every start t with t + max k inside its sequence, from (S, T, d) online latents."""
    return online[:, :online.shape[1] - max(horizons or model.horizons)].flatten(0, 1)


def future_index(length: int, horizons: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """(starts, K) latent indices t + k of every start t (t + max k < ``length``) and horizon k."""
    ks = torch.tensor(horizons, device=device)
    return torch.arange(length - int(ks.max()), device=device)[:, None] + ks


def predict_split(model: JEPAWorldModel, online: torch.Tensor, target: torch.Tensor,
                  horizons: tuple[int, ...] | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Predictions over every (sequence, start t) with t + max k inside the sequence, at ``horizons`` (the
    model's when None), with the experience of the buffer as it is.

    Args:
        online, target: (S, T, d) latents of S sequences.

    Returns:
        predicted (N, K, d), targets (N, K, d), current target latents (N, d), with N = S·(T − max k).
    """
    horizons = tuple(sorted(horizons or model.horizons))
    index = future_index(online.shape[1], horizons, online.device)
    z = start_latents(model, online, horizons)
    current = target[:, :index.shape[0]].flatten(0, 1)
    future = target[:, index]  # (S, starts, K, d)
    slots = int(model.memory.buffer.size) if model.memory is not None else None
    experience = model.experience(z, slots)
    predicted = model.predict(z, experience, horizons=horizons).latents
    return predicted, future.flatten(0, 1), current


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


def start_buffer(model: JEPAWorldModel, config: Config) -> None:
    """Step 3's start: the training buffer as it is, or emptied (``eval.buffer_start = "empty"``)."""
    memory = model.memory
    if memory is not None and config.eval.buffer_start == "empty":
        memory.buffer.load_state_dict({k: torch.zeros_like(v) if k in ("size", "ptr") else v
                                       for k, v in memory.buffer.state_dict().items()})


def prepare_shift_buffer(model: JEPAWorldModel, worlds: Worlds, config: Config, step: int) -> ExperienceFeed:
    """Steps 3 of the protocol: the start buffer, then ``eval.n_experiences`` experiences of
    ``eval.experience_source``, sampled from a generator seeded by (seed, step). Use inside
    :func:`buffer_restored`; returns the feed (its mini-batches' latents)."""
    start_buffer(model, config)
    feed = ExperienceFeed(model, worlds, config, config.eval.experience_source,
                          eval_generator(config, step, worlds.device), step)
    feed.push(config.eval.n_experiences)
    return feed


@dataclass
class _SplitData:
    """A split's latents, computed once per evaluation (the buffer changes only the predictions)."""

    split: Trajectories
    online: torch.Tensor  # (S, T', d)
    target: torch.Tensor  # (S, T', d)


def _split_data(model: JEPAWorldModel, worlds: Worlds, split: Trajectories, count: int) -> _SplitData:
    return _SplitData(split, *split_latents(model, worlds, split, min(count, len(split))))


def _predictions(model: JEPAWorldModel, data: _SplitData, horizons: tuple[int, ...]
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return predict_split(model, data.online, data.target, horizons)


def _errors(predicted: torch.Tensor, future: torch.Tensor, current: torch.Tensor, config: Config
            ) -> dict[str, torch.Tensor]:
    return all_normalised_errors(predicted, future, current, config.eval.denominator_eps)


def _formula_table(horizons: tuple[int, ...], errors: dict[str, torch.Tensor]) -> dict:
    return {"d_shift": {name: float(v.mean()) for name, v in errors.items()},
            "d_shift_per_horizon": {name: _by_horizon(horizons, v) for name, v in errors.items()}}


def _raw_world(horizons: tuple[int, ...], predictions: tuple[torch.Tensor, ...], data: _SplitData,
               decoder: PositionDecoder | None, first: int) -> dict[str, dict[str, float]]:
    """Step 7 for one world: latent and persistence MSE per latent dimension, and the pixel-space errors."""
    predicted, future, current = predictions
    latent = (predicted - future).pow(2).mean(-1).mean(0)  # (K,)
    persistence = (future - current.unsqueeze(1)).pow(2).mean(-1).mean(0)
    out = {"latent_mse": _by_horizon(horizons, latent), "persistence_mse": _by_horizon(horizons, persistence)}
    if decoder is not None:
        index = future_index(data.online.shape[1], horizons, data.online.device) + first  # frames of t + k
        truth = ordered_positions(data.split, data.online.shape[0])[:, index].flatten(0, 1).double()  # (N, K, P)

        def rmse(latents: torch.Tensor) -> dict[str, float]:
            return _by_horizon(horizons, (decoder.decode(latents) - truth).pow(2).mean(-1).mean(0).sqrt())

        out["pos_rmse_px"] = rmse(predicted)
        out["pos_rmse_px_persistence"] = rmse(current.unsqueeze(1).expand_as(future))
        out["pos_rmse_px_floor"] = rmse(future)
    return out


def _position_decoder(fit: _SplitData, config: Config, first: int) -> PositionDecoder:
    positions = ordered_positions(fit.split, fit.online.shape[0])[:, first:]
    return PositionDecoder(fit.target.flatten(0, 1), positions.flatten(0, 1), config.eval.probe_ridge)


@torch.no_grad()
def evaluate(model: JEPAWorldModel, worlds: Worlds, config: Config, step: int) -> EvalResult:
    """Run the protocol of the module docstring and return the metrics; the model's state is left unchanged."""
    was_training = model.training
    context = model.world_context.clone()
    model.eval()
    try:
        with buffer_restored(model):
            return _evaluate(model, worlds, config, step)
    finally:
        model.set_world_context(context)
        model.train(was_training)


def _evaluate(model: JEPAWorldModel, worlds: Worlds, config: Config, step: int) -> EvalResult:
    ev = config.eval
    horizons = eval_horizons(model, config)
    first = worlds.context - 1
    formula = ev.formula
    base = _split_data(model, worlds, worlds.base["val"], ev.base_sequences or len(worlds.base["val"]))
    model.set_world_context(worlds.base_context)  # the oracle context, when on, is told the base world's physics
    base_predictions = _predictions(model, base, horizons)
    base_errors = _errors(*base_predictions, config)
    test = _split_data(model, worlds, worlds.shift["test"], len(worlds.shift["test"]))
    fit = _split_data(model, worlds, worlds.base["train"], ev.probe_sequences)
    decoder = _position_decoder(fit, config, first)
    raw = {"base": _raw_world(horizons, base_predictions, base, decoder, first)}

    start_buffer(model, config)
    memory = model.memory
    start_state = {k: v.clone() for k, v in memory.buffer.state_dict().items()} if memory is not None else None
    feed = ExperienceFeed(model, worlds, config, ev.experience_source, eval_generator(config, step, worlds.device),
                          step, keep_latents=ev.ttt_steps > 0)
    points = curve_points(config)
    curve: dict = {"source": ev.experience_source, "n": list(points), "d_shift": {}, "d_shift_per_horizon": {}}
    shift_errors: dict[str, torch.Tensor] = {}
    first_predictions: torch.Tensor | None = None
    val: dict[str, torch.Tensor] | None = None
    val_seconds = 0.0
    ttt = None
    cached: dict[str, torch.Tensor] | None = None  # Track A: predictions do not depend on n
    for n in points:
        feed.push(n - feed.pushed)
        model.set_world_context(feed.context())
        if cached is None or memory is not None:
            predictions = _predictions(model, test, horizons)
            errors = _errors(*predictions, config)
            cached = errors
        errors = cached
        for name, values in errors.items():
            curve["d_shift"].setdefault(name, []).append(float(values.mean()))
            per = curve["d_shift_per_horizon"].setdefault(name, {str(k): [] for k in horizons})
            for k, v in zip(horizons, values, strict=True):
                per[str(k)].append(float(v))
        if n != ev.n_experiences:
            continue
        shift_errors = errors
        predicted = predictions[0]
        k_sigma = ev.sigma_z_horizon or horizons[0]
        first_predictions = predicted[:, horizons.index(k_sigma)]
        raw["shift"] = _raw_world(horizons, predictions, test, decoder, first)
        if ev.val_selection:
            started = _finished(worlds.device)
            val_data = _split_data(model, worlds, worlds.shift["val"], len(worlds.shift["val"]))
            val = _errors(*_predictions(model, val_data, horizons), config)
            val_seconds = _finished(worlds.device) - started
        if ev.ttt_steps > 0 and feed.pushed > 0:
            with adapted(model, feed, ev.ttt_steps, ev.ttt_lr, ev.ttt_params) as losses:
                adapted_errors = _errors(*_predictions(model, test, horizons), config)
            ttt = {"steps": ev.ttt_steps, "lr": ev.ttt_lr, "params": ev.ttt_params,
                   "losses": [losses[0], losses[-1]], **_formula_table(horizons, adapted_errors)}

    content = None
    if ev.content_control:
        if memory is not None and start_state is not None:
            memory.buffer.load_state_dict(start_state)
            control = ExperienceFeed(model, worlds, config, "base",
                                     eval_generator(config, step, worlds.device, CONTENT_SEED_OFFSET), step)
            control.push(ev.n_experiences)
            model.set_world_context(control.context())
            content_errors = _errors(*_predictions(model, test, horizons), config)
        else:
            content_errors = shift_errors  # no memory: the entries cannot matter
        content = {"source": "base", "n": ev.n_experiences, **_formula_table(horizons, content_errors)}

    diagnostics: dict = {}
    if ev.diagnostics:
        diagnostics = {"effective_rank": latent_rank(test.online.flatten(0, 1)),
                       "probe_r2": probe_scores(config, fit.online, fit.split,
                                                {"base": (base.online, base.split), "shift": (test.online,
                                                                                              test.split)}, first)}
    base_persistence = torch.tensor([raw["base"]["persistence_mse"][str(k)] for k in horizons])
    shift_latent = torch.tensor([raw["shift"]["latent_mse"][str(k)] for k in horizons])
    raw["shift"]["d_base_norm"] = _by_horizon(horizons, shift_latent / base_persistence)

    formulas = {}
    for name, per_horizon in shift_errors.items():
        entry = {"d_shift": float(per_horizon.mean()), "d_shift_per_horizon": _by_horizon(horizons, per_horizon),
                 "d_base": float(base_errors[name].mean()),
                 "d_base_per_horizon": _by_horizon(horizons, base_errors[name])}
        if val is not None:
            entry["d_shift_val"] = float(val[name].mean())
            entry["d_shift_val_per_horizon"] = _by_horizon(horizons, val[name])
        formulas[name] = entry
    chosen = formulas[formula]
    at = curve["d_shift"][formula]
    gain = at[0] - at[points.index(ev.n_experiences)] if points[0] == 0 else None
    assert first_predictions is not None
    return EvalResult(
        step=step,
        d_shift=chosen["d_shift"],
        sigma_z=sigma_z(first_predictions),
        d_base=chosen["d_base"],
        d_shift_per_horizon=chosen["d_shift_per_horizon"],
        d_shift_val=chosen.get("d_shift_val"),
        formulas=formulas,
        val_seconds=round(val_seconds, 3),
        n_experiences=ev.n_experiences,
        n_curve=curve,
        memory_gain=gain,
        content=content,
        content_effect=content["d_shift"][formula] - chosen["d_shift"] if content is not None else None,
        raw=raw,
        d_shift_base_norm=float((shift_latent / base_persistence).mean()),
        pos_rmse_px=sum(raw["shift"]["pos_rmse_px"].values()) / len(horizons),
        ttt=ttt,
        d_shift_ttt=ttt["d_shift"][formula] if ttt is not None else None,
        **diagnostics,
    )
