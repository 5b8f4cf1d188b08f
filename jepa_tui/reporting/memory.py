"""The report's answer to "is memory at work?": the instruments of each run's last evaluation, per group, and what
``jepa-tui evaluate`` found under other settings (``evaluations/<tag>.jsonl``).

Memory gain (D(n = 0) − D(n = n_experiences)) and content effect (D(base entries) − D(shift entries)) are paired
within one model, so each run gives one value free of seed noise; a group's values are summarised over seeds with a
bootstrap CI and a one-sample t-test against 0 (> 0: experience, or its content, helps).
"""

from __future__ import annotations

from typing import Protocol

from scipy import stats

from jepa_tui.config import ReportConfig
from jepa_tui.reporting.collect import RunRecord
from jepa_tui.reporting.statistics import summarise
from jepa_tui.runs.records import is_number


class MemoryReport(Protocol):
    """What this section needs of a report: its runs, groups, formula, settings and sections."""

    runs: list[RunRecord]
    groups: dict[tuple[str, str], list[RunRecord]]
    formula: str | None
    sections: list[str]

    @property
    def config(self) -> ReportConfig: ...


def _formula(run: RunRecord) -> str:
    return run.formula or run.config.eval.formula


def curve(run: RunRecord, record: dict) -> dict[int, float]:
    """The adaptation curve of an eval record under the report's formula: n -> D_shift (empty when not recorded)."""
    table = record.get("n_curve")
    if not isinstance(table, dict):
        return {}
    values = table.get("d_shift", {}).get(_formula(run))
    counts = table.get("n")
    if not isinstance(values, list) or not isinstance(counts, list) or len(values) != len(counts):
        return {}
    return {int(n): float(v) for n, v in zip(counts, values, strict=True) if is_number(v)}


def memory_gain(run: RunRecord, record: dict) -> float | None:
    """D(n = 0) − D(n = n_experiences) under the report's formula; None without both points."""
    points = curve(run, record)
    n = record.get("n_experiences", run.config.eval.n_experiences)
    return points[0] - points[n] if 0 in points and n in points else None


def content_effect(run: RunRecord, record: dict) -> float | None:
    """D(base entries) − D(shift entries) at n_experiences under the report's formula; None when not recorded."""
    content = record.get("content")
    base = content.get("d_shift", {}).get(_formula(run)) if isinstance(content, dict) else None
    own = run.d_shift(record)
    return float(base) - own if is_number(base) and own is not None else None


def _d_shift(run: RunRecord, record: dict) -> float | None:
    """D_shift of a record under the report's formula, from its table of every formula (a re-evaluation may have
    been made under another ``eval.formula`` than the run's)."""
    value = record.get("formulas", {}).get(_formula(run), {}).get("d_shift")
    return float(value) if is_number(value) else None


def _summary(values: list[float], config: ReportConfig) -> str:
    """"mean [CI low, CI high] (p = …)" over seeds; the mean alone for one seed."""
    if not values:
        return "n/a"
    s = summarise(values, config)
    if s.ci_low is None:
        return f"{s.mean:+.4f}"
    p = f"p {stats.ttest_1samp(values, 0.0).pvalue:.3g}" if s.std else "no spread"
    return f"{s.mean:+.4f} [{s.ci_low:+.4f}, {s.ci_high:+.4f}] ({p})"


def _mean(values: list[float], digits: int = 4) -> str:
    return f"{sum(values) / len(values):.{digits}f}" if values else "n/a"


def memory_section(report: MemoryReport) -> None:
    """Append "Is memory at work?" for the groups whose last evaluation carries the instruments."""
    rows = []
    for (variant, track), runs in sorted(report.groups.items()):
        finals = [(run, run.final) for run in runs if run.final is not None and curve(run, run.final)]
        if not finals:
            continue
        counts = sorted(set.intersection(*(set(curve(run, rec)) for run, rec in finals)))
        points = " · ".join(f"{n}: {_mean([curve(run, rec)[n] for run, rec in finals])}" for n in counts)
        gains = [g for run, rec in finals if (g := memory_gain(run, rec)) is not None]
        effects = [c for run, rec in finals if (c := content_effect(run, rec)) is not None]
        pixels = [float(rec["pos_rmse_px"]) for _, rec in finals if is_number(rec.get("pos_rmse_px"))]
        ttt = [float(rec["d_shift_ttt"]) for _, rec in finals if is_number(rec.get("d_shift_ttt"))]
        rows.append(f"| {variant or '-'} | {track} | {len(finals)} | {points} | {_summary(gains, report.config)} | "
                    f"{_summary(effects, report.config)} | {_mean(pixels, 2)} | {_mean(ttt)} |")
    tags = _evaluation_rows(report)
    if not rows and not tags:
        return
    lines = ["## Is memory at work? (ours)",
             "At each run's last evaluation. D(n): D_shift after n shift-world experiences from the same start buffer "
             "(the adaptation curve, mean over seeds). Memory gain = D(0) − D(n_experiences) and content effect = "
             "D(base-world entries) − D(shift entries), each paired within a model (> 0: experience, or its content, "
             "helps); over seeds: mean [bootstrap CI] and a one-sample t-test against 0. Track A's are 0 by "
             "construction. Pixel RMSE: predicted latents decoded to digit positions (px, mean over horizons). TTT: "
             "D_shift after test-time training on the same n mini-batches (eval.ttt_steps > 0).", "",
             "| variant | track | seeds | D(n) | memory gain | content effect | pos RMSE px | TTT D_shift |",
             "| --- " * 8 + "|", *rows]
    if tags:
        lines += ["", "Re-evaluations (`jepa-tui evaluate`, `evaluations/<tag>.jsonl`), at each run's last "
                  "re-evaluated step, mean over seeds:", "",
                  "| variant | track | tag | settings | seeds | D_shift | memory gain | pos RMSE px |",
                  "| --- " * 8 + "|", *tags]
    report.sections.append("\n".join(lines))


def _evaluation_rows(report: MemoryReport) -> list[str]:
    found: dict[tuple[str, str, str], list[tuple[RunRecord, dict]]] = {}
    for run in report.runs:
        for tag, records in run.evaluations.items():
            usable = [r for r in records if isinstance(r, dict) and isinstance(r.get("step"), int)]
            if usable:
                found.setdefault((run.variant, run.track, tag), []).append((run, max(usable, key=lambda r: r["step"])))
    rows = []
    for (variant, track, tag), items in sorted(found.items()):
        diff = items[0][1].get("config_diff")
        settings = ", ".join(f"{k} = {v[1]}" for k, v in diff.items() if isinstance(v, list) and len(v) == 2) \
            if isinstance(diff, dict) else ""
        d = [v for run, rec in items if (v := _d_shift(run, rec)) is not None]
        gains = [g for run, rec in items if (g := memory_gain(run, rec)) is not None]
        pixels = [float(rec["pos_rmse_px"]) for _, rec in items if is_number(rec.get("pos_rmse_px"))]
        rows.append(f"| {variant or '-'} | {track} | {tag} | {settings or 'the run’s own'} | {len(items)} | "
                    f"{_mean(d)} | {_mean(gains)} | {_mean(pixels, 2)} |")
    return rows
