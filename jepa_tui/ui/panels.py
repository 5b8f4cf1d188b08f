"""The dashboard's panels. Each draws a :class:`~jepa_tui.ui.state.RunState` (and, for the shift-world panel, the
other tracks' states and any runs overlaid from the run browser) when told to; none of them reads anything itself.

A panel has two parts that redraw separately: its notes (text: values, badges; cheap, redrawn as soon as the state
changes) and its curves (plotext; paced by the dashboard's CPU budget). Every series has its own marker character
as well as its colour, so curves stay apart on a monochrome terminal, and every curve shows the run's interventions
(freezes, pauses, switches, ...) as labelled vertical lines.
"""

from __future__ import annotations

import math
import time
from collections import deque

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static
from textual_plotext import PlotextPlot

from jepa_tui.config.tracks import MEMORY_TRACKS, MODULATED_TRACKS, REGISTRY
from jepa_tui.gpu import GpuSample
from jepa_tui.runs.interventions import crowd, marks_by_step
from jepa_tui.system import SystemSample
from jepa_tui.ui.state import RunState, Series

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
    """Exponentially smoothed copy of ``values`` (``alpha`` is the newest point's weight; 1 returns a copy)."""
    out, current = [], None
    for v in values:
        current = v if current is None else (1 - alpha) * current + alpha * v
        out.append(current)
    return out


def nice_ticks(low: float, high: float, count: int) -> list[float]:
    """About ``count`` round tick values (steps of 1, 2, 2.5 or 5 × 10^k) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * 0.999)
    first = math.ceil(low / step - 1e-9) * step
    ticks, value = [], first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def tick_label(value: float, step: float, steps_axis: bool = False) -> str:
    """A short label: training steps as 500, 1k, 1.5k, 12k; values with just enough decimals for ``step``."""
    if steps_axis and abs(value) >= 1000:
        text = f"{value / 1000:.1f}".rstrip("0").rstrip(".")
        return f"{text}k"
    if steps_axis:
        return f"{value:.0f}"
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 0
    if step > 0 and round(step / 10 ** math.floor(math.log10(step)), 3) == 2.5:
        decimals += 1
    return f"{value:.{decimals}f}"


def log_ticks(low: float, high: float, count: int) -> list[float]:
    """Round values (1, 2 and 5 × 10^n, or powers of ten alone when they are enough) whose log10 lies in
    [``low``, ``high``], about ``count`` of them; the two ends' values when no round value falls inside."""
    for steps in ((1.0,), (1.0, 5.0), (1.0, 2.0, 5.0)):
        values = [m * 10.0 ** e for e in range(math.floor(low), math.ceil(high) + 1) for m in steps
                  if low - 1e-9 <= math.log10(m * 10.0 ** e) <= high + 1e-9]
        if len(values) >= count:
            break
    if len(values) > count + 2:  # many decades: every k-th power of ten
        powers = [v for v in values if math.log10(v) == round(math.log10(v))]
        values = powers[::max(1, math.ceil(len(powers) / count))]
    return values or [float(f"{10 ** low:.2g}"), float(f"{10 ** high:.2g}")]


