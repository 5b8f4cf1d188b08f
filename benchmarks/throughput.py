"""Training throughput of the paper-sized model (batch 64) for one track.

    python benchmarks/throughput.py --track C --steps 200 --device cpu

Prints per-phase figures and, as its last line, ``steps_per_s <value>``. Warm-up steps are excluded; on CUDA the
timed region is bracketed by synchronisations.
Tracks B and C are timed with a full experience buffer, their steady state. On Linux the share of CPU time stolen
by the hypervisor during the timed steps is printed too: on a shared machine separate runs are only comparable when
it is low (``benchmarks/track_ratio.py`` interleaves the tracks instead).
"""

from __future__ import annotations

import argparse
import time

import torch
from common import StealMeter, fill_buffer

from jepa_tui.config import load_config
from jepa_tui.training.trainer import Trainer, pick_device


def steal_note(share: float | None) -> str:
    """``  steal N%`` (the hypervisor's share of the CPU while timing; high values make the figure unreliable)."""
    return "" if share is None else f"  steal {100 * share:.0f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--track", choices=["A", "B", "C", "a", "b", "c"], default="C")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--profile", default=None, help="profile to take the model from (default track_<t>)")
    args = parser.parse_args()
    track = args.track.upper()
    config = load_config(args.profile or f"track_{track.lower()}", [f'train.track="{track}"'])
    device = pick_device(args.device)
    trainer = Trainer(config, device)
    fill_buffer(trainer)  # steady state: B and C attend to a full buffer
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(args.warmup):
        trainer.train_step()
    sync()
    steal = StealMeter()
    started = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step()
    sync()
    elapsed = time.perf_counter() - started
    print(f"track {track}  device {device}  threads {torch.get_num_threads()}  batch {config.train.batch_size}  "
          f"steps {args.steps}  seconds {elapsed:.2f}{steal_note(steal.share())}")
    print(f"steps_per_s {args.steps / elapsed:.3f}")


if __name__ == "__main__":
    main()
