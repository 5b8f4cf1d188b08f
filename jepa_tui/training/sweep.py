"""Sweeps: one run directory per (variant, track, seed) under ``runs/<sweep_id>/``, run as separate processes.

A sweep is described by a :class:`SweepSpec`: a base profile, tracks, seeds and variants (named sets of
``--set`` overrides, e.g. λ values or freeze steps). Sweep profiles (``table1``, ``lambda_sweep``, ...) hold it in
a ``[sweep]`` table; ``jepa-tui sweep --profile track_c --seeds 42 43`` builds one from a plain profile.

Each run is ``jepa-tui train`` in its own process (its log in ``logs/<name>.log``); a run that already finished is
skipped and one that stopped is resumed with ``--resume``, so running a sweep again continues it. A failed run does
not stop the others; :func:`run_sweep` reports every outcome at the end. ``manifest.json`` lists the runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import tomli_w

from jepa_tui.config import TRACKS, ConfigError, load_config, read_toml, resolve_profile

MANIFEST = "manifest.json"
# Exit codes of `jepa-tui train` after which summary.json is this session's (done, non-finite, suspended, signals);
# after any other (bad input, I/O error, a crash) it may be a stale one from an earlier session.
EXITS_WITH_SUMMARY = frozenset({0, 3, 75, 130, 143})


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

    def runs(self) -> list[SweepRun]:
        out = []
        for variant, overrides in self.variants.items():
            for track in self.tracks:
                for seed in self.seeds:
                    prefix = f"{variant}_" if variant else ""
                    out.append(SweepRun(f"{prefix}{track}_s{seed}", variant, track, seed, (*overrides, *self.extra)))
        return out


def _toml_value(value: Any) -> str:
    return tomli_w.dumps({"v": value}).strip().removeprefix("v = ")


def load_sweep(profile: str, tracks: list[str] | None = None, seeds: list[int] | None = None,
               extra: list[str] | None = None) -> SweepSpec:
    """A sweep from a sweep profile, or from a plain profile with ``tracks`` / ``seeds``.

    Command-line ``tracks`` and ``seeds`` replace the profile's. Every run's configuration is checked here, so a
    mistake stops the sweep before anything runs.

    Raises:
        ConfigError: naming the file and the key, for a bad ``[sweep]`` table or a bad run configuration.
    """
    path = resolve_profile(profile)
    body = read_toml(path)
    sweep = body.get("sweep")
    where = f"{path}: [sweep]"
    if sweep is None:
        base_track = load_config(str(path)).train.track
        spec = SweepSpec(str(path), tuple(tracks or [base_track]), tuple(seeds or [42]),
                         extra=tuple(extra or ()), description=str(body.get("description", "")))
    else:
        known = {"base", "tracks", "seeds", "variant"}
        for key in sweep:
            if key not in known:
                raise ConfigError(f"{where}: unknown key '{key}'; known keys: {', '.join(sorted(known))}.")
        base = sweep.get("base")
        if not isinstance(base, str):
            raise ConfigError(f"{where}: 'base' must name a profile, e.g. base = \"track_c\".")
        variants: dict[str, tuple[str, ...]] = {}
        for i, variant in enumerate(sweep.get("variant", [])):
            name, sets = variant.get("name"), variant.get("set", {})
            if not isinstance(name, str) or not name or not isinstance(sets, dict):
                raise ConfigError(f"{where}: variant {i + 1} needs a non-empty 'name' and a 'set' table of "
                                  "section.key = value overrides.")
            variants[name] = tuple(f"{k}={_toml_value(v)}" for k, v in sets.items())
        spec = SweepSpec(str(resolve_profile(base)), tuple(tracks or sweep.get("tracks", ["C"])),
                         tuple(seeds or sweep.get("seeds", [42])), variants or {"": ()}, tuple(extra or ()),
                         str(body.get("description", "")))
    for track in spec.tracks:
        if track not in TRACKS:
            raise ConfigError(f"{where if sweep else 'tracks'}: track {track!r} is not one of {', '.join(TRACKS)}.")
    for run in spec.runs():
        load_config(spec.base, [*run.overrides, f'train.track="{run.track}"', f"train.seed={run.seed}"])
    return spec


def make_sweep_id(spec: SweepSpec, now: datetime | None = None) -> str:
    """``YYYYMMDD_HHMMSS_sweep_<profile>``."""
    return f"{(now or datetime.now()):%Y%m%d_%H%M%S}_sweep_{Path(spec.base).stem}"


@dataclass
class RunOutcome:
    """How one run of a sweep ended: ``status`` from its summary, or "failed" with the exit code."""

    run: SweepRun
    status: str
    exit_code: int | None
    peak_d_shift: float | None = None


def write_manifest(sweep_dir: Path, spec: SweepSpec) -> None:
    body = {"spec": {**asdict(spec), "variants": {k: list(v) for k, v in spec.variants.items()}},
            "runs": [asdict(r) for r in spec.runs()]}
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / MANIFEST).write_text(json.dumps(body, indent=2) + "\n")


def read_manifest(sweep_dir: Path) -> SweepSpec:
    """The spec a sweep directory was started with (for ``sweep --resume``).

    Raises:
        ConfigError: when ``sweep_dir`` has no readable ``manifest.json``.
    """
    try:
        spec = json.loads((Path(sweep_dir) / MANIFEST).read_text())["spec"]
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"'{sweep_dir}' is not a sweep directory (no readable {MANIFEST}: {exc}).") from None
    spec["variants"] = {k: tuple(v) for k, v in spec["variants"].items()}
    return SweepSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()})


def _summary(run_dir: Path) -> dict | None:
    try:
        return json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None


def _command(spec: SweepSpec, run: SweepRun, sweep_dir: Path) -> list[str]:
    base = [sys.executable, "-m", "jepa_tui.cli.main", "train"]
    if (sweep_dir / run.name / "config.toml").is_file():
        return [*base, "--resume", str(sweep_dir / run.name)]
    sets = [a for item in run.overrides for a in ("--set", item)]
    return [*base, "--profile", spec.base, "--seed", str(run.seed), "--set", f'train.track="{run.track}"', *sets,
            "--runs-dir", str(sweep_dir), "--run-id", run.name]


def last_step(run_dir: Path) -> int:
    """The step of the last complete record in ``metrics.jsonl`` (reads only the file's end)."""
    path = run_dir / "metrics.jsonl"
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - 4096))
            lines = fh.read().split(b"\n")[:-1]
        return int(json.loads(lines[-1])["step"]) if lines else 0
    except (OSError, ValueError, KeyError, IndexError):
        return 0


