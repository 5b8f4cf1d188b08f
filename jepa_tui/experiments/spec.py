"""What a sweep runs: a base profile, tracks, seeds and variants (named sets of ``--set`` overrides).

Sweep profiles (``table1``, ``lambda_sweep``, ...) hold it in a ``[sweep]`` table; ``jepa-tui sweep --profile
track_c --seeds 42 43`` builds one from a plain profile. Each (variant, track, seed) is one :class:`SweepRun`, whose
name is its run directory's name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import tomli_w

from jepa_tui.config import TRACKS, ConfigError, load_config, read_toml, resolve_profile
from jepa_tui.config.loading import list_profiles
from jepa_tui.experiments.cluster import parse_tables
from jepa_tui.runs import manifest
from jepa_tui.runs.directory import check_name


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: ``name`` is its run directory's name (``<variant>_<track>_s<seed>``)."""

    name: str
    variant: str
    track: str
    seed: int
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class SweepSpec:
    """What to run. ``variants`` maps a variant name ("" for none) to its ``section.key=value`` overrides."""

    base: str
    tracks: tuple[str, ...]
    seeds: tuple[int, ...]
    variants: dict[str, tuple[str, ...]] = field(default_factory=lambda: {"": ()})
    extra: tuple[str, ...] = ()  # overrides for every run (``--set``, ``--steps``)
    description: str = ""
    variant_tracks: dict[str, tuple[str, ...]] = field(default_factory=dict)  # variants run on some tracks only
    backends: dict[str, dict] = field(default_factory=dict)  # the profile's [sweep.slurm] and [sweep.ray] tables

    def runs(self) -> list[SweepRun]:
        """Every (variant, track, seed), variants outermost; a variant with its own ``tracks`` runs those of
        :attr:`tracks` only."""
        out = []
        for variant, overrides in self.variants.items():
            only = self.variant_tracks.get(variant)
            for track in (t for t in self.tracks if only is None or t in only):
                for seed in self.seeds:
                    prefix = f"{variant}_" if variant else ""
                    out.append(SweepRun(f"{prefix}{track}_s{seed}", variant, track, seed, (*overrides, *self.extra)))
        return out


def portable_base(path: Path) -> str:
    """A sweep's base profile as the manifest records it: a shipped profile by its name (so the sweep can be
    resumed from another checkout or after the repository moved), any other profile by its path."""
    shipped = list_profiles().get(path.stem)
    return path.stem if shipped is not None and shipped.resolve() == Path(path).resolve() else str(path)


def resumable_base(base: str) -> str:
    """The base of a manifest written before shipped profiles were recorded by name: an absolute path to a
    ``profiles/NAME.toml`` that no longer exists is read as the shipped profile NAME."""
    path = Path(base)
    if not path.exists() and path.parent.name == "profiles" and path.stem in list_profiles():
        return path.stem
    return base


def _toml_value(value: Any) -> str:
    return tomli_w.dumps({"v": value}).strip().removeprefix("v = ")


def load_sweep(profile: str, tracks: list[str] | None = None, seeds: list[int] | None = None,
               extra: list[str] | None = None, variants: list[str] | None = None) -> SweepSpec:
    """A sweep from a sweep profile, or from a plain profile with ``tracks`` / ``seeds``.

    Command-line ``tracks`` and ``seeds`` replace the profile's; ``variants`` keeps only the named variants of a
    sweep profile. Every run's configuration is checked here, so a mistake stops the sweep before anything runs.

    Raises:
        ConfigError: naming the file and the key, for a bad ``[sweep]`` table or a bad run configuration.
    """
    path = resolve_profile(profile)
    body = read_toml(path)
    sweep = body.get("sweep")
    where = f"{path}: [sweep]"
    if sweep is not None and not isinstance(sweep, dict):
        raise ConfigError(f"{where}: 'sweep' must be a table ([sweep] with base = ..., tracks, seeds, variants).")
    if sweep is None:
        if variants:
            raise ConfigError(f"--variants: {path} is not a sweep profile, so it has no variants to choose from.")
        base_track = load_config(str(path)).train.track
        spec = SweepSpec(portable_base(path), tuple(tracks or [base_track]), tuple(seeds or [42]),
                         extra=tuple(extra or ()), description=str(body.get("description", "")))
    else:
        known = {"base", "tracks", "seeds", "variant", "slurm", "ray"}
        for key in sweep:
            if key not in known:
                raise ConfigError(f"{where}: unknown key '{key}'; known keys: {', '.join(sorted(known))}.")
        base = sweep.get("base")
        if not isinstance(base, str):
            raise ConfigError(f"{where}: 'base' must name a profile, e.g. base = \"track_c\".")
        table: dict[str, tuple[str, ...]] = {}
        only: dict[str, tuple[str, ...]] = {}
        listed = sweep.get("variant", [])
        if not isinstance(listed, list) or not all(isinstance(v, dict) for v in listed):
            raise ConfigError(f"{where}: 'variant' must be an array of tables ([[sweep.variant]] with name = ... and "
                              "set = {...}).")
        examples = {"tracks": 'track letters, e.g. tracks = ["A", "C"]', "seeds": "integers, e.g. seeds = [42, 43]"}
        for key, example in examples.items():
            value = sweep.get(key, [])
            kind = str if key == "tracks" else int
            if not isinstance(value, list) or not all(isinstance(v, kind) and not isinstance(v, bool) for v in value):
                raise ConfigError(f"{where}: '{key}' must be an array of {example}.")
        for i, variant in enumerate(listed):
            name, sets = variant.get("name"), variant.get("set", {})
            if not isinstance(name, str) or not name or not isinstance(sets, dict):
                raise ConfigError(f"{where}: variant {i + 1} needs a non-empty 'name' and a 'set' table of "
                                  "section.key = value overrides.")
            try:
                check_name(name, "variant name")  # it names run directories
            except ValueError as exc:
                raise ConfigError(f"{where}: {exc}") from None
            unknown = set(variant) - {"name", "set", "tracks"}
            if unknown:
                raise ConfigError(f"{where}: variant {name!r}: unknown key '{sorted(unknown)[0]}'; known keys: name, "
                                  "set, tracks.")
            table[name] = tuple(f"{k}={_toml_value(v)}" for k, v in sets.items())
            if "tracks" in variant:
                if not isinstance(variant["tracks"], list) or not all(isinstance(t, str) for t in variant["tracks"]):
                    raise ConfigError(f"{where}: variant {name!r}: 'tracks' must be an array of track letters.")
                only[name] = tuple(variant["tracks"])
        if variants:
            missing = [v for v in variants if v not in table]
            if missing:
                raise ConfigError(f"--variants: {missing[0]!r} is not a variant of {path}; its variants: "
                                  f"{', '.join(table) or 'none'}.")
            table = {name: table[name] for name in variants}
        spec = SweepSpec(portable_base(resolve_profile(base)), tuple(tracks or sweep.get("tracks", ["C"])),
                         tuple(seeds or sweep.get("seeds", [42])), table or {"": ()}, tuple(extra or ()),
                         str(body.get("description", "")), {k: v for k, v in only.items() if k in table},
                         parse_tables(sweep, where))
    for track in (*spec.tracks, *(t for ts in spec.variant_tracks.values() for t in ts)):
        if track not in TRACKS:
            raise ConfigError(f"{where if sweep else 'tracks'}: track {track!r} is not one of {', '.join(TRACKS)}.")
    for run in spec.runs():
        load_config(spec.base, [*run.overrides, f'train.track="{run.track}"', f"train.seed={run.seed}"])
    return spec


