"""Sweeps on cluster engines: submitit (its local executor stands in for SLURM) and Ray (a local instance), with the
same run directories, manifest, logs, resume and report as a local sweep, and equal metrics on CPU."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from jepa_tui.cli.main import app
from jepa_tui.config import ConfigError
from jepa_tui.experiments.cluster import RaySettings, SlurmSettings, parse_tables, resolve
from jepa_tui.experiments.engines import make_backend
from jepa_tui.experiments.spec import load_spec, load_sweep
from jepa_tui.experiments.sweep import run_sweep
from jepa_tui.reporting.collect import collect_runs
from jepa_tui.runs.manifest import read_manifest as read_manifest_body

runner = CliRunner()
# Keys that depend on when and how fast a run ran, not on what it computed.
TIMING = {"elapsed", "steps_per_s", "seconds", "val_seconds", "time", "wall_seconds", "compile_seconds"}
# One thread per run everywhere, so that a run's numbers do not depend on which engine ran it.
SMOKE = ["train.threads=1"]


def _records(run_dir: Path) -> list[dict]:
    out = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        out.append({k: v for k, v in record.items() if k not in TIMING})
    return out


def _local_sweep(root: Path, tracks: list[str], seeds: list[int], extra: list[str]) -> Path:
    spec = load_sweep("smoke", tracks=tracks, seeds=seeds, extra=extra)
    result = run_sweep(spec, root / "local", say=lambda _: None)
    assert all(o.status == "done" for o in result.outcomes)
    return root / "local"


def test_settings_come_from_the_profile_and_the_command_line(tmp_path):
    tables = parse_tables({"slurm": {"partition": "gpu", "gpus_per_run": 1, "time_min": 90},
                           "ray": {"num_gpus": 0.25}}, "p.toml: [sweep]")
    slurm = resolve("submitit", tables, {"partition": "debug", "array_parallelism": 4, "address": "x"})
    assert slurm == SlurmSettings(partition="debug", gpus_per_run=1, time_min=90, array_parallelism=4)
    assert resolve("ray", tables, {"gpus_per_run": 0.5, "cpus_per_run": 2}) == RaySettings(num_cpus=2.0,
                                                                                          num_gpus=0.5)
    with pytest.raises(ConfigError, match=r"\[sweep\]\.slurm: unknown key 'partiton'.*'partition'"):
        parse_tables({"slurm": {"partiton": "gpu"}}, "p.toml: [sweep]")
    with pytest.raises(ConfigError, match="--gpus-per-run 0.5: SLURM allots whole devices"):
        resolve("submitit", {}, {"gpus_per_run": 0.5})
    with pytest.raises(ConfigError, match="'num_gpus' = 1.5"):
        resolve("ray", {}, {"gpus_per_run": 1.5})
    profile = tmp_path / "cluster.toml"
    profile.write_text('[sweep]\nbase = "smoke"\ntracks = ["C"]\n\n[sweep.slurm]\npartition = "gpu"\n')
    assert load_sweep(str(profile)).backends == {"slurm": {"partition": "gpu"}}


def test_a_missing_extra_is_one_line_with_the_pip_install(monkeypatch, tmp_path):
    for module, backend, extra in (("ray", "ray", "ray"), ("submitit", "submitit", "slurm")):
        monkeypatch.setitem(sys.modules, module, None)  # import fails as when the extra is not installed
        result = runner.invoke(app, ["sweep", "--profile", "smoke", "--backend", backend, "--runs-dir",
                                     str(tmp_path)])
        assert result.exit_code == 2
        assert result.output.strip() == (f"jepa-tui: error: --backend {backend} needs "
                                         f"{'Ray' if backend == 'ray' else 'submitit'}, an optional extra: "
                                         f"pip install 'jepa-tui[{extra}]'")
    result = runner.invoke(app, ["sweep", "--profile", "smoke", "--backend", "slurm", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and "--backend 'slurm' is not a backend. Known backends: local, ray, submitit." \
        in result.output
    assert not any(tmp_path.iterdir())  # nothing written


def _wait_for(predicate, timeout: float = 120.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _checkpoints(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "checkpoints").glob("step_*.pt")) if (run_dir / "checkpoints").is_dir() else []


def _events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def test_submitit_jobs_resume_after_a_kill_and_requeue_after_a_timeout_signal(tmp_path):
    pytest.importorskip("submitit")
    steps = 500
    extra = [*SMOKE, f"train.steps={steps}", "eval.every_steps=100"]  # a checkpoint every 100 steps
    spec = load_sweep("smoke", tracks=["C"], seeds=[1, 2], extra=extra)
    sweep_dir = tmp_path / "slurm"
    settings = SlurmSettings(cluster="local", gpus_per_run=0, cpus_per_run=1, time_min=10)
    backend = make_backend("submitit", settings, runs=2, jobs=1, sweep_dir=sweep_dir)
    result = {}
    thread = threading.Thread(target=lambda: result.update(r=run_sweep(spec, sweep_dir, backend=backend,
                                                                        say=lambda _: None)))
    thread.start()
    killed, requeued = sweep_dir / "C_s1", sweep_dir / "C_s2"
    _wait_for(lambda: _checkpoints(killed) and _checkpoints(requeued), what="checkpoints of both runs")
    # C_s1: killed outright (as the out-of-memory killer would) mid-run
    pid = json.loads((killed / "writer.lock").read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    # C_s2: SLURM's warning before a time limit or a preemption, sent to every process of the job as SLURM does;
    # the run ignores it, submitit calls the checkpoint hook (the run checkpoints and stops) and requeues the job
    train_pid = json.loads((requeued / "writer.lock").read_text())["pid"]
    for pid in (psutil.Process(train_pid).parent().pid, train_pid):
        os.kill(pid, signal.SIGUSR2)
    thread.join(timeout=300)
    assert not thread.is_alive()
    outcomes = {o.run.name: o for o in result["r"].outcomes}
    assert outcomes["C_s1"].status == "failed (exit -9)" and outcomes["C_s2"].status == "done"
    starts = [e for e in _events(requeued) if e["kind"] in ("start", "resume")]
    assert [e["kind"] for e in starts] == ["start", "resume"] and starts[1]["step"] > 0  # resumed, not restarted
    manifest = read_manifest_body(sweep_dir)
    jobs = {r["name"]: r["jobs"] for r in manifest["runs"]}
    assert all(j[0]["backend"] == "submitit" and j[0]["job_id"] for j in jobs.values())

    # `sweep --resume` (here on the local backend: resume works across backends) finishes the killed run
    resumed = runner.invoke(app, ["sweep", "--resume", str(sweep_dir)])
    assert resumed.exit_code == 0, resumed.output
    assert "C_s2: done already" in resumed.output
    kinds = [e["kind"] for e in _events(killed) if e["kind"] in ("start", "resume")]
    assert kinds == ["start", "resume"]
    jobs = {r["name"]: r["jobs"] for r in read_manifest_body(sweep_dir)["runs"]}
    assert [j["backend"] for j in jobs["C_s1"]] == ["submitit", "local"] and len(jobs["C_s2"]) == 1
    assert list((sweep_dir / "logs" / "submitit").iterdir())  # submitit's own logs, beside the runs' logs

    # the same numbers as an uninterrupted local sweep, and a report that reads both alike
    local = _local_sweep(tmp_path, ["C"], [1, 2], extra)
    for name in ("C_s1", "C_s2"):
        assert _records(sweep_dir / name) == _records(local / name), name
    runs, skipped = collect_runs([sweep_dir, local])
    assert not skipped and len(runs) == 4 and all(r.status == "done" for r in runs)


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray instance for the module, its workers at normal priority as jepa-tui starts them."""
    ray = pytest.importorskip("ray")
    from jepa_tui.experiments.ray_backend import _worker_niceness

    with _worker_niceness(None):
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
                 object_store_memory=80 * 1024 * 1024)
    yield ray
    ray.shutdown()


