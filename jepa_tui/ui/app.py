"""The dashboard app: one screen of six panels, a status line, a footer of keys and a help screen.

The app only sends commands and draws snapshots: records come from a controller (live sessions or a watched run
directory) which the app polls from a timer, redrawing the panels whose run changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from typing import Protocol

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from jepa_tui.formatting import format_duration
from jepa_tui.gpu import GpuSensor
from jepa_tui.training.control import Command
from jepa_tui.training.session import ThreadedRun
from jepa_tui.ui.panels import BufferPanel, EventsPanel, GpuPanel, LoraPanel, LossPanel, Panel, ShiftPanel
from jepa_tui.ui.state import RunState

TRACKS = ("A", "B", "C")
# Fraction of one core that rendering curves may take. With 1 redraw/s and 1.5 % the dashboard's main thread used
# 3-4 % of a core and training kept 0.98 of its headless speed (2/s and 3 %: 5-8 % and 0.92; tui_overhead.py).
UI_BUDGET = 0.015
EXIT_TERMINATED = 143  # SIGTERM, and SIGHUP (an SSH drop), which behaves as SIGTERM

HELP = """\
[b]Loss[/b]: the training objective and its prediction and variance-hinge terms, per 10-step mean, raw and smoothed.
[b]Shift-world error[/b]: D_shift at n = 50 shift-world experiences at each evaluation (lower is better, 1.0 is the \
persistence prediction), the peak marked, d_base on the base world, other tracks overlaid; sigma_z below (collapse \
under 0.5).
[b]Experience buffer[/b]: how many of the FIFO's slots hold boundary-event transitions, and whether it is frozen.
[b]Boundary events[/b]: how often surprisal crossed μ + κσ, per 100 steps, with the detector's current μ, σ and κ.
[b]LoRA deltas[/b]: batch-mean Frobenius norms of Track C's per-sample weight deltas ΔW1 and ΔW2.
[b]GPU[/b]: NVML temperature and slowdown threshold, power, SM clock, utilisation, memory and throttle reasons.

