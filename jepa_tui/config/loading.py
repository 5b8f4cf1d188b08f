"""Reading profiles (TOML) and ``--set`` overrides into a :class:`~jepa_tui.config.schema.Config`.

A profile is a TOML file that overrides some defaults; command-line ``--set section.key=value`` overrides are
applied on top. A run directory's resolved ``config.toml`` is read with the values of keys its version did not
write yet (:data:`LEGACY_VALUES`).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import stat
import tomllib
import typing
from importlib import resources
from pathlib import Path
from typing import Any

from jepa_tui.config.schema import SECTIONS, Config
from jepa_tui.config.validation import ConfigError, apply_layer, check, shorten


def flat_keys(tables: dict[str, Any]) -> dict[str, Any]:
    """``{"section.key": value}`` for the tables of a configuration (``Config.to_dict()``, a config.toml, a
    checkpoint's copy); values are left as they are (a nested table such as ``data.shift`` stays one value)."""
    return {f"{section}.{key}": value for section, values in tables.items() if isinstance(values, dict)
            for key, value in values.items()}


def parse_set(assignment: str) -> dict[str, dict[str, Any]]:
    """Parse one ``section.key=value`` override; the value is TOML (bare words are taken as strings).

    Raises:
        ConfigError: when the text is not ``section.key=value`` or the value does not parse.
    """
    name, sep, raw = assignment.partition("=")
    section, dot, key = name.strip().partition(".")
    if not sep or not dot or not section or not key:
        raise ConfigError(f"--set {shorten(assignment)}: expected section.key=value, e.g. --set train.lr=0.0005.")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except RecursionError:
        raise ConfigError(f"--set {shorten(assignment)}: the value is nested too deeply.") from None
    except tomllib.TOMLDecodeError:
        if raw and all(ch.isalnum() or ch in "_-./~" for ch in raw):
            value = raw
        else:
            raise ConfigError(f"--set {shorten(assignment)}: the value {shorten(raw)} does not parse as TOML.") \
                from None
    return {section: {key: value}}


def profile_dir() -> Path:
    """The folder of profiles shipped with the package (``profiles/`` of the repository, installed as the package
    ``jepa_tui.profiles``)."""
    return Path(str(resources.files("jepa_tui.profiles")))


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
    close = difflib.get_close_matches(name_or_path, list(known), n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise ConfigError(f"unknown profile '{name_or_path}': not a file, and not a shipped profile.{hint} Shipped: "
                      f"{', '.join(known)}.")


MAX_TOML_BYTES = 1 << 20  # a profile or a run's config.toml is a few kB; anything past 1 MiB is not one


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file; syntax errors become ConfigError naming the file, line and column.

    Only a regular file of at most 1 MiB is read (a FIFO, a device or a link to one is refused without blocking),
    and a document nested too deep to parse is an error like any other.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise ConfigError(f"{path}: not a regular file; a profile is a TOML file.")
            if info.st_size > MAX_TOML_BYTES:
                raise ConfigError(f"{path}: {info.st_size:,} bytes, more than a profile ({MAX_TOML_BYTES:,}).")
            data = os.read(fd, MAX_TOML_BYTES + 1)
        finally:
            os.close(fd)
        return tomllib.loads(data.decode())
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a profile.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); a profile is a TOML file.") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _instance(cls: type, values: dict[str, Any]) -> Any:
    """``cls(**values)`` with nested dataclass fields built from their dicts."""
    hints = typing.get_type_hints(cls)
    return cls(**{k: _instance(hints[k], v) if dataclasses.is_dataclass(hints[k]) else v for k, v in values.items()})


def build_config(layers: list[tuple[str, dict[str, Any]]]) -> Config:
    """Apply override layers (source name, tables) to the defaults, in order, then range-check.

    The ``description`` key at the top of a profile is documentation and is ignored here.

    Raises:
        ConfigError: for unknown sections or keys, wrong types, out-of-range values or a bad budget.
    """
    tables: dict[str, dict[str, Any]] = {name: dataclasses.asdict(cls()) for name, cls in SECTIONS.items()}
    for source, layer in layers:
        layer = {k: v for k, v in layer.items() if k != "description"}
        apply_layer(tables, layer, source)
    config = Config(**{name: _instance(SECTIONS[name], values) for name, values in tables.items()})
    check(config, layers[-1][0] if layers else "defaults")
    return config


# Keys added after runs were first written, with the value that runs written before them used. A run's resolved
# config.toml that lacks one of these keys was written by an earlier version and is read with this value.
LEGACY_VALUES: dict[str, dict[str, Any]] = {"memory": {"aggregator_bias": True, "film_bias": True},
                                            "eval": {"val_selection": False}}


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
