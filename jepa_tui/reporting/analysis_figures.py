"""Figures of ``jepa-tui analyze`` results (:class:`~jepa_tui.evaluation.analysis.Analysis`), as PNG files."""

from __future__ import annotations

from pathlib import Path

from jepa_tui.reporting.figures import make_folder, save_figure, subplots


def analysis_figures(analyses: list, folder: Path) -> list[Path]:
    """Figures of :class:`~jepa_tui.evaluation.analysis.Analysis` results: the singular-value spectra with the
    effective rank, attention against entry age by world, D_shift per horizon, and the surprisal trace."""
    make_folder(folder)
    made = []
    fig, ax = subplots(figsize=(6, 3.6))
    for i, a in enumerate(analyses):
        ax.semilogy(range(1, len(a.singular_values) + 1), a.singular_values, linestyle=["-", "--", ":", "-."][i % 4],
                    color="black", label=f"step {a.step}: eff. rank {a.effective_rank:.1f}, σ_z {a.sigma_z:.3f}")
    ax.set_xlabel("index of singular value")
    ax.set_ylabel("singular value (log)")
    ax.set_title("SVD of predictor outputs on the shift test split")
    ax.legend(fontsize=7)
    made.append(save_figure(fig, folder / "svd_spectrum.png"))

    last = analyses[-1]
    if last.attention:
        fig, ax = subplots(figsize=(6, 3.6))
        for world, marker, colour in (("base", "o", "0.55"), ("shift", "^", "black")):
            rows = [r for r in last.attention if r["world"] == world]
            if rows:
                ax.scatter([r["age"] for r in rows], [r["weight"] for r in rows], marker=marker, s=12,
                           color=colour, label=f"{world} entries (mass {last.attention_mass.get(world, 0):.2f})")
        ax.set_xlabel("entry age (pushes ago; 0 = newest)")
        ax.set_ylabel("mean attention weight")
        ax.set_title(f"buffer attention during shift-world inference (step {last.step})")
        ax.legend(fontsize=7)
        made.append(save_figure(fig, folder / "attention_by_age.png"))

    fig, (hor, trace) = subplots(1, 2, figsize=(10, 3.6))
    horizons = list(last.d_shift_per_horizon)
    width = 0.8 / len(analyses)
    for i, a in enumerate(analyses):
        hor.bar([j + i * width for j in range(len(horizons))], list(a.d_shift_per_horizon.values()), width,
                color="white", edgecolor="black", hatch=["", "//", "..", "xx"][i % 4], label=f"step {a.step}")
    hor.set_xticks([j + 0.4 - width / 2 for j in range(len(horizons))], [f"k = {k}" for k in horizons])
    hor.set_ylabel("D_shift (normalised)")
    hor.set_title("D_shift per horizon")
    hor.legend(fontsize=7)
    rows = last.surprisal_trace
    trace.plot([r["index"] for r in rows], [r["surprisal"] for r in rows], color="black", label="surprisal")
    if rows and "threshold" in rows[0]:
        trace.plot([r["index"] for r in rows], [r["threshold"] for r in rows], color="0.5", linestyle="--",
                   label="μ + κσ")
        fired = [r for r in rows if r["fired"]]
        trace.scatter([r["index"] for r in fired], [r["surprisal"] for r in fired], marker="v", color="black",
                      label="boundary event")
    switch = next((r["index"] for r in rows if r["world"] == "shift"), None)
    if switch is not None:
        trace.axvline(switch - 0.5, color="black", linewidth=0.7)
        trace.annotate("base → shift", (switch, max(r["surprisal"] for r in rows)), fontsize=7)
    trace.set_xlabel("batch")
    trace.set_ylabel("base-predictor surprisal (MSE)")
    trace.set_title(f"surprisal at the base → shift switch (step {last.step})")
    trace.legend(fontsize=7)
    made.append(save_figure(fig, folder / "horizons_and_surprisal.png"))
    return made
