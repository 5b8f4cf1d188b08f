"""What the commands share: their options, printing, the bad-input exit, and where a budget comes from."""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from jepa_tui.config import ConfigError, read_toml, resolve_profile
from jepa_tui.config.tracks import TRACKS, describe_tracks
from jepa_tui.exits import EXIT_BAD_INPUT

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
    "tensorboard (RUN_DIR/tensorboard), mlflow (RUN_DIR/mlflow.db, or MLFLOW_TRACKING_URI), wandb (offline in "
    "RUN_DIR/wandb unless WANDB_MODE says otherwise); pip install 'jepa-tui[NAME]'. Sets train.loggers.")]
DeterministicOption = Annotated[bool | None, typer.Option(
    "--deterministic", help="Pin what a bitwise rerun needs (train.deterministic): a fixed thread count (train.threads "
                            "or the cores this process may use) and PyTorch's deterministic algorithms.")]
ThreadsOption = Annotated[int | None, typer.Option(min=0, help=(
    "CPU threads for training (default train.threads; 0: the cores this process may use, one fewer per core other "
    "processes keep busy; N: exactly N, bitwise reproducible)."))]


@dataclass(frozen=True)
class RunOptions:
    """What ``train`` and ``run`` share: which run (a profile, or a run directory to resume), its track, seed,
    budget, device and threads, the profile overrides and the loggers (:func:`with_run_options` parses them)."""

    profile: str | None
    resume: Path | None
    force: bool
    track: str | None
    seed: int | None
    steps: int | None
    seconds: float | None
    device: str | None
    runs_dir: Path
    set_: list[str] | None
    log_to: list[str] | None
    threads: int | None
    deterministic: bool | None

    @property
    def overrides(self) -> list[str] | None:
        """The ``--set`` overrides, with ``--log-to`` as ``train.loggers``."""
        return with_loggers(self.set_, self.log_to)

    def resolve(self, seed: int | None = None, resume: bool = True) -> tuple:
        """(config, resume point or None) as :func:`jepa_tui.training.session.resolve_run` gives them; ``seed``
        replaces ``--seed`` (a run group's member), ``resume=False`` starts a new run whatever ``--resume`` says."""
        from jepa_tui.training.session import resolve_run

        return resolve_run(self.profile, self.resume if resume else None, self.force if resume else False,
                           self.overrides, track=self.track, seed=self.seed if seed is None else seed,
                           steps=self.steps, seconds=self.seconds, device=self.device, threads=self.threads,
                           deterministic=self.deterministic)


def _run_option_parameters(profile: ProfileOption = None, resume: ResumeOption = None, force: ForceOption = False,
                           track: TrackOption = None, seed: SeedOption = None, steps: StepsOption = None,
                           seconds: SecondsOption = None, device: DeviceOption = None,
                           runs_dir: RunsDirOption = Path("runs"), set_: SetOption = None,
                           log_to: LogToOption = None, threads: ThreadsOption = None,
                           deterministic: DeterministicOption = None) -> None:
    """The Typer parameters of :class:`RunOptions` (their signature is what :func:`with_run_options` adds)."""


def with_run_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """A command ``command(options: RunOptions, **own)`` as Typer sees it: the shared run options' parameters
    first, then its own; it is called with one :class:`RunOptions` of their values."""
    shared = list(inspect.signature(_run_option_parameters, eval_str=True).parameters.values())
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "options"]

    @functools.wraps(command)
    def parsed(**values: Any) -> Any:
        options = RunOptions(**{p.name: values.pop(p.name) for p in shared})
        return command(options, **values)

    parsed.__signature__ = inspect.Signature([*shared, *own])  # type: ignore[attr-defined]
    parsed.__annotations__ = {p.name: p.annotation for p in [*shared, *own]}
    del parsed.__wrapped__  # Typer reads the signature above, not the command's
    return parsed


def run_figures(run_dir: Path, folder: Path) -> list[Path]:
    """The figures a run's loggers send when it is done (:func:`jepa_tui.reporting.publish.run_figures`); reporting
    and matplotlib are imported only then, not at every command's start (about 0.4 s)."""
    from jepa_tui.reporting.publish import run_figures as draw

    return draw(run_dir, folder)


def say(text: str, err: bool = False) -> None:
    """Print a line; once the run's files are safe an unwritable terminal (hung up, a closed pipe) changes
    nothing, so output errors are ignored."""
    with contextlib.suppress(OSError, ValueError):
        print(text, file=sys.stderr if err else sys.stdout, flush=True)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    say(f"jepa-tui: error: {message}", err=True)
    return typer.Exit(code)


def use_real_terminal_size() -> None:
    """Let the dashboard follow the terminal's real size: Textual asks ``shutil.get_terminal_size``, which
    prefers COLUMNS and LINES from the environment, and an exported stale pair pins the layout to it for good."""
    if sys.stdout.isatty():
        for name in ("COLUMNS", "LINES"):
            os.environ.pop(name, None)


def budget_source(profile: str | None, set_: list[str] | None, steps: int | None, seconds: float | None) -> str:
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


def bad_input_errors() -> tuple[type[Exception], ...]:
    from jepa_tui.data.digits import DigitPoolError
    from jepa_tui.runs import CheckpointError, RunDirError

    return ConfigError, DigitPoolError, RunDirError, CheckpointError, ValueError


def with_loggers(set_: list[str] | None, log_to: list[str] | None) -> list[str] | None:
    """``--log-to NAME ...`` as the override ``train.loggers = [...]``."""
    return set_ if not log_to else [*(set_ or []), f"train.loggers={json.dumps(list(dict.fromkeys(log_to)))}"]
