"""``jepa-tui``: train EPM-JEPA headless or in the dashboard, watch a run, list profiles.

Exit codes: 0 done; 2 bad input (profile, key, value, digit file, device, run directory, checkpoint, a resume
that differs); 3 non-finite loss; 74 the run directory cannot be written (disk full, permissions); 75 suspended by
``pause_request.flag``; 130 SIGINT; 143 SIGTERM or SIGHUP. Every stop but 2 and 3 leaves a checkpoint to
``--resume`` from.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from jepa_tui.config import (
    ConfigError,
    list_profiles,
    load_config,
    load_run_config,
    profile_description,
    read_toml,
    resolve_profile,
)
from jepa_tui.config.tracks import TRACKS, describe_tracks

EXAMPLES = """Examples:

\b
  jepa-tui train --profile quick                   a 5,000-step Track C run, headless
  jepa-tui run --profile track_c                   the paper's Track C in the dashboard
  jepa-tui watch runs/RUN_ID                       the dashboard on a headless run
  jepa-tui sweep --profile table1 --jobs 2         Tracks A, B, C x seeds 42, 43, 44
  jepa-tui report runs/SWEEP_ID                    Table 1, the statistics, the figures
  jepa-tui evaluate runs/RUN_ID --set eval.ttt_steps=50 --tag ttt
