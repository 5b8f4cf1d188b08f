"""Does the dashboard slow training? Steps/s of one run with the dashboard attached and detached, alternating.

    python benchmarks/tui_overhead.py --profile track_c --pairs 6 --segment 12 --device cpu

One training run goes on in a worker thread for the whole benchmark, as under ``jepa-tui run``. Segments of
``--segment`` seconds alternate: *headless* (nothing else in the process; the main thread sleeps, as the main
thread of ``jepa-tui train`` does) and *TUI* (the dashboard runs on the main thread with Textual's headless driver,
polling the run and redrawing its panels at the default rate). A segment's rate is the steps the trainer took in
it over its wall-clock seconds; starting and closing the dashboard happens between segments. Each TUI segment is
compared with the mean of the headless segments either side of it, so the slow drift of a shared machine cancels
(separate runs did not: their rates moved by more than the effect being measured).

Per segment it also prints the CPU the main thread used (the dashboard's share of a core) and, on Linux, the
share of the machine's CPU time stolen by the hypervisor (figures taken under heavy steal are noisy). Evaluation
is switched off. The last line is ``tui_over_headless <median ratio>``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from pathlib import Path

from common import StealMeter

from jepa_tui.config import load_config
from jepa_tui.gpu import NvmlSensor
from jepa_tui.training.allocator import keep_freed_memory
from jepa_tui.training.build import pick_device
from jepa_tui.ui.app import Dashboard
from jepa_tui.ui.controllers import LiveController


class AttachedController:
    """The live controller as a dashboard sees it, except that the run outlives the dashboard: ``start`` and
    ``shutdown`` do nothing (the benchmark starts the training thread once and stops it at the end)."""

    def __init__(self, inner: LiveController) -> None:
        self._inner = inner

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    def start(self, start_thread) -> None:
        """The run is already training."""

    def shutdown(self, reason: str = "stop") -> None:
        """Detaching leaves the run training."""


def segment(seconds: float, step_of, dashboard: Dashboard | None) -> dict:
    """Run one segment; returns its steps/s, the main thread's CPU share and the stolen share."""

    def measure() -> tuple[int, float, float]:
        return step_of(), time.perf_counter(), time.thread_time()

    async def attached() -> tuple[tuple, tuple]:
        async with dashboard.run_test(headless=True, size=(160, 45)) as pilot:
            await pilot.pause(1.0)  # mounted and drawn once: start-up is not part of the segment
            start = measure()
            await asyncio.sleep(seconds)
            end = measure()
            await pilot.press("q")
        return start, end

    steal = StealMeter()
    if dashboard is None:
        start = measure()
        time.sleep(seconds)
        end = measure()
    else:
        start, end = asyncio.run(attached())
    wall = end[1] - start[1]
    return {"rate": (end[0] - start[0]) / wall, "ui_cpu": (end[2] - start[2]) / wall, "steal": steal.share()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="track_c")
    parser.add_argument("--pairs", type=int, default=6, help="TUI segments (each between two headless ones)")
    parser.add_argument("--segment", type=float, default=12.0, help="seconds per segment")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of training before the first segment")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    args = parser.parse_args()
    keep_freed_memory()  # as jepa-tui train and run do
    config = load_config(args.profile, ["train.steps=10000000", "eval.every_steps=100000000"])
    device = pick_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        controller = LiveController(config, Path(tmp), device)
        run = controller.runs[controller.active]
        thread = threading.Thread(target=run.run, name="training", daemon=True)
        thread.start()
        step_of = lambda: run.trainer.progress.step  # noqa: E731 (an int read across threads)
        time.sleep(args.warmup)
        sensor = NvmlSensor()
        rows = [segment(args.segment, step_of, None)]
        for _ in range(args.pairs):
            rows.append(segment(args.segment, step_of, Dashboard(AttachedController(controller), sensor)))
            rows.append(segment(args.segment, step_of, None))
        run.stop()
        thread.join()
    ratios = []
    for index, row in enumerate(rows):
        mode = "TUI     " if index % 2 else "headless"
        line = f"{mode} {row['rate']:6.2f} steps/s  main thread {100 * row['ui_cpu']:5.1f}% of a core"
        if row["steal"] is not None:
            line += f"  steal {100 * row['steal']:4.1f}%"
        if index % 2:
            ratio = row["rate"] / statistics.mean([rows[index - 1]["rate"], rows[index + 1]["rate"]])
            ratios.append(ratio)
            line += f"  ratio {ratio:.3f}"
        print(line, flush=True)
    print(f"device {device}  profile {args.profile}  segments of {args.segment:g} s  ratios "
          f"{' '.join(f'{r:.3f}' for r in ratios)}")
    print(f"tui_over_headless {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
