"""What the evaluation protocol with its instruments costs, as a share of a run's training time.

Builds the trainer of a profile (``track_c`` by default: the paper's model and worlds, evaluated every 2,000 steps),
fills its experience buffer (the steady state of a run), times ``--steps`` training steps and ``--evals``
evaluations with the profile's evaluation settings (the default adaptation curve [0, 10, 50, 200], the content
control, raw and pixel-space errors, the validation split), and prints

    share = evaluation seconds / (eval.every_steps × seconds per training step)

the fraction of a run's training time its scheduled evaluations add. The goal is ≤ 0.15 with the default
n-curve. Evaluations are timed after one untimed warm-up evaluation; ``--set`` changes any setting (e.g.
``eval.n_curve=[50]`` for the protocol's single point, to see what the curve costs). Prints the machine, the thread
count and the CPU steal beside the figures.

Usage: python benchmarks/eval_cost.py [--profile track_c] [--steps 60] [--evals 3] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date

import openmp  # first: jepa-tui train's OpenMP settings, before torch starts OpenMP
import torch
from common import StealMeter, cpu_model, fill_buffer

from jepa_tui.config import load_config
from jepa_tui.training.trainer import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(openmp.DEFAULTS_FLAG, action="store_true", help=openmp.HELP)
    parser.add_argument("--profile", default="track_c")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--evals", type=int, default=3)
    parser.add_argument("--set", dest="sets", action="append", default=[])
    args = parser.parse_args()
    config = load_config(args.profile, args.sets)
    trainer = Trainer(config, torch.device("cpu"))
    fill_buffer(trainer)
    steal = StealMeter()
    for _ in range(5):  # warm-up
        trainer.train_step()
    started = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step()
    step_s = (time.perf_counter() - started) / args.steps
    trainer.evaluate()  # warm-up
    evals = []
    for _ in range(args.evals):
        started = time.perf_counter()
        trainer.evaluate()
        evals.append(time.perf_counter() - started)
    eval_s = statistics.median(evals)
    share = eval_s / (config.eval.every_steps * step_s)
    stolen = steal.share()
    steal_text = f"{100 * stolen:.1f} %" if stolen is not None else "unknown"
    print(f"machine: {cpu_model()}, {torch.get_num_threads()} threads, {date.today().isoformat()}, CPU steal "
          f"{steal_text}")
    print(f"profile {args.profile}: track {config.train.track}, n_curve {list(config.eval.n_curve)}, "
          f"content_control {config.eval.content_control}, evaluated every {config.eval.every_steps} steps")
    print(f"step {1000 * step_s:.1f} ms; evaluation {eval_s:.2f} s (median of {args.evals}: "
          f"{', '.join(f'{e:.2f}' for e in evals)})")
    print(f"eval_share {share:.3f}  (goal <= 0.15)")


if __name__ == "__main__":
    main()
