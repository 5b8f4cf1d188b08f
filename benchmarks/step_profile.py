"""Where a training step's time goes: its phases timed inside real steps, and optionally PyTorch's per-op profile.

    python benchmarks/step_profile.py --tracks AC --steps 200 [--ops 30] [--device cpu]

Each track's trainer (paper-sized model, batch 64, memory tracks with a full buffer) takes its steps, one track after
another (for ratios between tracks on a drifting machine use ``track_ratio.py``), and every step's stages are timed
as ``Trainer.train_step`` runs them: ``inputs`` (sampling and rendering the batch),
``forward`` (encoders, experience, predictor, loss), ``backward`` (zeroing gradients, backward, clipping),
``optimiser`` (the AdamW step) and ``finish`` (EMA update, boundary detector, buffer push, statistics); ``step`` is the
whole step. Medians in ms are printed per track. With ``--ops N`` a further ``--steps`` steps per track run under
``torch.profiler`` and the N operators with the most self time per step are listed with their input shapes. The
profiler slows every operator and exaggerates those that meet cold caches (the target encoder's first convolution
reads 2-3x slower under it): trust the phase figures for sizes, the op table for where to look. With ``--kernels N``
a further ``--steps`` steps per track run with oneDNN's and MKL's verbose modes on (``kernel_trace.py``): the N
library kernels (convolutions, reorders, matrix products) with the most time per step, each at its own measured time
and arithmetic rate, then what the kernels add up to and what is left of the median step for every other operator
and Python; the rates each library reaches on a large problem here are printed first, as the yardstick.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import datetime

import openmp  # first: jepa-tui train's OpenMP settings, before torch starts OpenMP
import torch
from common import StealMeter, fill_buffer, machine
from kernel_trace import Kernel, large_problem_rates, trace

from jepa_tui.config import load_config
from jepa_tui.data.worlds import Worlds
from jepa_tui.training.allocator import keep_freed_memory
from jepa_tui.training.build import pick_device
from jepa_tui.training.trainer import Trainer

PHASES = ("inputs", "forward", "backward", "optimiser", "finish", "step")


class PhaseTimer:
    """Times the stages of ``trainer.train_step`` by wrapping the trainer's own stage methods (the step itself runs
    unchanged); ``times[phase]`` collects seconds per step."""

    def __init__(self, trainer: Trainer, sync: Callable[[], None]) -> None:
        self.trainer = trainer
        self.sync = sync
        self.times: dict[str, list[float]] = {phase: [] for phase in PHASES}
        self._pending: dict[str, float] = {}
        self._wrap(trainer, "step_inputs", "inputs")
        self._wrap(trainer, "_forward", "forward")
        self._wrap(trainer, "optimise", "backward")
        self._wrap(trainer.optimizer, "step", "optimiser")
        self._wrap(trainer, "finish_step", "finish")

    def _wrap(self, owner: object, name: str, phase: str) -> None:
        inner = getattr(owner, name)

        def timed(*args, **kwargs):
            self.sync()
            started = time.perf_counter()
            out = inner(*args, **kwargs)
            self.sync()
            self._pending[phase] = self._pending.get(phase, 0.0) + time.perf_counter() - started
            return out

        setattr(owner, name, timed)

    def step(self) -> None:
        """One timed training step."""
        self._pending = {}
        self.sync()
        started = time.perf_counter()
        self.trainer.train_step()
        self.sync()
        self._pending["step"] = time.perf_counter() - started
        self._pending["backward"] -= self._pending.get("optimiser", 0.0)  # optimise() holds the optimiser step
        for phase in PHASES:
            self.times[phase].append(self._pending.get(phase, 0.0))


def op_table(trainer: Trainer, steps: int, rows: int) -> str:
    """The ``rows`` operators with the most self CPU time per step over ``steps`` profiled steps."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(steps):
            trainer.train_step()
    events = sorted(prof.key_averages(group_by_input_shape=True), key=lambda e: -e.self_cpu_time_total)[:rows]
    lines = [f"{'ms/step':>8} {'calls':>5}  operator and input shapes"]
    for event in events:
        shapes = str(event.input_shapes)[:80]
        lines.append(f"{event.self_cpu_time_total / steps / 1e3:8.3f} {event.count // steps:5d}  {event.key} {shapes}")
    return "\n".join(lines)


