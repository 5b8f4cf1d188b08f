"""Training speed when another training process shares the CPU, under several thread and wait policies.

    python benchmarks/contention.py [--steps 300] [--policies default fixed libgomp passive threads:1]

For each policy: the paper-sized Track A alone (``benchmarks/throughput.py``), then two copies at once; prints each
copy's steps/s as a fraction of the solo figure (the fair share is 0.5) and the solo figure against the first
policy's. Policies:

- ``default``: what ``jepa-tui train`` does (``jepa_tui.threads``: usable cores, ``GOMP_SPINCOUNT`` = its
  SPIN_COUNT, and a ThreadGovernor that gives up a thread per core other processes keep busy);
- ``fixed``: the same without the governor (what ``--threads N`` gives: N threads throughout);
- ``libgomp``: libgomp's own waiting (300,000 spins before sleeping), the cores torch picks;
- ``passive``: ``OMP_WAIT_POLICY=PASSIVE`` (sleep at once);
- ``spin:N``: ``GOMP_SPINCOUNT=N``;
- ``threads:N``: ``OMP_NUM_THREADS=N`` with libgomp's waiting.

Measure on a quiet machine: the figures are only comparable at low steal (printed per run).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

from common import steps_per_s_line

HERE = Path(__file__).resolve().parent


def environment(policy: str) -> dict[str, str]:
    """The process environment of one policy (inherited variables that would decide it removed)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "JEPA_TUI_OMP_THREADS")}
    if policy in ("default", "fixed"):
        sys.path.insert(0, str(HERE.parent))
        from jepa_tui.threads import prepare_environment

        prepare_environment(0, env)
    elif policy == "passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    elif policy.startswith("spin:"):
        env["GOMP_SPINCOUNT"] = policy.split(":", 1)[1]
    elif policy.startswith("threads:"):
        env["OMP_NUM_THREADS"] = policy.split(":", 1)[1]
    elif policy != "libgomp":
        raise SystemExit(f"unknown policy {policy!r}")
    return env


def start(policy: str, steps: int) -> subprocess.Popen:
    follow = ["--follow-load"] if policy == "default" else []
    return subprocess.Popen([sys.executable, str(HERE / "throughput.py"), "--track", "A", "--steps", str(steps),
                             "--device", "cpu", *follow], env=environment(policy), stdout=subprocess.PIPE, text=True)


def rate(proc: subprocess.Popen) -> tuple[float, str, str]:
    """steps/s, the steal share and the thread changes (``-`` without a governor) of a finished copy."""
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"throughput.py failed ({proc.returncode}):\n{out}")
    steal = re.search(r"steal (\d+)%", out)
    changes = re.search(r"thread changes (.*)$", out, re.MULTILINE)
    rate = steps_per_s_line(out)
    if rate is None:
        raise SystemExit(f"throughput.py printed no steps_per_s line:\n{out}")
    return rate, steal.group(1) + "%" if steal else "-", changes.group(1) if changes else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--policies", nargs="+", default=["default", "fixed", "libgomp", "passive", "threads:1"])
    args = parser.parse_args()
    first_solo = None
    print("policy          solo steps/s  (vs first)  pair: each copy as a fraction of solo  steal       "
          "thread changes in the pair")
    for policy in args.policies:
        solo, steal_solo, _ = rate(start(policy, args.steps))
        first_solo = first_solo or solo
        pair = [start(policy, args.steps), start(policy, args.steps)]
        shares = [rate(proc) for proc in pair]
        fractions = [r / solo for r, _, _ in shares]
        print(f"{policy:<15} {solo:8.2f}      {solo / first_solo:6.3f}      "
              f"{fractions[0]:.2f}  {fractions[1]:.2f}  (min {min(fractions):.2f})               "
              f"{steal_solo} / {shares[0][1]}  {shares[0][2]} | {shares[1][2]}", flush=True)


if __name__ == "__main__":
    main()
