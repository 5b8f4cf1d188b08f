"""Type coercion and range checks of configuration values; every mistake is a :class:`ConfigError` naming the
source, the key and what is allowed (with the nearest known key suggested for a typo)."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, Literal

from jepa_tui.config.schema import SECTIONS, Config


class ConfigError(ValueError):
    """A profile or override is invalid; the message names the file, the key and what is allowed."""


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"{hint} Known keys: {', '.join(sorted(known))}."


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin in (types.UnionType, typing.Union):
        parts = [_describe(a) for a in typing.get_args(hint) if a is not type(None)]
        return " or ".join(parts)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return "a list of " + {int: "integers", float: "numbers", str: "strings"}.get(item, str(item))
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(hint, str(hint))


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    bad = ConfigError(f"{where}: got {value!r}, expected {_describe(hint)}.")
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise bad
        return value
    if origin in (types.UnionType, typing.Union):
        if value is None:
            return None
        for arg in typing.get_args(hint):
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError:
                continue
        raise bad
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise bad
        (item,) = typing.get_args(hint)[:1]
        return tuple(_coerce(v, item, where) for v in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise bad
        return value
    raise bad


def apply_layer(tables: dict[str, dict[str, Any]], layer: dict[str, Any], source: str) -> None:
    """Merge one layer of overrides into ``tables`` in place, type-checking every key."""
    for section, values in layer.items():
        if section not in SECTIONS:
            raise ConfigError(f"{source}: unknown section [{section}].{_suggest(section, list(SECTIONS))}")
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{section}] must be a table of keys.")
        hints = typing.get_type_hints(SECTIONS[section])
        for key, value in values.items():
            if key not in hints:
                raise ConfigError(f"{source}: unknown key '{section}.{key}'.{_suggest(key, list(hints))}")
            tables[section][key] = _coerce(value, hints[key], f"{source}: '{section}.{key}'")
        train = values if section == "train" else {}
        if "steps" in train and "seconds" in train and train["steps"] is not None \
                and train["seconds"] is not None:
            raise ConfigError(f"{source}: set either 'train.steps' or 'train.seconds' as the budget, not both.")
        if "seconds" in train and "steps" not in train:
            tables["train"]["steps"] = None
        if "steps" in train and "seconds" not in train:
            tables["train"]["seconds"] = None


def check(config: Config, source: str) -> None:
    """Range checks; raise ConfigError naming the key and the allowed range."""
    t, d, m, mem, ev, th = config.train, config.data, config.model, config.memory, config.eval, config.thermal

    def need(ok: bool, key: str, allowed: str, value: Any) -> None:
        if not ok:
            raise ConfigError(f"{source}: '{key}' = {value!r} is out of range; allowed: {allowed}.")

    if (t.steps is None) == (t.seconds is None):
        raise ConfigError(f"{source}: set exactly one of 'train.steps' or 'train.seconds' as the budget.")
    if t.steps is not None:
        need(t.steps > 0, "train.steps", "an integer > 0", t.steps)
    if t.seconds is not None:
        need(t.seconds > 0, "train.seconds", "a number > 0", t.seconds)
    need(t.batch_size >= 2, "train.batch_size", "an integer >= 2", t.batch_size)
    need(t.lr is None or t.lr > 0, "train.lr", "a number > 0", t.lr)
    need(t.weight_decay >= 0, "train.weight_decay", "a number >= 0", t.weight_decay)
    need(0 <= t.warmup_frac < 1, "train.warmup_frac", "0 <= value < 1", t.warmup_frac)
    need(t.lambda_var >= 0, "train.lambda_var", "a number >= 0", t.lambda_var)
    need(t.gamma > 0, "train.gamma", "a number > 0", t.gamma)
    need(t.var_eps > 0, "train.var_eps", "a number > 0", t.var_eps)
    need(t.grad_clip >= 0, "train.grad_clip", "a number >= 0 (0 = off)", t.grad_clip)
    need(t.log_every_steps >= 1, "train.log_every_steps", "an integer >= 1", t.log_every_steps)
    need(t.print_every_seconds > 0, "train.print_every_seconds", "a number > 0", t.print_every_seconds)
    for key in ("freeze_buffer_at", "freeze_ema_at"):
        value = getattr(t, key)
        need(value is None or value >= 0, f"train.{key}", "a step >= 0", value)
    need(d.num_digits >= 1, "data.num_digits", "an integer >= 1", d.num_digits)
    need(d.canvas >= 32 and d.canvas % 16 == 0, "data.canvas", "a multiple of 16, >= 32", d.canvas)
    need(4 <= d.digit_size < d.canvas, "data.digit_size", f"4 <= value < data.canvas ({d.canvas}) px", d.digit_size)
    need(0 <= d.wall_restitution <= 1, "data.wall_restitution", "0 <= value <= 1 (1 = elastic)", d.wall_restitution)
    need(d.velocity_max >= 0, "data.velocity_max", "a number >= 0 (px/frame)", d.velocity_max)
    for key, splits in (("data.base_splits", d.base_splits), ("data.shift_splits", d.shift_splits)):
        need(len(splits) == 3 and all(n >= 1 for n in splits), key, "three positive integers [train, val, test]",
             list(splits))
    need(len(m.horizons) > 0 and all(k >= 1 for k in m.horizons) and len(set(m.horizons)) == len(m.horizons),
         "model.horizons", "a non-empty list of distinct integers >= 1", list(m.horizons))
    need(max(m.horizons) < d.frames, "model.horizons", f"horizons below data.frames ({d.frames})",
         list(m.horizons))
    need(m.latent_dim >= 2, "model.latent_dim", "an integer >= 2", m.latent_dim)
    need(len(m.encoder_channels) == 4 and all(c >= 1 for c in m.encoder_channels), "model.encoder_channels",
         "four positive integers (four stride-2 convolutions)", list(m.encoder_channels))
    need(m.hidden_dim >= 1, "model.hidden_dim", "an integer >= 1", m.hidden_dim)
    side = d.canvas
    for _ in m.encoder_channels:
        side = (side + 2 * m.encoder_padding - 4) // 2 + 1
    need(0 <= m.encoder_padding <= 3 and side >= 1, "model.encoder_padding",
         f"0 <= value <= 3 leaving a feature map of at least 1 px after four convolutions of data.canvas "
         f"({d.canvas})", m.encoder_padding)
    need(0 < m.ema_tau_base <= 1, "model.ema_tau_base", "0 < value <= 1", m.ema_tau_base)
    need(0 < m.ema_tau_end <= 1, "model.ema_tau_end", "0 < value <= 1", m.ema_tau_end)
    need(mem.kappa is None or mem.kappa > 0, "memory.kappa", "a number > 0", mem.kappa)
    need(0 < mem.stats_momentum < 1, "memory.stats_momentum", "0 < value < 1", mem.stats_momentum)
    need(mem.warmup_steps >= 1, "memory.warmup_steps", "an integer >= 1", mem.warmup_steps)
    need(mem.capacity >= 1, "memory.capacity", "an integer >= 1", mem.capacity)
    need(mem.exp_heads >= 1, "memory.exp_heads", "an integer >= 1", mem.exp_heads)
    need(mem.exp_dim >= 1 and mem.exp_dim % mem.exp_heads == 0, "memory.exp_dim",
         f"a positive multiple of memory.exp_heads ({mem.exp_heads})", mem.exp_dim)
    need(mem.exp_layers >= 1, "memory.exp_layers", "an integer >= 1", mem.exp_layers)
    need(mem.exp_ff_dim >= 1, "memory.exp_ff_dim", "an integer >= 1", mem.exp_ff_dim)
    need(mem.lora_rank >= 1, "memory.lora_rank", "an integer >= 1", mem.lora_rank)
    need(mem.lora_scale > 0, "memory.lora_scale", "a number > 0", mem.lora_scale)
    for key, horizon in (("memory.surprisal_horizon", mem.surprisal_horizon),
                         ("eval.sigma_z_horizon", ev.sigma_z_horizon)):
        need(horizon is None or horizon in m.horizons, key, f"one of model.horizons {list(m.horizons)}", horizon)
    need(ev.every_steps >= 1, "eval.every_steps", "an integer >= 1", ev.every_steps)
    need(ev.n_experiences >= 0, "eval.n_experiences", "an integer >= 0", ev.n_experiences)
    need(ev.denominator_eps > 0, "eval.denominator_eps", "a number > 0", ev.denominator_eps)
    need(ev.base_sequences >= 0, "eval.base_sequences", "an integer >= 0 (0 = whole split)", ev.base_sequences)
    need(0 < th.pause_at_c < 150, "thermal.pause_at_c", "0 < value < 150 (°C)", th.pause_at_c)
    need(0 < th.resume_at_c < th.pause_at_c, "thermal.resume_at_c",
         f"0 < value < thermal.pause_at_c ({th.pause_at_c:g} °C)", th.resume_at_c)
    rep = config.report
    need(rep.null_band_pct > 0, "report.null_band_pct", "a number > 0 (%)", rep.null_band_pct)
    need(rep.strong_pct > rep.null_band_pct, "report.strong_pct", f"a number > report.null_band_pct "
         f"({rep.null_band_pct:g} %)", rep.strong_pct)
    need(rep.bootstrap_resamples >= 100, "report.bootstrap_resamples", "an integer >= 100", rep.bootstrap_resamples)
    need(0 < rep.confidence < 1, "report.confidence", "0 < value < 1", rep.confidence)
    need(th.sample_every_seconds > 0, "thermal.sample_every_seconds", "a number > 0 (s)", th.sample_every_seconds)
