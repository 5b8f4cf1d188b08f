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
from textual.containers import Grid, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static
from textual.worker import Worker, WorkerState

from jepa_tui.config import ConfigError, load_run_config
from jepa_tui.config.tracks import REGISTRY, TRACKS
from jepa_tui.exits import EXIT_TERMINATED
from jepa_tui.formatting import format_duration
from jepa_tui.gpu import GpuSensor
from jepa_tui.runs import RunDirectory, RunDirError
from jepa_tui.runs.catalog import RUN_COLUMNS, RunInfo, list_runs, run_row
from jepa_tui.runs.jsonl import read_regular_file
from jepa_tui.system import PsutilSensor
from jepa_tui.training.control import Command
from jepa_tui.training.session import ThreadedRun
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
from jepa_tui.ui.state import RATE_WINDOW_S, RunState

# Fraction of one core that rendering curves may take. With 1 redraw/s and 1.5 % the dashboard's main thread used
# 3-4 % of a core and training kept 0.98 of its headless speed (2/s and 3 %: 5-8 % and 0.92; tui_overhead.py).
UI_BUDGET = 0.015
MIN_PANEL_WIDTH = 38  # columns: below this a chart's ticks and legend no longer fit
MIN_PANEL_HEIGHT = 14  # rows, border and note included
CHROME_ROWS = 3  # status line, page line, footer
EVAL_TOAST_GAP = 20.0  # seconds: at most one evaluation toast this often
EXPECT_S = 5.0  # seconds a toggle sent is assumed to take effect before the run's records show it

HELP = """\
[b]Loss[/b]: the training objective and its prediction and variance-hinge terms, per 10-step mean, raw under an \
EMA. On every curve panel on screen, l switches a log y scale and + / - the smoothing (an EMA of every point); \
the bottom border says which.
[b]Shift-world error[/b]: D_shift at n = 50 shift-world experiences at each evaluation (lower is better, 1.0 is the \
persistence prediction), the peak (*), d_base on the base world, other tracks (marked A–E) and runs chosen in the \
run browser (1, 2, ...) overlaid; σ_z below (collapse under 0.5), or in the note on a small terminal.
[b]Experience buffer[/b]: how many of the FIFO's slots hold boundary-event transitions, and whether it is frozen.
[b]Boundary events[/b]: how often surprisal crossed μ + κσ, per 100 steps, with the detector's current μ, σ and κ.
[b]Modulation[/b]: how strongly experience changes the predictor (batch-mean Frobenius norms): {modulation}.
[b]GPU[/b] (NVML temperature, power, clocks, utilisation, memory, throttling) or, without an NVIDIA GPU, \
[b]CPU and memory[/b]: the training process's and the machine's CPU use, steal, RSS and RAM, threads.

Marks on a lane under each plot's curves, each starting at its step: bF/bU buffer frozen/unfrozen, eF/eU EMA \
frozen/unfrozen, P/R paused/resumed, S>/S< track switched away/back, T/T< thermal pause/resume, Z suspended, R* \
restarted from a checkpoint, F! forced resume, W3 the training stream moved to world 3 ([data.stream]); "bF+3": \
bF and three more marks too close to print apart. "N points above ↑" in a plot's title: values beyond its \
range, drawn at its edge.

Keys: p pause/resume · b freeze/unfreeze buffer · e freeze/unfreeze EMA target · f dual freeze · {keys} or t \
switch track (run only) · s save a checkpoint (kept) · tab/shift+tab next/previous page · z or enter zoom a panel · \
l log scale · + - smoothing · r run browser · v event log · c configuration · x screenshot (SVG) · q quit (run: \
every run checkpoints first; watch only detaches) · ? this help.
Arrows, page keys or j/k scroll this help; escape, q or ? close it.""".format(
    modulation=", ".join(f"Track {t.letter}'s {' and '.join(t.modulation_labels)}" for t in REGISTRY.values()
                         if t.modulation_labels),
    keys=" ".join(t.key for t in REGISTRY.values()))


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


class TextScreen(ModalScreen[None]):
    """A page of text over the dashboard: scrolls (arrows, page keys, j/k, home/end), closes on escape, q or the
    key that opens one (?, v, c). ``at_end``: open scrolled to the end (the event log's newest lines)."""

    DEFAULT_CSS = """
    TextScreen { align: center middle; }
    TextScreen > VerticalScroll { width: 90%; height: auto; max-height: 90%; border: round $accent;
                                  background: $surface; padding: 1 2; }
    """
    BINDINGS = [Binding("escape,q,question_mark,v,c", "close", "close")]  # the arrows, page keys and j/k scroll

    def __init__(self, text: str, title: str = "", at_end: bool = False, markup: bool = True) -> None:
        super().__init__()
        self.text, self.title, self.at_end, self.markup = text, title, at_end, markup

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = self.title
            scroll.border_subtitle = "arrows, j/k or page keys scroll · escape closes"
            yield Static(self.text, markup=self.markup)

    def on_mount(self) -> None:
        scroll = self.query_one(VerticalScroll)
        scroll.focus()
        if self.at_end:
            self.call_after_refresh(scroll.scroll_end, animate=False)

    def action_close(self) -> None:
        self.dismiss()

    def on_key(self, event) -> None:
        scroll = self.query_one(VerticalScroll)
        if event.key == "j":
            scroll.scroll_down(animate=False)
        elif event.key == "k":
            scroll.scroll_up(animate=False)


