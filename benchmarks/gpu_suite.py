"""One prepared script for a lent GPU: training speed per track and mode, kernels per step, peak memory, and the wall
time of the ``table1`` study extrapolated from it.

    python benchmarks/gpu_suite.py --device cuda            # the full table (under 8 minutes on one H100/H200)
    python benchmarks/gpu_suite.py --device cpu --quick     # every code path on the smoke model (CI, a few seconds)

For each track (A, B, C) × mode (eager; compiled with torch.compile; on CUDA also compiled and replayed from CUDA
graphs, ``train.cuda_graphs``) × precision (fp32, bf16) it times
``--steps`` steps after ``--warmup`` (compilation included in the warm-up and printed separately), with the
experience buffer full (the steady state of B and C). On CUDA the timing brackets synchronisations, so it measures
finished work. It then counts the kernels (CUDA) or operators (CPU) one step launches with ``torch.profiler``, and
prints the peak memory. Then run groups (``train --seeds``: K seeds in one vectorised step) of 3 and 9 per track,
in seed-steps per second. The last lines extrapolate ``table1`` (9 runs × 22,000 steps, 11 evaluations each): one
run after another at the slowest track's best single-run speed, and as three groups of 3 (one per track) at the
measured group speed.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch
from common import fill_buffer
from run_groups import group_rate

from jepa_tui.config import load_config
from jepa_tui.training.build import pick_device
from jepa_tui.training.trainer import Trainer

TABLE1_RUNS, TABLE1_STEPS, TABLE1_EVALS = 9, 22_000, 11


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(track: str, mode: str, precision: str, args: argparse.Namespace, device: torch.device) -> dict:
    """Steps/s of one (track, mode, precision), its compile seconds, kernels per step and peak memory."""
    profile = "smoke" if args.quick else f"track_{track.lower()}"
    compile_setting = "default" if mode == "graphs" else mode
    config = load_config(profile, [f'train.track="{track}"', f'train.compile="{compile_setting}"',
                                   f"train.cuda_graphs={'true' if mode == 'graphs' else 'false'}",
                                   f'train.precision="{precision}"', f'train.device="{device.type}"'])
    trainer = Trainer(config, device)
    fill_buffer(trainer)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    for _ in range(args.warmup):
        trainer.train_step()
    sync(device)
    warmup = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step()
    sync(device)
    rate = args.steps / (time.perf_counter() - started)
    activities = [torch.profiler.ProfilerActivity.CPU] + (
        [torch.profiler.ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch.profiler.profile(activities=activities) as prof:
        trainer.train_step()
        sync(device)
    events = prof.events()
    if device.type == "cuda":
        kernels = sum(1 for e in events if e.device_type == torch.autograd.DeviceType.CUDA)
    else:
        kernels = sum(1 for e in events if e.name.startswith("aten::"))
    peak = (torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    eval_started = time.perf_counter()
    trainer.evaluate()
    sync(device)
    return {"track": track, "mode": mode, "precision": precision, "steps_per_s": rate,
            "compile_s": trainer.compile_seconds, "warmup_s": warmup, "kernels": kernels, "peak_mib": peak,
            "eval_s": time.perf_counter() - eval_started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--quick", action="store_true", help="smoke model, eager only, a few steps (CI)")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=None)
    args = parser.parse_args()
    device = pick_device(args.device)
    args.steps = args.steps or (5 if args.quick else 500)
    args.warmup = args.warmup or (2 if args.quick else 30)
    modes = ["off"] if args.quick else ["off", "default", *(["graphs"] if device.type == "cuda" else [])]
    precisions = ["fp32", "bf16"]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device {name}  torch {torch.__version__}  steps {args.steps}  warm-up {args.warmup}"
          f"{'  (quick: smoke model)' if args.quick else ''}")
    print("track  mode     precision  steps/s    compile s  kernels/step  peak MiB  eval s")
    rows = []
    for track in ("A", "B", "C"):
        for mode in modes:
            for precision in precisions:
                row = measure(track, mode, precision, args, device)
                rows.append(row)
                compile_s = "-" if row["compile_s"] is None else f"{row['compile_s']:.1f}"
                print(f"{track:<6} {mode:<8} {precision:<10} {row['steps_per_s']:9.1f}  {compile_s:>9}  "
                      f"{row['kernels']:12d}  {row['peak_mib']:8.0f}  {row['eval_s']:6.2f}", flush=True)
    print("run groups, eager fp32 (seed-steps/s: K x group steps/s)")
    groups: dict[tuple[str, int], float] = {}
    for track in ("A", "B", "C"):
        for k in (3, 9):
            groups[track, k] = group_rate(track, k, args.steps, args.warmup, device, args.quick)
            print(f"{track:<6} group of {k}: {groups[track, k]:9.1f} seed-steps/s", flush=True)
    slowest = min(max(r["steps_per_s"] for r in rows if r["track"] == t) for t in ("A", "B", "C"))
    eval_s = max(r["eval_s"] for r in rows)
    total = TABLE1_RUNS * (TABLE1_STEPS / slowest + TABLE1_EVALS * eval_s)
    print(f"table1 extrapolated: {TABLE1_RUNS} runs x {TABLE1_STEPS} steps at {slowest:.1f} steps/s (the slowest "
          f"track's best) + {TABLE1_EVALS} evaluations of {eval_s:.2f} s each, one run after another: {total:.0f} s")
    grouped = sum(3 * TABLE1_STEPS / groups[t, 3] for t in ("A", "B", "C")) + TABLE1_RUNS * TABLE1_EVALS * eval_s
    print(f"table1 extrapolated as three groups of 3 (one per track), one group after another: {grouped:.0f} s")


if __name__ == "__main__":
    main()
