"""Tables over runs and sweeps (spec §6–§7): Table 1 with bootstrap CIs, δ and the outcome; Table 2 for freeze
runs; Table 3 for a λ sweep, over runs read by :mod:`jepa_tui.reporting.collect`."""

from __future__ import annotations

from dataclasses import dataclass, field

from jepa_tui.reporting.collect import RunRecord
from jepa_tui.reporting.statistics import OUTCOMES, outcome, relative_delta_pct, summarise


@dataclass
class Report:
    """The tables, as Markdown text, and the numbers behind Table 1 (for tests and figures)."""

    runs: list[RunRecord]
    groups: dict[tuple[str, str], list[RunRecord]] = field(default_factory=dict)
    sections: list[str] = field(default_factory=list)
    delta_pct: dict[str, float] = field(default_factory=dict)  # per variant
    outcome: dict[str, str] = field(default_factory=dict)

    def markdown(self) -> str:
        return "\n\n".join(self.sections) + "\n"


def table1(report: Report) -> None:
    """Table 1 per variant: per-track mean D_shift at the peak over seeds with its CI, σ_z, per-seed rows, δ."""
    cfg = report.runs[0].config.report
    lines = ["## Table 1: D_shift^{n=50} at the peak step, mean over seeds",
             f"95% CI: percentile bootstrap over seed-level values ({cfg.bootstrap_resamples:,} resamples, seed "
             f"{cfg.bootstrap_seed}); std with ddof = 1; σ_z at each seed's peak (mean over seeds).",
             "",
             "| variant | track | seeds | D_shift (mean) | 95% CI | std | σ_z | per seed: D_shift @ peak step (σ_z) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    means: dict[tuple[str, str], float] = {}
    for (variant, track), runs in sorted(report.groups.items()):
        summary = summarise([r.peak["d_shift"] for r in runs], cfg)
        sigma = sum(r.peak["sigma_z"] for r in runs) / len(runs)
        means[(variant, track)] = summary.mean
        per_seed = "; ".join(f"s{r.seed}: {r.peak['d_shift']:.4f} @ {r.peak['step']} ({r.peak['sigma_z']:.3f})"
                             for r in runs)
        lines.append(f"| {variant or '-'} | {track} | {len(runs)} | {summary.mean:.4f} | [{summary.ci_low:.4f}, "
                     f"{summary.ci_high:.4f}] | {summary.std:.4f} | {sigma:.4f} | {per_seed} |")
    lines += ["", "Per seed:", "",
              "| variant | track | seed | run | peak step | D_shift at peak | σ_z at peak | final step | final D_shift "
              "| final σ_z | status |",
              "| --- " * 11 + "|"]
    for (variant, track), runs in sorted(report.groups.items()):
        for r in runs:
            lines.append(f"| {variant or '-'} | {track} | {r.seed} | {r.path.name} | {r.peak['step']} | "
                         f"{r.peak['d_shift']:.4f} | {r.peak['sigma_z']:.4f} | {r.final['step']} | "
                         f"{r.final['d_shift']:.4f} | {r.final['sigma_z']:.4f} | {r.status} |")
    for variant in sorted({v for v, _ in report.groups}):
        b, c, a = means.get((variant, "B")), means.get((variant, "C")), means.get((variant, "A"))
        name = f" ({variant})" if variant else ""
        if b is not None and c is not None:
            delta = relative_delta_pct(b, c)
            report.delta_pct[variant], report.outcome[variant] = delta, outcome(delta, cfg)
            lines += ["", f"**Pre-registered**{name}: δ = (D_B − D_C) / D_B = ({b:.4f} − {c:.4f}) / {b:.4f} = "
                          f"**{delta:.2f}%** → **Outcome {report.outcome[variant]}** "
                          f"({OUTCOMES[report.outcome[variant]]}; A ≥ {cfg.strong_pct:g}%, B ≥ {cfg.null_band_pct:g}%,"
                          f" C within ±{cfg.null_band_pct:g}%, D ≤ −{cfg.null_band_pct:g}%)."]
        if a is not None and c is not None:
            best_a = min(r.peak["d_shift"] for r in report.groups[(variant, "A")])
            lines += ["", f"Not pre-registered{name}: C against A's best seed ({best_a:.4f}): "
                          f"{relative_delta_pct(best_a, c):.2f}%; against A's mean ({a:.4f}): "
                          f"{relative_delta_pct(a, c):.2f}%."]
    report.sections.append("\n".join(lines))


def table2(report: Report) -> None:
    """Freeze runs: D_shift at the freeze step, final, settling = final − at freeze (baselines: final − peak)."""
    rows = []
    for run in report.runs:
        t = run.config.train
        freeze = [s for s in (t.freeze_buffer_at, t.freeze_ema_at) if s is not None]
        if freeze:
            at = min(freeze)
            before = [r for r in run.evals if r["step"] <= at]
            if not before:
                continue
            ref = before[-1]
            kind = {(True, True): "dual", (True, False): "buffer only", (False, True): "EMA only"}[
                (t.freeze_buffer_at is not None, t.freeze_ema_at is not None)]
            rows.append(f"| {run.label} | {kind} at {at} | {ref['d_shift']:.4f} (step {ref['step']}) | "
                        f"{run.final['d_shift']:.4f} | {run.final['d_shift'] - ref['d_shift']:+.4f} | "
                        f"{run.final['sigma_z']:.4f} |")
    if not rows:
        return
    baselines = [r for r in report.runs if r.config.train.freeze_buffer_at is None
                 and r.config.train.freeze_ema_at is None and r.track == "C"]
    for run in baselines:
        rows.insert(0, f"| {run.label} | none (peak) | {run.peak['d_shift']:.4f} (step {run.peak['step']}) | "
                       f"{run.final['d_shift']:.4f} | {run.final['d_shift'] - run.peak['d_shift']:+.4f} | "
                       f"{run.final['sigma_z']:.4f} |")
    report.sections.append("\n".join([
        "## Table 2: freeze ablations", "Settling = final − value at the freeze step (for runs without a freeze: "
        "final − peak).", "", "| run | freeze | D_shift at freeze | final D_shift | settling | final σ_z |",
        "| --- | --- | --- | --- | --- | --- |", *rows]))


def table3(report: Report) -> None:
    """Runs that differ in λ (``train.lambda_var``): peak, final and σ_z at the peak per λ."""
    lambdas = {r.config.train.lambda_var for r in report.runs}
    if len(lambdas) < 2:
        return
    rows = [f"| {run.config.train.lambda_var:g} | {run.label} | {run.peak['d_shift']:.4f} | "
            f"{run.final['d_shift']:.4f} | {run.peak['sigma_z']:.4f} | {run.peak['step']} |"
            for run in sorted(report.runs, key=lambda r: (r.config.train.lambda_var, r.label))]
    report.sections.append("\n".join(["## Table 3: λ (variance weight) sensitivity", "",
                                      "| λ | run | peak D_shift | final D_shift | σ_z at peak | peak step |",
                                      "| --- | --- | --- | --- | --- | --- |", *rows]))


def build_report(runs: list[RunRecord]) -> Report:
    """All tables that the runs support (Table 2 needs freeze runs, Table 3 several λ)."""
    report = Report(runs)
    for run in runs:
        report.groups.setdefault((run.variant, run.track), []).append(run)
    unfinished = [r.label for r in runs if r.status != "done"]
    report.sections.append("# jepa-tui report\n\n" + f"{len(runs)} runs: " + ", ".join(
        f"{r.label} ({r.path.name})" for r in runs) + (f".\n\nNot finished (their last evaluation is used): "
                                                     f"{', '.join(unfinished)}." if unfinished else "."))
    table1(report)
    table2(report)
    table3(report)
    return report