def run_sweep(spec: SweepSpec, sweep_dir: Path, jobs: int = 1, say: Callable[[str], None] = print,
              progress_every: float = 30.0) -> list[RunOutcome]:
    """Run every run of ``spec`` not yet done, ``jobs`` at a time; returns one outcome per run, in order.

    With ``jobs`` > 1 each process gets ``cores // jobs`` threads (``OMP_NUM_THREADS``); results then match a
    ``jobs = 1`` sweep only up to floating-point summation order.
    """
    write_manifest(sweep_dir, spec)
    (sweep_dir / "logs").mkdir(exist_ok=True)
    runs = spec.runs()
    pending = []
    outcomes: dict[str, RunOutcome] = {}
    for run in runs:
        summary = _summary(sweep_dir / run.name)
        if summary is not None and summary.get("status") == "done":
            outcomes[run.name] = RunOutcome(run, "done", 0, summary.get("peak_d_shift"))
            say(f"{run.name}: done already (peak D_shift {summary.get('peak_d_shift')})")
        else:
            pending.append(run)
    env = dict(os.environ)
    if jobs > 1:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    running: dict[str, tuple[SweepRun, subprocess.Popen, Any]] = {}
    last_progress = time.monotonic()
    try:
        while pending or running:
            while pending and len(running) < jobs:
                run = pending.pop(0)
                log = (sweep_dir / "logs" / f"{run.name}.log").open("a")
                command = _command(spec, run, sweep_dir)
                verb = "resuming" if "--resume" in command else "starting"
                say(f"{run.name}: {verb} ({len(outcomes) + len(running) + 1}/{len(runs)}), log "
                    f"{sweep_dir.name}/logs/{run.name}.log")
                running[run.name] = (run, subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env),
                                     log)
            time.sleep(0.2)
            for name, (run, proc, log) in list(running.items()):
                code = proc.poll()
                if code is None:
                    continue
                log.close()
                del running[name]
                summary = _summary(sweep_dir / name) or {}
                status = summary.get("status", "failed") if code in EXITS_WITH_SUMMARY else "failed"
                outcomes[name] = RunOutcome(run, status if code == 0 else f"{status} (exit {code})", code,
                                            summary.get("peak_d_shift"))
                say(f"{name}: {outcomes[name].status}, peak D_shift {summary.get('peak_d_shift')}")
            if running and time.monotonic() - last_progress >= progress_every:
                last_progress = time.monotonic()
                say("sweep: " + ", ".join(f"{n} at step {last_step(sweep_dir / n)}" for n in running)
                    + f"; {len(outcomes)}/{len(runs)} finished")
    except KeyboardInterrupt:
        for name, (run, proc, log) in running.items():  # the children got the SIGINT too and checkpoint
            proc.wait()
            log.close()
            outcomes[name] = RunOutcome(run, "interrupted", proc.returncode)
        raise
    return [outcomes[r.name] for r in runs if r.name in outcomes]
