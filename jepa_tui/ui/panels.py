"""The dashboard's panels. Each draws a :class:`~jepa_tui.ui.state.RunState` (and, for the shift-world panel, the
other tracks' states and any runs overlaid from the run browser) when told to; none of them reads anything itself.

A panel has two parts that redraw separately: its notes (text: values, badges; cheap, redrawn as soon as the state
changes) and its curves (plotext; paced by the dashboard's CPU budget). Every series has its own marker character
as well as its colour, so curves stay apart on a monochrome terminal, and every curve shows the run's interventions
(freezes, pauses, switches, ...) as labelled vertical lines.
"""

from __future__ import annotations

from collections import deque

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from jepa_tui.config.tracks import MEMORY_TRACKS, MODULATED_TRACKS, REGISTRY
from jepa_tui.gpu import GpuSample
from jepa_tui.system import SystemSample
from jepa_tui.ui.plot import Plot
from jepa_tui.ui.state import RunState

SMOOTHING = (1.0, 0.5, 0.2, 0.1, 0.05, 0.02)  # EMA weights of the newest point; 1.0 = raw
CAP_OVER_BEST = 2.5  # the D_shift chart shows up to this multiple of the best value (or 1.5), early spikes clipped
MIN_SIGMA_PLOT_ROWS = 24  # below this panel height σ_z is a number in the note, not a second chart


def _track_color(letter: str) -> str:
    """The dashboard colour of a track (the registry's), white for a letter it does not know (an old run's)."""
    return REGISTRY[letter].color if letter in REGISTRY else "white"


def _modulation_labels(letter: str) -> tuple[str, str] | None:
    """The labels of a track's two modulation norms, or None for a track without (A, B) or unknown."""
    return REGISTRY[letter].modulation_labels if letter in REGISTRY else None


def _listed(letters: tuple[str, ...]) -> str:
    """("C", "D", "E") -> "C, D and E"."""
    return letters[0] if len(letters) == 1 else f"{', '.join(letters[:-1])} and {letters[-1]}"


class Panel(Vertical):
    """A titled panel: notes redrawn whenever their state changes, curves when the dashboard allows."""

    DEFAULT_CSS = """
    Panel { border: round $primary; height: 1fr; width: 1fr; padding: 0 1; }
    Panel > .note { height: auto; color: $text-muted; }
    """
    TITLE = ""
    SHORT = ""
    CURVES = True  # a panel of curves: l (log scale) and +/- (smoothing) act on it
    DEFAULT_SMOOTHING = 1.0  # the EMA weight of the newest point its curves start with (1: raw)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        # runs chosen in the run browser, drawn on every curve panel: their name ("C s43") -> their state; the app
        # hands every panel the same dict
        self.overlays: dict[str, RunState] = {}

    def on_mount(self) -> None:
        self.border_title = self.TITLE
        self._notes_key: object = None
        self._curves_key: object = None
        self.smoothing = self.DEFAULT_SMOOTHING
        self.log_scale = False
        self.show_scale()

    def show_scale(self) -> None:
        """Say the panel's y scale and smoothing on its bottom border (what l and +/- change)."""
        if self.CURVES:
            smoothing = "raw" if self.smoothing >= 1 else f"EMA {self.smoothing:g}"
            self.border_subtitle = f"{'log' if self.log_scale else 'linear'} (l) · {smoothing} (+/-)"

    def notes_key(self, state: RunState, others: dict[str, RunState]) -> object:
        return (state.track, state.version)

    def curves_key(self, state: RunState, others: dict[str, RunState]) -> object:
        return (state.track, state.version, self.size, self.smoothing, self.log_scale, tuple(self.overlays))

    def overlay(self, plot: Plot, series_of) -> None:
        """Draw the overlaid runs' ``series_of(state)`` on ``plot``, marked 1, 2, ... as the run browser lists
        them, named by track and seed."""
        for i, (name, other) in enumerate(self.overlays.items(), start=1):
            plot.line(series_of(other), f"{i} {name}", "white", marker=str(i % 10), alpha=self.smoothing)

    def update(self, state: RunState, others: dict[str, RunState], force: bool = False, curves: bool = True) -> None:
        """Redraw the notes if what they show changed; the curves too when ``curves`` (or ``force``)."""
        key = self.notes_key(state, others)
        if force or key != self._notes_key:
            self._notes_key = key
            self.draw_notes(state, others)
        if curves or force:
            key = self.curves_key(state, others)
            if force or key != self._curves_key:
                self._curves_key = key
                self.draw_curves(state, others)

    def draw_notes(self, state: RunState, others: dict[str, RunState]) -> None:
        """Text parts (override)."""

    def draw_curves(self, state: RunState, others: dict[str, RunState]) -> None:
        """Plotted parts (override)."""


