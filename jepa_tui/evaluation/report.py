"""Tables over runs and sweeps (spec §6–§7): Table 1 with bootstrap CIs, δ and the outcome; Table 2 for freeze
runs; Table 3 for a λ sweep. Runs are read from their run directories (``config.toml``, ``metrics.jsonl``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from jepa_tui.config import Config, load_run_config
from jepa_tui.evaluation.statistics import OUTCOMES, outcome, relative_delta_pct, summarise
from jepa_tui.training.run_dir import RunDirectory


@dataclass
class RunRecord:
    """One run as the report sees it. ``variant`` is its sweep variant ("" outside sweeps or for none)."""

    path: Path
    config: Config
    variant: str
    evals: list[dict]
    trains: list[dict]
    status: str

    @property
    def track(self) -> str:
        return self.config.train.track

    @property
    def seed(self) -> int:
        return self.config.train.seed

    @property
    def label(self) -> str:
        return f"{self.variant + ' ' if self.variant else ''}{self.track} s{self.seed}"

    @property
    def peak(self) -> dict:
        """The evaluation with the lowest D_shift (the paper reports its metric at the peak)."""
        return min(self.evals, key=lambda r: r["d_shift"])

    @property
    def final(self) -> dict:
        return self.evals[-1]


def _variant(run_dir: Path) -> str:
    manifest = run_dir.parent / "manifest.json"
    if manifest.is_file():
        for run in json.loads(manifest.read_text()).get("runs", []):
            if run["name"] == run_dir.name:
                return run["variant"]
    return ""


def collect_runs(paths: list[Path]) -> list[RunRecord]:
    """Every run directory at or below ``paths`` with at least one evaluation, sorted by variant, track, seed.

    Raises:
        FileNotFoundError: when a path does not exist or holds no evaluated run.
    """
    found: dict[Path, RunRecord] = {}
    for root in map(Path, paths):
        if not root.exists():
            raise FileNotFoundError(f"'{root}' does not exist")
        candidates = [root] if (root / "config.toml").is_file() else sorted(p.parent for p in root.rglob("config.toml"))
        for run_dir in candidates:
            metrics = RunDirectory(run_dir).read_records("metrics")
            evals = [r for r in metrics if r.get("kind") == "eval"]
            if not evals:
                continue
            summary = {}
            if (run_dir / "summary.json").is_file():
                summary = json.loads((run_dir / "summary.json").read_text())
            found[run_dir.resolve()] = RunRecord(run_dir, load_run_config(run_dir),
                                                 _variant(run_dir), evals,
                                                 [r for r in metrics if r.get("kind") == "train"],
                                                 summary.get("status", "running"))
    if not found:
        raise FileNotFoundError(f"no evaluated runs under {', '.join(map(str, paths))}")
    return sorted(found.values(), key=lambda r: (r.variant, r.track, r.seed))


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


def _fmt(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


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
