"""The dashboard's six panels. Each draws a :class:`~jepa_tui.ui.state.RunState` (and, for the shift-world
panel, the other tracks' states) when told to; none of them reads anything on its own."""

from __future__ import annotations

import time
from collections import deque

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static
from textual_plotext import PlotextPlot

from jepa_tui.gpu import GpuSample
from jepa_tui.ui.state import RunState, Series

TRACK_COLORS = {"A": "blue", "B": "magenta", "C": "green"}


def downsample(series: Series, max_points: int) -> tuple[list[float], list[float]]:
    """At most ~``max_points`` points: min and max of each bin, in step order, so spikes stay visible."""
    xs, ys = series.xs, series.ys
    if len(xs) <= max_points or max_points < 4:
        return list(xs), list(ys)
    bins = max_points // 2
    size = len(xs) / bins
    out_x: list[float] = []
    out_y: list[float] = []
    for b in range(bins):
        lo, hi = int(b * size), max(int((b + 1) * size), int(b * size) + 1)
        chunk = range(lo, min(hi, len(xs)))
        i_min = min(chunk, key=ys.__getitem__)
        i_max = max(chunk, key=ys.__getitem__)
        for i in sorted({i_min, i_max}):
            out_x.append(xs[i])
            out_y.append(ys[i])
    return out_x, out_y


def ema(values: list[float], alpha: float = 0.1) -> list[float]:
    """Exponentially smoothed copy of ``values``."""
    out, current = [], None
    for v in values:
        current = v if current is None else (1 - alpha) * current + alpha * v
        out.append(current)
    return out


class Plot(PlotextPlot):
    """A plotext plot that redraws from series on request, and adds how long its renders take to the app's
    ``render_seconds`` (the dashboard paces its redraws by it)."""

    def render(self):
        started = time.perf_counter()
        try:
            return super().render()
        finally:
            if hasattr(self.app, "render_seconds"):
                self.app.render_seconds += time.perf_counter() - started

    def points(self) -> int:
        return max(8, 2 * self.size.width)

    def start(self, xlabel: str = "step") -> None:
        self.plt.clear_data()
        self.plt.clear_figure()
        self.plt.xlabel(xlabel)

    def line(self, series: Series, label: str | None, color: str, smooth: bool = False) -> None:
        """Plot a series; smoothing runs on every point before downsampling, so it never depends on the width."""
        if smooth:
            series = Series(series.xs, ema(series.ys))
        xs, ys = downsample(series, self.points())
        if xs:
            self.plt.plot(xs, ys, label=label, color=color, marker="braille")


class Panel(Vertical):
    """A titled panel; subclasses implement :meth:`draw`."""

    DEFAULT_CSS = """
    Panel { border: round $primary; height: 1fr; width: 1fr; padding: 0 1; }
    Panel > .note { height: auto; color: $text-muted; }
    """
    TITLE = ""

    def on_mount(self) -> None:
        self.border_title = self.TITLE
        self._drawn_key: object = None

    def key(self, state: RunState, others: dict[str, RunState]) -> object:
        """What the panel's picture depends on; it is redrawn only when this changes."""
        return (state.track, state.version)

    def update(self, state: RunState, others: dict[str, RunState], force: bool = False) -> None:
        """Redraw if the data this panel shows changed (or ``force``, e.g. after a resize)."""
        key = self.key(state, others)
        if force or key != self._drawn_key:
            self._drawn_key = key
            self.draw(state, others)

    def draw(self, state: RunState, others: dict[str, RunState]) -> None:
        raise NotImplementedError


class LossPanel(Panel):
    TITLE = "Loss (10-step means; raw faded)"

    def compose(self) -> ComposeResult:
        yield Plot()

    def draw(self, state: RunState, others: dict[str, RunState]) -> None:
        plot = self.query_one(Plot)
        plot.start()
        plot.line(state.loss, None, "gray")
        plot.line(state.loss, "total", "orange", smooth=True)
        plot.line(state.loss_pred, "prediction", "cyan", smooth=True)
        plot.line(state.loss_var, "variance hinge", "magenta", smooth=True)
        plot.refresh()


class ShiftPanel(Panel):
    TITLE = "Shift-world error D_shift (n=50)"

    def key(self, state: RunState, others: dict[str, RunState]) -> object:
        return (state.track, len(state.d_shift), tuple((t, len(o.d_shift)) for t, o in sorted(others.items())))

    def compose(self) -> ComposeResult:
        yield Plot(id="d-shift")
        yield Static(classes="note", id="shift-note")
        yield Plot(id="sigma-z")

    def draw(self, state: RunState, others: dict[str, RunState]) -> None:
        plot = self.query_one("#d-shift", Plot)
        plot.start()
        for track, other in sorted(others.items()):
            plot.line(other.d_shift, f"D_shift {track}", TRACK_COLORS.get(track, "white"))
        plot.line(state.d_shift, f"D_shift {state.track}", TRACK_COLORS.get(state.track, "white"))
        plot.line(state.d_base, "d_base", "gray")
        plot.plt.hline(1.0, "red")
        if state.peak_step is not None and state.peak_d_shift is not None:
            plot.plt.scatter([state.peak_step], [state.peak_d_shift], marker="x", color="yellow", label="peak")
        plot.refresh()
        peak = "-" if state.peak_d_shift is None else f"{state.peak_d_shift:.4f} @ step {state.peak_step}"
        last = "-" if state.last_d_shift is None else f"{state.last_d_shift:.4f}"
        base = "-" if not state.d_base else f"{state.d_base.ys[-1]:.4f}"
        sigma = "-" if not state.sigma_z else f"{state.sigma_z.ys[-1]:.3f}"
        self.query_one("#shift-note", Static).update(
            f"D_shift {last}  peak {peak}  d_base {base}  sigma_z {sigma} (collapse below 0.5)")
        sigma_plot = self.query_one("#sigma-z", Plot)
        sigma_plot.start()
        sigma_plot.line(state.sigma_z, "sigma_z", "green")
        sigma_plot.plt.hline(0.5, "red")
        sigma_plot.refresh()


