"""The paper's figures from runs (spec §7), as PNG files (matplotlib, readable in black and white)."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np

from jepa_tui.config.tracks import MODULATED_TRACKS, REGISTRY  # Fig. 4 per track; styles
from jepa_tui.reporting.collect import RunRecord
from jepa_tui.runs.files import RunDirError, atomic_write_bytes, os_message
from jepa_tui.runs.interventions import LABELS, crowd

EVENT_WINDOW = 200  # steps
MARK_FONT = 6  # points: the interventions' marks and their key
# (line, marker, colour, hatch) per track, from the registry: told apart by colour, and by line, marker and hatch in
# black and white (colour-blind-safe Okabe-Ito hues).
STYLES = {t.letter: (t.line, t.marker, t.hex_color, t.hatch) for t in REGISTRY.values()}
SPAN_FOR_LOG = 20.0  # a curve whose values span more than this factor is drawn on a log scale (or zoomed)
ZOOM_OVER_LOW = 1.6  # a zoomed axis (fig. 4) reaches this multiple of the lowest value
# matplotlib renders with process-wide state that is not thread-safe (the mathtext parser, the font cache): two runs
# of a group ending at once drew "ParseException" instead of their titles, so one figure renders at a time.
_RENDERING = threading.Lock()


def subplots(*grid: int, figsize: tuple[float, float]):
    """A figure and its axes (``Figure.subplots(*grid)``) outside pyplot's registry of open figures, so that runs
    ending on several threads at once (a run group's members, with a logger) can build their figures together
    (:func:`save_figure` renders them one at a time)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*grid)


def by_track(runs: list[RunRecord]) -> dict[str, list[RunRecord]]:
    out: dict[str, list[RunRecord]] = {}
    for run in runs:
        out.setdefault(run.track if not run.variant else f"{run.track} {run.variant}", []).append(run)
    return out


def _style(name: str) -> tuple:
    return STYLES.get(name[0], ("-", "x", "0.3", None))


def value(run: RunRecord, record: dict, key: str) -> float | None:
    """An eval field under the report's formula: D_shift and d_base follow it, σ_z does not depend on it."""
    return run.value(record, key) if key != "sigma_z" else run.sigma_z(record)


