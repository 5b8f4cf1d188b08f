"""One prepared script for a lent GPU: training speed per track, mode and precision, kernels per step, peak memory,
run groups against processes, and the decision how to run the ``table1`` study there.

    python benchmarks/gpu_suite.py --device cuda            # the full plan, within --budget-s (default 450 s)
    python benchmarks/gpu_suite.py --device cpu --quick     # the same plan on the smoke model (CI, about a minute)

1. For each track (A, B, C) × mode (eager; compiled with torch.compile; on CUDA also replayed from CUDA graphs,
   ``train.cuda_graphs``) × precision (fp32, bf16) it times ``--steps`` steps after ``--warmup`` (compilation
   included in the warm-up and printed apart), with the experience buffer full (the steady state of B and C). On
   CUDA the timing brackets synchronisations, so it measures finished work. Then it counts the kernels one step
   launches (CUDA kernels only, not memory copies or sets; on the CPU, the aten operators) with
   ``torch.profiler``, and prints the peak memory. The worlds are built once and shared; dynamo is reset before
   each compiled measurement, so no trainer meets the recompile limit of the ones before it.
2. For each track, in its best single-run precision: a run group of K (``train --seeds``, eager: groups do not
   compile) and K processes at once in the best single-run mode, in seed-steps per second, beside one run after
   another in that mode.
3. The last line is the decision for ``table1`` (9 runs × 22,000 steps, 11 evaluations each): groups, processes or
   one run after another, in which mode and precision, with the wall time extrapolated from the slowest track.

A time guard keeps the whole within ``--budget-s``: a measurement that would start past its share is skipped and
said so (``skipped (time guard): ...``); every row is printed as it is measured. ``--quick`` runs the same plan on
the smoke model with dynamo's ``eager`` backend for the compiled modes (every code path, no code generation).
"""

from __future__ import annotations

import argparse
import resource
import time

import openmp  # first: jepa-tui train's OpenMP settings, before torch starts OpenMP
import torch
from common import fill_buffer
from run_groups import group_rate, processes_rate

from jepa_tui.config import load_config
from jepa_tui.data.worlds import Worlds
from jepa_tui.training.build import pick_device
from jepa_tui.training.trainer import Trainer

TABLE1_RUNS, TABLE1_STEPS, TABLE1_EVALS = 9, 22_000, 11
SINGLE_SHARE = 0.7  # of the budget for the single-run table; the rest for groups and processes
NOT_KERNELS = ("Memcpy", "Memset", "memcpy", "memset")  # device events that move memory, not kernels


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def settings_for(track: str, mode: str, precision: str, device: torch.device) -> list[str]:
    compile_setting = "default" if mode == "graphs" else mode
    return [f'train.track="{track}"', f'train.compile="{compile_setting}"',
            f"train.cuda_graphs={'true' if mode == 'graphs' else 'false'}", f'train.precision="{precision}"',
            f'train.device="{device.type}"']


