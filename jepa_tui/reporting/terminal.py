"""Text versions of the report's figures (plotext), for ``report --terminal`` over SSH."""

from __future__ import annotations

import re

from jepa_tui.reporting.collect import RunRecord
from jepa_tui.reporting.figures import by_track, mean_band

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def terminal_figures(runs: list[RunRecord], width: int = 100, height: int = 20) -> str:
    """plotext versions of Fig. 2, 3 and 5 as text (for ``report --terminal`` over SSH)."""
    import plotext as plt

    out = []
    plt.clear_figure()
    plt.theme("clear")
    plt.plotsize(width, height)
    plt.bar([r.label for r in runs], [r.peak["d_shift"] for r in runs])
    plt.title("D_shift at the peak step per run (persistence = 1.0)")
    out.append(plt.build())
    for key, title in (("d_shift", "D_shift against step (mean over seeds)"),
                       ("sigma_z", "sigma_z against step (0.5 = collapse line)")):
        plt.clear_figure()
        plt.theme("clear")
        plt.plotsize(width, height)
        for name, group in by_track(runs).items():
            steps, mean, _ = mean_band(group, key)
            plt.plot(steps.tolist(), mean.tolist(), label=name)
        plt.title(title)
        plt.xlabel("training step")
        out.append(plt.build())
    return ANSI.sub("", "\n".join(out))  # plain text: no colour codes in logs or over SSH