def make_sweep_id(spec: SweepSpec, now: datetime | None = None) -> str:
    """``YYYYMMDD_HHMMSS_sweep_<profile>``."""
    return f"{(now or datetime.now()):%Y%m%d_%H%M%S}_sweep_{Path(spec.base).stem}"


def _jobs_so_far(sweep_dir: Path) -> dict[str, list]:
    """Each run's job records in an existing manifest (none when there is no readable one)."""
    try:
        runs = manifest.read_manifest(sweep_dir).get("runs", [])
        return {r["name"]: list(r.get("jobs", [])) for r in runs if isinstance(r, dict) and "name" in r}
    except (OSError, ValueError, AttributeError, TypeError, KeyError):
        return {}


def save_spec(sweep_dir: Path, spec: SweepSpec) -> None:
    """Record ``spec`` and its runs in the sweep directory's ``manifest.json``, keeping the jobs already recorded
    for each run (:func:`record_job`)."""
    jobs = _jobs_so_far(sweep_dir)
    body = {"spec": {**asdict(spec), "variants": {k: list(v) for k, v in spec.variants.items()},
                     "variant_tracks": {k: list(v) for k, v in spec.variant_tracks.items()}},
            "runs": [{**asdict(r), "jobs": jobs.get(r.name, [])} for r in spec.runs()]}
    manifest.write_manifest(sweep_dir, body)


def record_job(sweep_dir: Path, name: str, backend: str, job_id: str) -> None:
    """Append to run ``name``'s entry in the manifest which backend started it as which job, and when. Written by
    the sweep that holds the sweep directory's lock.

    Raises:
        RunDirError: when the manifest cannot be written.
    """
    body = manifest.read_manifest(sweep_dir)
    for run in body.get("runs", []):
        if run.get("name") == name:
            run.setdefault("jobs", []).append({"backend": backend, "job_id": job_id,
                                               "started": datetime.now().astimezone().isoformat(timespec="seconds")})
    manifest.write_manifest(sweep_dir, body)


def load_spec(sweep_dir: Path) -> SweepSpec:
    """The spec a sweep directory was started with (for ``sweep --resume``).

    Raises:
        ConfigError: when ``sweep_dir`` has no readable ``manifest.json``.
    """
    try:
        spec = manifest.read_manifest(sweep_dir)["spec"]
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"'{sweep_dir}' is not a sweep directory (no readable {manifest.MANIFEST}: {exc}).") \
            from None
    try:
        spec["variants"] = {k: tuple(v) for k, v in spec["variants"].items()}
        spec["variant_tracks"] = {k: tuple(v) for k, v in spec.get("variant_tracks", {}).items()}
        spec["backends"] = dict(spec.get("backends", {}))
        loaded = SweepSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()})
        loaded = replace(loaded, base=resumable_base(loaded.base))
        for run in loaded.runs():
            check_name(run.name, "run name")
        return loaded
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"'{Path(sweep_dir) / manifest.MANIFEST}' is damaged: {exc}.") from None
