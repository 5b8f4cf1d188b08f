"""bf16 against fp32 on the CPU: quick runs of Tracks A and C, seeds 42-44 (README, "Speed: threads, compilation,
precision"). Reads the run directories (``runs.tar.xz`` here, or RUNS given) and prints the table of ``study.md``.

    python docs/bf16/study.py [RUNS]       RUNS holds fp32/ and bf16/ sweep directories (default: runs.tar.xz here)
"""

from __future__ import annotations

import statistics
import sys
import tarfile
import tempfile
from pathlib import Path

import jepa_tui

HERE = Path(__file__).resolve().parent
FIGURES = (("peak D_shift (ratio_of_sums)", "formulas.ratio_of_sums.d_shift", min),
           ("peak D_shift (per_sample)", "formulas.per_sample.d_shift", min),
           ("σ_z at the ratio_of_sums peak", "sigma_z", None),
           ("final D_shift (ratio_of_sums)", "formulas.ratio_of_sums.d_shift", "final"),
           ("memory gain D(0) − D(50) at the end", "memory_gain", "final"),
           ("pixel RMSE at the end (px)", "pos_rmse_px", "final"))


def figure(evals, column: str, how) -> float:
    """One run's figure: the minimum over evaluations, the value at the peak of ratio_of_sums, or the final value."""
    if how is min:
        return float(evals[column].min())
    if how == "final":
        return float(evals[column].iloc[-1])
    peak = evals["formulas.ratio_of_sums.d_shift"].idxmin()
    return float(evals.loc[peak, column])


def table(root: Path) -> str:
    lines = ["| track | figure | fp32 mean ± SD (3 seeds) | bf16 mean ± SD | bf16 − fp32 | inside the seed spread |",
             "| --- | --- | --- | --- | --- | --- |"]
    for track in "AC":
        for name, column, how in FIGURES:
            values = {}
            for precision in ("fp32", "bf16"):
                runs = [jepa_tui.open_run(root / precision / f"{track}_s{seed}") for seed in (42, 43, 44)]
                values[precision] = [figure(run.evals(), column, how) for run in runs]
            if track == "A" and column == "memory_gain":
                continue
            a, b = values["fp32"], values["bf16"]
            diff = statistics.mean(b) - statistics.mean(a)
            spread = max(statistics.stdev(a), statistics.stdev(b))
            lines.append(f"| {track} | {name} | {statistics.mean(a):.4f} ± {statistics.stdev(a):.4f} | "
                         f"{statistics.mean(b):.4f} ± {statistics.stdev(b):.4f} | {diff:+.4f} | "
                         f"{'yes' if abs(diff) <= spread else 'no'} |")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1:
        print(table(Path(sys.argv[1])))
        return
    with tempfile.TemporaryDirectory() as folder, tarfile.open(HERE / "runs.tar.xz") as tar:
        tar.extractall(folder, filter="data")
        print(table(Path(folder) / "bf16"))


if __name__ == "__main__":
    main()