class LossPanel(Panel):
    TITLE = "Loss (10-step means)"
    SHORT = "Loss"  # its name in a page line that has no room for titles
    DEFAULT_SMOOTHING = 0.1

    def compose(self) -> ComposeResult:
        yield Static(classes="note", id="loss-note")
        yield Plot()

    def draw_notes(self, state: RunState, others: dict[str, RunState]) -> None:
        last = f"{state.loss.ys[-1]:.4f}" if state.loss else "-"
        pred = f"{state.loss_pred.ys[-1]:.4f}" if state.loss_pred else "-"
        hinge = f"{state.loss_var.ys[-1]:.4f}" if state.loss_var else "-"
        self.query_one("#loss-note", Static).update(f"total {last}  prediction {pred}  variance hinge {hinge}")

    def draw_curves(self, state: RunState, others: dict[str, RunState]) -> None:
        plot = self.query_one(Plot)
        plot.start()
        if self.smoothing < 1:
            plot.line(state.loss, "raw", "gray", marker="·")
        plot.line(state.loss, "total", "orange", alpha=self.smoothing)
        plot.line(state.loss_pred, "prediction", "cyan", marker="+", alpha=self.smoothing)
        plot.line(state.loss_var, "variance hinge", "magenta", marker="x", alpha=self.smoothing)
        self.overlay(plot, lambda other: other.loss)
        plot.axes(log=self.log_scale)
        plot.markers(state)
        plot.refresh()


class ShiftPanel(Panel):
    TITLE = "Shift-world error D_shift (n=50)"
    SHORT = "D_shift"  # its name in a page line that has no room for titles

    def curves_key(self, state: RunState, others: dict[str, RunState]) -> object:
        return (state.track, len(state.d_shift), len(state.events), self.size, self.smoothing, self.log_scale,
                tuple((t, len(o.d_shift)) for t, o in sorted(others.items())), tuple(self.overlays))

    def compose(self) -> ComposeResult:
        yield Static(classes="note", id="shift-note")
        yield Plot(id="d-shift")
        yield Plot(id="sigma-z")

    def draw_notes(self, state: RunState, others: dict[str, RunState]) -> None:
        peak = "-" if state.peak_d_shift is None else f"{state.peak_d_shift:.4f} @ step {state.peak_step}"
        last = "-" if state.last_d_shift is None else f"{state.last_d_shift:.4f}"
        base = "-" if not state.d_base else f"{state.d_base.ys[-1]:.4f}"
        sigma = "-" if not state.sigma_z else f"{state.sigma_z.ys[-1]:.3f}"
        collapse = " COLLAPSE?" if state.sigma_z and state.sigma_z.ys[-1] < 0.5 else ""
        rank = f"  eff. rank {state.effective_rank:.1f}" if state.effective_rank is not None else ""
        self.query_one("#shift-note", Static).update(
            f"D_shift {last}  peak {peak}  d_base {base}  σ_z {sigma}{collapse} (collapse < 0.5){rank}")

    def draw_curves(self, state: RunState, others: dict[str, RunState]) -> None:
        show_sigma = self.size.height >= MIN_SIGMA_PLOT_ROWS
        sigma_plot = self.query_one("#sigma-z", Plot)
        sigma_plot.display = show_sigma
        plot = self.query_one("#d-shift", Plot)
        plot.start()
        for track, other in sorted(others.items()):
            plot.line(other.d_shift, f"{track} D_shift", _track_color(track), marker=track,
                      alpha=self.smoothing)
        self.overlay(plot, lambda other: other.d_shift)
        plot.line(state.d_base, "d_base", "gray", marker="·", alpha=self.smoothing)
        plot.line(state.d_shift, f"{state.track} D_shift (this run)", _track_color(state.track),
                  alpha=self.smoothing)
        # The first evaluations of a fresh model can be far above 1: keep the region that matters in view (a log
        # scale shows them all).
        best = min((v for v in plot._ys if v > 0), default=None)
        plot.axes(y_cap=max(1.5, CAP_OVER_BEST * best) if best is not None else None, log=self.log_scale)
        plot.reference(1.0, "red")  # persistence
        if state.peak_step is not None and state.peak_d_shift is not None:
            plot.point(state.peak_step, state.peak_d_shift, "peak", "yellow", "*")
        plot.markers(state)
        plot.refresh()
        if show_sigma:
            sigma_plot.start()
            sigma_plot.line(state.sigma_z, "σ_z", "green", alpha=self.smoothing)
            sigma_plot.axes(y_from_zero=True, log=self.log_scale)
            sigma_plot.reference(0.5, "red")  # the collapse line
            sigma_plot.markers(state)
            sigma_plot.refresh()