class HelpScreen(TextScreen):
    """The keys and what the panels show."""

    def __init__(self) -> None:
        super().__init__(HELP, "help")


def event_log_text(state: RunState) -> str:
    """The active run's event log: one line per event and evaluation, with its step, oldest first."""
    if not state.log:
        return "Nothing has happened yet besides training."
    width = max(len(str(step)) for step, _ in state.log)
    return "\n".join(f"{'' if step is None else step:>{width}}  {line}" for step, line in state.log)


def config_text(run_dir: Path | None) -> str:
    """The active run's resolved configuration (its directory's config.toml), or why it cannot be shown."""
    if run_dir is None:
        return "This dashboard has no run directory to read a configuration from."
    path = Path(run_dir) / "config.toml"
    try:  # the runs' bounded reader: a FIFO or a link to a device is refused, never opened to block the dashboard
        return f"# {path}\n" + read_regular_file(path).decode("utf-8", errors="replace")[:200_000]
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"


class RunBrowser(ModalScreen[tuple[str, RunInfo] | None]):
    """The runs under the dashboard's runs folder, as ``jepa-tui runs`` lists them. Enter overlays (or removes)
    the highlighted run on every curve panel (the "on curves" column names it); w watches it (watch only); escape
    closes; ← → scroll the columns that do not fit."""

    DEFAULT_CSS = """
    RunBrowser { align: center middle; }
    RunBrowser > VerticalScroll { width: 96%; height: 90%; border: round $accent; background: $surface; }
    RunBrowser DataTable { height: 1fr; }
    """
    BINDINGS = [Binding("escape,q", "close", "close"), Binding("enter", "overlay", "overlay on D_shift"),
                Binding("w", "watch", "watch this run")]

    def __init__(self, root: Path, can_watch: bool, overlaid: dict[str, str] | None = None) -> None:
        super().__init__()
        self.root = root
        self.can_watch = can_watch
        self.overlaid = overlaid or {}  # run directory -> its mark and name on the curves ("1 C s43")
        self.infos: list[RunInfo] = []

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(f"runs under {self.root}", classes="note", id="browser-note")
            yield DataTable(cursor_type="row", zebra_stripes=True)
            yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(RUN_COLUMNS[0], "on curves", *RUN_COLUMNS[1:])
        try:
            self.infos = list_runs(self.root)
        except FileNotFoundError:
            self.infos = []
        for info in self.infos:
            cells = run_row(info)
            table.add_row(cells[0], self.overlaid.get(info.path, ""), *cells[1:])
        table.focus()
        self.call_after_refresh(self._hint)

    def _hint(self) -> None:
        """Say so when the columns are wider than the screen (the table scrolls sideways)."""
        table = self.query_one(DataTable)
        if table.virtual_size.width > table.size.width:
            self.query_one("#browser-note", Static).update(
                f"runs under {self.root}  ·  ← → more columns ({len(table.columns)})")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.can_watch if action == "watch" else True

    def _chosen(self) -> RunInfo | None:
        table = self.query_one(DataTable)
        return self.infos[table.cursor_row] if self.infos and 0 <= table.cursor_row < len(self.infos) else None

    def action_close(self) -> None:
        self.dismiss(None)

    def action_overlay(self) -> None:
        info = self._chosen()
        self.dismiss(("overlay", info) if info else None)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a row (the table takes the key itself and says which row)."""
        event.stop()
        self.action_overlay()

    def action_watch(self) -> None:
        info = self._chosen()
        self.dismiss(("watch", info) if info else None)


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


class Dashboard(App[None]):
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

    def _send(self, command: Command) -> bool:
        """Send a command to the active run; a run that cannot act on it (watch of an ended or killed run) is
        refused with a toast saying why. Returns whether it was sent."""
        refusal = self.controller.command(command)
        if refusal is not None:
            self.notify(refusal, severity="warning", timeout=8)
        return refusal is None

    def _believed(self, what: str) -> bool:
        """Whether the active run is paused ("paused"), its buffer frozen ("buffer") or its EMA target frozen
        ("ema"), counting the toggles sent but not yet seen in its records (for up to ``EXPECT_S`` seconds): a
        key pressed twice quickly, or right after a track switch, acts on what the run will be, not on what the
        screen showed a moment ago."""
        state = self.state
        actual = {"paused": state.status == "paused", "buffer": state.buffer_frozen, "ema": state.ema_frozen}[what]
        key = (self.controller.active, what)
        value, at = self._expected.get(key, (actual, 0.0))
        if value == actual or time.monotonic() - at > EXPECT_S:
            self._expected.pop(key, None)
            return actual
        return value

    def _send_expecting(self, command: Command, what: str, value: bool) -> None:
        """Send ``command`` to the active run; once sent, expect ``what`` to become ``value`` (:meth:`_believed`)."""
        if self._send(command):
            self._expect(self.controller.active, what, value)

    def _expect(self, track: str, what: str, value: bool) -> None:
        self._expected[(track, what)] = (value, time.monotonic())

    def _toggle(self, what: str, on: Command, off: Command) -> None:
        believed = self._believed(what)
        self._send_expecting(off if believed else on, what, not believed)

    def action_pause(self) -> None:
        self._toggle("paused", Command.PAUSE, Command.RESUME)

    def action_freeze_buffer(self) -> None:
        self._toggle("buffer", Command.FREEZE_BUFFER, Command.UNFREEZE_BUFFER)

    def action_freeze_ema(self) -> None:
        if not self.state.has_ema:
            self.notify("model.target = \"stopgrad\": the targets come from the online encoder, so there is no EMA "
                        "target to freeze", timeout=5)
            return
        self._toggle("ema", Command.FREEZE_EMA, Command.UNFREEZE_EMA)

    def action_dual_freeze(self) -> None:
        """Freeze buffer and EMA together (the paper's dual freeze); when both are frozen, unfreeze both."""
        if not self.state.has_ema:
            self.notify("no EMA target (model.target = \"stopgrad\"): f freezes the buffer alone", timeout=5)
            self.action_freeze_buffer()
            return
        both = self._believed("buffer") and self._believed("ema")
        for what, command in ((("buffer", Command.UNFREEZE_BUFFER), ("ema", Command.UNFREEZE_EMA)) if both else
                              (("buffer", Command.FREEZE_BUFFER), ("ema", Command.FREEZE_EMA))):
            self._send_expecting(command, what, not both)

    def action_track(self, track: str) -> None:
        if not self.controller.live:
            self.notify("watch follows one run directory; start `jepa-tui run` to switch tracks", timeout=3)
            return
        previous = self.controller.active
        self.controller.switch(track)
        if track != previous:  # the switch pauses the run left and resumes the one chosen
            self._expect(previous, "paused", True)
            self._expect(track, "paused", False)
        self.refresh_panels(force=True)

    def action_next_track(self) -> None:
        self.action_track(TRACKS[(TRACKS.index(self.controller.active) + 1) % len(TRACKS)])

    def action_save(self) -> None:
        if self._send(Command.SAVE):
            self.notify("saving a checkpoint at the next step boundary (it is kept)", timeout=3)

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
        active_dir = getattr(self.controller, "active_dir", None)
        self.push_screen(TextScreen(config_text(active_dir() if active_dir else None), "configuration",
                                    markup=False))

    def action_browse(self) -> None:
        marks = {path: f"{i} {name}" for i, (path, name) in enumerate(self.overlaid.items(), start=1)}
        self.push_screen(RunBrowser(self.controller.runs_root, can_watch=not self.controller.live, overlaid=marks),
                         self._chosen)

    def _chosen(self, choice: tuple[str, RunInfo] | None) -> None:
        if choice is None:
            return
        what, info = choice
        if what == "watch" and not self.controller.live:
            try:
                self.controller.attach(Path(info.path))
            except (OSError, ValueError) as exc:
                self.notify(f"cannot watch {info.run_id}: {exc}", severity="error")
                return
            self.overlays.clear()
            self.overlaid.clear()
            self.notify(f"watching {info.run_id}", timeout=3)
        elif what == "overlay":
            self._toggle_overlay(info)
        self.refresh_panels(force=True)

    def _toggle_overlay(self, info: RunInfo) -> None:
        """Overlay a run chosen in the run browser on every curve panel, named by track and seed (its run id
        too where two share them), or remove it."""
        if info.path in self.overlaid:
            del self.overlays[self.overlaid.pop(info.path)]
            self.notify(f"{info.run_id} removed from the curves", timeout=3)
            return
        state = overlay_state(Path(info.path))
        if state is None:
            self.notify(f"cannot read {info.run_id} to overlay it", severity="error")
            return
        name = f"{info.track} s{info.seed}"
        name = name if name not in self.overlays else f"{name} {info.run_id}"
        self.overlays[name] = state
        self.overlaid[info.path] = name
        self.notify(f"{info.run_id} overlaid on every curve as {len(self.overlays) % 10} {name}", timeout=3)

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


def overlay_state(run_dir: Path) -> RunState | None:
    """A run directory's records read into a state (for an overlay), or None when it cannot be read."""
    try:
        state = RunState.from_config(load_run_config(run_dir), Path(run_dir).name)
        state.read_history(RunDirectory(run_dir))
    except (RunDirError, ConfigError, OSError):
        return None
    return state
