"""Exact resume: a run killed with SIGKILL and resumed matches the run left alone; refusals and repairs."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from typer.testing import CliRunner

from jepa_tui.cli.main import app
from jepa_tui.runs import last_step
from jepa_tui.training.resume import prepare_resume

runner = CliRunner()
# 120 steps evaluated every 20: long enough to kill mid-run, short enough for CI.
ARGS = ["--profile", "smoke", "--steps", "120", "--set", "eval.every_steps=20"]
TIMING = {"seconds", "val_seconds", "elapsed", "steps_per_s"}


def records(run_dir, kind):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in r.items() if k not in TIMING} for r in map(json.loads, lines) if r["kind"] == kind]


def final_parameters(run_dir):
    paths = sorted((run_dir / "checkpoints").glob("step_*.pt"))
    state = torch.load(paths[-1], weights_only=True)
    return state["trainer"]["model"], state["trainer"]["optimizer"]["state"]


def train(*args):
    return runner.invoke(app, ["train", *args])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The run left alone."""
    runs = tmp_path_factory.mktemp("reference")
    result = train(*ARGS, "--runs-dir", str(runs), "--run-id", "alone")
    assert result.exit_code == 0, result.output
    return runs / "alone"


def spawn(*args):
    return subprocess.Popen([sys.executable, "-m", "jepa_tui.cli.main", "train", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def kill_when(proc, run_dir, step, timeout=120.0):
    """SIGKILL ``proc`` once ``metrics.jsonl`` shows ``step`` (polling every 5 ms)."""
    deadline = time.monotonic() + timeout
    while last_step(run_dir) < step:
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "the run did not get there in time"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_sigkill_then_resume_matches_the_run_left_alone(reference, tmp_path):
    run_dir = tmp_path / "killed"
    # killed twice: once between checkpoints (step 30 of 20/40), once right after an evaluation's records
    proc = spawn(*ARGS, "--runs-dir", str(tmp_path), "--run-id", "killed")
    kill_when(proc, run_dir, 30)
    assert proc.returncode == -signal.SIGKILL
    proc = spawn("--resume", str(run_dir))
    kill_when(proc, run_dir, 80)
    assert proc.returncode == -signal.SIGKILL
    result = train("--resume", str(run_dir))
    assert result.exit_code == 0, result.output
    assert "resuming at step" in result.output

    assert records(run_dir, "eval") == records(reference, "eval")  # bitwise equal floats, CPU
    assert records(run_dir, "train") == records(reference, "train")
    (params, moments), (params_ref, moments_ref) = final_parameters(run_dir), final_parameters(reference)
    assert params.keys() == params_ref.keys()
    assert all(torch.equal(params[k], params_ref[k]) for k in params)
    assert all(torch.equal(moments[i]["exp_avg_sq"], moments_ref[i]["exp_avg_sq"]) for i in moments)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "done" and summary["steps"] == 120
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert [e["kind"] for e in events].count("resume") == 2


def stopped_run(tmp_path, steps=30):
    """A run stopped by SIGINT-equivalent budget: trained to ``steps`` with checkpoints at 20 and ``steps``."""
    result = train("--profile", "smoke", "--steps", str(steps), "--set", "eval.every_steps=20",
                   "--runs-dir", str(tmp_path), "--run-id", "r")
    assert result.exit_code == 0, result.output
    return tmp_path / "r"


def test_torn_lines_and_later_records_are_repaired_with_notices(tmp_path):
    run_dir = stopped_run(tmp_path)
    (run_dir / "checkpoints" / "step_00000030.pt").unlink()  # as if killed before the step-30 checkpoint
    with (run_dir / "metrics.jsonl").open("a") as fh:
        fh.write('{"kind":"train","step":40,"lo')  # a kill mid-write
    with (run_dir / "events.jsonl").open("a") as fh:
        fh.write('{"kind":"comm')
    (run_dir / "checkpoints" / ".step_00000040.pt.tmp").write_bytes(b"partial")
    point = prepare_resume(run_dir, steps=30)
    assert point.step == 20
    text = "\n".join(point.notices)
    assert "torn last line of metrics.jsonl" in text and "torn last line of events.jsonl" in text
    assert "removed checkpoints/.step_00000040.pt.tmp" in text
    assert "moved 2 records after step 20 to metrics.rolled_back.jsonl" in text  # train@30, eval@30
    for name in ("metrics.jsonl", "events.jsonl", "metrics.rolled_back.jsonl"):
        lines = (run_dir / name).read_text().splitlines()
        assert all(json.loads(line) for line in lines)
    assert max(r["step"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())) == 20
    point.directory.close()  # a prepared resume holds the run's writer lock until it is used or given back
    result = train("--resume", str(run_dir), "--steps", "30")
    assert result.exit_code == 0, result.output
    evals = records(run_dir, "eval")
    assert [r["step"] for r in evals] == [20, 30]


def test_a_different_configuration_is_refused_unless_forced(tmp_path):
    run_dir = stopped_run(tmp_path)
    before = (run_dir / "metrics.jsonl").read_bytes()
    result = train("--resume", str(run_dir), "--steps", "50", "--set", "memory.kappa=3.0")
    assert result.exit_code == 2
    assert "train.steps: 30 in the checkpoint, 50 now" in result.output
    assert "memory.kappa: '(unset)' in the checkpoint, 3.0 now" in result.output
    assert "--force" in result.output and "Traceback" not in result.output
    assert (run_dir / "metrics.jsonl").read_bytes() == before  # a refusal changes nothing
    result = train("--resume", str(run_dir), "--steps", "50", "--force")
    assert result.exit_code == 0, result.output
    assert "forced: train.steps" in result.output
    assert "steps = 50" in (run_dir / "config.toml").read_text()
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 50


def test_a_different_code_version_is_refused_unless_forced(tmp_path):
    run_dir = stopped_run(tmp_path)
    path = run_dir / "checkpoints" / "step_00000030.pt"
    state = torch.load(path, weights_only=True)
    state["version"] = "0.0.1+000000000000"
    torch.save(state, path)
    result = train("--resume", str(run_dir))
    assert result.exit_code == 2
    assert "code: the checkpoint was written by jepa-tui 0.0.1+000000000000" in result.output
    assert train("--resume", str(run_dir), "--force").exit_code == 0


def test_a_run_from_before_the_aggregator_bias_setting_resumes_with_its_biases(tmp_path):
    """Runs written before ``memory.aggregator_bias`` existed had aggregator biases and no such key."""
    result = train("--profile", "smoke", "--steps", "30", "--set", "eval.every_steps=20", "--set",
                   "memory.aggregator_bias=true", "--runs-dir", str(tmp_path), "--run-id", "old")
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "old"
    config_text = (run_dir / "config.toml").read_text()
    assert "aggregator_bias = true" in config_text
    (run_dir / "config.toml").write_text(config_text.replace("aggregator_bias = true\n", ""))
    (run_dir / "checkpoints" / "step_00000030.pt").unlink()
    path = run_dir / "checkpoints" / "step_00000020.pt"
    state = torch.load(path, weights_only=True)
    del state["config"]["memory"]["aggregator_bias"]
    torch.save(state, path)
    point = prepare_resume(run_dir)
    assert point.config.memory.aggregator_bias is True and point.step == 20
    point.directory.close()
    result = train("--resume", str(run_dir))
    assert result.exit_code == 0, result.output
    model, _ = final_parameters(run_dir)
    assert "memory.aggregator.query.bias" in model
    assert [r["step"] for r in records(run_dir, "eval")] == [20, 30]


def test_a_corrupt_checkpoint_is_named_with_the_way_back(tmp_path):
    run_dir = stopped_run(tmp_path)
    path = run_dir / "checkpoints" / "step_00000030.pt"
    path.write_bytes(path.read_bytes()[:1000])
    result = train("--resume", str(run_dir))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "step_00000030.pt' is corrupt" in result.output
    assert "delete it to resume from step_00000020.pt" in result.output
    path.unlink()
    result = train("--resume", str(run_dir))
    assert result.exit_code == 0, result.output
    assert "resuming at step 20" in result.output


def test_pause_request_flag_checkpoints_and_exits_75_then_resumes(tmp_path):
    run_dir = stopped_run(tmp_path, steps=20)
    (run_dir / "pause_request.flag").touch()
    result = train("--resume", str(run_dir), "--steps", "60", "--force")
    assert result.exit_code == 75, result.output
    assert not (run_dir / "pause_request.flag").exists()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "suspended" and summary["steps"] == 50  # polled every 50 steps
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert any(e["kind"] == "pause_request" for e in events)
    result = train("--resume", str(run_dir))
    assert result.exit_code == 0, result.output
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 60


def test_the_dashboard_resumes_a_run(tmp_path):
    from jepa_tui.ui.app import Dashboard
    from jepa_tui.ui.controllers import LiveController

    run_dir = stopped_run(tmp_path)
    point = prepare_resume(run_dir, force=True, steps=40)  # a longer budget than the run had: forced
    assert point.step == 30
    controller = LiveController(point.config, tmp_path, torch.device("cpu"), resume=point)
    run = controller.runs["C"]
    assert run.trainer.progress.step == 30 and run.run_dir == run_dir
    assert controller.states["C"].step == 30  # the history is shown from the start
    dashboard = Dashboard(controller, sensor=None, redraw_hz=4)

    async def scenario():
        async with dashboard.run_test(size=(120, 36)) as pilot:
            for _ in range(400):
                if run.summary is not None:
                    break
                await pilot.pause(0.05)
            await pilot.press("q")

    import asyncio
    asyncio.run(scenario())
    assert run.summary is not None and run.summary["status"] == "done" and run.summary["steps"] == 40
    assert [r["step"] for r in records(run_dir, "eval")] == [20, 30, 40]


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 143)])
def test_signals_checkpoint_and_exit_with_their_code(tmp_path, sig, code):
    run_dir = tmp_path / "r"
    proc = spawn("--profile", "smoke", "--steps", "100000", "--set", "eval.every_steps=1000", "--runs-dir",
                 str(tmp_path), "--run-id", "r")
    deadline = time.monotonic() + 120
    while last_step(run_dir) < 20:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(sig)
    assert proc.wait(timeout=60) == code
    assert signal.Signals(sig).name in proc.stderr.read()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["stop_reason"] == signal.Signals(sig).name
    assert (run_dir / "checkpoints" / f"step_{summary['steps']:08d}.pt").exists()


