"""The GPU suite runs its whole measurement plan on the CPU (the smoke model, dynamo's eager backend for the
compiled modes): every track, mode and precision, kernels counted, groups against processes, and the decision."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_suite.py"), "--device", "cpu", "--quick",
                           *extra], capture_output=True, text=True, timeout=600, cwd=ROOT)


def test_gpu_suite_quick_on_cpu_runs_the_plan_and_decides():
    result = run()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = [line.split() for line in lines if line[:1] in "ABC" and line.split()[1] in ("off", "default")]
    assert [(r[0], r[1], r[2]) for r in rows] == [(t, m, p) for t in "ABC" for m in ("off", "default")
                                                  for p in ("fp32", "bf16")]
    assert all(float(r[3]) > 0 and int(r[5]) > 100 for r in rows)  # steps/s, operators per step
    compiled = [r for r in rows if r[1] == "default"]
    assert all(float(r[4]) > 0 for r in compiled)  # six compiled trainers in one process, dynamo reset between
    per_track = [line for line in lines if " best mode " in line]
    assert [line[0] for line in per_track] == list("ABC")
    assert all("one after another" in line and "group of 3" in line and "3 processes" in line for line in per_track)
    assert lines[-1].startswith("decision: run table1 as ") and "seed-steps/s" in lines[-1]


def test_the_time_guard_skips_what_would_run_past_the_budget_and_still_decides():
    result = run("--budget-s", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("skipped (time guard") for line in lines)
    assert lines[-1].startswith("decision: ")
