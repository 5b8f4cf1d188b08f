"""A training run behind a small interface a UI can drive: send commands, collect records in batches.

:class:`ThreadedRun` runs the :class:`~jepa_tui.training.loop.RunLoop` on whatever thread calls :meth:`run`
(a UI's worker thread). Nothing in it knows about a UI; the same interface could be served by a subprocess, since
only commands go in and plain dict records come out.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from jepa_tui import threads
from jepa_tui.config import Config, ConfigError, load_config
from jepa_tui.data.worlds import Worlds
from jepa_tui.runs import CheckpointError, RunDirectory
from jepa_tui.threads import ThreadGovernor
from jepa_tui.training.allocator import keep_freed_memory
from jepa_tui.training.build import pick_device
from jepa_tui.training.control import Command
from jepa_tui.training.determinism import apply_determinism, pin_if_deterministic
from jepa_tui.training.loggers import FigureMaker, check_available, logger_sinks
from jepa_tui.training.loop import RunLoop
from jepa_tui.training.resources import check_memory
from jepa_tui.training.resume import ResumePoint, prepare_resume
from jepa_tui.training.thermal import ThermalGuard, guard_for
from jepa_tui.training.trainer import Trainer


def resolve_run(profile: str | None, resume: Path | None, force: bool, overrides: list[str] | None,
                **options: object) -> tuple[Config, ResumePoint | None]:
    """The configuration of a new run (``profile`` with ``overrides`` and command-line ``options``) or of the run
    ``resume`` continues, and its resume point; a deterministic run's thread count pinned and PyTorch's
    deterministic algorithms switched on, and its loggers' libraries checked, before any directory exists.

    Raises:
        ConfigError: neither or both of ``profile`` and ``resume``; ``force`` without ``resume``; a bad profile,
            key or value; a missing logger library; a resume that differs (without ``force``).
    """
    if (profile is None) == (resume is None):
        raise ConfigError("pass exactly one of --profile NAME (a new run) or --resume RUN_DIR (continue a run).")
    if force and resume is None:
        raise ConfigError("--force only applies with --resume RUN_DIR.")
    point = None
    if resume is not None:
        point = prepare_resume(resume, overrides, force, **options)
        config = point.config
    else:
        config = pin_if_deterministic(load_config(profile, overrides, **options))
    check_available(config.train.loggers)  # a missing library: exit 2 before any run directory exists
    apply_determinism(config)
    return config, point


@dataclass(frozen=True)
class Launch:
    """Where a training process trains: the device, the CPU thread count in force and its governor (None: fixed)."""

    device: torch.device
    threads: int
    governor: ThreadGovernor | None


def launch(config: Config) -> Launch:
    """What every training process (``train``, a run group, the dashboard's ``run``) does before it builds a
    trainer, in one order: keep freed memory in the heap, pick the device, set the thread count, and make the
    governor that follows the load (:mod:`jepa_tui.threads`).

    Raises:
        ValueError: ``train.device = "cuda"`` on a machine without CUDA.
    """
    keep_freed_memory()
    device = pick_device(config.train.device)
    count = threads.apply(config.train.threads)
    return Launch(device, count, threads.governor_for(config.train.threads, device.type))


@dataclass
class PreparedRun:
    """A trainer and its run directory, ready for a :class:`~jepa_tui.training.loop.RunLoop`.

    Attributes:
        notices: what a resume repaired or was forced past (also recorded with the run's resume event).
        thermal_note: whether the thermal guard is on, and why not.
    """

    trainer: Trainer
    directory: RunDirectory
    thermal: ThermalGuard | None
    notices: list[str]
    thermal_note: str
    replay: list[tuple[int, Command]]


def prepare_run(config: Config, device: torch.device, runs_dir: Path | None = None, run_id: str | None = None,
                resume: ResumePoint | None = None, worlds: Worlds | None = None) -> PreparedRun:
    """Build the trainer and create a run directory under ``runs_dir``, or continue ``resume``'s run.

    Raises:
        RunDirError: the new run directory exists or cannot be created.
        CheckpointError: the checkpoint does not fit the configuration (a forced resume that changed the model).
        DigitPoolError: the digit file is missing or malformed.
        ResourceError: the configuration needs more memory than the device has.
    """
    try:
        check_memory(config, device)
        trainer = Trainer(config, device, worlds)
    except BaseException:
        if resume is not None:
            resume.directory.close()  # give the run back, as a failed resume would
        raise
    notices: list[str] = []
    if resume is None:
        directory = RunDirectory.create(runs_dir or Path("runs"), config, run_id)
    else:
        directory = resume.directory
        notices += resume.notices
        if resume.state is not None:
            try:
                notices += trainer.load_state_dict(resume.state["trainer"])
            except Exception as exc:  # a state of the wrong shape or kind raises any of several errors
                directory.close()
                first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
                raise CheckpointError(f"the checkpoint at step {resume.step} of '{directory.path}' does not fit "
                                      f"this configuration: {first}") from None
    thermal, line = guard_for(config.thermal, device)
    return PreparedRun(trainer, directory, thermal, notices, line, resume.replay if resume is not None else [])


class RecordBuffer:
    """A thread-safe sink that keeps records until :meth:`drain` takes them (every kind: train, eval, events and
    the summary, each a dict with ``"kind"``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[dict] = []

    def _add(self, record: dict) -> None:
        with self._lock:
            self._records.append(record)

    def on_train(self, record: dict) -> None:
        self._add(record)

    def on_eval(self, record: dict) -> None:
        self._add(record)

    def on_event(self, record: dict) -> None:
        self._add(record)

    def on_summary(self, summary: dict) -> None:
        self._add({"kind": "summary", **summary})

    def drain(self) -> list[dict]:
        with self._lock:
            records, self._records = self._records, []
        return records


class Session(Protocol):
    """What a UI needs from a run: its identity, a way to send commands, and batches of records."""

    track: str
    run_dir: Path

    def send(self, command: Command, source: str = "ui") -> None: ...

    def drain(self) -> list[dict]: ...


@dataclass
class ThreadedRun:
    """One run, prepared eagerly (trainer, run directory) and driven by :meth:`run` on a worker thread.

    Attributes:
        config: the run's configuration.
        trainer, directory: built on construction, so bad input fails before any thread starts.
        commands: the queue the run loop drains between steps.
        threads: the process's thread governor (CPU runs with ``train.threads = 0``), or None.
        figures: what draws the run's figures for its loggers when it ends (``train.loggers``), or None.
    """

    config: Config
    runs_dir: Path
    device: torch.device
    worlds: Worlds | None = None
    resume: ResumePoint | None = None
    commands: queue.Queue[tuple[Command, str]] = field(default_factory=queue.Queue)
    threads: ThreadGovernor | None = None
    figures: FigureMaker | None = None

    def __post_init__(self) -> None:
        prepared = prepare_run(self.config, self.device, self.runs_dir, resume=self.resume, worlds=self.worlds)
        self.trainer, self.directory = prepared.trainer, prepared.directory
        self.thermal, self.notices, self.replay = prepared.thermal, prepared.notices, prepared.replay
        self.records = RecordBuffer()
        self.summary: dict | None = None
        self._stop_reason: str | None = None  # set from the UI thread, read by the training thread

    @property
    def track(self) -> str:
        return self.config.train.track

    @property
    def step(self) -> int:
        """The training step the run has reached (where it stopped, once it has)."""
        return self.trainer.progress.step

    @property
    def prepared_worlds(self) -> Worlds:
        """The run's prepared worlds (another track's run of the same data configuration can share them)."""
        return self.trainer.worlds

    @property
    def run_dir(self) -> Path:
        return self.directory.path

    def send(self, command: Command, source: str = "ui") -> None:
        """Queue a command; the run applies it before its next step (or at once while paused) and records
        ``source`` with it in ``events.jsonl``."""
        self.commands.put((command, source))

    def drain(self) -> list[dict]:
        return self.records.drain()

    def stop(self, reason: str = "stop") -> None:
        """Ask the run to checkpoint and return as soon as possible (also while paused).

        ``reason`` is "stop" (the user quit) or the name of the signal that ended the app ("SIGTERM", "SIGHUP").
        """
        if self._stop_reason is None:
            self._stop_reason = reason

    def run(self) -> dict:
        """Train to the end of the budget or until stopped; returns the summary. Blocks the calling thread."""
        loggers = logger_sinks(self.config, self.directory.path, self.resume.step if self.resume else None,
                               self.figures)
        loop = RunLoop(self.trainer, self.directory, [self.records, *loggers], commands=self.commands,
                       thermal=self.thermal,
                       should_stop=lambda: self._stop_reason, notices=self.notices, replay=self.replay,
                       threads=self.threads)
        self.summary = loop.run()
        return self.summary
