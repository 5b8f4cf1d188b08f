"""Typed run configuration loaded from TOML profiles (spec §1–§5, §11).

- :mod:`~jepa_tui.config.tracks`: the track registry (what every track is, for every layer);
- :mod:`~jepa_tui.config.schema`: the dataclasses, with the paper's values and our guesses (``# ours``);
- :mod:`~jepa_tui.config.loading`: profiles, ``--set`` overrides and run directories' ``config.toml``;
- :mod:`~jepa_tui.config.validation`: types and ranges, with messages naming the file, key and allowed values.
"""

from jepa_tui.config.loading import (
    LEGACY_VALUES,
    build_config,
    flat_keys,
    list_profiles,
    load_config,
    load_run_config,
    parse_set,
    profile_description,
    profile_dir,
    read_toml,
    resolve_profile,
    with_legacy_values,
)
from jepa_tui.config.schema import (
    MEMORY_TRACKS,
    MODULATED_TRACKS,
    SECTIONS,
    SIGMA_Z_COLLAPSE_LINE,
    TRACKS,
    Config,
    DataConfig,
    EvalConfig,
    MemoryConfig,
    ModelConfig,
    PhysicsConfig,
    ReportConfig,
    ShiftConfig,
    StreamConfig,
    ThermalConfig,
    TrainConfig,
    describe_shift,
)
from jepa_tui.config.validation import ConfigError, table_to_dataclass

__all__ = ["LEGACY_VALUES", "MEMORY_TRACKS", "MODULATED_TRACKS", "SECTIONS", "SIGMA_Z_COLLAPSE_LINE", "TRACKS",
           "Config", "ConfigError", "DataConfig", "EvalConfig", "MemoryConfig", "ModelConfig", "PhysicsConfig",
           "ReportConfig", "ShiftConfig",
           "StreamConfig", "ThermalConfig", "TrainConfig", "build_config", "describe_shift", "flat_keys",
           "list_profiles", "load_config", "load_run_config",
           "parse_set", "profile_description", "profile_dir", "read_toml", "resolve_profile", "table_to_dataclass",
           "with_legacy_values"]
