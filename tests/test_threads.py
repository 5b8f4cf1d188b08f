"""Threads and OpenMP waiting: the cores a process may use (affinity, cgroup quota), set before torch starts,
never overriding what the user exported; and the governor that gives threads up to other processes' load."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest
import torch

from jepa_tui.threads import (
    SPIN_COUNT,
    CpuSample,
    ThreadGovernor,
    adaptive,
    cgroup_cpu_limit,
    prepare_environment,
    sample_cpu,
    usable_cores,
)


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
    assert env == {"OMP_NUM_THREADS": str(usable_cores()), "GOMP_SPINCOUNT": SPIN_COUNT,
                   "JEPA_TUI_OMP_THREADS": str(usable_cores())}
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


def test_only_a_count_jepa_tui_chose_itself_follows_the_load():
    chosen: dict[str, str] = {}
    prepare_environment(0, chosen)
    assert adaptive(0, chosen) and not adaptive(2, chosen)  # train.threads / --threads pin it
    exported = {"OMP_NUM_THREADS": "2"}
    prepare_environment(0, exported)
    assert not adaptive(0, exported)  # the user's OMP_NUM_THREADS is a fixed count
    child = {**chosen, "OMP_NUM_THREADS": "1"}  # a sweep that split the cores between its children
    assert not adaptive(0, child)


def test_a_parallel_sweep_splits_the_cores_it_chose_but_not_a_count_the_user_exported():
    """`sweep --jobs 2` under the CLI, which has already written its own OMP_NUM_THREADS: each run gets half."""
    from jepa_tui.experiments.backends import LocalBackend

    env: dict[str, str] = {}
    prepare_environment(0, env)  # as the console script does before the sweep command runs
    assert LocalBackend(jobs=2, environ=env).env["OMP_NUM_THREADS"] == str(max(1, usable_cores() // 2))
    assert LocalBackend(jobs=1, environ=env).env["OMP_NUM_THREADS"] == str(usable_cores())
    assert LocalBackend(jobs=2, environ={"OMP_NUM_THREADS": "3"}).env["OMP_NUM_THREADS"] == "3"


class FakeLoad:
    """Cumulative CPU samples of a 2-core machine where other processes use ``others`` cores and this one
    ``own``, one second of wall time per sample."""

    def __init__(self) -> None:
        self.busy = self.own_total = self.wall = 0.0
        self.others, self.own = 0.0, 2.0

    def __call__(self) -> CpuSample:
        self.wall += 1.0
        self.busy += self.others + self.own
        self.own_total += self.own
        return CpuSample(self.busy, self.own_total, self.wall)


def governed(load: FakeLoad) -> tuple[ThreadGovernor, list[int]]:
    counts = [2]
    governor = ThreadGovernor(2, cores=2, interval_s=0.0, sampler=load, set_threads=counts.append,
                              get_threads=lambda: counts[-1])
    return governor, counts


def test_the_governor_gives_up_a_thread_to_a_busy_core_and_takes_it_back():
    load = FakeLoad()
    governor, counts = governed(load)
    assert governor.poll() is None and counts == [2]  # alone
    load.others, load.own = 1.0, 1.0  # another trainer arrives
    assert governor.poll() == (2, 1) and counts[-1] == 1 and governor.others == pytest.approx(1.0)
    assert governor.poll() is None  # stays while it runs
    load.others, load.own = 0.0, 1.0  # it leaves
    assert governor.poll() == (1, 2) and counts[-1] == 2


@pytest.mark.parametrize(("others", "expected"), [(0.3, 2), (0.45, 2), (0.55, 1), (1.6, 1)])
def test_about_half_a_busy_core_costs_a_thread(others, expected):
    load = FakeLoad()
    governor, counts = governed(load)
    load.others, load.own = others, 2.0 - min(others, 1.0)
    governor.poll()
    assert counts[-1] == expected


def test_short_lulls_do_not_flip_the_count_back():
    """Hysteresis: at one thread, others must leave three quarters of a core free before it climbs again."""
    load = FakeLoad()
    governor, counts = governed(load)
    load.others, load.own = 1.0, 1.0
    governor.poll()
    for others in (0.6, 0.4, 0.3):  # 2 − others rounded with +0.25: 1
        load.others = others
        governor.poll()
        assert counts[-1] == 1
    load.others = 0.2
    governor.poll()
    assert counts[-1] == 2


def test_each_training_thread_applies_the_count_to_itself():
    """OpenMP's thread count belongs to the OS thread: a poll on a worker changes the worker's count, not the
    caller's (the dashboard's and a run group's training threads each poll)."""
    load = FakeLoad()
    governor = ThreadGovernor(2, cores=2, interval_s=0.0, sampler=load)
    load.others, load.own = 1.0, 1.0
    before, seen = torch.get_num_threads(), []

    def work() -> None:
        torch.set_num_threads(2)
        seen.append(governor.poll())
        seen.append(torch.get_num_threads())

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert seen == [(2, 1), 1] and torch.get_num_threads() == before


def test_without_a_readable_load_the_count_stays():
    counts = [2]
    governor = ThreadGovernor(2, cores=2, interval_s=0.0, sampler=lambda: None, set_threads=counts.append,
                              get_threads=lambda: counts[-1])
    assert not governor.due() and governor.poll() is None and counts == [2]


@pytest.mark.skipif(sample_cpu() is None or len(os.sched_getaffinity(0)) > 4, reason="needs /proc and few cores")
def test_a_real_busy_process_is_seen():
    """psutil's counters: a child spinning on one core shows up as about one core of other processes' load."""
    cores = len(os.sched_getaffinity(0))
    governor = ThreadGovernor(cores, interval_s=1.0, set_threads=lambda n: None, get_threads=lambda: cores)
    spin = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 4\nwhile time.time() < end: pass"])
    try:
        time.sleep(1.2)
        governor.poll()
        assert governor.others >= 0.7
        assert governor.threads <= max(1, cores - 1)
    finally:
        spin.kill()
        spin.wait()


def test_a_cli_run_records_its_thread_changes(tmp_path, monkeypatch):
    """`jepa-tui train` with an adaptive count: a change the governor makes is a `threads` event of the run."""
    from typer.testing import CliRunner

    from jepa_tui.cli.main import app

    load = FakeLoad()
    load.others, load.own = 1.0, 1.0
    governor, counts = governed(load)
    monkeypatch.setattr("jepa_tui.threads.governor_for", lambda threads, device_type: governor)
    result = CliRunner().invoke(app, ["train", "--profile", "smoke", "--steps", "4", "--runs-dir", str(tmp_path),
                                      "--run-id", "r"])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in (tmp_path / "r" / "events.jsonl").read_text().splitlines()]
    threads = [e for e in events if e["kind"] == "threads"]
    assert [(e["previous"], e["threads"], e["step"]) for e in threads] == [(2, 1, 0)]
    assert "CPU threads 2 → 1 at step 0: other processes use 1.0 of 2 cores" in result.output
    assert counts == [2, 1, 2]  # and the count the thread had is restored when the run ends
