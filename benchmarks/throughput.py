"""Training throughput of the paper-sized model (batch 64) for one track.

    python benchmarks/throughput.py --track C --steps 200 --device cpu [--set train.compile=default ...]

Prints the figures and, as its last line, ``steps_per_s <value>``. Warm-up steps are excluded (with
``train.compile`` they include the compilation). The memory tracks (B-E) are timed with a full experience buffer,
their steady state.

``steps_per_s`` is steps over the wall-clock seconds of the loop (bracketed by synchronisations on CUDA). On CPU
every step is also timed and the median step printed above it. On a shared virtual machine whose other guests take
CPU time in bursts (the hypervisor's *steal*, printed on Linux) the wall-clock figure drops with the bursts and is
not comparable between runs; compare figures taken at low steal, or use ``benchmarks/track_ratio.py``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import openmp  # first: jepa-tui train's OpenMP settings, before torch starts OpenMP
import torch
from common import StealMeter, fill_buffer, openmp_settings

from jepa_tui.config import load_config
from jepa_tui.threads import ThreadGovernor
from jepa_tui.training.allocator import keep_freed_memory
from jepa_tui.training.build import pick_device
from jepa_tui.training.trainer import Trainer


def steal_note(share: float | None) -> str:
    """``  steal N%`` (the hypervisor's share of the CPU while timing; high values make the figure unreliable)."""
    return "" if share is None else f"  steal {100 * share:.0f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(openmp.DEFAULTS_FLAG, action="store_true", help=openmp.HELP)
    parser.add_argument("--track", choices=[*"ABCDE", *"abcde"], default="C")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--profile", default=None, help="profile to take the model from (default track_<t>)")
    parser.add_argument("--set", action="append", default=[], help="override, e.g. --set train.compile=default")
    parser.add_argument("--compile-backend", default="inductor",
                        help="torch.compile's backend with train.compile on (eager: dynamo only, for quick checks)")
    parser.add_argument("--follow-load", action="store_true",
                        help="adapt the CPU thread count to the load between steps, as jepa-tui train does with "
                             "train.threads = 0 (jepa_tui.threads.ThreadGovernor)")
    args = parser.parse_args()
    keep_freed_memory()  # as jepa-tui train and run do
    track = args.track.upper()
    config = load_config(args.profile or f"track_{track.lower()}", [f'train.track="{track}"', *args.set])
    device = pick_device(args.device)
    trainer = Trainer(config, device, compile_backend=args.compile_backend)
    fill_buffer(trainer)  # steady state: the memory tracks attend to a full buffer
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    governor = ThreadGovernor(torch.get_num_threads()) if args.follow_load and device.type == "cpu" else None
    changes = []

    def step() -> None:
        if governor is not None and (change := governor.poll()) is not None:
            changes.append(f"{change[0]}→{change[1]}")
        trainer.train_step()

    for _ in range(args.warmup):
        step()
    sync()
    steal = StealMeter()
    step_seconds = []
    started = time.perf_counter()
    for _ in range(args.steps):
        step_started = time.perf_counter()
        step()
        step_seconds.append(time.perf_counter() - step_started)
    sync()
    elapsed = time.perf_counter() - started
    print(f"track {track}  device {device}  threads {torch.get_num_threads()}  batch {config.train.batch_size}  "
          f"steps {args.steps}  seconds {elapsed:.2f}{steal_note(steal.share())}"
          + f"  {openmp_settings()}" + (f"  overrides {' '.join(args.set)}" if args.set else "")
          + (f"  thread changes {' '.join(changes) or 'none'}" if governor is not None else ""))
    if device.type == "cpu":  # CUDA steps are queued, not finished, when train_step returns
        print(f"median step {1000 * statistics.median(step_seconds):.1f} ms")
    print(f"steps_per_s {args.steps / elapsed:.3f}")


if __name__ == "__main__":
    main()
