"""``jepa-tui``: train EPM-JEPA headless and list profiles.

Exit codes: 0 done, 2 bad input (profile, key, value, digit file, device, run directory), 130 interrupted.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from jepa_tui.config import ConfigError, list_profiles, load_config, profile_description

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Train and study EPM-JEPA world models under distribution shift.")

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


ProfileOption = Annotated[str, typer.Option(help="Profile name (see `jepa-tui profiles`) or path to a TOML file.")]
SeedOption = Annotated[int | None, typer.Option(help="Model seed (initialisation and sampling).")]
StepsOption = Annotated[int | None, typer.Option(help="Budget in training steps (replaces the profile's).")]
SecondsOption = Annotated[float | None, typer.Option(help="Budget in training seconds (replaces the profile's).")]
DeviceOption = Annotated[str | None, typer.Option(help="auto, cpu or cuda.")]
RunsDirOption = Annotated[Path, typer.Option(help="Where run directories are created.")]
SetOption = Annotated[list[str] | None, typer.Option("--set", help="Override: section.key=value (repeatable).")]


def _fail(message: str) -> typer.Exit:
    print(f"jepa-tui: error: {message}", file=sys.stderr)
    return typer.Exit(EXIT_BAD_INPUT)


@app.command()
def train(
    profile: ProfileOption,
    seed: SeedOption = None,
    steps: StepsOption = None,
    seconds: SecondsOption = None,
    device: DeviceOption = None,
    runs_dir: RunsDirOption = Path("runs"),
    set_: SetOption = None,
) -> None:
    """Train one run headless: plain progress lines, a run directory under RUNS_DIR."""
    from jepa_tui.cli.console import ConsolePrinter
    from jepa_tui.data.digits import DigitPoolError
    from jepa_tui.training.loop import RunLoop
    from jepa_tui.training.run_dir import RunDirectory, RunDirError
    from jepa_tui.training.trainer import Trainer, pick_device

    try:
        config = load_config(profile, set_, seed=seed, steps=steps, seconds=seconds, device=device)
        torch_device = pick_device(config.train.device)
        trainer = Trainer(config, torch_device)
        run_dir = RunDirectory.create(runs_dir, config)
    except (ConfigError, DigitPoolError, RunDirError, ValueError) as exc:
        raise _fail(str(exc)) from None
    printer = ConsolePrinter(config)
    t = config.train
    budget = f"{t.steps} steps" if t.steps is not None else f"{t.seconds:g} s"
    print(f"run {run_dir.run_id}: track {t.track}, seed {t.seed}, {budget}, device {torch_device}, "
          f"evaluating every {config.eval.every_steps} steps", flush=True)
    summary = RunLoop(trainer, run_dir, [printer]).run()
    print(f"run directory: {run_dir.path}", flush=True)
    if summary["status"] == "interrupted":
        raise typer.Exit(EXIT_INTERRUPTED)


@app.command()
def run(
    profile: ProfileOption,
    seed: SeedOption = None,
    steps: StepsOption = None,
    seconds: SecondsOption = None,
    device: DeviceOption = None,
    runs_dir: RunsDirOption = Path("runs"),
    set_: SetOption = None,
    redraw_hz: Annotated[float, typer.Option(help="Panel redraws per second.")] = 2.0,
) -> None:
    """Train live in the terminal dashboard (keys: p b e f 1 2 3 t s q ?)."""
    from jepa_tui.data.digits import DigitPoolError
    from jepa_tui.training.run_dir import RunDirError
    from jepa_tui.training.trainer import pick_device
    from jepa_tui.ui.app import Dashboard
    from jepa_tui.ui.controllers import LiveController
    from jepa_tui.ui.gpu import NvmlSensor

    try:
        config = load_config(profile, set_, seed=seed, steps=steps, seconds=seconds, device=device)
        controller = LiveController(config, runs_dir, pick_device(config.train.device))
    except (ConfigError, DigitPoolError, RunDirError, ValueError) as exc:
        raise _fail(str(exc)) from None
    Dashboard(controller, NvmlSensor(), redraw_hz=redraw_hz).run()
    controller.shutdown()  # however the app ended, no run keeps training


@app.command()
def watch(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `jepa-tui train`.")],
    redraw_hz: Annotated[float, typer.Option(help="Panel redraws per second.")] = 2.0,
) -> None:
    """Attach the dashboard to a headless run; p b e f s send requests to it, q detaches."""
    from jepa_tui.ui.app import Dashboard
    from jepa_tui.ui.controllers import WatchController
    from jepa_tui.ui.gpu import NvmlSensor

    try:
        controller = WatchController(run_dir)
    except (ConfigError, OSError) as exc:
        raise _fail(str(exc)) from None
    Dashboard(controller, NvmlSensor(), redraw_hz=redraw_hz).run()


@app.command()
def profiles() -> None:
    """List the shipped profiles, one line each."""
    known = list_profiles()
    width = max(len(name) for name in known)
    for name, path in known.items():
        print(f"{name:<{width}}  {profile_description(path)}")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