class BufferPanel(Panel):
    TITLE = "Experience buffer (entries)"
    SHORT = "Buffer"  # its name in a page line that has no room for titles

    def notes_key(self, state: RunState, others: dict[str, RunState]) -> object:
        return (state.track, state.buffer_size, state.capacity, state.buffer_frozen)

    def compose(self) -> ComposeResult:
        yield Static(classes="note", id="gauge")
        yield Plot()

    def draw_notes(self, state: RunState, others: dict[str, RunState]) -> None:
        gauge = self.query_one("#gauge", Static)
        if state.track not in MEMORY_TRACKS:
            gauge.update(f"Track {state.track} has no experience buffer.")
            return
        width = 24
        filled = round(width * state.buffer_size / max(1, state.capacity))
        badge = "  [b reverse] FROZEN [/]" if state.buffer_frozen else ""
        gauge.update(f"{'█' * filled}{'░' * (width - filled)} {state.buffer_size}/{state.capacity}{badge}")

    def draw_curves(self, state: RunState, others: dict[str, RunState]) -> None:
        plot = self.query_one(Plot)
        plot.start()
        plot.line(state.buffer, "entries", "cyan", alpha=self.smoothing)
        self.overlay(plot, lambda other: other.buffer)
        plot.axes(y_from_zero=True, log=self.log_scale)
        plot.markers(state)
        plot.refresh()


class EventsPanel(Panel):
    TITLE = "Boundary events (per 100 steps)"
    SHORT = "Events"  # its name in a page line that has no room for titles

    def compose(self) -> ComposeResult:
        yield Static(classes="note", id="detector")
        yield Plot()

    def draw_notes(self, state: RunState, others: dict[str, RunState]) -> None:
        note = self.query_one("#detector", Static)
        if state.track not in MEMORY_TRACKS:
            note.update(f"Track {state.track} has no boundary detector.")
        elif state.surprisal_mu is None or state.surprisal_sigma is None:
            note.update(f"detector warming up; κ {state.kappa}")
        else:
            note.update(f"surprisal μ {state.surprisal_mu:.5f}  σ {state.surprisal_sigma:.5f}  κ {state.kappa}  "
                        f"events {state.boundary_events}")

    def draw_curves(self, state: RunState, others: dict[str, RunState]) -> None:
        plot = self.query_one(Plot)
        plot.start()
        plot.line(state.event_rate, "events / 100 steps", "yellow", alpha=self.smoothing)
        self.overlay(plot, lambda other: other.event_rate)
        plot.axes(y_from_zero=True, log=self.log_scale)
        plot.markers(state)
        plot.refresh()


