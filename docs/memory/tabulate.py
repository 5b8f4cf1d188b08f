"""Per-evaluation memory instruments of some runs, as a CSV and a Markdown table (docs/memory).

For each run and evaluation step: D_shift, the adaptation curve's ends, memory gain, content effect, pixel RMSE and
σ_z under one formula, plus the stream world training was in at that step (``[data.stream]`` runs). Every number is
read from the runs' own ``metrics.jsonl`` and ``events.jsonl``; nothing is recomputed.

Usage: python docs/memory/tabulate.py RUN_DIR... [--formula ratio_of_sums] [--out docs/memory/first_look]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from jepa_tui.runs import RunDirectory


def rows_of(run: Path, formula: str) -> list[dict]:
    directory = RunDirectory(run)
    evals = [r for r in directory.read_records("metrics") if r.get("kind") == "eval"]
    switches = sorted((e["first_step"], e["world"], e["physics"]) for e in directory.read_records("events")
                      if e.get("kind") == "world_switch")
    out = []
    for e in evals:
        curve = e["n_curve"]["d_shift"][formula]
        counts = e["n_curve"]["n"]
        world = [s for s in switches if s[0] < e["step"]]
        content = e.get("content") or {}
        d = e["formulas"][formula]["d_shift"]
        out.append({"run": run.name, "step": e["step"], "d_shift": d,
                    **{f"d_n{n}": v for n, v in zip(counts, curve, strict=True)},
                    "memory_gain": curve[0] - curve[counts.index(e["n_experiences"])] if 0 in counts else None,
                    "content_effect": content["d_shift"][formula] - d if content else None,
                    "pos_rmse_px": e.get("pos_rmse_px"), "sigma_z": e["sigma_z"],
                    "world": f"{world[-1][1]}: {world[-1][2]}" if world else ""})
    return out


def write_csv(rows: list[dict], path: Path) -> None:
    """``rows`` as a CSV file, the columns in the order they first appear (full precision)."""
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--formula", default="ratio_of_sums")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rows = [row for run in args.runs for row in rows_of(run, args.formula)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(rows, args.out.with_suffix(".csv"))

    def cell(value: object) -> str:
        return f"{value:+.4f}" if isinstance(value, float) and abs(value) < 0.1 else (
            f"{value:.4f}" if isinstance(value, float) else str(value))

    shown = ["run", "step", "d_shift", "memory_gain", "content_effect", "pos_rmse_px", "sigma_z", "world"]
    lines = ["| " + " | ".join(shown) + " |", "| --- " * len(shown) + "|"]
    lines += ["| " + " | ".join(cell(row.get(k)) for k in shown) + " |" for row in rows]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
