"""The commands that train: ``train`` (headless, one run or a run group), ``run`` (in the dashboard) and ``watch``
(the dashboard on a headless run)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from jepa_tui.cli.options import (
    RunOptions,
    bad_input_errors,
    budget_source,
    fail,
    run_figures,
    say,
    use_real_terminal_size,
    with_run_options,
)
from jepa_tui.config import ConfigError
from jepa_tui.exits import EXIT_IO, exit_code


@with_run_options
def train(
    options: RunOptions,
    run_id: Annotated[str | None, typer.Option(help="Name of the new run directory (default: time, track, seed).")]
    = None,
    seeds: Annotated[list[int] | None, typer.Option(
        metavar="SEED...", help="Train runs that differ only in seed as one vectorised step (a run group), e.g. "
        "--seeds 42 43 44: a run directory per seed (--run-id NAME gives NAME_s42, ...), each a single run's.")] = None,
) -> None:
    """Train one run headless: plain progress lines, a run directory under RUNS_DIR; or --resume one."""
    if seeds:
        _train_group(options, seeds, run_id)
        return
    from jepa_tui.cli.console import ConsolePrinter
    from jepa_tui.cli.signals import SignalStop
    from jepa_tui.runs import RunDirError
    from jepa_tui.threads import adaptive
    from jepa_tui.training.loggers import logger_sinks
    from jepa_tui.training.loop import RunLoop
    from jepa_tui.training.session import launch, prepare_run

    try:
        config, point = options.resolve()
        launched = launch(config)
        torch_device, thread_count = launched.device, launched.threads
        prepared = prepare_run(config, torch_device, options.runs_dir, run_id, resume=point)
    except bad_input_errors() as exc:
        raise fail(str(exc)) from None
    run_dir, trainer = prepared.directory, prepared.trainer
    t = config.train
    budget = f"{t.steps} steps" if t.steps is not None else f"{t.seconds:g} s"
    verb = f"resuming at step {trainer.progress.step}" if point is not None else "new run"
    where = f"{torch_device}, {thread_count} thread{'s' * (thread_count != 1)}" if torch_device.type == "cpu" \
        else str(torch_device)
    source = budget_source(options.profile, options.overrides, options.steps, options.seconds)
    say(f"run {run_dir.run_id} ({verb}) in {run_dir.path}: track {t.track}, seed {t.seed}, {budget} ({source}), "
        f"device {where}, evaluating every {config.eval.every_steps} steps; shift world: {config.shift_description}")
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
        loggers = logger_sinks(config, run_dir.path, point.step if point is not None else None, run_figures)
        loop = RunLoop(trainer, run_dir, [printer, *loggers], should_stop=signals,
                       thermal=prepared.thermal, notices=prepared.notices, replay=prepared.replay,
                       threads=launched.governor)
        printer._last_eval = loop.last_eval
        try:
            summary = loop.run()
        except RunDirError as exc:
            raise fail(f"{exc} Stopped at step {trainer.progress.step}; free space or fix permissions, then "
                        f"`jepa-tui train --resume {run_dir.path}`.", EXIT_IO) from None
    say(f"run directory: {run_dir.path}")
    code = exit_code(summary)
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


def _train_group(options: RunOptions, seeds: list[int], run_id: str | None) -> None:
    """`train --seeds`: one run directory per seed, trained as a run group (jepa_tui.training.group)."""
    from jepa_tui.cli.console import ConsolePrinter, PrefixedStream
    from jepa_tui.cli.signals import SignalStop
    from jepa_tui.runs import RunDirError
    from jepa_tui.training.group import check_groupable, train_group
    from jepa_tui.training.loggers import logger_sinks
    from jepa_tui.training.session import launch, prepare_run

    prepared, runs_dir = [], options.runs_dir
    try:
        if options.resume is not None or options.seed is not None:
            raise ConfigError("--seeds starts new runs: it takes neither --resume (resume each member's run "
                              "directory with `jepa-tui train --resume RUN_DIR`) nor --seed.")
        configs = [options.resolve(seed=s, resume=False)[0] for s in _check_seeds(seeds)]
        check_groupable(configs)  # before any run directory exists
        launched = launch(configs[0])
        torch_device, thread_count = launched.device, launched.threads
        names = [f"{run_id}_s{config.train.seed}" if run_id else None for config in configs]
        taken = [name for name in names if name is not None and (runs_dir / name).exists()]
        if taken:  # before any member's directory is made, so the same command works once the name is free
            raise ConfigError(f"run directory '{runs_dir / taken[0]}' exists already; it is never overwritten "
                              "(choose another --run-id).")
        for config, name in zip(configs, names, strict=True):
            prepared.append(prepare_run(config, torch_device, runs_dir, name))
    except bad_input_errors() as exc:
        for run in prepared:  # members made before the refusal: nothing trained in them, no stub left behind
            run.directory.close()
            shutil.rmtree(run.directory.path, ignore_errors=True)
        raise fail(str(exc)) from None
    t = configs[0].train
    budget = f"{t.steps} steps" if t.steps is not None else f"{t.seconds:g} s"
    say(f"run group of {len(prepared)} (seeds {', '.join(str(c.train.seed) for c in configs)}): track {t.track}, "
        f"{budget}, device {torch_device}, {thread_count} thread{'s' * (thread_count != 1)}, one vectorised step")
    for run in prepared:
        say(f"  s{run.trainer.config.train.seed}: {run.directory.path}")
    with SignalStop() as signals:
        sinks = [[ConsolePrinter(run.trainer.config, PrefixedStream(f"[s{run.trainer.config.train.seed}] ")),
                  *logger_sinks(run.trainer.config, run.directory.path, figures=run_figures)] for run in prepared]
        try:
            summaries = train_group(prepared, sinks, should_stop=signals,
                                    threads=launched.governor)
        except RunDirError as exc:
            raise fail(f"{exc} Resume each run with `jepa-tui train --resume RUN_DIR`.", EXIT_IO) from None
    codes = [exit_code(summary) for summary in summaries]
    for run, summary in zip(prepared, summaries, strict=True):
        if exit_code(summary):
            say(f"{run.directory.run_id}: {summary['status']}; continue with: jepa-tui train --resume "
                f"{run.directory.path}")
    if any(codes):
        raise typer.Exit(max(codes))


@with_run_options
def run(
    options: RunOptions,
    redraw_hz: Annotated[float, typer.Option(help="Panel redraws per second.")] = 1.0,
) -> None:
    """Train live in the terminal dashboard (keys: p b e f, 1-5 tracks A-E, t s q ?); or --resume a run in it."""
    from jepa_tui.gpu import sensor_for
    from jepa_tui.training.session import launch
    from jepa_tui.ui.app import Dashboard
    from jepa_tui.ui.controllers import LiveController

    try:
        config, point = options.resolve()
        launched = launch(config)
        torch_device = launched.device
        controller = LiveController(config, options.runs_dir, torch_device, resume=point, threads=launched.governor,
                                    figures=run_figures)
    except bad_input_errors() as exc:
        raise fail(str(exc)) from None
    use_real_terminal_size()
    dashboard = Dashboard(controller, sensor_for(torch_device), redraw_hz=redraw_hz)  # the GPU trained on, if any
    dashboard.run()
    controller.shutdown()  # however the app ended, no run keeps training (a crash was recorded on unmount)
    controller.poll()
    say(controller.farewell())  # once the terminal is restored: each run's status, step and how to continue
    if dashboard.return_code:
        raise typer.Exit(dashboard.return_code)


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
    from jepa_tui.training.build import pick_device
    from jepa_tui.ui.app import Dashboard
    from jepa_tui.ui.controllers import WatchController

    try:
        controller = WatchController(run_dir)
    except (ConfigError, OSError) as exc:
        raise fail(str(exc)) from None
    use_real_terminal_size()
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