"""

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Train and study EPM-JEPA world models under distribution shift.", epilog=EXAMPLES)


def _version(value: bool) -> None:
    if value:
        from jepa_tui.provenance import describe_version

        say(describe_version())
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                     help="Print the version, code digest and git commit, then exit.")]
             = False) -> None:
    """Train and study EPM-JEPA world models under distribution shift."""

EXIT_BAD_INPUT = 2
EXIT_NON_FINITE = 3
EXIT_IO = 74
EXIT_SUSPENDED = 75

ProfileOption = Annotated[str | None, typer.Option(
    metavar="NAME|PATH", help="Profile name (see `jepa-tui profiles`) or path to a TOML file.")]
ResumeOption = Annotated[Path | None, typer.Option(
    metavar="RUN_DIR", help="Continue this run directory from its last checkpoint (instead of --profile).")]
TrackOption = Annotated[str | None, typer.Option(
    metavar="|".join(TRACKS), help=f"Track (replaces the profile's train.track): {describe_tracks()}.")]
ForceOption = Annotated[bool, typer.Option(
    help="With --resume: continue even if the code version or the configuration differs.")]
SeedOption = Annotated[int | None, typer.Option(metavar="SEED", help="Model seed (initialisation and sampling).")]
StepsOption = Annotated[int | None, typer.Option(metavar="STEPS",
                                                 help="Budget in training steps (replaces the profile's).")]
SecondsOption = Annotated[float | None, typer.Option(metavar="SECONDS",
                                                     help="Budget in training seconds (replaces the profile's).")]
DeviceOption = Annotated[str | None, typer.Option(metavar="auto|cpu|cuda", help="Training device.")]
RunsDirOption = Annotated[Path, typer.Option(metavar="DIR", help="Where run directories are created.")]
SetOption = Annotated[list[str] | None, typer.Option("--set", metavar="SECTION.KEY=VALUE",
                                                     help="Override a profile value (repeatable), e.g. --set "
                                                          "train.lr=0.0005.")]
LogToOption = Annotated[list[str] | None, typer.Option(
    "--log-to", metavar="NAME", help="Also send the records to this logger as they are written (repeatable): "
    "tensorboard (RUN_DIR/tensorboard; pip install 'jepa-tui[tensorboard]'). Sets train.loggers.")]
DeterministicOption = Annotated[bool | None, typer.Option(
    "--deterministic", help="Pin what a bitwise rerun needs (train.deterministic): a fixed thread count (train.threads "
                            "or the cores this process may use) and PyTorch's deterministic algorithms.")]
ThreadsOption = Annotated[int | None, typer.Option(min=0, help=(
    "CPU threads for training (default train.threads; 0: the cores this process may use, one fewer per core other "
    "processes keep busy; N: exactly N, bitwise reproducible)."))]


def say(text: str, err: bool = False) -> None:
    """Print a line; once the run's files are safe an unwritable terminal (hung up, a closed pipe) changes
    nothing, so output errors are ignored."""
    with contextlib.suppress(OSError, ValueError):
        print(text, file=sys.stderr if err else sys.stdout, flush=True)


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    say(f"jepa-tui: error: {message}", err=True)
    return typer.Exit(code)


def _use_real_terminal_size() -> None:
    """Let the dashboard follow the terminal's real size: Textual asks ``shutil.get_terminal_size``, which
    prefers COLUMNS and LINES from the environment, and an exported stale pair pins the layout to it for good."""
    if sys.stdout.isatty():
        for name in ("COLUMNS", "LINES"):
            os.environ.pop(name, None)


def _budget_source(profile: str | None, set_: list[str] | None, steps: int | None, seconds: float | None) -> str:
    """Where the budget in force comes from: the command line, a --set, the profile, or the defaults."""
    if steps is not None or seconds is not None:
        return "--steps/--seconds"
    if any(s.strip().startswith(("train.steps", "train.seconds")) for s in set_ or []):
        return "--set"
    if profile is None:
        return "the run's config.toml"
    try:
        body = read_toml(resolve_profile(profile))
    except ConfigError:
        body = {}
    if not set(body) - {"description"}:
        return f"the defaults: profile {profile} is empty, so every setting is the default"
    table = body.get("train", {})
    if isinstance(table, dict) and ("steps" in table or "seconds" in table):
        return f"profile {profile}"
    return f"the default: profile {profile} sets no budget"


def _bad_input_errors() -> tuple[type[Exception], ...]:
    from jepa_tui.data.digits import DigitPoolError
    from jepa_tui.runs import CheckpointError, RunDirError

    return ConfigError, DigitPoolError, RunDirError, CheckpointError, ValueError


def _with_loggers(set_: list[str] | None, log_to: list[str] | None) -> list[str] | None:
    """``--log-to NAME ...`` as the override ``train.loggers = [...]``."""
    return set_ if not log_to else [*(set_ or []), f"train.loggers={json.dumps(list(dict.fromkeys(log_to)))}"]


def _resolve(profile: str | None, resume: Path | None, force: bool, set_: list[str] | None, **train: object):
    """The configuration and, with ``--resume``, the resume point (raises the bad-input errors); a deterministic
    run's thread count pinned, and PyTorch's deterministic algorithms switched on for it."""
    from jepa_tui.training.determinism import apply_determinism, pin_if_deterministic
    from jepa_tui.training.loggers import check_available
    from jepa_tui.training.resume import prepare_resume

    if (profile is None) == (resume is None):
        raise ConfigError("pass exactly one of --profile NAME (a new run) or --resume RUN_DIR (continue a run).")
    if force and resume is None:
        raise ConfigError("--force only applies with --resume RUN_DIR.")
    if resume is not None:
        point = prepare_resume(resume, set_, force, **train)
        check_available(point.config.train.loggers)
        apply_determinism(point.config)
        return point.config, point
    config = pin_if_deterministic(load_config(profile, set_, **train))
    check_available(config.train.loggers)  # a missing library: exit 2 before any run directory exists
    apply_determinism(config)
    return config, None


def _exit_code(summary: dict) -> int:
    from jepa_tui.cli.signals import EXIT_CODES

    status = summary["status"]
    if status == "failed":
        return EXIT_NON_FINITE
    if status == "suspended":
        return EXIT_SUSPENDED
    if status == "interrupted":
        return EXIT_CODES.get(summary.get("stop_reason") or "", 130)
    return 0


@app.command(short_help="Train one run headless (plain lines; resumable).")
def train(
    profile: ProfileOption = None,
    resume: ResumeOption = None,
    force: ForceOption = False,
    track: TrackOption = None,
    seed: SeedOption = None,
    steps: StepsOption = None,
    seconds: SecondsOption = None,
    device: DeviceOption = None,
    runs_dir: RunsDirOption = Path("runs"),
    run_id: Annotated[str | None, typer.Option(help="Name of the new run directory (default: time, track, seed).")]
    = None,
    set_: SetOption = None,
    log_to: LogToOption = None,
    threads: ThreadsOption = None,
    deterministic: DeterministicOption = None,
    seeds: Annotated[list[int] | None, typer.Option(
        metavar="SEED...", help="Train runs that differ only in seed as one vectorised step (a run group), e.g. "
        "--seeds 42 43 44: a run directory per seed (--run-id NAME gives NAME_s42, ...), each a single run's.")] = None,
) -> None:
    """Train one run headless: plain progress lines, a run directory under RUNS_DIR; or --resume one."""
    set_ = _with_loggers(set_, log_to)
    if seeds:
        _train_group(profile, resume, seed, seeds, steps, seconds, device, runs_dir, run_id, set_, threads,
                     deterministic, track)
        return
    from jepa_tui.cli.console import ConsolePrinter
    from jepa_tui.cli.signals import SignalStop
    from jepa_tui.runs import RunDirError
    from jepa_tui.threads import adaptive, governor_for
    from jepa_tui.threads import apply as apply_threads
    from jepa_tui.training.allocator import keep_freed_memory
    from jepa_tui.training.loggers import logger_sinks
    from jepa_tui.training.loop import RunLoop
    from jepa_tui.training.session import prepare_run
    from jepa_tui.training.trainer import pick_device

    keep_freed_memory()
    try:
        config, point = _resolve(profile, resume, force, set_, track=track, seed=seed, steps=steps, seconds=seconds,
                                 device=device, threads=threads, deterministic=deterministic)
        torch_device = pick_device(config.train.device)
        thread_count = apply_threads(config.train.threads)
        prepared = prepare_run(config, torch_device, runs_dir, run_id, resume=point)
    except _bad_input_errors() as exc:
        raise _fail(str(exc)) from None
    run_dir, trainer = prepared.directory, prepared.trainer
    t = config.train
    budget = f"{t.steps} steps" if t.steps is not None else f"{t.seconds:g} s"
    verb = f"resuming at step {trainer.progress.step}" if point is not None else "new run"
    where = f"{torch_device}, {thread_count} thread{'s' * (thread_count != 1)}" if torch_device.type == "cpu" \
        else str(torch_device)
    say(f"run {run_dir.run_id} ({verb}) in {run_dir.path}: track {t.track}, seed {t.seed}, {budget} "
        f"({_budget_source(profile, set_, steps, seconds)}), device {where}, evaluating every "
        f"{config.eval.every_steps} steps; shift world: {config.shift_description}")
    say("  deterministic: " + (f"{thread_count} CPU thread{'s' * (thread_count != 1)} fixed and PyTorch's "
                               "deterministic algorithms; reruns and resumes are bitwise" if t.deterministic else
                               ("the thread count follows the load: reruns and resumes equal to rounding, not "
                                "bitwise (--deterministic pins it)" if adaptive(t.threads) and
                                torch_device.type == "cpu" else "no (--deterministic pins what a bitwise rerun "
                                "needs)")))
    for notice in [*prepared.notices, prepared.thermal_note]:
        say(f"  {notice}")
    with SignalStop() as signals:
        printer = ConsolePrinter(config)
        loggers = logger_sinks(config, run_dir.path, point.step if point is not None else None)
        loop = RunLoop(trainer, run_dir, [printer, *loggers], should_stop=signals,
                       thermal=prepared.thermal, notices=prepared.notices, replay=prepared.replay,
                       threads=governor_for(config.train.threads, torch_device.type))
        printer._last_eval = loop.last_eval
        try:
            summary = loop.run()
        except RunDirError as exc:
            raise _fail(f"{exc} Stopped at step {trainer.progress.step}; free space or fix permissions, then "
                        f"`jepa-tui train --resume {run_dir.path}`.", EXIT_IO) from None
    say(f"run directory: {run_dir.path}")
    code = _exit_code(summary)
    if summary["status"] == "failed":
        kept = f"the last good checkpoint (step {loop.saved_steps[-1]}) is kept" if loop.saved_steps else \
            "no checkpoint had been written yet"
        say(f"jepa-tui: error: {summary['error']}; {kept}. Try a lower learning rate "
            f"(--set train.lr=..., now {t.learning_rate:g}), gradient clipping (--set train.grad_clip=1.0) or "
            f"a larger variance epsilon (--set train.var_eps=...).", err=True)
    elif code:
        say(f"{summary['status']} ({summary['stop_reason']}); continue with: jepa-tui train --resume {run_dir.path}")
    if code:
        raise typer.Exit(code)


def _check_seeds(seeds: list[int]) -> list[int]:
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {' '.join(map(str, seeds))}: a run group needs two or more distinct seeds.")
    return seeds


def _train_group(profile: str | None, resume: Path | None, seed: int | None, seeds: list[int], steps: int | None,
                 seconds: float | None, device: str | None, runs_dir: Path, run_id: str | None,
                 set_: list[str] | None, threads: int | None, deterministic: bool | None,
                 track: str | None = None) -> None:
    """`train --seeds`: one run directory per seed, trained as a run group (jepa_tui.training.group)."""
    from jepa_tui.cli.console import ConsolePrinter, PrefixedStream
    from jepa_tui.cli.signals import SignalStop
    from jepa_tui.runs import RunDirError
    from jepa_tui.threads import apply as apply_threads
    from jepa_tui.threads import governor_for
    from jepa_tui.training.allocator import keep_freed_memory
    from jepa_tui.training.group import check_groupable, train_group
    from jepa_tui.training.session import prepare_run
    from jepa_tui.training.trainer import pick_device

    keep_freed_memory()
    prepared = []
    try:
        if resume is not None or seed is not None:
            raise ConfigError("--seeds starts new runs: it takes neither --resume (resume each member's run "
                              "directory with `jepa-tui train --resume RUN_DIR`) nor --seed.")
        configs = [_resolve(profile, None, False, set_, track=track, seed=s, steps=steps, seconds=seconds,
                            device=device, threads=threads, deterministic=deterministic)[0]
                   for s in _check_seeds(seeds)]
        if any(config.train.loggers for config in configs):
            raise ConfigError("train.loggers: a run group (--seeds) does not send its records to loggers yet; run "
                              "the seeds as separate runs (`jepa-tui sweep --seeds ... --log-to NAME`)")
        check_groupable(configs)  # before any run directory exists
        torch_device = pick_device(configs[0].train.device)
        thread_count = apply_threads(configs[0].train.threads)
        names = [f"{run_id}_s{config.train.seed}" if run_id else None for config in configs]
        taken = [name for name in names if name is not None and (runs_dir / name).exists()]
        if taken:  # before any member's directory is made, so the same command works once the name is free
            raise ConfigError(f"run directory '{runs_dir / taken[0]}' exists already; it is never overwritten "
                              "(choose another --run-id).")
        for config, name in zip(configs, names, strict=True):
            prepared.append(prepare_run(config, torch_device, runs_dir, name))
    except _bad_input_errors() as exc:
        for run in prepared:  # members made before the refusal: nothing trained in them, no stub left behind
            run.directory.close()
            shutil.rmtree(run.directory.path, ignore_errors=True)
        raise _fail(str(exc)) from None
    t = configs[0].train
    budget = f"{t.steps} steps" if t.steps is not None else f"{t.seconds:g} s"
    say(f"run group of {len(prepared)} (seeds {', '.join(str(c.train.seed) for c in configs)}): track {t.track}, "
        f"{budget}, device {torch_device}, {thread_count} thread{'s' * (thread_count != 1)}, one vectorised step")
    for run in prepared:
        say(f"  s{run.trainer.config.train.seed}: {run.directory.path}")
    with SignalStop() as signals:
        printers = [[ConsolePrinter(run.trainer.config, PrefixedStream(f"[s{run.trainer.config.train.seed}] "))]
                    for run in prepared]
        try:
            summaries = train_group(prepared, printers, should_stop=signals,
                                    threads=governor_for(t.threads, torch_device.type))
        except RunDirError as exc:
            raise _fail(f"{exc} Resume each run with `jepa-tui train --resume RUN_DIR`.", EXIT_IO) from None
    codes = [_exit_code(summary) for summary in summaries]
    for run, summary in zip(prepared, summaries, strict=True):
        if _exit_code(summary):
            say(f"{run.directory.run_id}: {summary['status']}; continue with: jepa-tui train --resume "
                f"{run.directory.path}")
    if any(codes):
        raise typer.Exit(max(codes))


@app.command(short_help="Train in the live dashboard (keys p b e f, 1-5, q).")
def run(
    profile: ProfileOption = None,
    resume: ResumeOption = None,
    force: ForceOption = False,
    track: TrackOption = None,
    seed: SeedOption = None,
    steps: StepsOption = None,
    seconds: SecondsOption = None,
    device: DeviceOption = None,
    runs_dir: RunsDirOption = Path("runs"),
    set_: SetOption = None,
    log_to: LogToOption = None,
    threads: ThreadsOption = None,
    deterministic: DeterministicOption = None,
    redraw_hz: Annotated[float, typer.Option(help="Panel redraws per second.")] = 1.0,
) -> None:
    """Train live in the terminal dashboard (keys: p b e f, 1-5 tracks A-E, t s q ?); or --resume a run in it."""
    set_ = _with_loggers(set_, log_to)
    from jepa_tui.gpu import sensor_for
    from jepa_tui.threads import apply as apply_threads
    from jepa_tui.threads import governor_for
    from jepa_tui.training.allocator import keep_freed_memory
    from jepa_tui.training.trainer import pick_device
    from jepa_tui.ui.app import Dashboard
    from jepa_tui.ui.controllers import LiveController

    keep_freed_memory()
    try:
        config, point = _resolve(profile, resume, force, set_, track=track, seed=seed, steps=steps, seconds=seconds,
                                 device=device, threads=threads, deterministic=deterministic)
        apply_threads(config.train.threads)
        torch_device = pick_device(config.train.device)
        controller = LiveController(config, runs_dir, torch_device, resume=point,
                                    threads=governor_for(config.train.threads, torch_device.type))
    except _bad_input_errors() as exc:
        raise _fail(str(exc)) from None
    _use_real_terminal_size()
    dashboard = Dashboard(controller, sensor_for(torch_device), redraw_hz=redraw_hz)  # the GPU trained on, if any
    dashboard.run()
    controller.shutdown()  # however the app ended, no run keeps training (a crash was recorded on unmount)
    controller.poll()
    say(controller.farewell())  # once the terminal is restored: each run's status, step and how to continue
    if dashboard.return_code:
        raise typer.Exit(dashboard.return_code)


@app.command(short_help="Attach the dashboard to a headless run or sweep.")
def watch(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `jepa-tui train`, or a folder of runs "
                                                 "(a sweep directory): its most recently active run is followed and "
                                                 "the run browser (r) lists the others.")],
    redraw_hz: Annotated[float, typer.Option(help="Panel redraws per second.")] = 1.0,
) -> None:
    """Attach the dashboard to a headless run (or a sweep's); p b e f s send requests to it, q detaches."""
    from jepa_tui.gpu import sensor_for
    from jepa_tui.runs.files import local_writer_pid
    from jepa_tui.system import PsutilSensor
    from jepa_tui.training.trainer import pick_device
    from jepa_tui.ui.app import Dashboard
    from jepa_tui.ui.controllers import WatchController

    try:
        controller = WatchController(run_dir)
    except (ConfigError, OSError) as exc:
        raise _fail(str(exc)) from None
    _use_real_terminal_size()
    pid = local_writer_pid(controller.run_dir)  # the CPU panel's figures are the training's, not this dashboard's
    cpu = PsutilSensor(pid) if pid is not None else PsutilSensor(whose="dashboard process")
    try:  # the GPU the run trains on ("auto" resolves as the run did on this machine), none for a CPU run
        sensor = sensor_for(pick_device(controller.config.train.device))
    except ConfigError:  # a CUDA run watched from a machine without CUDA
        sensor = None
    dashboard = Dashboard(controller, sensor, redraw_hz=redraw_hz, system_sensor=cpu)
    dashboard.run()
    say(controller.farewell())
    if dashboard.return_code:  # the app crashed: never report success
        raise typer.Exit(dashboard.return_code)


@app.command(short_help="Run tracks x seeds (x variants), here or on a cluster.")
def sweep(
    profile: ProfileOption = None,
    resume: Annotated[Path | None, typer.Option(help="Continue this sweep directory (instead of --profile).")]
    = None,
    tracks: Annotated[list[str] | None, typer.Option(metavar="TRACK...",
                                                     help="Tracks: --tracks a b c (replaces the profile's).")] = None,
    seeds: Annotated[list[int] | None, typer.Option(metavar="SEED...",
                                                    help="Seeds: --seeds 42 43 44 (replaces the profile's).")]
    = None,
    variants: Annotated[list[str] | None, typer.Option(
        metavar="NAME...", help="Only these variants of a sweep profile: --variants NAME ...")] = None,
    jobs: Annotated[int, typer.Option(min=1, help="Runs at once, each in its own process (local backend).")] = 1,
    steps: StepsOption = None,
    runs_dir: RunsDirOption = Path("runs"),
    sweep_id: Annotated[str | None, typer.Option(help="Name of the sweep directory (default: time, profile).")]
    = None,
    set_: SetOption = None,
    log_to: LogToOption = None,
    backend: Annotated[str, typer.Option(help="Where runs execute: local (processes here), submitit (SLURM jobs; "
                                              "pip install 'jepa-tui[slurm]') or ray (Ray tasks; "
                                              "pip install 'jepa-tui[ray]').")] = "local",
    partition: Annotated[str | None, typer.Option(help="submitit: the SLURM partition.")] = None,
    cluster: Annotated[str | None, typer.Option(help="submitit: slurm, local (jobs as processes here, to try a "
                                                     "sweep) or auto.")] = None,
    gpus_per_run: Annotated[float | None, typer.Option(min=0, help="submitit: GPUs per job; ray: num_gpus per "
                                                                   "task (fractions share a GPU).")] = None,
    cpus_per_run: Annotated[float | None, typer.Option(min=0, help="submitit: CPUs per job; ray: num_cpus per "
                                                                   "task.")] = None,
    time_min: Annotated[int | None, typer.Option(min=1, help="submitit: the job time limit in minutes (a job "
                                                             "past it checkpoints and is requeued).")] = None,
    array_parallelism: Annotated[int | None, typer.Option(min=1, help="submitit, ray: runs queued at once "
                                                                      "(default: all).")] = None,
    ray_address: Annotated[str | None, typer.Option(help="ray: the cluster to join (auto, ray://host:10001); "
                                                         "default: start Ray on this machine.")] = None,
    group: Annotated[bool, typer.Option(help="Start the new runs of each variant and track as one run group "
                                             "(`train --seeds`: one process, one vectorised step; local "
                                             "backend).")] = False,
) -> None:
    """Run tracks x seeds (x a sweep profile's variants), one run directory each under RUNS_DIR/<sweep_id>/, on
    this machine or a cluster engine (--backend)."""
    set_ = _with_loggers(set_, log_to)
    from jepa_tui.cli.signals import EXIT_CODES
    from jepa_tui.experiments.backends import make_backend
    from jepa_tui.experiments.cluster import resolve
    from jepa_tui.experiments.spec import load_sweep, make_sweep_id, read_manifest
    from jepa_tui.experiments.sweep import run_sweep
    from jepa_tui.runs.directory import check_name

    try:
        if (profile is None) == (resume is None):
            raise ConfigError("pass exactly one of --profile NAME (a new sweep) or --resume SWEEP_DIR.")
        if resume is not None:
            given = [name for name, value in (("--tracks", tracks), ("--seeds", seeds), ("--variants", variants),
                                              ("--set", set_), ("--steps", steps), ("--sweep-id", sweep_id))
                     if value]
            if given:
                raise ConfigError(f"{', '.join(given)} cannot change a sweep being resumed: its manifest decides "
                                  "what runs. Start a new sweep (--profile) for other settings.")
            spec, sweep_dir = read_manifest(resume), Path(resume)
        else:
            extra = [*(set_ or []), *([f"train.steps={steps}"] if steps is not None else [])]
            spec = load_sweep(profile, [t.upper() for t in tracks or []] or None, seeds, extra, variants)
            sweep_dir = runs_dir / (check_name(sweep_id, "--sweep-id") if sweep_id else make_sweep_id(spec))
            if (sweep_dir / "manifest.json").is_file() and read_manifest(sweep_dir) != spec:
                raise ConfigError(f"sweep directory '{sweep_dir}' holds a different sweep; continue it with "
                                  f"`jepa-tui sweep --resume {sweep_dir}` or choose another --sweep-id.")
        runs = spec.runs()
        if group and backend != "local":
            raise ConfigError(f"--group runs on the local backend; with --backend {backend} each run is its own "
                              "job.")
        settings = None if backend == "local" else resolve(backend, spec.backends, {
            "partition": partition, "cluster": cluster, "gpus_per_run": gpus_per_run, "cpus_per_run": cpus_per_run,
            "time_min": time_min, "array_parallelism": array_parallelism, "address": ray_address})
        engine = make_backend(backend, settings, len(runs), jobs, sweep_dir)
    except _bad_input_errors() as exc:
        raise _fail(str(exc)) from None
    say(f"sweep {sweep_dir}: {len(runs)} runs ({', '.join(r.name for r in runs)}), {engine.slots} at a time on "
        f"the {engine.name} backend" + (f": {settings.describe()}" if settings is not None else ""))
    try:
        result = run_sweep(spec, sweep_dir, jobs, say=say, backend=engine, group=group)
    except _bad_input_errors() as exc:
        raise _fail(str(exc)) from None
    if result.stopped_by is not None:
        say(f"sweep stopped by {result.stopped_by}: the running runs checkpointed and stopped; continue with: "
            f"jepa-tui sweep --resume {sweep_dir}")
        raise typer.Exit(EXIT_CODES.get(result.stopped_by, 130))
    outcomes = result.outcomes
    failed = [o for o in outcomes if o.status != "done"]
    say(f"sweep finished: {len(outcomes) - len(failed)} of {len(outcomes)} runs done"
        + (f"; not done: {', '.join(f'{o.run.name} ({o.status})' for o in failed)}" if failed else "")
        + f"\nreport: jepa-tui report {sweep_dir}")
    if failed:
        raise typer.Exit(1)


@app.command(short_help="Tables, statistics and figures from runs.")
def report(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH...",
                                                help="Run directories and/or sweep directories.")],
    out: Annotated[Path | None, typer.Option(help="Where report.md and the figures go (default: the first path, "
                                                   "or its parent for a run directory).")] = None,
    terminal: Annotated[bool, typer.Option(help="Also draw the figures in the terminal (plotext).")] = False,
    formula: Annotated[str | None, typer.Option(help="D_shift formula for the tables and figures: per_sample, "
                                                     "ratio_of_sums, median or r2 (default: each run's "
                                                     "eval.formula).")] = None,
) -> None:
    """Tables (Table 1 with bootstrap and t CIs; the pre-registered outcome when its preconditions hold; Welch's
    t-tests; Tables 2, 3), every run's interventions, figures over runs and sweeps, and the numbers behind them as
    runs.csv and evals.csv."""
    from jepa_tui.evaluation.metrics import FORMULAS
    from jepa_tui.reporting.collect import collect_runs
    from jepa_tui.reporting.export import write_csvs
    from jepa_tui.reporting.figures import write_figures
    from jepa_tui.reporting.report import build_report
    from jepa_tui.reporting.terminal import terminal_figures
    from jepa_tui.runs import RunDirError
    from jepa_tui.runs.files import atomic_write_text

    try:
        if formula is not None and formula not in FORMULAS:
            raise ConfigError(f"--formula {formula!r}: allowed: {', '.join(FORMULAS)}.")
        runs, skipped = collect_runs(paths, formula)
    except (FileNotFoundError, ConfigError) as exc:
        raise _fail(str(exc)) from None
    built = build_report(runs, skipped, formula)
    folder = out or (paths[0].parent if (paths[0] / "config.toml").is_file() else paths[0])
    try:
        figures = write_figures(runs, folder / "figures")
        text = built.markdown() + "\n## Figures\n\n" + "\n".join(
            f"![{p.stem}](figures/{p.name})" for p in figures) + "\n"
        atomic_write_text(folder / "report.md", text)
        write_csvs(runs, folder)
    except RunDirError as exc:
        raise _fail(f"{exc} Choose another folder with --out.") from None
    print(built.markdown())
    if terminal:
        print(terminal_figures(runs))
    print(f"wrote {folder / 'report.md'}, runs.csv, evals.csv and {len(figures)} figures in {folder / 'figures'}")