class Suite:
    """The measurement plan's state: the device, the shared worlds, the clock and the rows so far."""

    def __init__(self, args: argparse.Namespace, device: torch.device) -> None:
        self.args, self.device = args, device
        self.started = time.monotonic()
        self.worlds: dict[tuple, Worlds] = {}
        self.skipped: list[str] = []

    def profile(self, track: str) -> str:
        return "smoke" if self.args.quick else f"track_{track.lower()}"

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def allowed(self, what: str, until: float) -> bool:
        """Whether a measurement may start now (before ``until`` seconds of the budget); says so when not."""
        if self.elapsed() < until:
            return True
        self.skipped.append(what)
        print(f"skipped (time guard, {self.elapsed():.0f} s of {self.args.budget_s:.0f} s used): {what}", flush=True)
        return False

    def shared_worlds(self, config) -> Worlds:
        key = (config.data, config.world_seed)
        if key not in self.worlds:
            self.worlds[key] = Worlds(config.data, self.device, seed=config.world_seed)
        return self.worlds[key]

    def measure(self, track: str, mode: str, precision: str) -> dict:
        """Steps/s of one (track, mode, precision), its compile seconds, kernels per step and peak memory."""
        args, device = self.args, self.device
        config = load_config(self.profile(track), settings_for(track, mode, precision, device))
        if mode != "off":
            torch._dynamo.reset()  # a fresh cache: the limit of recompiles counts per code object
        trainer = Trainer(config, device, self.shared_worlds(config),
                          compile_backend="eager" if args.quick and mode != "off" else None)
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
            kernels = sum(1 for e in events if e.device_type == torch.autograd.DeviceType.CUDA
                          and not any(word in e.name for word in NOT_KERNELS))
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
    parser.add_argument(openmp.DEFAULTS_FLAG, action="store_true", help=openmp.HELP)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--quick", action="store_true", help="the smoke model, dynamo's eager backend (CI)")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--k", type=int, default=3, help="runs per group and processes at once")
    parser.add_argument("--budget-s", type=float, default=450.0, help="wall-clock seconds the whole may take")
    args = parser.parse_args()
    device = pick_device(args.device)
    args.steps = args.steps or (5 if args.quick else 200)
    args.warmup = args.warmup or (2 if args.quick else 20)
    suite = Suite(args, device)
    modes = ["off", "default", *(["graphs"] if device.type == "cuda" else [])]
    precisions = ["fp32", "bf16"]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device {name}  torch {torch.__version__}  steps {args.steps}  warm-up {args.warmup}  K {args.k}  "
          f"budget {args.budget_s:.0f} s{'  (quick: smoke model, dynamo eager backend)' if args.quick else ''}")
    print("track  mode     precision  steps/s    compile s  kernels/step  peak MiB  eval s")
    rows = []
    for track in ("A", "B", "C"):
        for mode in modes:
            for precision in precisions:
                if not suite.allowed(f"track {track} {mode} {precision}", SINGLE_SHARE * args.budget_s):
                    continue
                row = suite.measure(track, mode, precision)
                rows.append(row)
                compile_s = "-" if row["compile_s"] is None else f"{row['compile_s']:.1f}"
                print(f"{track:<6} {mode:<8} {precision:<10} {row['steps_per_s']:9.1f}  {compile_s:>9}  "
                      f"{row['kernels']:12d}  {row['peak_mib']:8.0f}  {row['eval_s']:6.2f}", flush=True)
    if not rows:
        print("decision: none (nothing measured within the budget)")
        return
    print(f"per track, in seed-steps/s (K = {args.k}): one run after another in the best mode, a run group (eager), "
          f"{args.k} processes at once in the best mode")
    choices: dict[str, dict[str, float]] = {}
    best: dict[str, dict] = {}
    for track in ("A", "B", "C"):
        measured = [r for r in rows if r["track"] == track]
        if not measured:
            continue
        best[track] = top = max(measured, key=lambda r: r["steps_per_s"])
        options = {"one after another": top["steps_per_s"]}
        settings = settings_for(track, top["mode"], top["precision"], device)
        if suite.allowed(f"track {track} group of {args.k}", args.budget_s):
            options[f"group of {args.k}"] = group_rate(
                track, args.k, args.steps, args.warmup, device, args.quick,
                (f'train.precision="{top["precision"]}"', f'train.device="{device.type}"'),
                suite.shared_worlds(load_config(suite.profile(track))))
        if suite.allowed(f"track {track} {args.k} processes", args.budget_s):
            options[f"{args.k} processes"] = processes_rate(
                track, args.k, args.steps, args.warmup, device, suite.profile(track), tuple(settings),
                "eager" if args.quick else "inductor")
        choices[track] = options
        print(f"{track:<6} best mode {top['mode']} {top['precision']}: " + ", ".join(
            f"{option} {rate:.1f}" for option, rate in options.items()), flush=True)
    slowest = min(choices, key=lambda t: best[t]["steps_per_s"])
    way = max(choices[slowest], key=choices[slowest].get)
    seed_steps = choices[slowest][way]
    eval_s = max(r["eval_s"] for r in rows)
    parallel = 1 if way == "one after another" else args.k
    total = TABLE1_RUNS * TABLE1_STEPS / seed_steps + TABLE1_RUNS * TABLE1_EVALS * eval_s / parallel
    mode = best[slowest]
    if suite.skipped:
        print(f"skipped by the time guard: {len(suite.skipped)} measurement(s); the decision uses what was measured")
    print(f"decision: run table1 as {way} ({'eager' if way.startswith('group') else mode['mode']}, "
          f"{mode['precision']}), from the slowest track {slowest}: {seed_steps:.1f} seed-steps/s, about "
          f"{total:.0f} s for 9 runs x {TABLE1_STEPS} steps with {TABLE1_EVALS} evaluations each "
          f"({suite.elapsed():.0f} s spent here)")


if __name__ == "__main__":
    main()