class ModulationPanel(Panel):
    """How strongly experience changes the predictor's weights or activations, per track (labels from the track
    registry, ``modulation_labels``)."""

    TITLE = "Modulation by experience (batch mean)"
    SHORT = "Modulation"  # its name in a page line that has no room for titles

    def curves_key(self, state: RunState, others: dict[str, RunState]) -> object:
        return (state.track, len(state.modulation_1), len(state.events), self.size, self.smoothing, self.log_scale,
                tuple(self.overlays))

    def compose(self) -> ComposeResult:
        yield Static(classes="note", id="modulation-note")
        yield Plot()

    def draw_notes(self, state: RunState, others: dict[str, RunState]) -> None:
        note = self.query_one("#modulation-note", Static)
        labels = _modulation_labels(state.track)
        if labels is None:
            injection = state.track in REGISTRY and REGISTRY[state.track].modulator == "injection"
            why = "adds experience to the hidden state" if injection else "uses no experience"
            note.update(f"Empty: Track {state.track} {why}; Tracks {_listed(MODULATED_TRACKS)} modulate the predictor.")
            return
        first = f"{state.modulation_1.ys[-1]:.4f}" if state.modulation_1 else "-"
        second = f"{state.modulation_2.ys[-1]:.4f}" if state.modulation_2 else "-"
        note.update(f"{labels[0]} {first}  {labels[1]} {second}")

    def draw_curves(self, state: RunState, others: dict[str, RunState]) -> None:
        plot = self.query_one(Plot)
        plot.start()
        labels = _modulation_labels(state.track)
        if labels is not None:
            plot.line(state.modulation_1, labels[0], "green", alpha=self.smoothing)
            plot.line(state.modulation_2, labels[1], "cyan", marker="+", alpha=self.smoothing)
        self.overlay(plot, lambda other: other.modulation_1)
        plot.axes(y_from_zero=True, log=self.log_scale)
        plot.markers(state)
        plot.refresh()


