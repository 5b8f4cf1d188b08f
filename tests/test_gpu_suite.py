"""The GPU suite's CPU-safe parts run everywhere: every track and precision on the smoke model, kernels counted."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_suite_quick_on_cpu():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_suite.py"), "--device", "cpu", "--quick"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line[:1] in "ABC" and " off " in line]
    assert [(r[0], r[2]) for r in rows] == [(t, p) for t in "ABC" for p in ("fp32", "bf16")]
    assert all(float(r[3]) > 0 and int(r[5]) > 100 for r in rows)  # steps/s, operators per step
    groups = [line.split() for line in result.stdout.splitlines() if " group of " in line]
    assert [(g[0], g[3]) for g in groups] == [(t, k) for t in "ABC" for k in ("3:", "9:")]
    assert all(float(g[4]) > 0 for g in groups)  # seed-steps/s of a run group
    last = result.stdout.splitlines()[-2:]
    assert last[0].startswith("table1 extrapolated: 9 runs x 22000 steps")
    assert last[1].startswith("table1 extrapolated as three groups of 3")