def test_a_freeze_applied_after_the_checkpoint_is_replayed_on_resume(tmp_path):
    """An interactive EMA freeze at step 20 (after the step-20 checkpoint), then the run dies before step 40:
    the resumed run applies the freeze again at step 20 and ends exactly where the run left alone ends."""
    import queue

    from jepa_tui.config import load_config
    from jepa_tui.training.control import Command
    from jepa_tui.training.loop import RunLoop
    from jepa_tui.training.session import prepare_run

    config = load_config("smoke")

    class FreezeAt20:
        def __init__(self, commands):
            self.commands = commands

        def on_train(self, record):
            if record["step"] == 20:
                self.commands.put(Command.FREEZE_EMA)  # as the dashboard's `e` key would

        def on_eval(self, record): ...

        def on_event(self, record): ...

        def on_summary(self, summary): ...

    def run(name, freeze):
        prepared = prepare_run(config, torch.device("cpu"), tmp_path, name)
        commands = queue.Queue()
        RunLoop(prepared.trainer, prepared.directory, [FreezeAt20(commands)] if freeze else [],
                commands=commands).run()
        return tmp_path / name

    alone, unfrozen, killed = run("alone", True), run("unfrozen", False), run("killed", True)
    (killed / "checkpoints" / "step_00000040.pt").unlink()  # as if it died before its last checkpoint
    point = prepare_resume(killed)
    assert point.step == 20 and point.replay == [(20, Command.FREEZE_EMA)]
    assert any("replaying freeze_ema at step 20" in n for n in point.notices)
    prepared = prepare_run(point.config, torch.device("cpu"), resume=point)
    RunLoop(prepared.trainer, prepared.directory, replay=prepared.replay).run()
    assert prepared.trainer.ema_frozen
    params, reference, other = (final_parameters(p)[0] for p in (killed, alone, unfrozen))
    assert all(torch.equal(params[k], reference[k]) for k in reference)
    assert not all(torch.equal(other[k], reference[k]) for k in reference)  # the freeze does change the run
    assert records(killed, "eval") == records(alone, "eval")