@app.command(short_help="SVD, attention and ΔW analyses of kept models.")
def analyze(
    run_dir: Annotated[Path, typer.Argument(help="A run directory with kept weights or checkpoints.")],
    step: Annotated[int | None, typer.Option(help="Analyse the model kept at this step (default: every kept one).")]
    = None,
    device: DeviceOption = None,
) -> None:
    """SVD / effective rank of predictor outputs, buffer attention by age and world, D_shift per horizon and the
    surprisal trace at the base → shift switch, per kept model, beside the run's re-evaluations
    (evaluations/<tag>.jsonl) at the same step; JSON and figures in RUN_DIR/analysis/."""
    import json as json_module

    from jepa_tui.data.worlds import Worlds
    from jepa_tui.evaluation.analysis import age_correlation, analyse, attention_table, evaluations_at
    from jepa_tui.reporting.analysis_figures import analysis_figures
    from jepa_tui.reporting.figures import make_folder
    from jepa_tui.runs import RunDirectory, RunDirError
    from jepa_tui.runs.files import atomic_write_text
    from jepa_tui.training.reevaluate import evaluation_model, load_stored, stored_models
    from jepa_tui.training.trainer import pick_device

    try:
        directory = RunDirectory.open(run_dir)
        config = load_run_config(directory.path, device=device)
        kept = stored_models(directory)
        if step is not None:
            if step not in kept:
                raise ConfigError(f"--step {step}: no kept model at that step; kept: "
                                  f"{', '.join(map(str, kept)) or 'none'}.")
            kept = {step: kept[step]}
        if not kept:
            raise ConfigError(f"'{run_dir}' keeps no model (no weights/ or checkpoints/) to analyse.")
        torch_device = pick_device(config.train.device)
        model = evaluation_model(config, torch_device)
        worlds = Worlds(config.data, torch_device, seed=config.world_seed)
        evaluations = directory.read_evaluations()
    except _bad_input_errors() as exc:
        raise _fail(str(exc)) from None
    out = directory.path / "analysis"
    results = []
    print("step   D_shift  sigma_z  eff.rank  top-3 singular values      attention base/shift  age corr  "
          "D_shift per k")
    for s, stored in kept.items():
        try:
            load_stored(model, stored)
        except _bad_input_errors() as exc:
            raise _fail(str(exc)) from None
        diverged = [name for name, t in model.state_dict().items() if t.is_floating_point() and not t.isfinite().all()]
        if diverged:
            print(f"{s:<6} skipped: non-finite weights ({diverged[0]}{' …' * (len(diverged) > 1)}), a diverged model",
                  flush=True)
            continue
        result = analyse(model, worlds, config, s)
        result.evaluations = evaluations_at(evaluations, s, config.eval.formula)
        results.append(result)
        try:
            make_folder(out)
            atomic_write_text(out / f"step_{s:08d}.json", json_module.dumps(result.to_dict(), indent=1) + "\n")
        except RunDirError as exc:
            raise _fail(str(exc)) from None
        top = ", ".join(f"{v:.3g}" for v in result.singular_values[:3])
        mass = result.attention_mass
        attention = f"{mass.get('base', 0):.2f}/{mass.get('shift', 0):.2f}" if mass else "-"
        per_k = " ".join(f"k{k}:{v:.3f}" for k, v in result.d_shift_per_horizon.items())
        corr = f"{age_correlation(result.attention):+.2f}" if len(result.attention) >= 3 else "-"
        print(f"{s:<6} {result.d_shift:.4f}   {result.sigma_z:.4f}   {result.effective_rank:6.2f}    {top:<26} "
              f"{attention:<21} {corr:<9} {per_k}", flush=True)
        for tag, row in result.evaluations.items():
            print(f"       evaluations/{tag}: " + ", ".join(
                f"{name} {value:.4f}" for name, value in row.items() if isinstance(value, float)), flush=True)
    if not results:
        raise _fail(f"no model of '{run_dir}' could be analysed: every one chosen has non-finite weights.")
    last = results[-1]
    if last.attention:
        print(f"\nattention during shift-world inference at step {last.step} (uniform = "
              f"{1 / len(last.attention):.5f} per entry):\nentry ages (pushes ago)  world  entries  mean weight  mass")
        for row in attention_table(last.attention):
            print(f"{row['ages']:<24} {row['world']:<6} {row['entries']:>7}  {row['mean_weight']:.5f}      "
                  f"{row['mass']:.3f}")
    try:
        figures = analysis_figures(results, out)
    except RunDirError as exc:
        raise _fail(str(exc)) from None
    print(f"wrote {len(results)} JSON files and {len(figures)} figures in {out}")


