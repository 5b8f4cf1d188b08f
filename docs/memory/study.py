"""The memory study's tables and figure (docs/memory): per setting and track, over seeds, the adaptation curve,
memory gain, content effect, share of the oracle gap closed, test-time training and the pixel error.

Every number is read from one re-evaluation per run, ``evaluations/<tag>.jsonl`` at the run's last kept step,
written by ``jepa-tui evaluate`` (so all runs are measured by the same code on the same shift world and the same n
shift mini-batches); nothing is trained here. A run's setting and track come from its sweep name
(``<variant>_<track>_s<seed>``) or, for the calibration's runs, from ``c2_h1510_base_A_s<seed>`` (the paper's single
base world) and ``c2_h1510_oracle_friction0.1_A_s<seed>`` (the oracle: Track A trained on the shift physics).

Definitions (all under ``--formula``, per seed, then mean [95 % percentile-bootstrap CI] over seeds):
- memory gain at n: D(n = 0) − D(n), paired within one model (> 0: experience helps);
- content effect: D(n base-world entries) − D(n shift entries), n = 50;
- oracle gap share of track X in a setting: (D_A − D_X) / (D_A − D_oracle), A of the same setting and seed, the
  oracle of the same seed (its mean where that seed is missing); memory's own share: gain(50) / (D_X(0) − D_oracle);
- TTT share: (D − D_ttt) / (D − D_oracle), the same model fine-tuned on the same n mini-batches;
- a share is left out ("n/a") where its gap is under 0.05 (it would divide by seed noise), and a run that diverged
  (d_base >= 1: no better than persistence on its own training world) is listed under the table, not averaged.

Usage: python docs/memory/study.py RUN_DIR... [--tag study] [--formula ratio_of_sums] [--out docs/memory/study]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from scipy import stats  # noqa: E402
from tabulate import write_csv  # noqa: E402  (docs/memory/tabulate.py, beside this script)

from jepa_tui.reporting.statistics import summarise  # noqa: E402

SWEEP_NAME = re.compile(r"(?P<setting>\w+?)_(?P<track>[A-E])_s(?P<seed>\d+)$")


MIN_GAP = 0.05  # a share of a gap smaller than this (several seed SDs) is not reported: it would divide by noise


def diverged(row: dict) -> bool:
    """No better than persistence on the world it trained on (d_base >= 1): a collapsed representation, whose
    D_shift (normalised by a tiny persistence error) says nothing about memory; listed, not averaged."""
    return not row["d_base"] < 1.0


CALIBRATION = {"c2_h1510_base_A": ("single", "A"), "c2_h1510_oracle_friction0.1_A": ("oracle", "A")}


def identify(run: Path) -> tuple[str, str, int] | None:
    """(setting, track, seed) of a run directory from its name; None for a run outside the study."""
    stem, _, seed = run.name.rpartition("_s")
    if stem in CALIBRATION and seed.isdigit():
        return (*CALIBRATION[stem], int(seed))
    match = SWEEP_NAME.match(run.name)
    return (match["setting"], match["track"], int(match["seed"])) if match else None


def row_of(run: Path, tag: str, formula: str) -> dict | None:
    """One run's study row from its last re-evaluation under ``tag``; None when it has none."""
    who = identify(run)
    path = run / "evaluations" / f"{tag}.jsonl"
    if who is None or not path.is_file():
        return None
    record = max((json.loads(line) for line in path.read_text().splitlines() if line.strip()),
                 key=lambda r: r["step"])
    curve = dict(zip(record["n_curve"]["n"], record["n_curve"]["d_shift"][formula], strict=True))
    content = (record.get("content") or {}).get("d_shift", {}).get(formula)
    ttt = (record.get("ttt") or {}).get("d_shift", {}).get(formula)
    n = record["n_experiences"]
    return {"setting": who[0], "track": who[1], "seed": who[2], "run": run.name, "step": record["step"],
            "d_shift": record["formulas"][formula]["d_shift"], "d_base": record["formulas"][formula]["d_base"],
            **{f"d_n{k}": v for k, v in curve.items()},
            **{f"gain_n{k}": curve[0] - v for k, v in curve.items() if k},
            "content_effect": content - curve[n] if content is not None else None,
            "d_ttt": ttt, "pos_rmse_px": record.get("pos_rmse_px"), "sigma_z": record.get("sigma_z"),
            "shift": ", ".join(f"{k} = {v[1]}" for k, v in record["config_diff"].items()
                               if k.startswith("data.shift")) or "the run's own"}


def add_shares(rows: list[dict]) -> None:
    """Oracle gap shares in place (see the module's definitions)."""
    oracle = {r["seed"]: r["d_shift"] for r in rows if r["setting"] == "oracle" and not diverged(r)}
    oracle_mean = statistics.fmean(oracle.values()) if oracle else None
    track_a = {(r["setting"], r["seed"]): r["d_shift"] for r in rows
               if r["track"] == "A" and not diverged(r)}
    for r in rows:
        d_oracle = oracle.get(r["seed"], oracle_mean)
        r["d_oracle"] = d_oracle
        if d_oracle is None or r["setting"] == "oracle":
            continue
        d_a = track_a.get((r["setting"], r["seed"]))
        if d_a is not None and r["track"] != "A" and d_a - d_oracle > MIN_GAP:
            r["gap_share"] = (d_a - r["d_shift"]) / (d_a - d_oracle)
        if "d_n0" in r and r["d_n0"] - d_oracle > MIN_GAP:
            r["memory_share"] = r["gain_n50"] / (r["d_n0"] - d_oracle)
        if r["d_ttt"] is not None and r["d_shift"] - d_oracle > MIN_GAP:
            r["ttt_share"] = (r["d_shift"] - r["d_ttt"]) / (r["d_shift"] - d_oracle)