def test_ray_tasks_share_cpus_and_report_a_failure_by_name(ray_session, tmp_path):
    profile = tmp_path / "ray_sweep.toml"
    profile.write_text('[sweep]\nbase = "smoke"\ntracks = ["A", "C"]\nseeds = [1]\n\n'
                       "[sweep.ray]\nnum_cpus = 0.5\n\n"
                       '[[sweep.variant]]\nname = "ok"\nset = {}\n\n'
                       '[[sweep.variant]]\nname = "broken"\ntracks = ["C"]\n'
                       'set = { "data.digits" = "missing_digits.npz" }\n')  # fails on its worker, exit 2
    sets = [x for s in [*SMOKE, "train.steps=40"] for x in ("--set", s)]
    result = runner.invoke(app, ["sweep", "--profile", str(profile), "--backend", "ray", "--runs-dir",
                                 str(tmp_path), "--sweep-id", "ray", *sets])
    assert result.exit_code == 1, result.output
    assert "not done: broken_C_s1 (failed (exit 2))" in result.output
    assert "missing_digits.npz" in (tmp_path / "ray" / "logs" / "broken_C_s1.log").read_text()
    sweep_dir = tmp_path / "ray"
    assert load_spec(sweep_dir).backends == {"ray": {"num_cpus": 0.5}}
    jobs = {r["name"]: r["jobs"] for r in read_manifest_body(sweep_dir)["runs"]}
    assert set(jobs) == {"ok_A_s1", "ok_C_s1", "broken_C_s1"}
    assert all(len(j) == 1 and j[0]["backend"] == "ray" for j in jobs.values())
    assert all((sweep_dir / "logs" / f"{name}.log").stat().st_size > 0 for name in jobs)
    assert "Ray at" not in result.output and "num_cpus 0.5" in result.output
    # the finished runs equal a local sweep's, and the report reads them like local ones
    local = _local_sweep(tmp_path, ["A", "C"], [1], [*SMOKE, "train.steps=40"])
    for track in "AC":
        assert _records(sweep_dir / f"ok_{track}_s1") == _records(local / f"{track}_s1")
    report = runner.invoke(app, ["report", str(sweep_dir), "--out", str(tmp_path / "report")])
    assert report.exit_code == 0, report.output
    text = (tmp_path / "report" / "report.md").read_text()
    # the broken run stopped before it wrote a run directory (bad input loses nothing and writes nothing)
    assert "2 run directories" in text and "| ok_A_s1 |" in text and "| ok_C_s1 |" in text
    assert not (sweep_dir / "broken_C_s1").exists()


def test_a_run_still_written_elsewhere_is_left_alone(tmp_path):
    """A resumed sweep does not start a second writer for a run whose directory another live process holds (a job
    of an earlier session still running on a cluster)."""
    from jepa_tui.runs.files import WriterLock

    spec = load_sweep("smoke", tracks=["C"], seeds=[1], extra=["train.steps=5"])
    run_dir = tmp_path / "sweep" / "C_s1"
    run_dir.mkdir(parents=True)
    lock = WriterLock(run_dir).acquire()
    said: list[str] = []
    try:
        result = run_sweep(spec, tmp_path / "sweep", say=said.append)
    finally:
        lock.release()
    assert [o.status for o in result.outcomes] == ["running elsewhere"]
    assert any("C_s1: still written by pid" in line for line in said)
    assert not (run_dir / "config.toml").exists()


def test_the_engines_are_imported_only_when_chosen():
    import subprocess

    code = ("import sys, jepa_tui.cli.main, jepa_tui.experiments.sweep, jepa_tui.experiments.backends; "
            "print(sorted(m for m in ('ray', 'submitit') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