@app.command(short_help="Re-evaluate kept models under other settings.")
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory with kept weights or checkpoints.")],
    step: Annotated[list[int] | None, typer.Option(
        metavar="STEP", help="Evaluate the model kept at this step (repeatable; default: the last kept).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Evaluate every kept step.")] = False,
    set_: SetOption = None,
    tag: Annotated[str | None, typer.Option(help="Name of evaluations/<tag>.jsonl (default: from the --set "
                                                 "overrides, 'default' without any).")] = None,
    device: DeviceOption = None,
) -> None:
    """Re-evaluate a run's kept models under other evaluation or shift settings (eval.*, data.shift.*): adaptation
    curve, memory gain, content effect, pixel-space error, test-time training; written to
    RUN_DIR/evaluations/<tag>.jsonl, the run's own files untouched."""
    from jepa_tui.runs import RunDirectory
    from jepa_tui.training.reevaluate import reevaluate, stored_models
    from jepa_tui.training.trainer import pick_device

    try:
        if all_ and step:
            raise ConfigError("pass --step N or --all, not both.")
        steps = list(step) if step else None
        if all_:
            steps = list(stored_models(RunDirectory.open(run_dir)))
        torch_device = pick_device(device or "cpu")
        for index, record in enumerate(reevaluate(run_dir, steps, list(set_ or []), tag, torch_device)):
            if index == 0:
                say(f"step      D_shift  d_base   memory gain  content effect  pos RMSE px  TTT D_shift  "
                    f"(formula {record['formula']})")
            say(f"{record['step']:<9} {record['d_shift']:.4f}   {record['d_base']:.4f}   "
                f"{_signed(record['memory_gain'])}      {_signed(record['content_effect'])}         "
                f"{record['pos_rmse_px']:8.3f}     {_plain(record['d_shift_ttt'])}")
            last = record
    except _bad_input_errors() as exc:
        raise _fail(str(exc)) from None
    say(f"wrote {run_dir}/evaluations/{last['tag']}.jsonl ({last['seconds']:.1f} s for the last step)")


