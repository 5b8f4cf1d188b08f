"""Throughput of the tracks relative to Track A, measured in interleaved rounds in one process.

    python benchmarks/track_ratio.py --rounds 200 --device cpu [--tracks ABCDE]

Shared machines drift in speed from second to second, so separate runs of ``throughput.py`` can disagree by more
than the tracks differ. Here the tracks take turns one step at a time (rotating which goes first) for ``--rounds``
rounds, every step is timed, and the ratio of median step times is reported, to Track A and to Track C. The memory
tracks (B-E) run with a full experience buffer, their steady state. The last line is ``ratio_C_over_A <value>``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date

import openmp  # first: jepa-tui train's OpenMP settings, before torch starts OpenMP
import torch
from common import StealMeter, fill_buffer, machine

from jepa_tui.config import load_config
from jepa_tui.data.worlds import Worlds
from jepa_tui.training.allocator import keep_freed_memory
from jepa_tui.training.build import pick_device
from jepa_tui.training.trainer import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(openmp.DEFAULTS_FLAG, action="store_true", help=openmp.HELP)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=15)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--tracks", default="ABC", help="tracks to interleave, e.g. ABCDE (A and C always run)")
    args = parser.parse_args()
    keep_freed_memory()  # as jepa-tui train and run do
    device = pick_device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    worlds = Worlds(load_config("track_a").data, device)
    tracks = sorted(set(args.tracks.upper()) | {"A", "C"})
    trainers = {t: Trainer(load_config(f"track_{t.lower()}"), device, worlds) for t in tracks}
    for trainer in trainers.values():
        fill_buffer(trainer)  # steady state: the memory tracks attend to a full buffer
        for _ in range(args.warmup):
            trainer.train_step()
    times: dict[str, list[float]] = {t: [] for t in trainers}
    order = list(trainers)
    steal = StealMeter()
    for round_index in range(args.rounds):
        for offset in range(len(order)):  # rotate which track goes first, step by step
            track = order[(round_index + offset) % len(order)]
            sync()
            started = time.perf_counter()
            trainers[track].train_step()
            sync()
            times[track].append(time.perf_counter() - started)
    share = steal.share()
    print(f"{machine()}, {date.today().isoformat()}")
    if share is not None:
        print(f"steal {100 * share:.0f}% of the machine's CPU time while timing")
    base, c = statistics.median(times["A"]), statistics.median(times["C"])
    for track in trainers:
        step = statistics.median(times[track])
        print(f"track {track}  median step {1000 * step:.1f} ms  ({1 / step:.2f} steps/s)  "
              f"throughput relative to A {base / step:.3f}, to C {c / step:.3f}")
    print(f"ratio_C_over_A {base / statistics.median(times['C']):.3f}")

if __name__ == "__main__":
    main()