class BufferPanel(Panel):
    TITLE = "Experience buffer (entries)"

    def compose(self) -> ComposeResult:
        yield Static(classes="note", id="gauge")
        yield Plot()

    def draw(self, state: RunState, others: dict[str, RunState]) -> None:
        gauge = self.query_one("#gauge", Static)
        if state.track == "A":
            gauge.update("Track A has no experience buffer.")
        else:
            width = 24
            filled = round(width * state.buffer_size / max(1, state.capacity))
            badge = "  [b reverse] FROZEN [/]" if state.buffer_frozen else ""
            gauge.update(f"{'█' * filled}{'░' * (width - filled)} {state.buffer_size}/{state.capacity}{badge}")
        plot = self.query_one(Plot)
        plot.start()
        plot.line(state.buffer, "entries", "cyan")
        plot.refresh()


class EventsPanel(Panel):
    TITLE = "Boundary events (per 100 steps)"

    def compose(self) -> ComposeResult:
        yield Static(classes="note", id="detector")
        yield Plot()

    def draw(self, state: RunState, others: dict[str, RunState]) -> None:
        note = self.query_one("#detector", Static)
        if state.track == "A":
            note.update("Track A has no boundary detector.")
        elif state.surprisal_mu is None or state.surprisal_sigma is None:
            note.update(f"detector warming up; κ {state.kappa}")
        else:
            note.update(f"surprisal μ {state.surprisal_mu:.5f}  σ {state.surprisal_sigma:.5f}  κ {state.kappa}  "
                        f"events {state.boundary_events}")
        plot = self.query_one(Plot)
        plot.start()
        plot.line(state.event_rate, "events / 100 steps", "yellow")
        plot.refresh()


class LoraPanel(Panel):
    TITLE = "LoRA deltas ‖ΔW‖_F (batch mean)"

    def key(self, state: RunState, others: dict[str, RunState]) -> object:
        return (state.track, len(state.lora_w1))

    def compose(self) -> ComposeResult:
        yield Static(classes="note", id="lora-note")
        yield Plot()

    def draw(self, state: RunState, others: dict[str, RunState]) -> None:
        note = self.query_one("#lora-note", Static)
        plot = self.query_one(Plot)
        plot.start()
        if state.track != "C":
            why = "adds experience to the hidden state" if state.track == "B" else "uses no experience"
            note.update(f"Empty: Track {state.track} {why}; only Track C modulates the predictor's weights.")
        else:
            w1 = f"{state.lora_w1.ys[-1]:.4f}" if state.lora_w1 else "-"
            w2 = f"{state.lora_w2.ys[-1]:.4f}" if state.lora_w2 else "-"
            note.update(f"ΔW1 {w1}  ΔW2 {w2}")
            plot.line(state.lora_w1, "ΔW1", "green")
            plot.line(state.lora_w2, "ΔW2", "cyan")
        plot.refresh()


class GpuPanel(Panel):
    TITLE = "GPU (NVML, 1 s samples)"

    def key(self, state: RunState, others: dict[str, RunState]) -> object:
        return None
    HISTORY = 120

    def __init__(self, unavailable: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.unavailable = unavailable
        self.temperatures: deque[float] = deque(maxlen=self.HISTORY)
        self.utilisations: deque[float] = deque(maxlen=self.HISTORY)

    def compose(self) -> ComposeResult:
        yield Static(classes="note", id="gpu-values")
        yield Sparkline([], id="gpu-temperature")
        yield Sparkline([], id="gpu-utilisation")

    def on_mount(self) -> None:
        super().on_mount()
        if self.unavailable:
            self.query_one("#gpu-values", Static).update(
                f"{self.unavailable}: nothing to show here; training and the other panels are unaffected.")

    def draw(self, state: RunState, others: dict[str, RunState]) -> None:
        """GPU readings do not depend on the run; see :meth:`show`."""

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
        self.query_one("#gpu-values", Static).update(
            f"{sample.name}\n"
            f"temperature {fmt(sample.temperature_c, '°C')} (slowdown at {fmt(sample.slowdown_c, '°C')})\n"
            f"power {fmt(sample.power_w, 'W')} of {fmt(sample.power_limit_w, 'W')}  SM clock "
            f"{fmt(sample.sm_clock_mhz, 'MHz')}\n"
            f"utilisation {fmt(sample.utilisation_pct, '%')}  memory {fmt(sample.memory_used_mib, 'MiB')} of "
            f"{fmt(sample.memory_total_mib, 'MiB')}\nthrottling: {throttle}")
        self.query_one("#gpu-temperature", Sparkline).data = list(self.temperatures)
        self.query_one("#gpu-utilisation", Sparkline).data = list(self.utilisations)