def kernel_table(kernels: list[Kernel], steps: int, rows: int, step_ms: float) -> str:
    """The ``rows`` library kernels with the most time per step over ``steps`` traced steps, then their totals by
    class against the median step ``step_ms``."""
    lines = [f"{'ms/step':>8} {'calls':>5} {'GFLOP/s':>7}  library kernel problem"]
    for kernel in sorted(kernels, key=lambda k: -k.ms)[:rows]:
        rate = f"{kernel.gflops:7.0f}" if kernel.gflops is not None else f"{'':7}"
        lines.append(f"{kernel.ms / steps:8.3f} {kernel.calls // steps:5d} {rate}  {kernel.library} {kernel.kind} "
                     f"{kernel.problem}")
    convolutions: dict[str, float] = {}  # by propagation kind, ms per step
    products = other = 0.0
    for kernel in kernels:
        if kernel.kind.startswith("convolution "):
            kind = kernel.kind.removeprefix("convolution ")
            convolutions[kind] = convolutions.get(kind, 0.0) + kernel.ms / steps
        elif kernel.library == "MKL":
            products += kernel.ms / steps
        else:
            other += kernel.ms / steps
    everything = sum(convolutions.values()) + products + other
    lines.append(f"kernels {everything:.2f} ms of the {step_ms:.2f} ms median step: convolutions "
                 f"{sum(convolutions.values()):.2f} (" + ", ".join(f"{k} {ms:.2f}" for k, ms in convolutions.items())
                 + f"), MKL matrix products {products:.2f}, other oneDNN {other:.2f}; every other operator and Python "
                 f"{step_ms - everything:.2f} ms")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(openmp.DEFAULTS_FLAG, action="store_true", help=openmp.HELP)
    parser.add_argument("--tracks", default="A", help="tracks to profile in turn, e.g. AC")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--ops", type=int, default=0, help="also list the N costliest operators (torch.profiler)")
    parser.add_argument("--kernels", type=int, default=0,
                        help="also list the N library kernels (oneDNN, MKL) with the most time per step (CPU)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    args = parser.parse_args()
    keep_freed_memory()  # as jepa-tui train and run do
    device = pick_device(args.device)
    if args.kernels and device.type != "cpu":
        parser.error("--kernels reads oneDNN's and MKL's verbose output: CPU only")
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    worlds = Worlds(load_config("track_a").data, device)
    timers = {}
    steal = StealMeter()
    for track in dict.fromkeys(args.tracks.upper()):  # one after another: interleaved, each step would start cold
        trainer = Trainer(load_config(f"track_{track.lower()}"), device, worlds)
        fill_buffer(trainer)  # steady state: the memory tracks attend to a full buffer
        for _ in range(args.warmup):
            trainer.train_step()
        timers[track] = PhaseTimer(trainer, sync)
        for _ in range(args.steps):
            timers[track].step()
    share = steal.share()
    print(f"{machine()}, {datetime.now():%Y-%m-%d %H:%M}" + ("" if share is None else f", steal {100 * share:.1f}%"))
    print("median ms per step: " + "  ".join(f"{phase:>9}" for phase in PHASES))
    for track, timer in timers.items():
        medians = [1e3 * statistics.median(timer.times[phase]) for phase in PHASES]
        print(f"track {track}            " + "  ".join(f"{value:9.2f}" for value in medians))
    for track, timer in timers.items() if args.ops else ():
        print(f"\ntrack {track}, torch.profiler over {args.steps} steps:")
        print(op_table(timer.trainer, args.steps, args.ops))
    if args.kernels:
        rates = large_problem_rates()
        print("\nlarge fp32 problems on this machine: " + ", ".join(f"{n} {r:.0f} GFLOP/s" for n, r in rates.items()))
    for track, timer in timers.items() if args.kernels else ():
        kernels = trace(lambda trainer=timer.trainer: [trainer.train_step() for _ in range(args.steps)])
        print(f"\ntrack {track}, library kernels over {args.steps} steps (the libraries' own times):")
        print(kernel_table(kernels, args.steps, args.kernels, 1e3 * statistics.median(timer.times["step"])))


if __name__ == "__main__":
    main()
