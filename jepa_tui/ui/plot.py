"""The dashboard's chart: a plotext plot with our ticks (round values, log scales), downsampled and smoothed curves,
and a lane of intervention marks under the curves. The panels (:mod:`jepa_tui.ui.panels`) draw on it."""

from __future__ import annotations

import math
import time

from rich.text import Text
from textual_plotext import PlotextPlot

from jepa_tui.runs.interventions import crowd, marks_by_step
from jepa_tui.ui.state import RunState, Series


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