def bar_chart(runs: list[RunRecord], path: Path) -> Path | None:
    """Fig. 2: D_shift at the peak step per run, the persistence level 1.0 for reference (runs with a peak)."""
    runs = [r for r in runs if r.peak is not None]
    if not runs:
        return None
    fig, ax = subplots(figsize=(max(5, 0.7 * len(runs) + 2), 3.6))
    for i, run in enumerate(runs):
        _, _, grey, hatch = _style(run.track)
        d = run.d_shift(run.peak)
        ax.bar(i, d, color=grey if run.track != "C" else "white", edgecolor="black", hatch=hatch)
        note = "†" if run.interactive else ""
        # inside the bar's top, on a white ground: never on the persistence line just above
        ax.annotate(f"{d:.3f}{note}", (i, d), xytext=(0, -3), textcoords="offset points", ha="center", va="top",
                    fontsize=7, bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--", label="persistence (1.0)")
    ax.set_xticks(range(len(runs)), [r.label + ("" if r.finished else f" ({r.status})") for r in runs], rotation=45,
                  ha="right", fontsize=8)
    ax.set_ylabel("D_shift at peak (lower is better)")
    title = r"$D_\mathrm{shift}^{\,n=50}$ at the peak step per run"
    ax.set_title(title + ("  († changed interactively)" if any(r.interactive for r in runs) else ""))
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def log_if_wide(ax, values: list[float]) -> None:
    """A log y scale when the positive finite ``values`` span more than :data:`SPAN_FOR_LOG` (a fresh model's first
    evaluations far above 1 otherwise squash the peak and the drift into one line)."""
    finite = [v for v in values if v is not None and np.isfinite(v) and v > 0]
    if finite and max(finite) / min(finite) > SPAN_FOR_LOG:
        ax.set_yscale("log")


def zoom_if_wide(ax, values: list[float]) -> float | None:
    """Where the finite ``values`` span more than :data:`SPAN_FOR_LOG` (a fresh model's first evaluations far above
    the rest), a linear y axis up to ``ZOOM_OVER_LOW`` times the lowest value (at least 1.1, persistence in view),
    so that the peak and the drift can be seen; the values above are counted in a note, never dropped silently.
    Returns the top of the zoomed axis (where the caller marks those values, ^), or None when it did not zoom."""
    finite = [v for v in values if v is not None and np.isfinite(v)]
    positive = [v for v in finite if v > 0]
    if not positive or max(positive) / min(positive) <= SPAN_FOR_LOG:
        return None
    low = min(finite)
    top = max(1.1, ZOOM_OVER_LOW * low)
    ax.set_ylim(low - 0.05 * (top - low), top)
    above = [v for v in finite if v > top]
    ax.annotate(f"{len(above)} evaluation{'s' * (len(above) != 1)} above the axis (^), up to {max(above):.3g}",
                (1.0, 1.0), xycoords="axes fraction", xytext=(-4, -4), textcoords="offset points", fontsize=7,
                ha="right", va="top")
    return top


def make_folder(folder: Path) -> None:
    """Create ``folder`` (and its parents); RunDirError naming it when that fails."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot create '{folder}': {os_message(exc)}") from None


def save_figure(fig, path: Path) -> Path:
    """Lay out ``fig`` (from :func:`subplots`) and write it as a 120 dpi PNG (atomically: a reader sees the old
    figure or the new one); returns ``path``. Layout and rendering hold a process-wide lock: matplotlib's text
    rendering is not thread-safe.

    Raises:
        RunDirError: when the file cannot be written.
    """
    for ax in fig.axes:
        if getattr(ax, "marks_lane", False):
            ax.set_title(ax.get_title(), pad=12)
    png = io.BytesIO()
    with _RENDERING:
        fig.tight_layout()
        fig.savefig(png, dpi=120, format="png")
    atomic_write_bytes(path, lambda fh: fh.write(png.getvalue()))
    return path


def mark_interventions(ax, runs: list[RunRecord]) -> None:
    """The runs' interventions (freezes, pauses, switches, ...) as ticks on the plot's top edge with the
    dashboard's marks on a lane above it, merged where they would print over each other ("bF+3"), and a key of the
    marks under the plot: no mark covers a curve, a legend or another mark (the report's text lists each
    intervention with its run and step)."""
    at: dict[int, list[str]] = {}
    names: dict[str, str] = {}
    for run in runs:
        for item in run.interventions:
            at.setdefault(item.step, []).append(item.mark)
            names.setdefault(item.mark, LABELS.get(item.kind, item.kind))
    if not at:
        return
    at = {step: list(dict.fromkeys(marks)) for step, marks in at.items()}
    low, high = ax.get_xlim()
    width_pt = ax.get_position().width * ax.figure.get_figwidth() * 72
    per_char = (high - low) / max(1.0, width_pt / (0.65 * MARK_FONT))  # x units per character of the lane
    for step in at:
        ax.plot([step, step], [1.0, 0.97], transform=ax.get_xaxis_transform(), color="0.3", linewidth=0.8,
                clip_on=False)
    for x, label in crowd(at, per_char):
        right = (high - x) / per_char < len(label)
        ax.annotate(label, (x, 1.0), xycoords=("data", "axes fraction"), xytext=(0, 2), textcoords="offset points",
                    fontsize=MARK_FONT, ha="right" if right else "left", va="bottom", color="0.2")
    key = "marks: " + ", ".join(f"{mark} {name}" for mark, name in sorted(names.items()))
    ax.annotate(key, (0.0, 0.0), xycoords="axes fraction", xytext=(0, -36), textcoords="offset points",
                fontsize=MARK_FONT, va="top", ha="left", color="0.2", wrap=True)
    ax.marks_lane = True  # save_figure lifts the title above the lane


def _plot_band(ax, group: list[RunRecord], key: str, name: str, label: str) -> np.ndarray:
    """Plot the mean of eval field ``key`` over ``group``'s seeds with a ± std band in track ``name``'s style;
    returns the mean (empty when no run has the field)."""
    line, marker, grey, _ = _style(name)
    steps, mean, std, count = mean_band(group, key)
    if not len(steps):
        return mean
    partial = " (n varies by step)" if len(group) > 1 and (count < len(group)).any() else ""
    ax.plot(steps, mean, linestyle=line, marker=marker, color=grey, markersize=3, label=label + partial)
    band = count > 1
    ax.fill_between(steps, np.where(band, mean - std, mean), np.where(band, mean + std, mean), color=grey,
                    alpha=0.15)
    return mean


def mean_band(runs: list[RunRecord], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Steps, mean, std (ddof = 1; 0 where one run) and run count of eval field ``key`` over ``runs``, at every
    step where at least one run has it: runs of different lengths and evaluation grids all count."""
    at: dict[int, list[float]] = {}
    for run in runs:
        for record in run.evals:
            v = value(run, record, key)
            if v is not None:
                at.setdefault(record["step"], []).append(v)
    steps = sorted(at)
    mean = np.array([np.mean(at[s]) for s in steps])
    std = np.array([np.std(at[s], ddof=1) if len(at[s]) > 1 else 0.0 for s in steps])
    return np.array(steps), mean, std, np.array([len(at[s]) for s in steps])


def _evaluated(runs: list[RunRecord]) -> list[RunRecord]:
    return [r for r in runs if r.peak is not None]


def d_shift_curves(runs: list[RunRecord], path: Path) -> Path | None:
    """Fig. 3: D_shift against step per track, mean ± std over seeds; (b) zoomed on the lowest region."""
    runs = _evaluated(runs)
    if not runs:
        return None
    fig, (full, zoom) = subplots(1, 2, figsize=(10, 3.8))
    lows = []
    for name, group in by_track(runs).items():
        for ax in (full, zoom):
            mean = _plot_band(ax, group, "d_shift", name, f"{name} (n={len(group)})")
        if len(mean):
            lows.append(float(mean.min()))
    for ax in (full, zoom):
        ax.axhline(1.0, color="black", linewidth=0.7, linestyle="--")
        ax.set_xlabel("training step")
        ax.set_ylabel("D_shift (normalised)")
        mark_interventions(ax, runs)
    low = min(lows)
    zoom.set_ylim(low - 0.05, low + 0.25)
    log_if_wide(full, [run.d_shift(r) for run in runs for r in run.scored_evals])
    full.set_title("(a) full range, mean ± std over seeds")
    zoom.set_title("(b) convergence region")
    full.legend(fontsize=8)
    return save_figure(fig, path)


def track_trajectories(runs: list[RunRecord], path: Path, track: str = "C") -> Path | None:
    """Fig. 4: each seed of ``track`` (the paper's is C): D_shift with its peak marked, the peak and the post-peak
    drift (final − peak) in the legend."""
    runs = [r for r in _evaluated(runs) if r.track == track]
    if not runs:
        return None
    fig, ax = subplots(figsize=(7, 3.8))
    values = [run.d_shift(r) for run in runs for r in run.scored_evals]
    top = zoom_if_wide(ax, values)
    for i, run in enumerate(runs):
        evals = run.scored_evals
        steps, ys = [r["step"] for r in evals], [run.d_shift(r) for r in evals]
        peak, final = run.peak, run.final
        drift = run.d_shift(final) - run.d_shift(peak)
        ax.plot(steps, ys, linestyle=["-", "--", ":", "-."][i % 4], color="black",
                label=f"{run.label}{' †' if run.interactive else ''}: peak {run.d_shift(peak):.3f} at "
                      f"{peak['step']:,}, drift {drift:+.3f}")
        if top is not None:
            off = [s for s, y in zip(steps, ys, strict=True) if y is not None and y > top]
            ax.plot(off, [top] * len(off), linestyle="none", marker="^", color="black", markersize=4, clip_on=False)
        ax.plot(peak["step"], run.d_shift(peak), marker="v", color="black")
    ax.axhline(1.0, color="black", linewidth=0.7, linestyle="--")
    mark_interventions(ax, runs)
    ax.set_xlabel("training step")
    ax.set_ylabel("D_shift (normalised)")
    ax.set_title(f"Track {track} per seed: peak (▼) and post-peak drift" + (" († changed interactively)"
                                                                     if any(r.interactive for r in runs) else ""))
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def sigma_z_curves(runs: list[RunRecord], path: Path) -> Path | None:
    """Fig. 5: σ_z against step per track with the 0.5 collapse line."""
    runs = _evaluated(runs)
    if not runs:
        return None
    fig, ax = subplots(figsize=(7, 3.6))
    for name, group in by_track(runs).items():
        _plot_band(ax, group, "sigma_z", name, name)
    ax.axhline(0.5, color="black", linewidth=0.8, linestyle="--", label="0.5 (collapse line)")
    mark_interventions(ax, runs)
    ax.set_xlabel("training step")
    ax.set_ylabel("σ_z (std of predictions)")
    ax.set_title("σ_z against step")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def buffer_and_events(runs: list[RunRecord], path: Path) -> Path | None:
    """Buffer occupancy and boundary events per 100 steps against step, the buffer-full step marked (memory tracks)."""
    runs = [r for r in runs if r.track != "A" and r.trains]
    if not runs:
        return None
    fig, (occ, rate) = subplots(1, 2, figsize=(10, 3.6))
    for i, run in enumerate(runs):
        line = ["-", "--", ":", "-."][i % 4]
        steps = np.array([r["step"] for r in run.trains])
        size = np.array([r.get("buffer_size") or 0 for r in run.trains])
        events = np.array([r.get("boundary_events") or 0 for r in run.trains])
        occ.plot(steps, size, linestyle=line, color="black", label=run.label)
        full = steps[size >= run.config.memory.capacity]
        if len(full):
            occ.axvline(full[0], color="0.5", linewidth=0.7)
            occ.annotate(f"{run.label} full at {full[0]}", (full[0], run.config.memory.capacity), fontsize=7,
                         xytext=(4, -12 - 10 * i), textcoords="offset points")
        # events per 100 steps over a trailing window of EVENT_WINDOW steps (a 10-step record is too noisy)
        start = np.searchsorted(steps, steps - EVENT_WINDOW, side="left")
        span = steps - steps[start]
        ok = span > 0
        rate.plot(steps[ok], 100 * (events[ok] - events[start][ok]) / span[ok], linestyle=line, color="black",
                  label=run.label)
    occ.set_ylim(0, 1.05 * max(r.config.memory.capacity for r in runs))  # counts start at 0
    rate.set_ylim(0, max(1.0, rate.get_ylim()[1]))
    for ax in (occ, rate):
        mark_interventions(ax, runs)
    occ.set_xlabel("training step")
    occ.set_ylabel("buffer entries")
    occ.set_title("experience buffer occupancy")
    rate.set_xlabel("training step")
    rate.set_ylabel("boundary events per 100 steps")
    rate.set_title(f"boundary-event rate (trailing {EVENT_WINDOW}-step window)")
    occ.legend(fontsize=7)
    return save_figure(fig, path)


def write_figures(runs: list[RunRecord], folder: Path) -> list[Path]:
    """Every figure the runs support, as PNG files in ``folder``; returns their paths.

    Raises:
        RunDirError: when ``folder`` or a figure cannot be written.
    """
    make_folder(folder)
    made = [bar_chart(runs, folder / "fig2_peak_bars.png"), d_shift_curves(runs, folder / "fig3_d_shift.png"),
            *(track_trajectories(runs, folder / f"fig4_track_{t.lower()}.png", t) for t in MODULATED_TRACKS),
            sigma_z_curves(runs, folder / "fig5_sigma_z.png"),
            buffer_and_events(runs, folder / "buffer_and_events.png")]
    return [p for p in made if p is not None]
