"""Our trainer, eager and compiled, against an eager reference loop, in interleaved rounds.

    python benchmarks/vs_reference.py --reference PATH/reference_epm.py [--rounds 5] [--steps 60] [--track C]

The reference is a plain eager PyTorch step written as a single-file training script would be (given by path).
Each round runs the reference, the reference under the OpenMP settings ``jepa-tui train`` gives itself
(``reference_omp``: the same script with ``GOMP_SPINCOUNT`` set, see ``openmp.py``), ``throughput.py`` eager and
``throughput.py --set train.compile=default`` as separate processes, the order rotating from round to round so that
a slow stretch of a shared machine does not fall on one of them; each prints ``steps_per_s``. Ours run as
``jepa-tui train`` runs, OpenMP settings included; ``reference_omp`` shows how much of the ratio those settings
alone would give the reference. The median of each over the rounds and the ratios to the reference are printed,
with the machine and the CPU steal over the whole measurement. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from common import StealMeter, machine, openmp_settings, steps_per_s_line

from jepa_tui.threads import prepare_environment

HERE = Path(__file__).resolve().parent


def commands(args: argparse.Namespace) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Each contender's command line and environment."""
    ours = [sys.executable, str(HERE / "throughput.py"), "--track", args.track, "--steps", str(args.steps),
            "--device", "cpu"]
    reference = [sys.executable, str(args.reference), "--track", args.track, "--steps", str(args.steps),
                 "--device", "cpu", "--lora", args.lora]
    as_trained = os.environ.copy()
    prepare_environment(0, as_trained)
    return {"reference": (reference, os.environ.copy()),
            "reference_omp": (reference, as_trained),
            "eager": (ours, os.environ.copy()),  # throughput.py sets the same OpenMP settings itself
            "compiled": ([*ours, "--warmup", "25", "--set", "train.compile=default"], os.environ.copy())}


def steps_per_s(command: list[str], env: dict[str, str]) -> float:
    out = subprocess.run(command, capture_output=True, text=True, env=env)
    rate = steps_per_s_line(out.stdout)
    if out.returncode != 0 or rate is None:
        raise SystemExit(f"{' '.join(command)} failed:\n{out.stdout}\n{out.stderr}")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True, help="the reference training script")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--track", default="C")
    parser.add_argument("--lora", default="naive", choices=["naive", "factorised"],
                        help="the reference's LoRA: per-sample matrices (naive) or factorised")
    args = parser.parse_args()
    runs = commands(args)
    names = list(runs)
    figures: dict[str, list[float]] = {name: [] for name in names}
    steal = StealMeter()
    for round_index in range(args.rounds):
        for offset in range(len(names)):
            name = names[(round_index + offset) % len(names)]
            figures[name].append(steps_per_s(*runs[name]))
        print(f"round {round_index + 1}: " + "  ".join(f"{n} {figures[n][-1]:.2f}" for n in names), flush=True)
    share = steal.share()
    print(machine())
    tuned = runs["reference_omp"][1]
    print(f"OpenMP: reference as exported here ({openmp_settings()}); reference_omp, eager and compiled with "
          f"OMP_NUM_THREADS={tuned['OMP_NUM_THREADS']} {openmp_settings(tuned)}")
    print(f"{datetime.now():%Y-%m-%d %H:%M}  {os.cpu_count()} CPUs  track {args.track}  {args.steps} steps per run  "
          f"reference LoRA {args.lora}" + ("" if share is None else f"  steal {100 * share:.1f}%"))
    base = statistics.median(figures["reference"])
    for name in names:
        median = statistics.median(figures[name])
        print(f"{name:<13} median {median:.2f} steps/s  (min {min(figures[name]):.2f}, max {max(figures[name]):.2f})"
              f"  ratio to reference {median / base:.2f}")


if __name__ == "__main__":
    main()
