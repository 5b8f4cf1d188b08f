"""The numbers behind a report as two small CSV files beside ``report.md``: ``runs.csv`` (one row per run: how it
ended, its peak and final evaluation, the step its buffer filled, its training time and speed) and ``evals.csv``
(one row per evaluation, every recorded D_shift formula and d_base, per horizon too). Plain text that any tool
reads, small enough to publish."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from jepa_tui.reporting.collect import RunRecord
from jepa_tui.runs import RunDirectory
from jepa_tui.runs.files import atomic_write_text
from jepa_tui.runs.records import sessions


def buffer_full_step(run: RunRecord) -> int | None:
    """The first train record's step at which the experience buffer held ``memory.capacity`` entries (None: never,
    or Track A)."""
    capacity = run.config.memory.capacity
    return next((r["step"] for r in run.trains if int(r.get("buffer_size") or 0) >= capacity), None)


def _version(run: RunRecord) -> str:
    starts = [e for e in sessions(run.events) if e.get("version")]
    return starts[0]["version"] if starts else ""


def _timing(run: RunRecord) -> dict[str, object]:
    """Training seconds, wall seconds and steps/s from the run's summary.json (blank when it has none)."""
    summary = RunDirectory(run.path).read_summary() or {}
    return {key: summary.get(key) for key in ("train_seconds", "wall_seconds", "steps_per_s", "device")}


def _cell(value: object) -> object:
    return "" if value is None else (f"{value:.6g}" if isinstance(value, float) else value)


def run_rows(runs: list[RunRecord]) -> list[dict[str, object]]:
    """One row per run (the report's formula for D_shift and d_base)."""
    rows = []
    for run in runs:
        peak, final, pick = run.peak, run.final, run.val_pick
        rows.append({
            "directory": run.path.name, "variant": run.variant, "track": run.track, "seed": run.seed,
            "status": run.status, "last_step": run.last_step, "budget_steps": run.budget_steps,
            "evaluations": len(run.evals), "formula": run.formula or run.config.eval.formula,
            "peak_step": peak["step"] if peak else None, "peak_d_shift": run.d_shift(peak) if peak else None,
            "peak_sigma_z": peak.get("sigma_z") if peak else None,
            "peak_d_base": run.value(peak, "d_base") if peak else None,
            "final_step": final["step"] if final else None, "final_d_shift": run.d_shift(final) if final else None,
            "final_sigma_z": final.get("sigma_z") if final else None,
            "drift": run.d_shift(final) - run.d_shift(peak) if peak and final else None,
            "val_pick_step": pick["step"] if pick else None, "val_pick_d_shift": run.d_shift(pick) if pick else None,
            "buffer_full_step": buffer_full_step(run), "buffer_entries": run.buffer_entries,
            "boundary_events": max((int(r.get("boundary_events") or 0) for r in run.trains), default=0),
            "changed_interactively": run.interactive, "flags": "; ".join(run.flags()), "version": _version(run),
            **_timing(run)})
    return rows


def eval_rows(runs: list[RunRecord]) -> list[dict[str, object]]:
    """One row per evaluation: σ_z, effective rank, and every recorded formula's D_shift, d_base and validation
    D_shift, each also per horizon (``ratio_of_sums_d_shift_k4``)."""
    rows = []
    for run in runs:
        for record in run.evals:
            row: dict[str, object] = {"directory": run.path.name, "variant": run.variant, "track": run.track,
                                      "seed": run.seed, "step": record["step"], "sigma_z": record.get("sigma_z"),
                                      "effective_rank": record.get("effective_rank"),
                                      "seconds": record.get("seconds")}
            formulas = record.get("formulas") or {run.config.eval.formula: record}
            for name, values in sorted(formulas.items()):
                for key in ("d_shift", "d_base", "d_shift_val"):
                    row[f"{name}_{key}"] = values.get(key)
                    for k, v in sorted((values.get(f"{key}_per_horizon") or {}).items(), key=lambda kv: int(kv[0])):
                        row[f"{name}_{key}_k{k}"] = v
            rows.append(row)
    return rows


def _csv(rows: list[dict[str, object]]) -> str:
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return out.getvalue()


def write_csvs(runs: list[RunRecord], folder: Path) -> list[Path]:
    """``runs.csv`` and ``evals.csv`` in ``folder``; returns their paths.

    Raises:
        RunDirError: when a file cannot be written.
    """
    paths = [folder / "runs.csv", folder / "evals.csv"]
    for path, rows in zip(paths, (run_rows(runs), eval_rows(runs)), strict=True):
        atomic_write_text(path, _csv(rows))
    return paths
