"""K seeds of one track: a run group (one vectorised step) against K runs stepped one after another in one process
and against K processes at once.

    python benchmarks/run_groups.py --track C --k 3 --steps 60 --device cpu [--quick]

Each figure is the total seed-steps per second (K × group steps/s for the group), with the experience buffers
full (the steady state). On CPU the K processes share the cores (each gets cores / K threads); the group and the
sequential runs use every core. vmap turns each convolution into a grouped convolution, which some PyTorch builds
run slowly, hence this comparison before a group is made a default anywhere. Prints the machine, date and CPU steal.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import openmp  # first: jepa-tui train's OpenMP settings, before torch starts OpenMP
import torch
from common import StealMeter, fill_buffer, steps_per_s_line

from jepa_tui.config import load_config
from jepa_tui.training.build import pick_device
from jepa_tui.training.group import RunGroup
from jepa_tui.training.trainer import Trainer

HERE = Path(__file__).resolve().parent


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def trainers(track: str, k: int, device: torch.device, quick: bool, settings: tuple[str, ...] = (),
             worlds=None) -> list[Trainer]:
    """K fresh trainers of ``track`` (seeds 0 … K−1) with full experience buffers (``settings``: more overrides;
    ``worlds``: prepared worlds to share, built from the same data configuration)."""
    profile = "smoke" if quick else f"track_{track.lower()}"
    made = [Trainer(load_config(profile, [f'train.track="{track}"', f"train.seed={seed}", *settings]), device,
                    worlds) for seed in range(k)]
    for trainer in made:
        fill_buffer(trainer)
    return made


def group_rate(track: str, k: int, steps: int, warmup: int, device: torch.device, quick: bool = False,
               settings: tuple[str, ...] = (), worlds=None) -> float:
    """Seed-steps per second of a run group of K (K × its steps per second)."""
    group = RunGroup(trainers(track, k, device, quick, settings, worlds))
    members = list(range(k))
    for _ in range(warmup):
        group.step(members)
    _sync(device)
    started = time.perf_counter()
    for _ in range(steps):
        group.step(members)
    _sync(device)
    return k * steps / (time.perf_counter() - started)


def sequential_rate(track: str, k: int, steps: int, warmup: int, device: torch.device, quick: bool = False) -> float:
    """Seed-steps per second of K runs stepped in turn in this process."""
    made = trainers(track, k, device, quick)
    for _ in range(warmup):
        for trainer in made:
            trainer.train_step()
    _sync(device)
    started = time.perf_counter()
    for _ in range(steps):
        for trainer in made:
            trainer.train_step()
    _sync(device)
    return k * steps / (time.perf_counter() - started)


def processes_rate(track: str, k: int, steps: int, warmup: int, device: torch.device, profile: str | None = None,
                   settings: tuple[str, ...] = (), compile_backend: str = "inductor") -> float:
    """Seed-steps per second of K ``throughput.py`` processes at once (sum of their steps/s), each with
    ``profile`` (default ``track_<t>``) and the ``settings`` overrides (a mode, a precision)."""
    threads = max(1, (os.cpu_count() or 1) // k) if device.type == "cpu" else None
    env = os.environ.copy() | ({"OMP_NUM_THREADS": str(threads)} if threads else {})
    command = [sys.executable, str(HERE / "throughput.py"), "--track", track, "--steps", str(steps), "--warmup",
               str(warmup), "--device", device.type, *(["--profile", profile] if profile else []),
               "--compile-backend", compile_backend, *(item for setting in settings for item in ("--set", setting)),
               *([openmp.DEFAULTS_FLAG] if openmp.DEFAULTS_FLAG in sys.argv else [])]
    running = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) for _ in range(k)]
    rates = []
    for process in running:
        out, _ = process.communicate()
        rate = steps_per_s_line(out)
        if process.returncode != 0 or rate is None:
            raise SystemExit(f"throughput.py failed:\n{out}")
        rates.append(rate)
    return sum(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(openmp.DEFAULTS_FLAG, action="store_true", help=openmp.HELP)
    parser.add_argument("--track", default="C", choices=[*"ABCDE"])
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--quick", action="store_true", help="the smoke model, no processes (CI)")
    args = parser.parse_args()
    device = pick_device(args.device)
    steal = StealMeter()
    figures = {"group": group_rate(args.track, args.k, args.steps, args.warmup, device, args.quick),
               "sequential": sequential_rate(args.track, args.k, args.steps, args.warmup, device, args.quick)}
    if not args.quick:
        figures["processes"] = processes_rate(args.track, args.k, args.steps, args.warmup, device)
    share = steal.share()
    print(f"{datetime.now():%Y-%m-%d %H:%M}  {device}  {os.cpu_count()} CPUs  torch {torch.__version__}  track "
          f"{args.track}  K {args.k}  {args.steps} steps" + ("" if share is None else f"  steal {100 * share:.1f}%"))
    for name, rate in figures.items():
        print(f"{name:<11} {rate:8.2f} seed-steps/s  ({rate / figures['sequential']:.2f} of sequential)")
    print(f"fastest {max(figures, key=figures.get)}")


if __name__ == "__main__":
    main()