def cell(values: list[float], signed: bool = True) -> str:
    """"mean [CI low, CI high]" over seeds (the mean alone for one seed; "n/a" for none)."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return "n/a"
    s = summarise(values)
    f = "{:+.4f}" if signed else "{:.4f}"
    if s.ci_low is None:
        return f.format(s.mean)
    return f"{f.format(s.mean)} [{f.format(s.ci_low)}, {f.format(s.ci_high)}]"


def p_value(values: list[float]) -> str:
    """Two-sided one-sample t-test of the paired values against 0."""
    values = [v for v in values if v is not None]
    if len(values) < 2 or statistics.pstdev(values) == 0:
        return "n/a"
    return f"{stats.ttest_1samp(values, 0.0).pvalue:.2g}"


def table(rows: list[dict]) -> list[str]:
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if not diverged(r):
            groups.setdefault((r["setting"], r["track"]), []).append(r)
    order = {"single": 0, "oracle": 1, "stream": 2, "stream_oracle_context": 3}
    head = ["setting", "track", "seeds", "D(n=0)", "D_shift (n=50)", "memory gain n=50 (p)", "memory gain n=200",
            "content effect", "oracle gap share", "memory's share", "TTT D_shift", "TTT share", "pos RMSE px"]
    lines = ["| " + " | ".join(head) + " |", "| --- " * len(head) + "|"]
    for (setting, track), group in sorted(groups.items(), key=lambda kv: (order.get(kv[0][0], 9), kv[0][1])):
        def values(key: str, group: list[dict] = group) -> list[float]:
            return [r.get(key) for r in group]

        lines.append("| " + " | ".join([
            setting, track, ", ".join(str(r["seed"]) for r in sorted(group, key=lambda r: r["seed"])),
            cell(values("d_n0"), signed=False), cell(values("d_shift"), signed=False),
            f"{cell(values('gain_n50'))} ({p_value(values('gain_n50'))})", cell(values("gain_n200")),
            cell(values("content_effect")), cell(values("gap_share")), cell(values("memory_share")),
            cell(values("d_ttt"), signed=False), cell(values("ttt_share")),
            cell(values("pos_rmse_px"), signed=False)]) + " |")
    collapsed = [r for r in rows if diverged(r)]
    if collapsed:
        lines += ["", "Left out (diverged: d_base ≥ 1, no better than persistence on its own training world): "
                  + "; ".join(f"{r['run']} (σ_z {r['sigma_z']:.3f}, d_base {r['d_base']:.4g}, "
                              f"D_shift {r['d_shift']:.4g})" for r in collapsed) + "."]
    return lines


def figure(rows: list[dict], path: Path) -> None:
    """Adaptation curves D(n) per track, one panel per setting; thin lines seeds, thick the mean."""
    settings = [s for s in ("single", "stream", "stream_oracle_context") if any(r["setting"] == s for r in rows)]
    colours = {"A": "#000000", "B": "#E69F00", "C": "#0072B2", "D": "#009E73", "E": "#CC79A7"}
    fig, axes = plt.subplots(1, len(settings), figsize=(4.2 * len(settings), 3.6), squeeze=False, sharey=True)
    oracle = [r["d_shift"] for r in rows if r["setting"] == "oracle"]
    for ax, setting in zip(axes[0], settings, strict=True):
        for track in "ABCDE":
            group = [r for r in rows if r["setting"] == setting and r["track"] == track
                     and not diverged(r)]
            if not group:
                continue
            counts = sorted(int(k[3:]) for k in group[0] if k.startswith("d_n"))
            for r in group:
                ax.plot(counts, [r[f"d_n{n}"] for n in counts], color=colours[track], alpha=0.3, lw=0.8)
            means = [statistics.fmean(r[f"d_n{n}"] for r in group) for n in counts]
            ax.plot(counts, means, color=colours[track], lw=2, marker="o", label=f"{track} ({len(group)} seeds)")
        if oracle:
            ax.axhline(statistics.fmean(oracle), color="grey", ls="--", lw=1, label="oracle (A on shift physics)")
        ax.set_xscale("symlog", linthresh=10)
        ax.set_title(setting.replace("_", " "))
        ax.set_xlabel("n shift-world experiences")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("D_shift (ratio_of_sums)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--tag", default="study")
    parser.add_argument("--formula", default="ratio_of_sums")
    parser.add_argument("--out", type=Path, default=Path("docs/memory/study"))
    args = parser.parse_args()
    rows = [r for run in args.runs if (r := row_of(run, args.tag, args.formula)) is not None]
    add_shares(rows)
    rows.sort(key=lambda r: (r["setting"], r["track"], r["seed"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(rows, args.out.with_suffix(".csv"))
    lines = table(rows)
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    figure(rows, args.out.parent / f"{args.out.name}_curves.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
