"""Kill a run with SIGKILL at random moments, resume it each time, and compare it with the same run left alone.

    python benchmarks/kill_resume.py [--profile smoke] [--steps 600] [--eval-every 50] [--kills 4] [--seed 0]
                                     [--deterministic]

Prints one line per kill (when, the step reached, the checkpoint it resumes from), the comparison of the eval
records, train records (timing fields aside), final parameters and optimiser moments, and as its last line
``identical True`` or ``identical False``. A kill counts only when it interrupted training (the run had logged
steps past where it started and had not ended); fewer counted kills than ``--kills`` is ``identical False``. On
CPU the resumed run is bitwise identical at a fixed thread count: with ``--deterministic`` (pinned by jepa-tui,
whatever the load), or with OMP_NUM_THREADS exported; by default the thread count follows the load, and a busy
machine can make the two runs differ in their last digits.
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from jepa_tui.runs import RunDirectory, last_step

TIMING = {"seconds", "val_seconds", "elapsed", "steps_per_s"}


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "jepa_tui.cli.main", "train", *args]


def records(run_dir: Path, kind: str) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING}
            for r in RunDirectory(run_dir).read_records("metrics") if r["kind"] == kind]


def final_state(run_dir: Path) -> dict:
    path = sorted((run_dir / "checkpoints").glob("step_*.pt"))[-1]
    return torch.load(path, weights_only=True)["trainer"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--kills", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill moments")
    parser.add_argument("--deterministic", action="store_true", help="train with --deterministic")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    base = ["--profile", args.profile, "--steps", str(args.steps), "--set", f"eval.every_steps={args.eval_every}",
            "--device", "cpu", *(["--deterministic"] if args.deterministic else [])]
    root = Path(tempfile.mkdtemp(prefix="kill_resume_"))
    try:
        started = time.monotonic()
        subprocess.run(command(*base, "--runs-dir", str(root), "--run-id", "alone"), check=True,
                       stdout=subprocess.DEVNULL)
        wall = time.monotonic() - started
        reference = root / "alone"
        print(f"reference: {args.profile}, {args.steps} steps, {len(records(reference, 'eval'))} evaluations, "
              f"{wall:.1f} s wall", flush=True)

        run_dir = root / "killed"
        kills, attempts, finished = 0, 0, False
        while True:
            fresh = not (run_dir / "config.toml").exists()
            if fresh:
                shutil.rmtree(run_dir, ignore_errors=True)  # killed before its config.toml was written
            args_now = [*base, "--runs-dir", str(root), "--run-id", "killed"] if fresh else ["--resume",
                                                                                           str(run_dir)]
            before = last_step(run_dir) if run_dir.exists() else 0
            proc = subprocess.Popen(command(*args_now), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if kills == args.kills or attempts == 4 * args.kills:
                _, err = proc.communicate()
                if proc.returncode != 0:
                    raise SystemExit(f"the last resume failed ({proc.returncode}): {err}")
                break
            attempts += 1
            delay = rng.uniform(0.3, wall / 2)  # anywhere: start-up, steps, evaluations, checkpoint writes
            try:
                proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            after = last_step(run_dir) if run_dir.exists() else 0
            # A kill counts only when it interrupted training: killed (not ended) after training past its start.
            killed = proc.returncode == -signal.SIGKILL
            counted = killed and after > before
            kills += counted
            finished = finished or not killed
            checkpoints = sorted((run_dir / "checkpoints").glob("step_*.pt")) if run_dir.exists() else []
            resume_from = checkpoints[-1].stem if checkpoints else "the start"
            how = "killed" if killed else f"had ended (exit {proc.returncode})"
            print(f"attempt {attempts}: SIGKILL {delay:.2f} s after start, {how}; metrics from step {before} to "
                  f"{after}, {'counted' if counted else 'not counted (training was not interrupted)'}; "
                  f"resuming from {resume_from}", flush=True)
            if not killed and proc.returncode != 0:
                print(f"  it said: {proc.stderr.read().strip()[-2000:]}", flush=True)
            if finished:
                break
        interrupted_enough = kills == args.kills
        if not interrupted_enough:
            print(f"only {kills} of {args.kills} kills interrupted training", flush=True)

        evals, evals_ref = records(run_dir, "eval"), records(reference, "eval")
        trains_same = records(run_dir, "train") == records(reference, "train")
        state, state_ref = final_state(run_dir), final_state(reference)
        params = state["model"]
        same_params = params.keys() == state_ref["model"].keys() and all(
            torch.equal(params[k], state_ref["model"][k]) for k in params)
        moments, moments_ref = state["optimizer"]["state"], state_ref["optimizer"]["state"]
        same_moments = all(torch.equal(moments[i][k], moments_ref[i][k]) for i in moments
                           for k in ("exp_avg", "exp_avg_sq"))
        print(f"eval records identical: {evals == evals_ref} ({len(evals)} and {len(evals_ref)} records)")
        for mine, theirs in zip(evals, evals_ref, strict=False):
            print(f"  step {mine['step']:>6}: D_shift {mine['d_shift']:.6f} vs {theirs['d_shift']:.6f}")
        print(f"train records identical (timing aside): {trains_same}")
        print(f"final parameters identical, bitwise: {same_params} ({len(params)} tensors)")
        print(f"optimiser moments identical, bitwise: {same_moments}")
        print(f"identical {evals == evals_ref and trains_same and same_params and same_moments and interrupted_enough}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