class Plot(PlotextPlot):
    """A plotext plot that redraws from series on request, and adds how long its renders take to the app's
    ``render_seconds`` (the dashboard paces its redraws by it).

    Series are drawn once the y range is known (:meth:`axes`): a point outside it is drawn at the edge it left by
    and counted in the plot's title ("3 points above ↑"), never dropped, so no series can vanish (a labelled series
    with no point on the canvas also broke plotext's legend). A plot that cannot be drawn shows why, in place of
    the plot; the app goes on.
    """

    def render(self):
        started = time.perf_counter()
        try:
            return super().render()
        except Exception as exc:  # plotext raising on odd data must never end the app
            self.failures = getattr(self, "failures", 0) + 1
            self.last_failure = exc
            return Text(f"cannot draw this plot ({type(exc).__name__}: {str(exc)[:120]}); "
                        "the numbers above are current", style="red")
        finally:
            if hasattr(self.app, "render_seconds"):
                self.app.render_seconds += time.perf_counter() - started

    def points(self) -> int:
        return max(8, 2 * self.size.width)

    def start(self, xlabel: str = "step") -> None:
        self.plt.clear_data()
        self.plt.clear_figure()
        self.plt.xlabel(xlabel)
        self._xs: list[float] = []
        self._ys: list[float] = []
        self._pending: list[tuple[list[float], list[float], str | None, str, str]] = []
        self._range: tuple[float, float] | None = None
        self._log = False
        self.clipped = (0, 0)  # points below and above the y range in the last drawing
        self.lane_y: float | None = None  # where the marks' lane is drawn (below every curve), if there are marks
        self.labels: list[str] = []  # the legend of the last drawing

    def line(self, series: Series, label: str | None, color: str, marker: str = "braille",
             alpha: float = 1.0) -> None:
        """Add a series (drawn by :meth:`axes` or :meth:`refresh`); smoothing (``alpha`` < 1) runs on every point
        before downsampling, so it never depends on the width."""
        if alpha < 1.0:
            series = Series(series.xs, ema(series.ys, alpha))
        xs, ys = downsample(series, self.points())
        if xs:
            self._pending.append((xs, ys, label, color, marker))
            self._xs += xs
            self._ys += ys

    def _flush(self, low: float | None = None, high: float | None = None) -> None:
        """Plot the pending series, points outside [low, high] moved to the edge they left by and counted."""
        below = above = 0
        for xs, ys, label, color, marker in self._pending:
            if low is not None and high is not None:
                below += sum(y < low for y in ys)
                above += sum(y > high for y in ys)
                ys = [min(max(y, low), high) for y in ys]
            self.plt.plot(xs, ys, label=label, color=color, marker=marker)
            self.labels += [label] if label else []
        self._pending = []
        self.clipped = (below, above)
        notes = [f"{n} point{'s' if n != 1 else ''} {where}" for n, where in ((above, "above ↑"), (below, "below ↓"))
                 if n]
        if notes:
            self.plt.title(", ".join(notes))

    def point(self, x: float, y: float, label: str, color: str, marker: str) -> None:
        """One labelled point in value units, drawn after :meth:`axes`: on the log axis at log10(y), and only if
        it falls inside the y range (a labelled series off the canvas breaks plotext's legend)."""
        if self._log:
            if y <= 0:
                return
            y = math.log10(y)
        if self._range is None or self._range[0] <= y <= self._range[1]:
            self.plt.scatter([x], [y], marker=marker, color=color, label=label)

    def reference(self, y: float, color: str) -> None:
        """A horizontal reference line at ``y``, drawn only where the y range (set by :meth:`axes`) holds it."""
        if self._log:
            return  # a value-unit line has no place on the log10 axis
        if self._range is None or self._range[0] <= y <= self._range[1]:
            self.plt.hline(y, color)

    def refresh(self, *args, **kwargs):
        if getattr(self, "_pending", None):
            self._flush()
        return super().refresh(*args, **kwargs)

    def axes(self, y_from_zero: bool = False, y_top: float | None = None, log: bool = False,
             y_cap: float | None = None) -> None:
        """Round ticks on both axes, then draw the series; counts start at 0 (and an empty count panel shows 0 … 1,
        not −1 … 1); ``y_top`` raises the top of the y range to at least that value; ``y_cap`` clips it (early
        values far above it are drawn at the top and counted in the title)."""
        width, height = self.size.width, self.size.height
        if self._xs:
            low, high = min(self._xs), max(self._xs)
            ticks = nice_ticks(low, high, max(3, width // 12))
            step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
            self.plt.xticks(ticks, [tick_label(t, step, steps_axis=True) for t in ticks])
        if log and any(v > 0 for v in self._ys):
            self._log_axis(height)
            return
        values = [v for v in self._ys if y_cap is None or v <= y_cap]
        if y_cap is not None and len(values) < len(self._ys):
            values.append(y_cap)
        if y_from_zero:
            values += [0.0] + ([y_top] if y_top is not None else []) + ([] if values else [1.0])
        if not values:
            self._flush()
            return
        low, high = min(values), max(values)
        if high <= low:
            high = low + (abs(low) * 0.1 or 1.0)
            low = 0.0 if y_from_zero else low - (high - low)
        pad = 0.0 if y_from_zero else (high - low) * 0.05
        self.plt.ylim(low - pad, high + pad)
        self._range = (low - pad, high + pad)
        self._flush(low - pad, high + pad)
        ticks = nice_ticks(low, high, max(2, min(5, (height - 3) // 3)))
        step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
        self.plt.yticks(ticks, [tick_label(t, step) for t in ticks])

    def _log_axis(self, height: int) -> None:
        """A log-scaled y axis drawn as log10 of the values on a linear axis, ticks labelled with the values
        (plotext's own log scale takes the log again at every re-render, and fails on a value <= 0); a value <= 0
        is drawn at the bottom edge and counted ("below ↓")."""
        positive = [v for v in self._ys if v > 0]
        low, high = math.log10(min(positive)), math.log10(max(positive))
        self._pending = [(xs, [math.log10(y) if y > 0 else -math.inf for y in ys], label, color, marker)
                         for xs, ys, label, color, marker in self._pending]
        if high <= low:
            low, high = low - 0.5, high + 0.5
        self.plt.ylim(low, high)
        self._range = (low, high)
        self._flush(low, high)
        self._log = True  # reference lines (value units) are not drawn on it
        values = log_ticks(low, high, max(2, min(5, (height - 3) // 3)))
        self.plt.yticks([math.log10(v) for v in values], [f"{v:g}" for v in values])

    def markers(self, state: RunState) -> None:
        """The run's interventions and stream world switches (W<world>) as marks on a lane one text row below the
        curves' range, each starting at its step (no curve, legend or title is drawn there, and no line crosses
        the curves), merged where they would print over each other ("bF+3": bF and three more)."""
        at = marks_by_step(state.events) if self._xs and state.events else {}
        if not at:
            return
        low_x, high_x = min(self._xs), max(self._xs)
        per_char = max(high_x - low_x, 1.0) / max(10, self.size.width - 9)  # steps per column of the canvas
        if self._range is not None:
            low, high = self._range
        else:
            low, high = min(self._ys, default=0.0), max(self._ys, default=1.0)
        row = (high - low or 1.0) / max(3, self.size.height - 5)  # y units per text row of the canvas
        self.plt.ylim(low - 2.2 * row, high)
        self.lane_y = low - 1.6 * row
        for x, label in crowd(at, per_char):
            right = (high_x - x) / per_char < len(label)
            self.plt.text(label, x=x, y=self.lane_y, color="gray", alignment="right" if right else "left")


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
