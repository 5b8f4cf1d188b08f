"""Which guesses move the numbers: each variant of the `guesses` sweep against the baseline of its track.

    python docs/reproduction/guess_effects.py docs/reproduction/guesses/evals.csv > docs/reproduction/guesses/effects.md

For every run and each D_shift formula (per_sample, ratio_of_sums, median): the peak (lowest D_shift over the
evaluations), its step, and d_base at that step (mean over horizons, then per horizon), each beside the change
from the baseline run of the same track. Reads only the report's evals.csv.
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path

FORMULAS = ("per_sample", "ratio_of_sums", "median")


def number(text: str) -> float | None:
    return float(text) if text not in ("", None) else None


def peak(rows: list[dict], formula: str) -> dict:
    """The evaluation with the lowest D_shift under ``formula``, with its d_base (mean and per horizon)."""
    scored = [r for r in rows if number(r.get(f"{formula}_d_shift", "")) is not None]
    best = min(scored, key=lambda r: float(r[f"{formula}_d_shift"]))
    horizons = sorted(int(k.rsplit("_k", 1)[1]) for k in best if k.startswith(f"{formula}_d_base_k")
                      and best[k] != "")
    return {"d_shift": float(best[f"{formula}_d_shift"]), "step": int(best["step"]),
            "d_base": number(best[f"{formula}_d_base"]),
            "d_base_k": {k: float(best[f"{formula}_d_base_k{k}"]) for k in horizons},
            "sigma_z": number(best["sigma_z"])}


def signed(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:+.{digits}f}"


def change(mine: dict, base: dict | None):
    """key -> mine[key] − base[key] (None when either is missing)."""
    def delta(key: str) -> float | None:
        if base is None or mine[key] is None or base[key] is None:
            return None
        return mine[key] - base[key]
    return delta


def main(path: str) -> None:
    runs: dict[tuple[str, str], list[dict]] = defaultdict(list)
    with open(path) as evals:
        for row in csv.DictReader(evals):
            runs[row["variant"], row["track"]].append(row)
    with open(Path(path).with_name("runs.csv")) as listed:
        status = {(r["variant"], r["track"]): (r["status"], r["last_step"], r["budget_steps"])
                  for r in csv.DictReader(listed)}
    print("# Which guesses move the numbers\n")
    print("Each variant changes one guess of ours (profile `guesses`: Tracks A and C, seed 42, the `quick` budget of "
          "5,000 steps evaluated every 500). Peak = the lowest D_shift over the evaluations under that formula; "
          "d_base is read at the same step (mean over horizons; per horizon below). Δ = variant − baseline of the "
          "same track.\n")
    for formula in FORMULAS:
        print(f"## {formula}\n")
        print("| variant | track | run | peak D_shift | Δ | peak step | Δ steps | d_base at peak | Δ |"
              " gap (D_shift − d_base) | σ_z at peak |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for (variant, track), rows in sorted(runs.items(), key=lambda kv: (kv[0][0] != "baseline", kv[0])):
            mine = peak(rows, formula)
            base = peak(runs["baseline", track], formula) if ("baseline", track) in runs else None
            delta = change(mine, base)
            gap = mine["d_shift"] - mine["d_base"] if mine["d_base"] is not None else None
            state, last, budget = status.get((variant, track), ("?", "?", "?"))
            run = "done" if state == "done" else f"{state} at step {last} of {budget}"
            print(f"| {variant} | {track} | {run} | {mine['d_shift']:.4f} | {signed(delta('d_shift'))} | "
                  f"{mine['step']} | {signed(delta('step'), 0)} | {mine['d_base']:.4f} | {signed(delta('d_base'))} | "
                  f"{signed(gap)} | {mine['sigma_z']:.3f} |")
        print("\nd_base per horizon at the peak:\n")
        for (variant, track), rows in sorted(runs.items(), key=lambda kv: (kv[0][0] != "baseline", kv[0])):
            mine = peak(rows, formula)
            print(f"- {variant} {track}: " + ", ".join(f"k{k} {v:.4f}" for k, v in mine["d_base_k"].items()))
        print()


if __name__ == "__main__":
    main(sys.argv[1])