Keys: p pause/resume · b freeze/unfreeze buffer · e freeze/unfreeze EMA target · f dual freeze · 1 2 3 or t \
switch track · s save a checkpoint · q quit (live runs checkpoint first; watch only detaches) · ? this help.
Press any key to close."""


class Controller(Protocol):
    live: bool
    active: str
    states: dict[str, RunState]

    def start(self, start_thread) -> None: ...

    def poll(self) -> bool: ...

    def command(self, command: Command) -> None: ...

    def switch(self, track: str) -> None: ...

    def shutdown(self, reason: str = "stop") -> None: ...

    def farewell(self) -> str: ...


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; height: auto; max-height: 90%; border: round $accent;
                                  background: $surface; padding: 1 2; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(HELP)

    def on_key(self) -> None:
        self.dismiss()


def status_line(state: RunState) -> str:
    """The one-line status of the active run."""
    if state.budget_steps:
        budget = f"step {state.step}/{state.budget_steps}"
    else:
        budget = f"step {state.step}  {format_duration(state.elapsed)}/{format_duration(state.budget_seconds or 0)}"
    eta = "-" if state.eta_seconds is None else format_duration(state.eta_seconds)
    flags = [state.status]
    if state.buffer_frozen:
        flags.append("buffer frozen")
    if state.ema_frozen:
        flags.append("EMA frozen")
    # States first: on a narrow terminal the end of the line is what gets cut.
    return (f"[b]{' · '.join(flags)}[/b]  Track {state.track}  {budget}  {state.steps_per_s:.1f} steps/s  "
            f"elapsed {format_duration(state.elapsed)}  ETA {eta}  lr {state.lr:.2e}  τ {state.ema_tau:.5f}  "
            f"{state.run_id}")


class Dashboard(App[None]):
    """The jepa-tui dashboard.

    Args:
        controller: where runs come from (live or watched).
        sensor: GPU sensor sampled once a second; None shows why there is no GPU panel data.
        redraw_hz: how often changed panels are redrawn (1 by default: train records come every 10 steps).
        gpu_interval: seconds between GPU samples (1 by default); None samples only when asked (tests).
    """

    TITLE = "jepa-tui"
    CSS = """
    #status { height: 1; padding: 0 1; background: $boost; }
    #panels { grid-size: 3 2; grid-gutter: 0 1; height: 1fr; }
    """
    BINDINGS = [
        Binding("p", "pause", "pause"),
        Binding("b", "freeze_buffer", "buffer"),
        Binding("e", "freeze_ema", "EMA"),
        Binding("f", "dual_freeze", "dual freeze"),
        Binding("1", "track('A')", "A", show=False),
        Binding("2", "track('B')", "B", show=False),
        Binding("3", "track('C')", "C", show=False),
        Binding("t", "next_track", "track"),
        Binding("s", "save", "save"),
        Binding("q", "quit_app", "quit"),
        Binding("question_mark", "help", "help"),
    ]

    def __init__(self, controller: Controller, sensor: GpuSensor | None = None, redraw_hz: float = 1.0,
                 gpu_interval: float | None = 1.0) -> None:
        super().__init__()
        self.controller = controller
        self.sensor = sensor
        self.redraw_hz = redraw_hz
        self.gpu_interval = gpu_interval
        self._drawn: dict[str, int] = {}
        self._next_curves = 0.0  # monotonic time before which curves are not redrawn
        self.render_seconds = 0.0  # time the plots spent rendering since the last curve redraw

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        with Grid(id="panels"):
            yield LossPanel()
            yield ShiftPanel()
            yield BufferPanel()
            yield EventsPanel()
            yield LoraPanel()
            yield GpuPanel(unavailable=self.sensor.unavailable if self.sensor else "no GPU sensor")
        yield Footer()

    def on_mount(self) -> None:
        # SIGTERM and an SSH drop (SIGHUP) checkpoint and end the process; not available off the main thread
        # (tests) or on Windows.
        for name in ("SIGTERM", "SIGHUP"):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError, AttributeError):
                asyncio.get_running_loop().add_signal_handler(getattr(signal, name), self.terminate, name)
        self.controller.start(self._start_thread)
        self.set_interval(1.0 / self.redraw_hz, self.refresh_panels)
        if self.sensor is not None and not self.sensor.unavailable and self.gpu_interval:
            self.set_interval(self.gpu_interval, self.sample_gpu)
        self.refresh_panels()

    def _start_thread(self, run: ThreadedRun) -> None:
        self.run_worker(run.run, thread=True, exit_on_error=False, group="training", name=f"train-{run.track}")

    # -- drawing ---------------------------------------------------------------------------------------------
    @property
    def state(self) -> RunState:
        """The active run's state, brought up to date first (key handlers decide toggles from it)."""
        self.controller.poll()
        return self.controller.states[self.controller.active]

    def refresh_panels(self, force: bool = False) -> None:
        """Take in new records; update the status line, and redraw changed panels within the UI's CPU budget.

        Rendering the curves costs tens of milliseconds of Python that the training thread would otherwise use,
        so curves are redrawn only once the time spent rendering them stays under ``UI_BUDGET`` of one core.
        """
        self.controller.poll()
        versions = {t: s.version for t, s in self.controller.states.items()}
        if not force and versions == self._drawn:
            return
        state = self.controller.states[self.controller.active]
        # One fixed-height line: repaint it without a layout pass over the whole screen.
        self.query_one("#status", Static).update(status_line(state), layout=False)
        now = time.monotonic()
        if not force and now < self._next_curves:
            return
        spent, self.render_seconds = self.render_seconds, 0.0
        self._next_curves = now + spent / UI_BUDGET
        self._drawn = versions
        others = {t: s for t, s in self.controller.states.items() if t != state.track}
        for panel in self.query(Panel):
            panel.update(state, others, force)

    def on_resize(self) -> None:
        """Curves are downsampled to the panel width: redraw at the new size."""
        self.call_after_refresh(self.refresh_panels, True)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A training thread that raised shows as failed, with its error, instead of vanishing."""
        worker = event.worker
        if worker.group == "training" and event.state == WorkerState.ERROR:
            track = worker.name.removeprefix("train-")
            self.controller.states[track].ingest({"kind": "failed", "error": repr(worker.error)})
            self.notify(f"Track {track} training failed: {worker.error!r}", severity="error", timeout=30)
            self.refresh_panels(force=True)

    def sample_gpu(self) -> None:
        if self.sensor is not None:
            self.query_one(GpuPanel).show(self.sensor.sample())

    # -- commands --------------------------------------------------------------------------------------------
    def action_pause(self) -> None:
        self.controller.command(Command.RESUME if self.state.status == "paused" else Command.PAUSE)

    def action_freeze_buffer(self) -> None:
        self.controller.command(Command.UNFREEZE_BUFFER if self.state.buffer_frozen else Command.FREEZE_BUFFER)

    def action_freeze_ema(self) -> None:
        self.controller.command(Command.UNFREEZE_EMA if self.state.ema_frozen else Command.FREEZE_EMA)

    def action_dual_freeze(self) -> None:
        """Freeze buffer and EMA together (the paper's dual freeze); when both are frozen, unfreeze both."""
        both = self.state.buffer_frozen and self.state.ema_frozen
        for command in ((Command.UNFREEZE_BUFFER, Command.UNFREEZE_EMA) if both else
                        (Command.FREEZE_BUFFER, Command.FREEZE_EMA)):
            self.controller.command(command)

    def action_track(self, track: str) -> None:
        if not self.controller.live:
            self.notify("watch follows one run directory; start `jepa-tui run` to switch tracks", timeout=3)
            return
        self.controller.switch(track)
        self.refresh_panels(force=True)

    def action_next_track(self) -> None:
        self.action_track(TRACKS[(TRACKS.index(self.controller.active) + 1) % len(TRACKS)])

    def action_save(self) -> None:
        self.controller.command(Command.SAVE)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_quit_app(self) -> None:
        self.shutdown()

    def on_unmount(self) -> None:
        """However the app ends (q, SIGTERM, SIGHUP, an error), live runs are told to stop, so no thread outlives it."""
        self.controller.shutdown()

    @work(exclusive=True, group="quit")
    async def terminate(self, signal_name: str = "SIGTERM") -> None:
        """SIGTERM, or the terminal went away (SIGHUP): checkpoint and stop the runs, then end the process.

        Textual's own shutdown writes to the terminal to restore it and blocks forever once the terminal is gone,
        so after the runs have saved their state the process exits directly (code 143 = 128 + SIGTERM).
        """
        self.controller.shutdown(signal_name)
        training = [w for w in self.workers if w.group == "training"]
        if training:
            await self.workers.wait_for_complete(training)
        os._exit(EXIT_TERMINATED)

    @work(exclusive=True, group="quit")
    async def shutdown(self) -> None:
        """Live runs checkpoint and stop before the app exits; watching only detaches."""
        self.controller.shutdown()
        self.query_one("#status", Static).update("stopping: saving checkpoints…")
        training = [w for w in self.workers if w.group == "training"]
        if training:  # an empty list would mean "every worker", this one included
            await self.workers.wait_for_complete(training)
        # Textual prints the message once the terminal is restored (a plain print after run() can be lost).
        self.exit(message=self.controller.farewell())
