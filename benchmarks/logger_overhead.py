"""The cost of a record logger (``--log-to NAME``) on a training run, measured as `jepa-tui train` runs it.

    python benchmarks/logger_overhead.py [--logger tensorboard|mlflow|wandb] [--pairs 5] [--profile smoke]
        [--steps 600] [--threads 2]

Each pair trains the same run twice as separate processes, without and with the logger, the order alternating
from pair to pair; each run's ``summary.json`` gives its training steps per second. Prints every pair, the medians,
the overhead (1 − with / without) and the machine with the CPU steal. On a shared 2-core VM the run-to-run spread
(±15 %) hides a cost of a few per cent, so it then also trains one run in this process with the logger's calls
timed: the time the training thread spent in the logger over its training time is the overhead, measured
directly (the logger runs on the training thread, between steps).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from common import StealMeter, machine


def rate(runs: Path, name: str, args: argparse.Namespace, logger: bool) -> float:
    command = [sys.executable, "-m", "jepa_tui.cli.main", "train", "--profile", args.profile, "--steps",
               str(args.steps), "--set", "eval.every_steps=100", "--threads", str(args.threads), "--device", "cpu",
               "--runs-dir", str(runs), "--run-id", name, *(["--log-to", args.logger] if logger else [])]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ,
                                                                        "OMP_NUM_THREADS": str(args.threads)})
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads((runs / name / "summary.json").read_text())["steps_per_s"]


def direct_share(args: argparse.Namespace) -> tuple[float, float, int, float]:
    """(seconds in the logger's per-record calls, training seconds, calls, seconds of its session end: the last
    flush and closing the tracker's run) for one run trained here with the logger's calls timed."""
    import time

    import torch

    from jepa_tui.config import load_config
    from jepa_tui.training.loggers import logger_sinks
    from jepa_tui.training.loop import RunLoop
    from jepa_tui.training.session import prepare_run

    class Timed:
        def __init__(self, inner) -> None:
            self.inner, self.seconds, self.calls, self.end = inner, 0.0, 0, 0.0

        def __getattr__(self, name):
            method = getattr(self.inner, name)

            def timed(*a, **kw):
                started = time.perf_counter()
                try:
                    return method(*a, **kw)
                finally:
                    if name == "on_summary":
                        self.end += time.perf_counter() - started
                    else:
                        self.seconds += time.perf_counter() - started
                        self.calls += 1
            return timed

    torch.set_num_threads(args.threads)
    config = load_config(args.profile, [f"train.steps={args.steps}", "eval.every_steps=100"])
    with tempfile.TemporaryDirectory() as folder:
        prepared = prepare_run(config, torch.device("cpu"), Path(folder), "timed")
        logger = Timed(logger_sinks(replace(config, train=replace(config.train, loggers=(args.logger,))),
                                    prepared.directory.path)[0])
        summary = RunLoop(prepared.trainer, prepared.directory, [logger]).run()
    return logger.seconds, summary["train_seconds"], logger.calls, logger.end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--logger", default="tensorboard", choices=["tensorboard", "mlflow", "wandb"])
    args = parser.parse_args()
    figures: dict[bool, list[float]] = {False: [], True: []}
    steal = StealMeter()
    with tempfile.TemporaryDirectory() as folder:
        for pair in range(args.pairs):
            for logger in ((False, True) if pair % 2 == 0 else (True, False)):
                figures[logger].append(rate(Path(folder), f"{pair}_{int(logger)}", args, logger))
            print(f"pair {pair + 1}: without {figures[False][-1]:.1f}  with {args.logger} {figures[True][-1]:.1f} "
                  "steps/s", flush=True)
    share = steal.share()
    print(f"{machine()}, {datetime.now():%Y-%m-%d %H:%M}" + ("" if share is None else f", steal {100 * share:.1f}%"))
    without, with_logger = statistics.median(figures[False]), statistics.median(figures[True])
    print(f"median without {without:.1f}  with {args.logger} {with_logger:.1f} steps/s  "
          f"overhead {100 * (1 - with_logger / without):+.1f}%  (spread without {min(figures[False]):.1f}–"
          f"{max(figures[False]):.1f})")
    seconds, training, calls, end = direct_share(args)
    print(f"measured directly: {calls} per-record calls took {seconds:.3f} s of {training:.1f} s of training: "
          f"overhead {100 * seconds / training:.2f}%; the session's end (last flush, closing the tracker's run) "
          f"{end:.3f} s once")


if __name__ == "__main__":
    main()
