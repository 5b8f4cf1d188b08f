"""What a sweep asks of a cluster engine: ``[sweep.slurm]`` (submitit) and ``[sweep.ray]`` in a sweep profile, each
key overridable on the command line. Plain settings, no engine imported here."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from jepa_tui.config import ConfigError, table_to_dataclass
from jepa_tui.config.validation import suggest

BACKENDS = ("local", "submitit", "ray")


@dataclass(frozen=True)
class SlurmSettings:
    """How submitit submits each run (``[sweep.slurm]``). ``cluster = "local"`` runs the jobs as processes of this
    machine through submitit's local executor (for trying a sweep before a cluster sees it); "auto" is SLURM when
    ``sbatch`` is found. Times in minutes, memory in GB."""

    cluster: Literal["auto", "slurm", "local"] = "auto"
    partition: str | None = None
    gpus_per_run: int = 1
    cpus_per_run: int = 4
    mem_gb: float | None = None
    time_min: int = 120  # SLURM's time limit per job; a job past it checkpoints and is requeued
    array_parallelism: int | None = None  # jobs in the queue at once (None: every run of the sweep)
    setup: tuple[str, ...] = ()  # shell lines run before each job, e.g. "source ~/venvs/jepa/bin/activate"
    additional: dict[str, Any] = field(default_factory=dict)  # more #SBATCH options: account, qos, constraint

    def describe(self) -> str:
        where = f"partition {self.partition}" if self.partition else "the default partition"
        cluster = "" if self.cluster == "auto" else f"{self.cluster} cluster, "
        return (f"{cluster}{where}, {self.gpus_per_run} GPU(s) and {self.cpus_per_run} CPU(s) per run, "
                f"time limit {self.time_min} min")


@dataclass(frozen=True)
class RaySettings:
    """How each run becomes a Ray task (``[sweep.ray]``). ``address``: None starts a Ray instance on this machine,
    "auto" or "ray://host:10001" joins a running cluster. Fractional ``num_gpus`` lets small runs share a GPU."""

    address: str | None = None
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    max_concurrent: int | None = None  # tasks in flight at once (None: every run; Ray queues them by resources)

    def describe(self) -> str:
        where = f"Ray at {self.address}" if self.address else "a Ray instance on this machine"
        return f"{where}, num_cpus {self.num_cpus:g} and num_gpus {self.num_gpus:g} per run"


def check_slurm(s: SlurmSettings, where: str) -> SlurmSettings:
    """Range checks; raises ConfigError naming ``where`` and the key."""
    if s.cluster not in ("auto", "slurm", "local"):
        raise ConfigError(f"{where}: 'cluster' = {s.cluster!r}; allowed: 'auto', 'slurm', 'local'.")
    for key, value, low in (("gpus_per_run", s.gpus_per_run, 0), ("cpus_per_run", s.cpus_per_run, 1),
                            ("time_min", s.time_min, 1)):
        if value < low:
            raise ConfigError(f"{where}: '{key}' = {value} is out of range; allowed: an integer >= {low}.")
    if s.array_parallelism is not None and s.array_parallelism < 1:
        raise ConfigError(f"{where}: 'array_parallelism' = {s.array_parallelism} is out of range; allowed: >= 1.")
    if s.mem_gb is not None and s.mem_gb <= 0:
        raise ConfigError(f"{where}: 'mem_gb' = {s.mem_gb} is out of range; allowed: a number > 0.")
    return s


def check_ray(s: RaySettings, where: str) -> RaySettings:
    """Range checks; raises ConfigError naming ``where`` and the key."""
    if s.num_cpus < 0 or s.num_gpus < 0 or (s.num_cpus == 0 and s.num_gpus == 0):
        raise ConfigError(f"{where}: 'num_cpus' = {s.num_cpus:g}, 'num_gpus' = {s.num_gpus:g}; allowed: numbers "
                          ">= 0 (fractions share a device), not both 0.")
    if s.num_gpus > 1 and s.num_gpus != int(s.num_gpus):
        raise ConfigError(f"{where}: 'num_gpus' = {s.num_gpus:g}; allowed: a fraction below 1 or a whole number.")
    if s.max_concurrent is not None and s.max_concurrent < 1:
        raise ConfigError(f"{where}: 'max_concurrent' = {s.max_concurrent} is out of range; allowed: >= 1.")
    return s


def parse_tables(sweep: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    """The ``slurm`` and ``ray`` tables of a ``[sweep]`` table, checked, as plain dicts (kept in the manifest)."""
    out = {}
    for name, cls, check in (("slurm", SlurmSettings, check_slurm), ("ray", RaySettings, check_ray)):
        if name in sweep:
            check(table_to_dataclass(cls, sweep[name], f"{where}.{name}"), f"{where}.{name}")
            out[name] = dict(sweep[name])
    return out


def resolve(name: str, tables: dict[str, dict[str, Any]], overrides: dict[str, Any]) -> SlurmSettings | RaySettings:
    """The settings of backend ``name`` ("submitit" or "ray"): the profile's table, then the command line's
    ``overrides`` (``partition``, ``cluster``, ``gpus_per_run``, ``cpus_per_run``, ``time_min``,
    ``array_parallelism``, ``address``; None values ignored). For Ray, GPUs and CPUs per run are its ``num_gpus``
    and ``num_cpus`` and may be fractions.

    Raises:
        ConfigError: for a bad value, naming the key or option.
    """
    if name not in ("submitit", "ray"):
        raise ConfigError(f"--backend {name!r} is not a backend.{suggest(name, list(BACKENDS), 'backends')}")
    given = {k: v for k, v in overrides.items() if v is not None}
    if name == "submitit":
        base = table_to_dataclass(SlurmSettings, tables.get("slurm", {}), "[sweep.slurm]")
        for key in ("gpus_per_run", "cpus_per_run"):
            if key in given and given[key] != int(given[key]):
                raise ConfigError(f"--{key.replace('_', '-')} {given[key]:g}: SLURM allots whole devices; "
                                  "fractions are for --backend ray.")
            if key in given:
                given[key] = int(given[key])
        return check_slurm(replace(base, **{k: v for k, v in given.items() if hasattr(base, k)}), "command line")
    base = table_to_dataclass(RaySettings, tables.get("ray", {}), "[sweep.ray]")
    renamed = {"gpus_per_run": "num_gpus", "cpus_per_run": "num_cpus", "array_parallelism": "max_concurrent"}
    given = {renamed.get(k, k): (float(v) if k in ("gpus_per_run", "cpus_per_run") else v) for k, v in given.items()}
    return check_ray(replace(base, **{k: v for k, v in given.items() if hasattr(base, k)}), "command line")