def _signed(value: float | None) -> str:
    return f"{value:+.4f}" if isinstance(value, int | float) else "   -   "


def _plain(value: float | None) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "-"


@app.command(short_help="Send finished runs' records to TensorBoard.")
def export(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH...",
                                                help="Run directories and/or folders of runs (sweep directories).")],
    to: Annotated[str, typer.Option(metavar="tensorboard", help="Where the records go.")] = "tensorboard",
    out: Annotated[Path | None, typer.Option(
        metavar="DIR", help="Write <DIR>/<run id>/ for each run (default: RUN_DIR/tensorboard).")] = None,
) -> None:
    """Replay runs made without a logger (the published archives too) into TensorBoard event files: the same tags
    as `--log-to tensorboard`. Changes nothing in the runs."""
    from jepa_tui.runs import RunDirError
    from jepa_tui.runs.catalog import list_runs
    from jepa_tui.training.loggers import export_run

    try:
        runs = [Path(info.path) for path in paths for info in reversed(list_runs(path))]
        if not runs:
            raise ConfigError(f"no run directory under {', '.join(map(str, paths))}")
        log_dirs = [(out / run_dir.name) if out is not None else run_dir / "tensorboard" for run_dir in runs]
        taken = [str(d) for d in log_dirs if d.exists()] + \
            [str(d) for d in {d for d in log_dirs if log_dirs.count(d) > 1}]  # checked before anything is written
        if taken:
            raise ConfigError(f"{', '.join(taken)}: exists already or is named twice (each step would be there "
                              "twice); give --out another folder")
        for run_dir, log_dir in zip(runs, log_dirs, strict=True):
            count = export_run(run_dir, log_dir, to)
            say(f"{run_dir}: {count} records → {log_dir}")
    except (ConfigError, RunDirError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    say(f"open them with: tensorboard --logdir {out if out is not None else ' '.join(map(str, paths))}")


@app.command(short_help="List runs: track, seed, status, peak, activity.")
def runs(
    runs_dir: Annotated[Path, typer.Argument(help="A folder of run directories (and sweeps).")] = Path("runs"),
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object per run instead of a table.")]
    = False,
) -> None:
    """List the runs under RUNS_DIR: track, seed, status, step/budget, peak D_shift, σ_z at the peak, last activity,
    interventions; most recently active first."""
    import json as json_module

    from jepa_tui.runs.catalog import ago, list_runs

    try:
        infos = list_runs(runs_dir)
    except FileNotFoundError as exc:
        raise _fail(str(exc)) from None
    if json_output:
        say(json_module.dumps([info.to_dict() for info in infos], indent=1))
        return
    if not infos:
        say(f"no runs under {runs_dir}")
        return
    width = max(len(i.run_id) for i in infos)
    say(f"{'run':<{width}}  track  seed  status        step/budget    peak D_shift @ step   σ_z    last activity  "
        "interventions")
    for i in infos:
        peak = f"{i.peak_d_shift:.4f} @ {i.peak_step}" if i.peak_d_shift is not None else "-"
        sigma = f"{i.sigma_z_at_peak:.3f}" if i.sigma_z_at_peak is not None else "-"
        hand = " (by hand)" if i.changed_by_hand else ""
        say(f"{i.run_id:<{width}}  {i.track:<5}  {i.seed if i.seed is not None else '-':<4}  {i.status:<12}  "
            f"{f'{i.step}/{i.budget}':<13}  {peak:<20}  {sigma:<5}  {ago(i.last_activity):<13}  "
            f"{i.interventions}{hand}")


@app.command(short_help="List the shipped profiles.")
def profiles() -> None:
    """List the shipped profiles, one line each."""
    known = list_profiles()
    width = max(len(name) for name in known)
    for name, path in known.items():
        print(f"{name:<{width}}  {profile_description(path)}")


MULTI_VALUE_OPTIONS = ("--tracks", "--seeds", "--variants")


def expand_multi_value_options(argv: list[str]) -> list[str]:
    """``--seeds 42 43 44`` → ``--seeds 42 --seeds 43 --seeds 44`` (Click options take one value each)."""
    out: list[str] = []
    current = None
    for arg in argv:
        if arg.startswith("-"):
            current = arg if arg in MULTI_VALUE_OPTIONS else None
            out.append(arg)
        elif current is not None and out[-1] != current:
            out += [current, arg]
        else:
            out.append(arg)
    return out


def _quiet_streams() -> None:
    """Flush stdout and stderr; a stream that can no longer be written (a closed pipe, a hung-up terminal) is
    pointed at /dev/null, so the interpreter's own flush at exit cannot turn a finished run into an error."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


def _threads_argument(argv: list[str]) -> int:
    """The value of ``--threads N`` (or ``--threads=N``) on the command line, 0 when absent or malformed."""
    for i, arg in enumerate(argv):
        value = arg.partition("=")[2] if arg.startswith("--threads=") else (
            argv[i + 1] if arg == "--threads" and i + 1 < len(argv) else None)
        if value is not None:
            try:
                return max(0, int(value))
            except ValueError:
                return 0
    return 0


def main() -> None:
    """Console-script entry point: the command's exit code, whatever happens to the terminal after it."""
    from jepa_tui.threads import prepare_environment

    prepare_environment(_threads_argument(sys.argv[1:]))  # before torch starts OpenMP (jepa_tui.threads)
    code: int | str | None = 0
    try:
        app(args=expand_multi_value_options(sys.argv[1:]))
    except SystemExit as exc:
        code = exc.code
    finally:
        _quiet_streams()
    sys.exit(code)


if __name__ == "__main__":
    main()
