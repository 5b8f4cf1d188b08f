"""The learned calibration table: Track A trained on the base world against the oracle trained on the shift physics,
per cell (shift strength × horizons × context frames), from the `calibration` sweep's finished runs.

Each run's last kept model is re-evaluated with `jepa-tui evaluate` (so every figure comes from the same code and
protocol): A's under each cell's shift world (`--set data.shift_gravity=G`, tag `g<G>`), the oracle's under its own
settings (tag `default`). Resumable: evaluations already written are reused. Figures under `ratio_of_sums`.

A cell **qualifies** (issue "the memory question") when the oracle closes ≥ 30 % of A's shift error, with
D_A − D_oracle ≥ 0.08 and ≥ 10× the seed SD, the reverse penalty d_base(oracle) − d_base(A) is positive, and
d_base(A) is the same under every shift setting.

Usage: python docs/calibration/calibrate.py SWEEP_DIR [--out docs/calibration]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
from pathlib import Path

from jepa_tui.runs import RunDirectory
from jepa_tui.training.reevaluate import reevaluate, stored_models

FORMULA = "ratio_of_sums"
NAME = re.compile(r"c(?P<context>\d)_h(?P<horizons>\d+)_(?:base|oracle_(?P<shift>(?:g|friction|restitution|speed)"
                  r"[0-9.]+))_A_s(?P<seed>\d+)")
HORIZONS = {"124": "1 2 4", "1510": "1 5 10"}  # the variant names' horizon sets
DIVERGED = 10.0  # D_shift above this: the model's rollout ran away (training or evaluation diverged)
# How Track A (trained on the base world) is asked about each shift: the shift world of the oracle's cell.
KIND = re.compile(r"(?P<kind>g|friction|restitution|speed)(?P<value>[0-9.]+)")


def shift_settings(shift: str) -> list[str]:
    """``--set`` overrides that make a run's shift world the one of ``shift`` (e.g. "g1", "friction0.1")."""
    match = KIND.fullmatch(shift)
    kind, value = match["kind"], match["value"]
    if kind == "g":
        return [f"data.shift_gravity={value}"]
    key = {"friction": "friction", "restitution": "restitution", "speed": "speed_scale"}[kind]
    return ["data.shift.gravity=0.0", f"data.shift.{key}={value}"]


def _evaluation(run: Path, overrides: list[str], tag: str) -> dict:
    """The record of the run's last kept model under ``overrides`` (written once, then read back)."""
    directory = RunDirectory.open(run)
    last = max(stored_models(directory))
    for record in directory.read_evaluations().get(tag, []):
        if record["step"] == last:
            return record
    return list(reevaluate(run, [last], overrides, tag))[-1]


def _d(record: dict, key: str = "d_shift") -> float:
    return record["formulas"][FORMULA][key]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = parser.parse_args()
    runs: dict[tuple, dict] = {}
    for run in sorted(p for p in args.sweep.iterdir() if p.is_dir() and (p / "config.toml").is_file()):
        match = NAME.fullmatch(run.name)
        summary = RunDirectory(run).read_summary()
        if match is None or summary is None or summary.get("status") != "done":
            continue
        runs[(match["context"], match["horizons"], match["shift"] or "base", int(match["seed"]))] = {"path": run}
    shifts = sorted({key[2] for key in runs if key[2] != "base"},
                    key=lambda s: (KIND.fullmatch(s)["kind"] != "g", s[0], float(KIND.fullmatch(s)["value"])))
    rows = []
    for context, horizons in sorted({key[:2] for key in runs}):
        for shift in shifts:
            seeds = sorted(s for c, h, g, s in runs if (c, h, g) == (context, horizons, shift)
                           and (context, horizons, "base", s) in runs)
            if not seeds:
                continue
            a = [_evaluation(runs[(context, horizons, "base", s)]["path"], shift_settings(shift), shift)
                 for s in seeds]
            o = [_evaluation(runs[(context, horizons, shift, s)]["path"], [], "default") for s in seeds]
            d_a, d_o = [_d(r) for r in a], [_d(r) for r in o]
            gap = [x - y for x, y in zip(d_a, d_o, strict=True)]
            # the seed SD within each group (A, oracle), pooled: the gap itself must not count as spread
            sd = ((statistics.variance(d_a) + statistics.variance(d_o)) / 2) ** 0.5 if len(seeds) > 1 \
                else float("nan")
            closed = statistics.mean(gap) / statistics.mean(d_a)
            reverse = statistics.mean(_d(r, "d_base") for r in o) - statistics.mean(_d(r, "d_base") for r in a)
            row = {"context_frames": int(context), "horizons": HORIZONS[horizons], "shift": shift,
                   "seeds": len(seeds), "d_shift_a": statistics.mean(d_a), "d_shift_oracle": statistics.mean(d_o),
                   "gap": statistics.mean(gap), "seed_sd": sd, "closed_share": closed, "reverse_penalty": reverse,
                   "d_base_a": statistics.mean(_d(r, "d_base") for r in a),
                   "pos_rmse_px_a": statistics.mean(r["pos_rmse_px"] for r in a),
                   "pos_rmse_px_oracle": statistics.mean(r["pos_rmse_px"] for r in o)}
            # a model whose D_shift exceeds DIVERGED (its rollout ran away) makes the cell's means meaningless
            row["diverged"] = ", ".join(f"{who} s{s}" for who, values in (("A", d_a), ("oracle", d_o))
                                        for s, v in zip(seeds, values, strict=True) if not v < DIVERGED)
            row["qualifies"] = bool(closed >= 0.30 and row["gap"] >= 0.08 and (sd != sd or row["gap"] >= 10 * sd)
                                    and reverse > 0 and not row["diverged"])
            rows.append(row)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "calibration.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| C | horizons | shift | seeds | D_A | D_oracle | gap | seed SD | closed | reverse penalty | "
             "pos RMSE px A / oracle | qualifies |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | "
             "--- | --- |"]
    for r in rows:
        lines.append(f"| {r['context_frames']} | [{r['horizons'].replace(' ', ', ')}] | {r['shift']} | "
                     f"{r['seeds']} | {r['d_shift_a']:.4f} | {r['d_shift_oracle']:.4f} | {r['gap']:+.4f} | "
                     f"{r['seed_sd']:.4f} | {100 * r['closed_share']:.1f} % | {r['reverse_penalty']:+.4f} | "
                     f"{r['pos_rmse_px_a']:.2f} / {r['pos_rmse_px_oracle']:.2f} | "
                     f"{'yes' if r['qualifies'] else ('diverged: ' + r['diverged'] if r['diverged'] else 'no')} |")
    (args.out / "calibration.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(json.dumps({"cells": len(rows), "qualifying": sum(r["qualifies"] for r in rows)}))


if __name__ == "__main__":
    main()
