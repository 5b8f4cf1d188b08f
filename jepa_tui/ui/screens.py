"""The dashboard's screens over the panels: help, the event log and the configuration (pages of text), and the run
browser (a table of the runs under the runs folder, to overlay or watch)."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

from jepa_tui.config.tracks import REGISTRY
from jepa_tui.runs.catalog import RUN_COLUMNS, RunInfo, list_runs, run_row
from jepa_tui.runs.jsonl import read_regular_file
from jepa_tui.ui.state import RunState

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