def test_deterministic_pins_the_thread_count_and_says_so(tmp_path, monkeypatch):
    """Without --deterministic the thread count follows the load (a rerun equals to rounding); with it the count is
    fixed in config.toml, the run says so and records itself bitwise reproducible."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    pinned = train("--profile", "smoke", "--steps", "20", "--runs-dir", str(tmp_path), "--run-id", "d",
                   "--deterministic")
    assert pinned.exit_code == 0, pinned.output
    assert "deterministic: " in pinned.output and "bitwise" in pinned.output
    config = (tmp_path / "d" / "config.toml").read_text()
    assert "deterministic = true" in config and "threads = 0" not in config
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert summary["reproducible"] == "bitwise"
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    free = train("--profile", "smoke", "--steps", "20", "--runs-dir", str(tmp_path), "--run-id", "f")
    assert free.exit_code == 0 and "follows the load" in free.output
    summary = json.loads((tmp_path / "f" / "summary.json").read_text())
    assert summary["reproducible"] == "to rounding" and "followed the load" in summary["reproducible_why"]
    report = runner.invoke(app, ["report", str(tmp_path), "--out", str(tmp_path / "rep")])
    assert "| bitwise |" in report.output and "| to rounding |" in report.output
    runs = json.loads(runner.invoke(app, ["runs", str(tmp_path), "--json"]).output)
    assert {r["run_id"]: r["reproducible"] for r in runs} == {"d": "bitwise", "f": "to rounding"}


def test_a_deterministic_run_killed_and_resumed_is_bitwise_the_run_left_alone(tmp_path):
    """The kill_resume benchmark's claim, with the thread count left to jepa-tui (no OMP_NUM_THREADS exported)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "JEPA_TUI_OMP_THREADS")}
    args = [*ARGS, "--deterministic"]
    alone = subprocess.run([sys.executable, "-m", "jepa_tui.cli.main", "train", *args, "--runs-dir", str(tmp_path),
                            "--run-id", "alone"], env=env, capture_output=True, text=True)
    assert alone.returncode == 0, alone.stderr
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "jepa_tui.cli.main", "train", *args, "--runs-dir", str(tmp_path),
                             "--run-id", "killed"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    kill_when(proc, run_dir, 50)
    resumed = subprocess.run([sys.executable, "-m", "jepa_tui.cli.main", "train", "--resume", str(run_dir)],
                             env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    for kind in ("eval", "train"):
        assert records(run_dir, kind) == records(tmp_path / "alone", kind)
    params, moments = final_parameters(run_dir)
    params_ref, moments_ref = final_parameters(tmp_path / "alone")
    assert all(torch.equal(params[k], params_ref[k]) for k in params_ref)
    assert json.loads((run_dir / "summary.json").read_text())["reproducible"] == "bitwise"
