"""Where the dashboard's runs come from: live sessions trained in this process, or a run directory being tailed.

Both expose the same small interface to the app: the states to draw, ``poll()`` to take in new records,
``command()`` to change a run, and ``switch()`` between tracks (live only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from jepa_tui.config import Config, load_run_config
from jepa_tui.runs import JsonlTail
from jepa_tui.runs.catalog import list_runs
from jepa_tui.runs.files import writer_alive
from jepa_tui.threads import ThreadGovernor
from jepa_tui.training.control import Command, write_request
from jepa_tui.training.resume import ResumePoint
from jepa_tui.training.session import FigureMaker, ThreadedRun
from jepa_tui.ui.state import RunState

LIVE_STATES = frozenset({"starting", "training", "paused", "cooling"})


class LiveController:
    """Runs of one profile, one per track, trained on worker threads; only the active track trains.

    Switching track pauses the active run and starts (or resumes) the chosen track's own run, in its own run
    directory, with the same configuration otherwise.

    Args:
        config: the profile's resolved configuration; its track is the first active one.
        runs_dir: where run directories are created.
        device: training device.
        start_thread: called with a run to start training it on a worker thread (the app's thread worker).
        resume: continue this run (``--resume``) as the first active one instead of starting a new run.
        threads: the process's thread governor, shared by every track's run (jepa_tui.threads), or None.
        figures: what draws a run's figures for its loggers when it ends (``train.loggers``), or None.
    """

    live = True

    def __init__(self, config: Config, runs_dir: Path, device: torch.device,
                 start_thread: Callable[[ThreadedRun], None] | None = None, resume: ResumePoint | None = None,
                 threads: ThreadGovernor | None = None, figures: FigureMaker | None = None) -> None:
        self.config = config
        self.threads = threads
        self.figures = figures
        self.runs_dir = runs_dir
        self.device = device
        self.start_thread = start_thread
        self.runs: dict[str, ThreadedRun] = {}
        self.states: dict[str, RunState] = {}
        self.active = config.train.track
        self._create(self.active, resume)

    def _create(self, track: str, resume: ResumePoint | None = None) -> ThreadedRun:
        config = replace(self.config, train=replace(self.config.train, track=track))
        # The worlds depend on the data configuration only, which every track shares: build them once.
        worlds = next(iter(self.runs.values())).prepared_worlds if self.runs else None
        run = ThreadedRun(config, self.runs_dir, self.device, worlds, resume=resume, threads=self.threads,
                          figures=self.figures)
        state = RunState.from_config(config, run.directory.run_id)
        if resume is not None:  # show the history up to the checkpoint the run continues from
            state.read_history(run.directory)
        self.runs[track] = run
        self.states[track] = state
        return run

    def active_dir(self) -> Path:
        """The active run's directory."""
        return self.runs[self.active].directory.path

    def start(self, start_thread: Callable[[ThreadedRun], None]) -> None:
        """Start the active run's thread."""
        self.start_thread = start_thread
        start_thread(self.runs[self.active])

    def poll(self) -> bool:
        """Take the records every run produced since the last poll; True when any state changed."""
        changed = False
        for track, run in self.runs.items():
            for record in run.drain():
                self.states[track].ingest(record)
                changed = True
        return changed

    def command(self, command: Command) -> str | None:
        """Queue ``command`` for the active run (it always can act on it: None)."""
        self.runs[self.active].send(command)
        return None

    def switch(self, track: str) -> None:
        """Pause the active run and continue (or start) ``track``'s run."""
        if track == self.active:
            return
        self.runs[self.active].send(Command.PAUSE, "switch")
        self.active = track
        if track in self.runs:
            self.runs[track].send(Command.RESUME, "switch")
        else:
            run = self._create(track)
            if self.start_thread is not None:
                self.start_thread(run)

    def shutdown(self, reason: str = "stop") -> None:
        """Ask every run to checkpoint and stop ("stop": the user quit; or the signal's name)."""
        for run in self.runs.values():
            run.stop(reason)

    @property
    def runs_root(self) -> Path:
        """Where the run browser looks for runs."""
        return Path(self.runs_dir)

    def farewell(self) -> str:
        """What to print once the terminal is restored: each track's status, step, run directory and, unless it
        finished, the command that continues it."""
        lines = []
        for track, run in self.runs.items():
            state = self.states[track]
            step = run.step  # where it stopped (train records come only every 10 steps)
            line = f"track {track}: {state.status} at step {step}, run directory {run.run_dir}"
            if state.status != "done":
                line += f"; continue with: jepa-tui run --resume {run.run_dir}"
            lines.append(line)
        return "\n".join(lines)


class WatchController:
    """Shows a run directory written by another process (``jepa-tui train``); commands become request files.

    Given a folder of runs (a sweep directory, a runs folder) instead, it follows the most recently active run
    in it, and the run browser lists that folder's runs (``collection`` says how many).

    Raises:
        FileNotFoundError: when ``run_dir`` has no ``config.toml`` and holds no run directory.
        ConfigError: when the followed run's ``config.toml`` is not a valid configuration.
    """

    live = False

    def __init__(self, run_dir: Path) -> None:
        run_dir = Path(run_dir)
        self.root = run_dir.parent
        self.collection: int | None = None  # how many runs the watched folder holds, when it is not one run
        if not (run_dir / "config.toml").is_file() and run_dir.is_dir():
            infos = list_runs(run_dir)  # most recently active first
            if not infos:
                raise FileNotFoundError(f"'{run_dir}' is not a run directory (no config.toml) and holds none")
            self.root, self.collection = run_dir, len(infos)
            run_dir = Path(infos[0].path)
        self.attach(run_dir)

    def active_dir(self) -> Path:
        """The watched run's directory."""
        return self.run_dir

    @property
    def runs_root(self) -> Path:
        """Where the run browser looks for runs: the folder watched, or the one holding the watched run."""
        return self.root

    def attach(self, run_dir: Path) -> None:
        """Follow ``run_dir`` (the one being watched, or another chosen in the run browser)."""
        run_dir = Path(run_dir)
        if not (run_dir / "config.toml").is_file():
            raise FileNotFoundError(f"'{run_dir}' is not a run directory (no config.toml)")
        self.config = load_run_config(run_dir)
        self.run_dir = run_dir
        self.active = self.config.train.track
        self._restart()

    def _restart(self) -> None:
        """Forget what was read and read the run directory again from the start (without toasts for its past)."""
        self.states = {self.active: RunState.from_config(self.config, self.run_dir.name)}
        self.states[self.active].quiet = True
        self.tails = [JsonlTail(self.run_dir / "metrics.jsonl"), JsonlTail(self.run_dir / "events.jsonl")]

    def start(self, start_thread: Callable[[ThreadedRun], None]) -> None:
        """Nothing to start: another process trains."""

    def poll(self) -> bool:
        """Take in the records appended since the last poll (the ``end`` event carries the final status)."""
        changed = False
        state = self.states[self.active]
        for tail in self.tails:
            for record in tail.read():
                state.ingest(record)
                changed = True
            if tail.replaced:  # a resume rewrote the history: draw it again from the start
                self._restart()
                return self.poll() or True
        state.quiet = False  # the history is read: what comes next is news
        if state.status in LIVE_STATES and writer_alive(self.run_dir) is False:
            # the writer is gone without an end event (killed, or stopped by a full disk): say so, not "training"
            state.status = "not running"
            state.version += 1
            changed = True
        return changed

    def command(self, command: Command) -> str | None:
        """Write a request for the training process; returns why not (a toast) when the run cannot act on it: it
        has ended, its writer is gone, or its directory is."""
        state = self.states[self.active]
        if state.status not in LIVE_STATES:
            return (f"{command.value} not sent: the run is {state.status}; nothing reads requests until it is resumed "
                    f"(jepa-tui train --resume {self.run_dir})")
        if writer_alive(self.run_dir) is False:
            return f"{command.value} not sent: no process is training this run (killed?); resume it first"
        try:
            write_request(self.run_dir, command)
        except OSError as exc:
            return f"{command.value} not sent: cannot write to {self.run_dir} ({exc.strerror or exc})"
        return None

    def switch(self, track: str) -> None:
        """Watching follows one run directory; there is nothing to switch to."""

    def shutdown(self, reason: str = "stop") -> None:
        """Detach: the training process goes on."""

    def farewell(self) -> str:
        state = self.states[self.active]
        return f"detached from {self.run_dir} (track {state.track}, {state.status} at step {state.step}); the run " \
               "goes on in its own process" if state.status in LIVE_STATES else \
            f"detached from {self.run_dir} (track {state.track}, {state.status} at step {state.step})"
