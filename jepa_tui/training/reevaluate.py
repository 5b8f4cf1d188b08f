"""Re-evaluating a run's kept weights under other evaluation or shift settings (``jepa-tui evaluate``).

A run keeps its model at every evaluation step (``weights/``, ``eval.keep_weights``) and its last and best
checkpoints (``checkpoints/``); any of them can be asked a new question: another shift world (``data.shift.*``,
``data.shift_gravity``), another protocol (``eval.*``: the adaptation curve, the experience source, test-time
training, ...). The answers go to ``evaluations/<tag>.jsonl``, one record per step with the settings that differ
from the run's and the code version; nothing the run wrote is touched.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from jepa_tui.config import Config, ConfigError, flat_keys, load_run_config, parse_set
from jepa_tui.data.worlds import Worlds
from jepa_tui.evaluation.evaluate import evaluate
from jepa_tui.model.jepa import JEPAWorldModel
from jepa_tui.provenance import code_version
from jepa_tui.runs import RunDirectory, load_checkpoint
from jepa_tui.runs.checkpoint import CheckpointError, verify_checkpoint

# What a re-evaluation may change: how the run is evaluated, never what it trained on.
EVALUATION_KEYS = ("eval.", "data.shift.", "data.shift_gravity", "data.shift_splits")


@dataclass(frozen=True)
class StoredModel:
    """A step whose model the run kept: in ``weights/`` (every evaluation) or ``checkpoints/``."""

    step: int
    path: Path
    kind: str  # "weights" or "checkpoint"


def stored_models(directory: RunDirectory) -> dict[int, StoredModel]:
    """Every step with a kept model, oldest first (the weights file where both exist)."""
    found = {s: StoredModel(s, p, "checkpoint") for s, p in directory.checkpoint_paths().items()}
    found.update({s: StoredModel(s, p, "weights") for s, p in directory.weights_paths().items()})
    return dict(sorted(found.items()))


def check_overrides(overrides: list[str]) -> None:
    """Refuse an override that would change what the run trained on.

    Raises:
        ConfigError: naming the key and the keys allowed.
    """
    for item in overrides:
        section, values = next(iter(parse_set(item).items()))
        for key in values:
            name = f"{section}.{key}"
            if not any(name.startswith(p) or name == p.rstrip(".") for p in EVALUATION_KEYS):
                raise ConfigError(f"--set {item!r}: '{name}' would change the model or its training data; "
                                  f"evaluate changes only eval.*, data.shift.*, data.shift_gravity and "
                                  "data.shift_splits.")


def settings_diff(run: Config, evaluated: Config) -> dict[str, list]:
    """``{"section.key": [the run's value, the value evaluated under]}`` for every key that differs."""
    before, after = flat_keys(run.to_dict()), flat_keys(evaluated.to_dict())
    return {key: [before.get(key), after.get(key)] for key in sorted(before.keys() | after.keys())
            if before.get(key) != after.get(key)}


def default_tag(overrides: list[str]) -> str:
    """"default" without overrides, else the overrides as one safe name (``data.shift_gravity=1`` ->
    ``data.shift_gravity-1``)."""
    if not overrides:
        return "default"
    tag = "_".join(re.sub(r"[^A-Za-z0-9._-]+", "-", item.replace(" ", "")).strip("-") for item in overrides)
    return tag.lstrip(".-")[:128] or "overrides"


def evaluation_model(config: Config, device: torch.device) -> JEPAWorldModel:
    """A model of ``config`` laid out as the trainer lays it out (channels-last encoders), so its evaluations
    equal the run's own to the bit."""
    model = JEPAWorldModel(config).to(device)
    model.encoder.to(memory_format=torch.channels_last)
    model.target_encoder.to(memory_format=torch.channels_last)
    return model


def load_stored(model: JEPAWorldModel, stored: StoredModel) -> str:
    """Load a kept model into ``model``; returns the code version that wrote it.

    Raises:
        CheckpointError: an unreadable file; ConfigError: weights that do not fit the run's configuration.
    """
    state = load_checkpoint(stored.path) if stored.kind == "checkpoint" else _load_weights(stored.path)
    weights = state["trainer"]["model"] if stored.kind == "checkpoint" else state["model"]
    try:
        model.load_state_dict(weights)
    except (RuntimeError, KeyError, TypeError) as exc:
        raise ConfigError(f"the model at step {stored.step} ({stored.path}) does not fit the run's config.toml: "
                          f"{str(exc).splitlines()[0][:200]}") from None
    return str(state.get("version", "unknown"))


def _load_weights(path: Path) -> dict:
    verify_checkpoint(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged file: RuntimeError, UnpicklingError, EOFError, ...
        raise CheckpointError(f"weights file '{path}' is corrupt ({str(exc).splitlines()[0][:160]}).") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise CheckpointError(f"'{path}' is not a jepa-tui weights file (no model).")
    return state


def reevaluate(run_dir: Path, steps: list[int] | None, overrides: list[str], tag: str | None = None,
               device: torch.device | None = None) -> Iterator[dict]:
    """Evaluate the kept models of ``run_dir`` at ``steps`` (None: the last) under the run's configuration with
    ``overrides``; yields each record as it is written to ``evaluations/<tag>.jsonl``.

    Raises:
        ConfigError: a bad override, a step without a kept model, or a tag that holds other settings;
        CheckpointError: an unreadable model file; RunDirError: a run directory that cannot be read or written.
    """
    check_overrides(overrides)
    directory = RunDirectory.open(run_dir)
    run_config = load_run_config(directory.path)
    config = load_run_config(directory.path, overrides)
    tag = tag or default_tag(overrides)
    available = stored_models(directory)
    if not available:
        raise ConfigError(f"'{run_dir}' keeps no model (no weights/ or checkpoints/) to evaluate.")
    chosen = [max(available)] if steps is None else steps
    missing = [s for s in chosen if s not in available]
    if missing:
        raise ConfigError(f"--step {missing[0]}: no kept model at that step; kept: {', '.join(map(str, available))}.")
    differences = settings_diff(run_config, config)
    previous = directory.read_evaluations().get(tag, [])
    if any(r.get("config_diff") != differences for r in previous):
        raise ConfigError(f"evaluations/{tag}.jsonl holds evaluations under other settings; choose another --tag.")
    device = device or torch.device("cpu")
    model = evaluation_model(config, device)
    worlds = Worlds(config.data, device, seed=config.world_seed)
    records = {r["step"]: r for r in previous}
    for step in chosen:
        stored = available[step]
        written_by = load_stored(model, stored)
        started = time.perf_counter()
        result = evaluate(model, worlds, config, step)
        result.seconds = round(time.perf_counter() - started, 3)
        record = {"kind": "evaluation", "tag": tag, "source": stored.kind, "config_diff": differences,
                  "version": code_version(), "model_version": written_by, "time": time.time(),
                  "formula": config.eval.formula, **asdict(result)}
        records[step] = record
        directory.write_evaluations(tag, [records[s] for s in sorted(records)])
        yield record
