"""Choosing a sweep's backend by name: the local one, or a cluster engine whose optional extra is installed
(:mod:`jepa_tui.experiments.backends` defines what a backend is; each engine's module imports it, never this)."""

from __future__ import annotations

from pathlib import Path

from jepa_tui.config import ConfigError
from jepa_tui.config.validation import require_extra, suggest
from jepa_tui.experiments.backends import Backend, LocalBackend
from jepa_tui.experiments.cluster import BACKENDS, RaySettings, SlurmSettings

EXTRAS = {"submitit": ("submitit", "slurm", "submitit"), "ray": ("ray", "ray", "Ray")}  # module, extra, name


def require(name: str):
    """The engine module of backend ``name``, imported.

    Raises:
        ConfigError: one line naming the ``pip install`` when its optional extra is not installed.
    """
    module, extra, title = EXTRAS[name]
    return require_extra(module, f"--backend {name}", title, extra)


def make_backend(name: str, settings: SlurmSettings | RaySettings | None, runs: int, jobs: int,
                 sweep_dir: Path) -> Backend:
    """The backend ``name`` ("local", "submitit" or "ray") for a sweep of ``runs`` runs in ``sweep_dir``.

    Raises:
        ConfigError: for an unknown name or a missing optional extra (exit code 2 at the command line).
    """
    if name not in BACKENDS:
        raise ConfigError(f"--backend {name!r} is not a backend.{suggest(name, list(BACKENDS), 'backends')}")
    if name == "local":
        return LocalBackend(jobs)
    require(name)
    if name == "submitit":
        from jepa_tui.experiments.submitit_backend import SubmititBackend

        assert isinstance(settings, SlurmSettings)
        return SubmititBackend(settings, sweep_dir / "logs" / "submitit", runs)
    from jepa_tui.experiments.ray_backend import RayBackend

    assert isinstance(settings, RaySettings)
    return RayBackend(settings, runs)