class GpuPanel(Panel):
    TITLE = "GPU (NVML, 1 s samples)"
    SHORT = "GPU"  # its name in a page line that has no room for titles
    CURVES = False
    HISTORY = 120

    def __init__(self, unavailable: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.unavailable = unavailable
        self.temperatures: deque[float] = deque(maxlen=self.HISTORY)
        self.utilisations: deque[float] = deque(maxlen=self.HISTORY)

    def notes_key(self, state: RunState, others: dict[str, RunState]) -> object:
        return None

    def curves_key(self, state: RunState, others: dict[str, RunState]) -> object:
        return None

    def compose(self) -> ComposeResult:
        yield Static(classes="note", id="gpu-values")
        yield Sparkline([], id="gpu-temperature")
        yield Sparkline([], id="gpu-utilisation")

    def on_mount(self) -> None:
        super().on_mount()
        if self.unavailable:
            self.query_one("#gpu-values", Static).update(
                f"{self.unavailable}: nothing to show here; training and the other panels are unaffected.")

    def show(self, sample: GpuSample | None) -> None:
        if sample is None:
            return

        def fmt(value: float | None, unit: str, digits: int = 0) -> str:
            return "n/a" if value is None else f"{value:.{digits}f} {unit}"

        if sample.temperature_c is not None:
            self.temperatures.append(sample.temperature_c)
        if sample.utilisation_pct is not None:
            self.utilisations.append(sample.utilisation_pct)
        throttle = ", ".join(sample.throttle) if sample.throttle else "none"
        sparklines = (f"sparklines, each from its lowest to its highest value: temperature "
                      f"{span(self.temperatures, '°C')}, then utilisation {span(self.utilisations, '%')}")
        self.query_one("#gpu-values", Static).update(
            f"{sample.name}\n"
            f"temperature {fmt(sample.temperature_c, '°C')} (slowdown at {fmt(sample.slowdown_c, '°C')})\n"
            f"power {fmt(sample.power_w, 'W')} of {fmt(sample.power_limit_w, 'W')}  SM clock "
            f"{fmt(sample.sm_clock_mhz, 'MHz')}\n"
            f"utilisation {fmt(sample.utilisation_pct, '%')}  memory {fmt(sample.memory_used_mib, 'MiB')} of "
            f"{fmt(sample.memory_total_mib, 'MiB')}\nthrottling: {throttle}\n{sparklines}")
        self.query_one("#gpu-temperature", Sparkline).data = list(self.temperatures)
        self.query_one("#gpu-utilisation", Sparkline).data = list(self.utilisations)


def span(values, unit: str, digits: int = 0) -> str:
    """The range a sparkline is scaled to, e.g. "12–95%" (a sparkline draws its lowest value as the shortest bar
    and its highest as the tallest, so without its range its height says nothing)."""
    return "n/a" if not values else f"{min(values):.{digits}f}–{max(values):.{digits}f}{unit}"


def training_threads(state: RunState | None) -> str:
    """What the run trains on, e.g. "training on 1 CPU thread (follows the load: others used 1.0 cores)"."""
    if state is None or state.cpu_threads is None:
        return "training threads n/a"
    n = state.cpu_threads
    how = "fixed" if not state.follows_load else "follows the load" if state.others_cores is None else \
        f"follows the load: others used {state.others_cores:.1f} cores"
    return f"training on {n} CPU thread{'s' * (n != 1)} ({how})"


class SystemPanel(Panel):
    """What limits training on a machine without a GPU: CPU use of the training process and of the machine, the
    share the hypervisor steals, memory, threads (psutil, 1 s samples)."""

    CURVES = False
    TITLE = "CPU and memory (1 s samples)"
    SHORT = "CPU"  # its name in a page line that has no room for titles
    HISTORY = 120

    def __init__(self, unavailable: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.unavailable = unavailable
        self.process_cpu: deque[float] = deque(maxlen=self.HISTORY)
        self.steal: deque[float] = deque(maxlen=self.HISTORY)

    def notes_key(self, state: RunState, others: dict[str, RunState]) -> object:
        return None

    def curves_key(self, state: RunState, others: dict[str, RunState]) -> object:
        return None

    def compose(self) -> ComposeResult:
        yield Static(classes="note", id="cpu-values")
        yield Sparkline([], id="cpu-process")
        yield Sparkline([], id="cpu-steal")

    def on_mount(self) -> None:
        super().on_mount()
        if self.unavailable:
            self.query_one("#cpu-values", Static).update(f"{self.unavailable}; training is unaffected.")

    def show(self, sample: SystemSample | None, state: RunState | None = None) -> None:
        """Draw one sample; ``state`` (the active run) gives the training's own CPU thread count."""
        if sample is None:
            return

        def fmt(value: float | None, unit: str, digits: int = 0) -> str:
            return "n/a" if value is None else f"{value:.{digits}f}{unit}"

        if sample.process_cpu_pct is not None:
            self.process_cpu.append(sample.process_cpu_pct)
        if sample.steal_pct is not None:
            self.steal.append(sample.steal_pct)
        cores = sample.cores or 1
        self.query_one("#cpu-values", Static).update(
            f"{sample.whose} {fmt(sample.process_cpu_pct, '%')} of one core ({cores} cores usable)\n"
            f"machine {fmt(sample.machine_cpu_pct, '%')}  steal {fmt(sample.steal_pct, '%', 1)}\n"
            f"RSS {fmt(sample.rss_mib, ' MiB')}  RAM {fmt(sample.ram_used_mib, '')} of "
            f"{fmt(sample.ram_total_mib, ' MiB')}\n"
            f"threads {fmt(sample.threads, '')}; {training_threads(state)}\n"
            f"sparklines, each from its lowest to its highest value: process CPU {span(self.process_cpu, '%')}, "
            f"then steal {span(self.steal, '%', 1)}")
        self.query_one("#cpu-process", Sparkline).data = list(self.process_cpu)
        self.query_one("#cpu-steal", Sparkline).data = list(self.steal)
