"""Does the dashboard slow training? Steps/s of the same run headless and under the TUI (Textual's headless
driver, real redraws at the default 2 Hz), alternating for several rounds because shared machines drift.

    python benchmarks/tui_overhead.py --profile track_c --steps 150 --rounds 3 --device cpu

Steps/s is steps over wall-clock seconds from the first to the last training record of each run (evaluation
excluded). The last line is ``tui_over_headless <median ratio>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
from pathlib import Path

from jepa_tui.config import load_config
from jepa_tui.gpu import NvmlSensor
from jepa_tui.training.loop import RunLoop
from jepa_tui.training.run_dir import RunDirectory
from jepa_tui.training.trainer import Trainer, pick_device
from jepa_tui.ui.app import Dashboard
from jepa_tui.ui.controllers import LiveController


def rate_from(run_dir: Path) -> float:
    """Steps per training second between the first and last train records: ``elapsed`` counts the time spent
    inside training steps, so a UI stealing CPU or the GIL shows up in it."""
    train = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in train if r["kind"] == "train"]
    first, last = train[0], train[-1]
    return (last["step"] - first["step"]) / (last["elapsed"] - first["elapsed"])


def headless(config, device, runs: Path) -> float:
    trainer = Trainer(config, device)
    run_dir = RunDirectory.create(runs, config)
    RunLoop(trainer, run_dir).run()
    return rate_from(run_dir.path)


def under_tui(config, device, runs: Path) -> float:
    controller = LiveController(config, runs, device)
    app = Dashboard(controller, NvmlSensor())

    async def drive() -> None:
        async with app.run_test(headless=True, size=(160, 45)) as pilot:
            run = controller.runs[controller.active]
            while run.summary is None:
                await pilot.pause(0.2)
            await pilot.press("q")

    asyncio.run(drive())
    return rate_from(controller.runs[controller.active].run_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="track_c")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    args = parser.parse_args()
    config = load_config(args.profile, [f"train.steps={args.steps}", f"eval.every_steps={10 * args.steps}"])
    device = pick_device(args.device)
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for round_index in range(args.rounds):
            base = headless(config, device, Path(tmp) / f"headless{round_index}")
            tui = under_tui(config, device, Path(tmp) / f"tui{round_index}")
            ratios.append(tui / base)
            print(f"round {round_index + 1}: headless {base:.2f} steps/s  TUI {tui:.2f} steps/s  "
                  f"ratio {tui / base:.3f}", flush=True)
    print(f"tui_over_headless {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
