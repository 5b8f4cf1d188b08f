"""Text versions of the report's figures (plotext), for ``report --terminal`` over SSH. Each series is drawn with
its own marker character (its track letter), so the curves stay apart without colour, in a log file too."""

from __future__ import annotations

import re

from jepa_tui.reporting.collect import RunRecord
from jepa_tui.reporting.figures import by_track, mean_band

ANSI = re.compile(r"\x1b\[[0-9;]*m")
SPARE_MARKERS = "xo+*#%&@"


def _marker(name: str, used: set[str]) -> str:
    """The series' track letter, or a spare character once that letter is taken (variants of one track)."""
    for candidate in (name[0], *SPARE_MARKERS):
        if candidate not in used:
            used.add(candidate)
            return candidate
    return "."


def terminal_figures(runs: list[RunRecord], width: int = 100, height: int = 20) -> str:
    """plotext versions of Fig. 2, 3 and 5 as text, over the runs that have an evaluation."""
    import plotext as plt

    runs = [r for r in runs if r.peak is not None]
    if not runs:
        return "(no run has an evaluation to draw)"
    out = []
    plt.clear_figure()
    plt.theme("clear")
    plt.plotsize(width, height)
    plt.bar([r.label for r in runs], [r.d_shift(r.peak) for r in runs])
    plt.title("D_shift at the peak step per run (persistence = 1.0)")
    out.append(plt.build())
    for key, title in (("d_shift", "D_shift against step (mean over seeds)"),
                       ("sigma_z", "sigma_z against step (0.5 = collapse line)")):
        plt.clear_figure()
        plt.theme("clear")
        plt.plotsize(width, height)
        used: set[str] = set()
        for name, group in by_track(runs).items():
            steps, mean, _, _ = mean_band(group, key)
            marker = _marker(name, used)
            plt.plot(steps.tolist(), mean.tolist(), label=f"{marker} {name}", marker=marker)
        plt.title(title)
        plt.xlabel("training step")
        out.append(plt.build())
    return ANSI.sub("", "\n".join(out))  # plain text: no colour codes in logs or over SSH
