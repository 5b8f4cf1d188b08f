"""Type coercion and range checks of configuration values; every mistake is a :class:`ConfigError` naming the
source, the key and what is allowed (with the nearest known key suggested for a typo)."""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import math
import types
import typing
from typing import Any, Literal

from jepa_tui.config.schema import MEMORY_TRACKS, SECTIONS, Config


class ConfigError(ValueError):
    """A profile or override is invalid; the message names the file, the key and what is allowed."""


MAX_QUOTED = 200  # characters of a bad value quoted in an error message
LOGGER_NAMES = ("tensorboard", "mlflow", "wandb")  # train.loggers: the record loggers (jepa_tui.training.loggers)


def shorten(value: Any) -> str:
    """``repr(value)``, cut to about :data:`MAX_QUOTED` characters (a 1 MB value is not echoed whole)."""
    text = repr(value)
    return text if len(text) <= MAX_QUOTED else f"{text[:MAX_QUOTED]}… ({len(text):,} characters)"


def require_extra(module: str, what: str, needs: str, extra: str):
    """Import ``module``, which an optional extra of the package installs; the module.

    Raises:
        ConfigError: "<what> needs <needs>, an optional extra: pip install 'jepa-tui[<extra>]'" when it is missing.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"{what} needs {needs}, an optional extra: pip install 'jepa-tui[{extra}]'") from None


def suggest(name: str, known: list[str], kind: str = "keys") -> str:
    """" Did you mean 'x'? Known <kind>: a, b, c." for a name that is not one of ``known``."""
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"{hint} Known {kind}: {', '.join(sorted(known))}."


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
    return {int: "an integer", float: "a finite number", str: "a string", bool: "true or false"}.get(hint, str(hint))


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    bad = ConfigError(f"{where}: got {shorten(value)}, expected {_describe(hint)}.")
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
        if not math.isfinite(float(value)):
            raise ConfigError(f"{where}: got {shorten(value)}, expected a finite number.")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise bad
        return value
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ConfigError(f"{where}: got {shorten(value)}, expected a table of key = value.")
        return dict(value)
    raise bad


def table_to_dataclass(cls: type, table: Any, where: str) -> Any:
    """A ``cls`` (a dataclass of plain fields) from a TOML table, every key type-checked.

    Raises:
        ConfigError: naming ``where`` and the key, for an unknown key (with the nearest known one) or a bad type.
    """
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table of keys.")
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in table.items():
        if key not in hints:
            raise ConfigError(f"{where}: unknown key '{key}'.{suggest(key, list(hints))}")
        values[key] = _coerce(value, hints[key], f"{where}: '{key}'")
    return cls(**values)


def _apply_table(table: dict[str, Any], values: dict[str, Any], cls: type, where: str, source: str) -> None:
    """Coerce ``values`` into ``table`` by the fields of dataclass ``cls``; a dotted key (``shift.gravity``, from
    ``--set data.shift.gravity=1``) or a table value reaches a nested dataclass such as ``[data.shift]``."""
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        head, dot, rest = key.partition(".")
        if head not in hints:
            raise ConfigError(f"{source}: unknown key '{where}.{head}'.{suggest(head, list(hints))}")
        nested = hints[head]
        if dataclasses.is_dataclass(nested):
            inner = {rest: value} if dot else value
            if not isinstance(inner, dict):
                raise ConfigError(f"{source}: '{where}.{head}' is a table ([{where}.{head}]) of keys: "
                                  f"{', '.join(f.name for f in dataclasses.fields(nested))}.")
            _apply_table(table[head], inner, nested, f"{where}.{head}", source)
        elif dot:
            raise ConfigError(f"{source}: '{where}.{head}' is not a table; unknown key '{where}.{key}'.")
        else:
            table[head] = _coerce(value, nested, f"{source}: '{where}.{head}'")


def apply_layer(tables: dict[str, dict[str, Any]], layer: dict[str, Any], source: str) -> None:
    """Merge one layer of overrides into ``tables`` in place, type-checking every key."""
    for section, values in layer.items():
        if section not in SECTIONS:
            raise ConfigError(f"{source}: unknown section [{section}].{suggest(section, list(SECTIONS), 'sections')}")
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{section}] must be a table of keys.")
        _apply_table(tables[section], values, SECTIONS[section], section, source)
        train = values if section == "train" else {}
        if "steps" in train and "seconds" in train and train["steps"] is not None \
                and train["seconds"] is not None:
            raise ConfigError(f"{source}: set either 'train.steps' or 'train.seconds' as the budget, not both.")
        if "seconds" in train and "steps" not in train:
            tables["train"]["steps"] = None
        if "steps" in train and "seconds" not in train:
            tables["train"]["seconds"] = None


MAX_SEED = 2**31 - 1


def check(config: Config, source: str) -> None:
    """Range checks, with upper bounds the code can honour; raise ConfigError naming the key and the allowed range."""
    t, d, m, mem, ev, th = config.train, config.data, config.model, config.memory, config.eval, config.thermal

    def need(ok: bool, key: str, allowed: str, value: Any) -> None:
        if not ok:
            raise ConfigError(f"{source}: '{key}' = {shorten(value)} is out of range; allowed: {allowed}.")

    def between(key: str, value: float, low: float, high: float, unit: str = "") -> None:
        def text(x: float) -> str:
            return str(x) if isinstance(x, int) else f"{x:g}"

        need(low <= value <= high, key, f"{text(low)} <= value <= {text(high)}{unit}", value)

    usable = d.frames - d.context_frames + 1  # horizons k < usable leave a start t >= context_frames - 1
    if (t.steps is None) == (t.seconds is None):
        raise ConfigError(f"{source}: set exactly one of 'train.steps' or 'train.seconds' as the budget.")
    if t.steps is not None:
        between("train.steps", t.steps, 1, 10**9)
    if t.seconds is not None:
        need(0 < t.seconds <= 1e8, "train.seconds", "0 < value <= 1e8 (s)", t.seconds)
    between("train.seed", t.seed, 0, MAX_SEED)
    between("train.batch_size", t.batch_size, 2, 65536)
    need(t.lr is None or 0 < t.lr <= 1000, "train.lr", "0 < value <= 1000", t.lr)
    need(t.weight_decay >= 0, "train.weight_decay", "a number >= 0", t.weight_decay)
    need(0 <= t.warmup_frac < 1, "train.warmup_frac", "0 <= value < 1", t.warmup_frac)
    need(t.lambda_var >= 0, "train.lambda_var", "a number >= 0", t.lambda_var)
    need(t.gamma > 0, "train.gamma", "a number > 0", t.gamma)
    need(t.var_eps > 0, "train.var_eps", "a number > 0", t.var_eps)
    need(t.grad_clip >= 0, "train.grad_clip", "a number >= 0 (0 = off)", t.grad_clip)
    between("train.log_every_steps", t.log_every_steps, 1, 10**6)
    between("train.threads", t.threads, 0, 1024)
    if m.horizon_mode == "conditioned":
        need(len(t.k_set) > 0 and all(1 <= k < usable for k in t.k_set), "train.k_set",
             f"a non-empty list of horizons 1 <= k < data.frames - data.context_frames + 1 ({usable})",
             list(t.k_set))
    need(0 <= t.sgdr_t0 <= 1, "train.sgdr_t0", "0 <= value <= 1 (a fraction of the budget after the warm-up; 0 = off)",
         t.sgdr_t0)
    need(1 <= t.sgdr_mult <= 100, "train.sgdr_mult", "1 <= value <= 100", t.sgdr_mult)
    need(all(name in LOGGER_NAMES for name in t.loggers) and len(set(t.loggers)) == len(t.loggers), "train.loggers",
         f"a list of distinct names among {', '.join(repr(n) for n in LOGGER_NAMES)}", list(t.loggers))
    need(0 <= t.mask_ratio < 1, "train.mask_ratio", "0 <= value < 1", t.mask_ratio)
    need(1 <= t.mask_patch <= d.canvas and d.canvas % t.mask_patch == 0, "train.mask_patch",
         f"a divisor of data.canvas ({d.canvas}) px", t.mask_patch)
    for key in ("sigreg_lambda", "delta_lambda", "ld_lambda", "static_lambda", "orth_lambda", "hw_lambda"):
        need(getattr(t, key) >= 0, f"train.{key}", "a number >= 0", getattr(t, key))
    between("train.sigreg_directions", t.sigreg_directions, 1, 65536)
    between("train.ld_hidden", t.ld_hidden, 1, 65536)
    need(0 < t.fwm_app_fraction < 1 and 1 <= round(t.fwm_app_fraction * m.latent_dim) < m.latent_dim,
         "train.fwm_app_fraction", "0 < value < 1, leaving both subspaces at least one dimension", t.fwm_app_fraction)
    need(t.hw_tau > 0, "train.hw_tau", "a number > 0", t.hw_tau)
    between("model.prior_hidden", m.prior_hidden, 1, 65536)
    need(ev.horizons is None or (len(ev.horizons) > 0 and all(1 <= k < usable for k in ev.horizons)
                                 and len(set(ev.horizons)) == len(ev.horizons)), "eval.horizons",
         f"distinct horizons 1 <= k < data.frames - data.context_frames + 1 ({usable})", list(ev.horizons or []))
    between("eval.probe_sequences", ev.probe_sequences, 1, 10**6)
    need(ev.probe_ridge > 0, "eval.probe_ridge", "a number > 0", ev.probe_ridge)
    need(0 < t.print_every_seconds <= 86400, "train.print_every_seconds", "0 < value <= 86400 (s)",
         t.print_every_seconds)
    for key in ("freeze_buffer_at", "freeze_ema_at"):
        value = getattr(t, key)
        need(value is None or 0 <= value <= 10**9, f"train.{key}", "a step, 0 <= value <= 1e9", value)
    if isinstance(d.data_seed, int):
        between("data.data_seed", d.data_seed, 0, 2**32 - 1)
    between("data.num_digits", d.num_digits, 1, 16)
    need(32 <= d.canvas <= 1024 and d.canvas % 16 == 0, "data.canvas", "a multiple of 16, 32 <= value <= 1024",
         d.canvas)
    need(4 <= d.digit_size < d.canvas, "data.digit_size", f"4 <= value < data.canvas ({d.canvas}) px", d.digit_size)
    between("data.frames", d.frames, 2, 1000)
    need(0 <= d.wall_restitution <= 1, "data.wall_restitution", "0 <= value <= 1 (1 = elastic)", d.wall_restitution)
    between("data.velocity_max", d.velocity_max, 0, d.canvas, " px/frame (data.canvas)")
    for key, g in (("data.base_gravity", d.base_gravity), ("data.shift_gravity", d.shift_gravity),
                   ("data.shift.gravity", d.shift.gravity), ("data.base.gravity", d.base.gravity)):
        if g is not None:
            between(key, g, -d.canvas, d.canvas, " px/frame² (± data.canvas)")
    for name, world in (("data.shift", d.shift), ("data.base", d.base)):
        between(f"{name}.gravity_direction_deg", world.gravity_direction_deg, -360.0, 360.0, "°")
        need(0 <= world.friction < 1, f"{name}.friction", "0 <= value < 1", world.friction)
        need(0 < world.speed_scale <= 10, f"{name}.speed_scale", "0 < value <= 10", world.speed_scale)
        need(world.restitution is None or 0 <= world.restitution <= 1, f"{name}.restitution",
             "0 <= value <= 1 (1 = elastic)", world.restitution)
    between("data.context_frames", d.context_frames, 1, 4)
    st = d.stream
    between("data.stream.worlds", st.worlds, 0, 4096)
    between("data.stream.segment_steps", st.segment_steps, 0, 10**9)
    between("data.stream.sequences", st.sequences, 1, 10**6)
    for key, (lowest, highest) in (("gravity", (0.0, float(d.canvas))), ("gravity_direction_deg", (-360.0, 360.0)),
                                   ("friction", (0.0, 0.999)), ("speed_scale", (0.01, 10.0))):
        span = getattr(st, key)
        need(len(span) == 2 and lowest <= span[0] <= span[1] <= highest, f"data.stream.{key}",
             f"a range [low, high] with {lowest:g} <= low <= high <= {highest:g}", list(span))
    need(not config.memory.oracle_context or config.train.track in MEMORY_TRACKS, "memory.oracle_context",
         f"false for Track {config.train.track}: it has no memory (the oracle context needs one of Tracks "
         f"{', '.join(MEMORY_TRACKS)})", True)
    for key, splits in (("data.base_splits", d.base_splits), ("data.shift_splits", d.shift_splits)):
        need(len(splits) == 3 and all(1 <= n <= 10**6 for n in splits), key,
             "three integers [train, val, test], each 1 <= n <= 1e6", list(splits))
    need(len(m.horizons) > 0 and all(k >= 1 for k in m.horizons) and len(set(m.horizons)) == len(m.horizons),
         "model.horizons", "a non-empty list of distinct integers >= 1", list(m.horizons))
    need(max(m.horizons) < usable, "model.horizons",
         f"horizons below data.frames - data.context_frames + 1 ({usable})",
         list(m.horizons))
    between("model.latent_dim", m.latent_dim, 2, 8192)
    need(len(m.encoder_channels) == 4 and all(1 <= c <= 4096 for c in m.encoder_channels), "model.encoder_channels",
         "four integers 1 <= c <= 4096 (four stride-2 convolutions)", list(m.encoder_channels))
    between("model.hidden_dim", m.hidden_dim, 1, 65536)
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
    between("memory.warmup_steps", mem.warmup_steps, 1, 10**9)
    between("memory.capacity", mem.capacity, 1, 100_000)
    between("memory.exp_heads", mem.exp_heads, 1, 64)
    need(1 <= mem.exp_dim <= 4096 and mem.exp_dim % mem.exp_heads == 0, "memory.exp_dim",
         f"a multiple of memory.exp_heads ({mem.exp_heads}), 1 <= value <= 4096", mem.exp_dim)
    between("memory.exp_layers", mem.exp_layers, 1, 32)
    between("memory.exp_ff_dim", mem.exp_ff_dim, 1, 65536)
    between("memory.lora_rank", mem.lora_rank, 1, min(m.latent_dim, m.hidden_dim))
    need(mem.lora_scale > 0, "memory.lora_scale", "a number > 0", mem.lora_scale)
    between("memory.hyper_hidden", mem.hyper_hidden, 1, 4096)
    between("memory.hyper_chunk_dim", mem.hyper_chunk_dim, 1, 4096)
    between("memory.hyper_block", mem.hyper_block, 1, 65536)
    for key, horizon in (("memory.surprisal_horizon", mem.surprisal_horizon),
                         ("eval.sigma_z_horizon", ev.sigma_z_horizon)):
        need(horizon is None or horizon in m.horizons, key, f"one of model.horizons {list(m.horizons)}", horizon)
    between("eval.every_steps", ev.every_steps, 1, 10**9)
    between("eval.n_experiences", ev.n_experiences, 0, 100_000)
    need(len(ev.n_curve) <= 32 and all(isinstance(n, int) and 0 <= n <= 100_000 for n in ev.n_curve), "eval.n_curve",
         "at most 32 experience counts, each 0 <= n <= 100000", list(ev.n_curve))
    between("eval.ttt_steps", ev.ttt_steps, 0, 100_000)
    need(0 < ev.ttt_lr <= 10, "eval.ttt_lr", "0 < value <= 10", ev.ttt_lr)
    need(ev.denominator_eps > 0, "eval.denominator_eps", "a number > 0", ev.denominator_eps)
    need(0 <= ev.base_sequences <= 10**6, "eval.base_sequences", "0 <= value <= 1e6 (0 = whole split)",
         ev.base_sequences)
    need(th.pause_at_c is None or 0 < th.pause_at_c < 150, "thermal.pause_at_c", "0 < value < 150 (°C)",
         th.pause_at_c)
    if th.pause_at_c is not None:
        need(th.resume_at_c is None or 0 < th.resume_at_c < th.pause_at_c, "thermal.resume_at_c",
             f"0 < value < thermal.pause_at_c ({th.pause_at_c:g} °C)", th.resume_at_c)
    else:
        need(th.resume_at_c is None or 0 < th.resume_at_c < 150, "thermal.resume_at_c", "0 < value < 150 (°C)",
             th.resume_at_c)
    need(0 < th.sample_every_seconds <= 3600, "thermal.sample_every_seconds", "0 < value <= 3600 (s)",
         th.sample_every_seconds)
    rep = config.report
    need(rep.null_band_pct > 0, "report.null_band_pct", "a number > 0 (%)", rep.null_band_pct)
    need(rep.strong_pct > rep.null_band_pct, "report.strong_pct", f"a number > report.null_band_pct "
         f"({rep.null_band_pct:g} %)", rep.strong_pct)
    between("report.bootstrap_resamples", rep.bootstrap_resamples, 100, 10**7)
    need(0 < rep.confidence < 1, "report.confidence", "0 < value < 1", rep.confidence)
