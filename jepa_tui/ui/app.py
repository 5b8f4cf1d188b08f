"""The dashboard app: a status line, panels laid out for the terminal's size, a footer of keys, a help screen and a
run browser.

The app only sends commands and draws snapshots: records come from a controller (live sessions or a watched run
directory) which the app polls from a timer. Panels fill the screen in a grid of up to 3 × 2; on a smaller terminal
they are shown a page at a time (tab flips pages) rather than squeezed below a legible size, and any panel can be
zoomed to the whole screen (z).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import time
from pathlib import Path
from typing import Protocol

from rich.text import Text
from textual import events, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from jepa_tui.config.tracks import REGISTRY
from jepa_tui.exits import EXIT_TERMINATED
from jepa_tui.formatting import format_duration
from jepa_tui.gpu import GpuSensor
from jepa_tui.system import PsutilSensor
from jepa_tui.training.control import Command
from jepa_tui.training.session import ThreadedRun
from jepa_tui.ui.keys import RunKeys
from jepa_tui.ui.panels import (
    SMOOTHING,
    BufferPanel,
    EventsPanel,
    GpuPanel,
    LossPanel,
    ModulationPanel,
    Panel,
    ShiftPanel,
    SystemPanel,
)
from jepa_tui.ui.screens import HelpScreen, TextScreen, config_text, event_log_text
from jepa_tui.ui.state import RATE_WINDOW_S, RunState

# Fraction of one core that rendering curves may take. With 1 redraw/s and 1.5 % the dashboard's main thread used
# 3-4 % of a core and training kept 0.98 of its headless speed (2/s and 3 %: 5-8 % and 0.92; tui_overhead.py).
UI_BUDGET = 0.015
MIN_PANEL_WIDTH = 38  # columns: below this a chart's ticks and legend no longer fit
MIN_PANEL_HEIGHT = 14  # rows, border and note included
CHROME_ROWS = 3  # status line, page line, footer
EVAL_TOAST_GAP = 20.0  # seconds: at most one evaluation toast this often

class Controller(Protocol):
    live: bool
    active: str
    states: dict[str, RunState]
    runs_root: Path

    def start(self, start_thread) -> None: ...

    def poll(self) -> bool: ...

    def command(self, command: Command) -> str | None: ...  # why it was not sent, or None

    def switch(self, track: str) -> None: ...

    def shutdown(self, reason: str = "stop") -> None: ...

    def farewell(self) -> str: ...

    def active_dir(self) -> Path: ...  # the active (or watched) run's directory

    def attach(self, run_dir: Path) -> None: ...  # watch: follow another run (a live session refuses)


def status_line(state: RunState, watching: bool = False) -> str:
    """The one-line status of the active run (``watching``: another process trains it)."""
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
    who = "watching · " if watching else ""
    d_shift = "-" if state.last_d_shift is None else f"{state.last_d_shift:.4f}"
    # What identifies and judges the run first (state, track, step, D_shift, run id): on a narrow terminal the end
    # of the line is what gets cut.
    return (f"[b]{who}{' · '.join(flags)}[/b]  Track {state.track}  {budget}  D_shift {d_shift}  {state.run_id}  "
            f"{state.steps_per_s:.1f} steps/s (last {RATE_WINDOW_S:.0f} s)  ETA {eta}  "
            f"elapsed {format_duration(state.elapsed)}  "
            f"lr {state.lr:.2e}  τ {state.ema_tau:.5f}  shift: {state.shift or '?'}"
            f"{f'  training in {state.world}' if state.world else ''}")


def grid_shape(width: int, height: int) -> tuple[int, int]:
    """(columns, rows) of panels that stay legible in a ``width`` × ``height`` terminal."""
    columns = max(1, min(3, width // MIN_PANEL_WIDTH))
    rows = 2 if height - CHROME_ROWS >= 2 * MIN_PANEL_HEIGHT else 1
    return columns, rows


class Dashboard(RunKeys, App[None]):
    """The jepa-tui dashboard.

    Args:
        controller: where runs come from (live or watched).
        sensor: GPU sensor sampled once a second; without a usable GPU the CPU and memory panel is shown instead.
        redraw_hz: how often changed panels are redrawn (1 by default: train records come every 10 steps).
        gpu_interval: seconds between GPU (or CPU) samples (1 by default); None samples only when asked (tests).
        system_sensor: the CPU and memory sensor (psutil by default).
        screenshot_dir: where the x key saves SVG screenshots (default: the runs folder).
    """

    TITLE = "jepa-tui"
    CSS = """
    #status { height: 1; padding: 0 1; background: $boost; }
    #pages { height: 1; padding: 0 1; color: $text-muted; }
    #panels { grid-size: 3 2; grid-gutter: 0 1; height: 1fr; }
    /* toasts at the top right under the status line, one row per line of text (over the page line, a panel's
       title and notes), never over an axis */
    ToastRack { dock: top; align: right top; margin-top: 1; margin-bottom: 0; }
    Toast { width: auto; max-width: 70%; padding: 0 1; margin-top: 0; }
    """
    BINDINGS = [  # q and ? first: the footer is cut from the right on a narrow terminal
        Binding("q", "quit_app", "quit"),
        Binding("question_mark", "help", "help"),
        Binding("p", "pause", "pause"),
        Binding("b", "freeze_buffer", "buffer"),
        Binding("e", "freeze_ema", "EMA"),
        Binding("f", "dual_freeze", "dual freeze"),
        *(Binding(t.key, f"track('{t.letter}')", t.letter, show=False) for t in REGISTRY.values()),
        Binding("t", "next_track", "track"),
        Binding("s", "save", "save"),
        Binding("tab", "page(1)", "page", priority=True),
        Binding("shift+tab", "page(-1)", "previous page", show=False, priority=True),
        Binding("z,enter", "zoom", "zoom"),
        Binding("l", "log_scale", "log scale", show=False),
        Binding("plus,equals_sign", "smoothing(1)", "smoother", show=False),
        Binding("minus", "smoothing(-1)", "rougher", show=False),
        Binding("r", "browse", "runs"),
        Binding("v", "event_log", "events", show=False),
        Binding("c", "config", "config", show=False),
        Binding("x", "screenshot_file", "screenshot", show=False),
    ]

    def __init__(self, controller: Controller, sensor: GpuSensor | None = None, redraw_hz: float = 1.0,
                 gpu_interval: float | None = 1.0, system_sensor: PsutilSensor | None = None,
                 screenshot_dir: Path | None = None) -> None:
        super().__init__()
        self.controller = controller
        self.sensor = sensor
        self.use_gpu = sensor is not None and not sensor.unavailable
        self.system_sensor = system_sensor if system_sensor is not None or self.use_gpu else PsutilSensor()
        self.redraw_hz = redraw_hz
        self.gpu_interval = gpu_interval
        self.screenshot_dir = screenshot_dir
        self._drawn: dict[str, int] = {}
        self._next_curves = 0.0  # monotonic time before which curves are not redrawn
        self.render_seconds = 0.0  # time the plots spent rendering since the last curve redraw
        self._last_eval_toast = -float("inf")
        self.page = 0
        self.zoomed: int | None = None  # index of the panel shown alone, or None
        self.shape = (3, 2)
        self.overlays: dict[str, RunState] = {}  # runs chosen in the run browser: name ("C s43") -> state
        self.overlaid: dict[str, str] = {}  # their run directories -> their names
        self._expected: dict[tuple[str, str], tuple[bool, float]] = {}  # toggles sent, not yet in the records

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        yield Static(id="pages")
        with Grid(id="panels"):
            yield LossPanel()
            yield ShiftPanel()
            yield BufferPanel()
            yield EventsPanel()
            yield ModulationPanel()
            if self.use_gpu:
                yield GpuPanel()
            else:
                why = self.system_sensor.unavailable if self.system_sensor is not None else "no CPU sensor"
                yield SystemPanel(unavailable=why)
        yield Footer()

    def on_mount(self) -> None:
        for panel in self.panels:
            panel.overlays = self.overlays  # one dict: every curve panel draws the same overlays
        # SIGTERM and an SSH drop (SIGHUP) checkpoint and end the process; not available off the main thread
        # (tests) or on Windows.
        for name in ("SIGTERM", "SIGHUP"):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError, AttributeError):
                asyncio.get_running_loop().add_signal_handler(getattr(signal, name), self.terminate, name)
        self.controller.poll()
        for state in self.controller.states.values():
            state.take_notices()  # what happened before the dashboard opened is history, not news
        self.controller.start(self._start_thread)
        collection = getattr(self.controller, "collection", None)
        if collection:  # watch on a sweep directory or a runs folder
            self.notify(f"{collection} runs under {self.controller.runs_root}: following "
                        f"{self.controller.active_dir().name}, the most recently active; r lists them, w watches "
                        "another, enter overlays one", timeout=12)
        self.set_interval(1.0 / self.redraw_hz, self.refresh_panels)
        if self.gpu_interval:
            self.set_interval(self.gpu_interval, self.sample_gpu)
        self.relayout()
        self.refresh_panels()

    def _start_thread(self, run: ThreadedRun) -> None:
        self.run_worker(run.run, thread=True, exit_on_error=False, group="training", name=f"train-{run.track}")

    # -- layout ----------------------------------------------------------------------------------------------
    @property
    def panels(self) -> list[Panel]:
        return list(self.query(Panel))

    def pages(self) -> list[list[int]]:
        """Panel indices per page for the current grid shape."""
        per_page = self.shape[0] * self.shape[1]
        indices = list(range(len(self.panels)))
        return [indices[i:i + per_page] for i in range(0, len(indices), per_page)]

    def visible(self) -> list[int]:
        """The panels on screen now: the zoomed one, or the current page."""
        if self.zoomed is not None:
            return [self.zoomed]
        pages = self.pages()
        self.page %= len(pages)
        return pages[self.page]

    def relayout(self, width: int | None = None, height: int | None = None) -> None:
        """Show the panels of the current page (or the zoomed one) in a grid that fits the terminal."""
        self.shape = grid_shape(width or self.size.width, height or self.size.height)
        shown = self.visible()
        columns = 1 if self.zoomed is not None else min(self.shape[0], len(shown))
        rows = math.ceil(len(shown) / columns)
        grid = self.query_one("#panels", Grid)
        grid.styles.grid_size_columns = columns
        grid.styles.grid_size_rows = rows
        for i, panel in enumerate(self.panels):
            panel.display = i in shown
        pages = self.pages()
        line = self.query_one("#pages", Static)
        if self.zoomed is not None:
            line.update(f"zoomed: {self.panels[self.zoomed].TITLE}  ·  tab next panel  ·  z back to the grid")
        elif len(pages) > 1:
            line.update(self._page_line(pages, (width or self.size.width) - 2))  # its padding
        else:
            line.update("z zoom a panel · r runs · ? help")
        self.refresh_bindings()

    def _page_line(self, pages: list[list[int]], width: int) -> str:
        """Every page by number and the names of its panels, the current one highlighted: titles where they fit,
        short names where not, numbers alone on the narrowest terminals."""
        def line(name, hint: str, others: bool = True) -> str:
            return " ".join((f"[reverse] {n + 1} [/]" if n == self.page else f" {n + 1} ")
                            + " · ".join(name(self.panels[i]) for i in page if others or n == self.page)
                            for n, page in enumerate(pages)) + hint

        for name, hint in ((lambda p: p.TITLE.split(" (")[0], "   tab next page · z zoom"),
                           (lambda p: p.SHORT, "   tab page · z zoom"), (lambda p: p.SHORT, "")):
            text = line(name, hint)
            if len(Text.from_markup(text).plain) <= width:
                return text
        return line(lambda p: p.SHORT, "", others=False)

    def on_resize(self, event: events.Resize) -> None:
        """Lay the panels out for the new size; curves are downsampled to the panel width: redraw them."""
        self.relayout(event.size.width, event.size.height)
        self.call_after_refresh(self.refresh_panels, True)

    def action_page(self, direction: int) -> None:
        if self.zoomed is not None:
            self.zoomed = (self.zoomed + direction) % len(self.panels)
        else:
            self.page = (self.page + direction) % len(self.pages())
        self.relayout()
        self.call_after_refresh(self.refresh_panels, True)

    def action_zoom(self) -> None:
        self.zoomed = None if self.zoomed is not None else self.visible()[0]
        self.relayout()
        self.call_after_refresh(self.refresh_panels, True)

    # -- drawing ---------------------------------------------------------------------------------------------
    @property
    def state(self) -> RunState:
        """The active run's state, brought up to date first (key handlers decide toggles from it)."""
        self.controller.poll()
        return self.controller.states[self.controller.active]

    def refresh_panels(self, force: bool = False) -> None:
        """Take in new records; redraw the status line and every visible panel's notes now, and the curves within
        the UI's CPU budget.

        Rendering the curves costs tens of milliseconds of Python that the training thread would otherwise use,
        so curves are redrawn only once the time spent rendering them stays under ``UI_BUDGET`` of one core.
        """
        self.controller.poll()
        for state in self.controller.states.values():
            for severity, text in state.take_notices():
                if " evaluated at step " in text:  # evaluations can come every second on a tiny model
                    if time.monotonic() - self._last_eval_toast < EVAL_TOAST_GAP:
                        continue
                    self._last_eval_toast = time.monotonic()
                self.notify(text, severity=severity, timeout=6)
        versions = {t: s.version for t, s in self.controller.states.items()}
        if not force and versions == self._drawn:
            return
        state = self.controller.states[self.controller.active]
        # One fixed-height line: repaint it without a layout pass over the whole screen.
        self.query_one("#status", Static).update(status_line(state, not self.controller.live), layout=False)
        now = time.monotonic()
        curves = force or now >= self._next_curves
        if curves:
            spent, self.render_seconds = self.render_seconds, 0.0
            self._next_curves = now + spent / UI_BUDGET
            self._drawn = versions
        others = {t: s for t, s in self.controller.states.items() if t != state.track}
        shown = set(self.visible())
        for i, panel in enumerate(self.panels):
            if i in shown:
                panel.update(state, others, force, curves=curves)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A training thread that raised shows as failed, with its error, instead of vanishing."""
        worker = event.worker
        if worker.group == "training" and event.state == WorkerState.ERROR:
            track = worker.name.removeprefix("train-")
            self.controller.states[track].ingest({"kind": "failed", "error": repr(worker.error)})
            self.notify(f"Track {track} training failed: {worker.error!r}", severity="error", timeout=30)
            self.refresh_panels(force=True)

    def sample_gpu(self) -> None:
        """A GPU sample, or a CPU and memory sample on a machine without a usable GPU."""
        if self.use_gpu and self.sensor is not None:
            self.query_one(GpuPanel).show(self.sensor.sample())
        elif self.system_sensor is not None:
            self.query_one(SystemPanel).show(self.system_sensor.sample(), self.state)

    # -- commands --------------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Watching follows one run: no track keys there; the page key only when there are pages."""
        if action in ("track", "next_track"):
            return self.controller.live
        if action == "page":
            return self.zoomed is not None or len(self.pages()) > 1
        return True

    def action_log_scale(self) -> None:
        """l: a log or linear y axis on the curve panels on screen (the zoomed one, or the page's)."""
        for panel in self._curve_panels():
            panel.log_scale = not panel.log_scale
            panel.show_scale()
        self.refresh_panels(force=True)

    def action_smoothing(self, direction: int) -> None:
        """+ / -: smoother or rougher curves (an EMA of every point) on the curve panels on screen."""
        for panel in self._curve_panels():
            index = SMOOTHING.index(panel.smoothing) if panel.smoothing in SMOOTHING else len(SMOOTHING) - 1
            panel.smoothing = SMOOTHING[max(0, min(len(SMOOTHING) - 1, index + direction))]
            panel.show_scale()
        self.refresh_panels(force=True)

    def _curve_panels(self) -> list:
        return [self.panels[i] for i in self.visible() if self.panels[i].CURVES]

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_event_log(self) -> None:
        """v: the active run's event log (interventions, requests, evaluations, checkpoints, threads, worlds)."""
        state = self.controller.states[self.controller.active]
        self.push_screen(TextScreen(event_log_text(state), f"event log · Track {state.track} · {state.run_id}",
                                    at_end=True, markup=False))

    def action_config(self) -> None:
        """c: the active run's resolved configuration."""
        self.push_screen(TextScreen(config_text(self.controller.active_dir()), "configuration",
                                    markup=False))

    def action_screenshot_file(self) -> None:
        """Save an SVG of the screen into the runs folder's ``screenshots/`` (not among the run directories) and say
        where."""
        folder = Path(self.screenshot_dir or self.controller.runs_root) / "screenshots"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = self.save_screenshot(path=str(folder))
        except OSError as exc:
            self.notify(f"cannot save a screenshot in {folder}: {exc.strerror or exc}", severity="error")
            return
        self.notify(f"screenshot saved: {path}", timeout=6)

    def get_system_commands(self, screen):
        """Textual's palette commands, with Screenshot saving where the x key does (Textual's own saves to a
        Downloads folder, which servers do not have)."""
        for command in super().get_system_commands(screen):
            if command.title == "Screenshot":
                yield command.__class__(command.title, "Save an SVG screenshot in the runs folder",
                                        self.action_screenshot_file)
            else:
                yield command

    def action_quit_app(self) -> None:
        self.shutdown()

    def on_unmount(self) -> None:
        """However the app ends (q, SIGTERM, SIGHUP, an error), live runs are told to stop, so no thread outlives it;
        an app that dies of an exception records it in each run (status "crashed", the error in ``events.jsonl`` and
        ``summary.json``), so a crash is never mistaken for a quit."""
        crash = getattr(self, "_exception", None)
        self.controller.shutdown(f"crashed: {type(crash).__name__}: {crash}" if crash is not None else "stop")

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
        """Live runs checkpoint and stop before the app exits; watching only detaches. The command prints the
        farewell (each run's status, step and directory) once the terminal is restored."""
        self.controller.shutdown()
        self.query_one("#status", Static).update("stopping: saving checkpoints…")
        training = [w for w in self.workers if w.group == "training"]
        if training:  # an empty list would mean "every worker", this one included
            await self.workers.wait_for_complete(training)
        self.controller.poll()  # the runs' end records: the farewell states how each one stopped
        self.exit()
