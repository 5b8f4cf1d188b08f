"""Threads and OpenMP waiting: the cores a process may use (affinity, cgroup quota), set before torch starts,
never overriding what the user exported."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from jepa_tui.threads import SPIN_COUNT, cgroup_cpu_limit, prepare_environment, usable_cores


def test_cgroup_quotas_v2_and_v1(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_limit(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(tmp_path) is None
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_limit(tmp_path) == 0.5
    assert usable_cores(tmp_path) == 1  # half a core still gets one thread
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_limit(tmp_path) is None
    assert usable_cores(tmp_path) == len(os.sched_getaffinity(0))


def test_the_environment_is_set_but_never_overridden():
    env: dict[str, str] = {}
    assert prepare_environment(0, env) == usable_cores()
    assert env == {"OMP_NUM_THREADS": str(usable_cores()), "GOMP_SPINCOUNT": SPIN_COUNT}
    exported = {"OMP_NUM_THREADS": "3", "OMP_WAIT_POLICY": "PASSIVE"}
    assert prepare_environment(0, exported) == 3 and "GOMP_SPINCOUNT" not in exported
    assert prepare_environment(5, exported) == 5 and exported["OMP_NUM_THREADS"] == "5"  # --threads wins


@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset is not installed")
def test_a_process_started_with_taskset_uses_one_thread():
    code = ("import sys; sys.argv = ['jepa-tui', '--version']\n"
            "from jepa_tui.threads import prepare_environment; prepare_environment()\n"
            "import torch; print(torch.get_num_threads())")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "GOMP_SPINCOUNT")}
    out = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True).stdout
    assert out.strip() == "1"
