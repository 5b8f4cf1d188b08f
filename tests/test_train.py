import json

import pytest
import torch
from typer.testing import CliRunner

from jepa_tui.cli.main import app
from jepa_tui.evaluation.evaluate import evaluate
from jepa_tui.runs import RunDirectory, RunDirError
from jepa_tui.training.loop import RunLoop

from .conftest import smoke_config

runner = CliRunner()


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def run_cli(*args):
    return runner.invoke(app, list(args))


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    result = run_cli("train", "--profile", "smoke", "--runs-dir", str(runs))
    assert result.exit_code == 0, result.output
    (run_dir,) = runs.iterdir()
    return run_dir, result.output


def test_train_writes_the_run_directory(smoke_run):
    run_dir, output = smoke_run
    assert run_dir.name.endswith("_C_s42")
    records = read_jsonl(run_dir / "metrics.jsonl")
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [20, 40]
    assert [r["step"] for r in train] == list(range(10, 41, 10))
    for key in ("elapsed", "loss", "loss_pred", "loss_var", "lr", "ema_tau", "buffer_size", "boundary_events",
                "lora_delta_norm", "steps_per_s"):
        assert key in train[0], key
    assert all(0.996 <= r["ema_tau"] <= 0.9999 for r in train)
    for key in ("d_shift", "sigma_z", "d_base"):
        assert all(isinstance(r[key], float) for r in evals)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "done" and summary["steps"] == 40 and summary["track"] == "C"
    best = min(evals, key=lambda r: r["d_shift"])
    assert summary["peak_step"] == best["step"] and summary["peak_d_shift"] == best["d_shift"]
    assert summary["final_d_shift"] == evals[-1]["d_shift"]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step_00000020.pt", "step_00000040.pt"]
    assert "peak D_shift" in output and f"run directory: {run_dir}" in output


def test_config_toml_reruns_the_same_run(smoke_run, tmp_path):
    run_dir, _ = smoke_run
    result = run_cli("train", "--profile", str(run_dir / "config.toml"), "--runs-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    (again,) = tmp_path.iterdir()
    evals = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r["kind"] == "eval"]
    evals_again = [r for r in read_jsonl(again / "metrics.jsonl") if r["kind"] == "eval"]
    timing = {"seconds", "val_seconds"}
    strip = [{k: v for k, v in r.items() if k not in timing} for r in evals]
    assert strip == [{k: v for k, v in r.items() if k not in timing} for r in evals_again]  # deterministic on CPU


def test_seed_changes_the_run(smoke_run, tmp_path):
    run_dir, _ = smoke_run
    assert run_cli("train", "--profile", "smoke", "--seed", "7", "--runs-dir", str(tmp_path)).exit_code == 0
    (other,) = tmp_path.iterdir()
    assert other.name.endswith("_C_s7")
    d = [r["d_shift"] for r in read_jsonl(run_dir / "metrics.jsonl") if r["kind"] == "eval"]
    d7 = [r["d_shift"] for r in read_jsonl(other / "metrics.jsonl") if r["kind"] == "eval"]
    assert d != d7


def test_profiles_lists_one_line_each():
    result = run_cli("profiles")
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert any(line.startswith("track_c ") for line in lines) and any(line.startswith("quick ") for line in lines)


def test_evaluation_leaves_training_state_untouched(make_trainer):
    trainer = make_trainer()
    for _ in range(12):
        trainer.train_step()
    memory = trainer.model.memory
    for i in range(5):
        memory.buffer.push(torch.randn(2, 16), True, step=i)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    rng, sampler = torch.get_rng_state(), trainer.sampler.get_state()
    result = evaluate(trainer.model, trainer.worlds, trainer.config, trainer.progress.step)
    after = trainer.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(rng, torch.get_rng_state()) and torch.equal(sampler, trainer.sampler.get_state())
    assert result.d_shift > 0 and result.sigma_z > 0
    # the accumulated shift-world experience reaches the predictions: with an empty start they differ (LoRA's B
    # starts at zero and only learns once the training buffer holds entries, so give it values here)
    for lora in (trainer.model.predictor.lora1, trainer.model.predictor.lora2):
        torch.nn.init.normal_(lora.B, std=0.1)
    result = evaluate(trainer.model, trainer.worlds, trainer.config, trainer.progress.step)
    empty = smoke_config(track="C")
    from dataclasses import replace
    empty = replace(empty, eval=replace(empty.eval, buffer_start="empty"))
    assert evaluate(trainer.model, trainer.worlds, empty, trainer.progress.step).d_shift != result.d_shift


def test_checkpoint_continues_exactly(make_trainer, tmp_path):
    straight = make_trainer()
    for _ in range(30):
        straight.train_step()
    first = make_trainer()
    for _ in range(18):
        first.train_step()
    state = first.state_dict()
    torch.save(state, tmp_path / "ck.pt")
    resumed = make_trainer()
    resumed.load_state_dict(torch.load(tmp_path / "ck.pt", weights_only=False))
    for _ in range(12):
        resumed.train_step()
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name


def test_checkpoints_keep_last_two_and_best(make_trainer, tmp_path):
    trainer = make_trainer(steps=60)
    run_dir = RunDirectory.create(tmp_path, trainer.config, run_id="r")
    summary = RunLoop(trainer, run_dir).run()
    kept = sorted(int(p.stem.split("_")[1]) for p in (run_dir.path / "checkpoints").iterdir())
    assert kept == sorted({40, 60, summary["peak_step"]})
    events = read_jsonl(run_dir.path / "events.jsonl")
    assert events[0]["kind"] == "start" and events[-1]["kind"] == "end"
    assert [e["step"] for e in events if e["kind"] == "checkpoint"] == [20, 40, 60]
    with pytest.raises(RunDirError, match="exists already"):
        RunDirectory.create(tmp_path, trainer.config, run_id="r")


def test_run_and_watch_reject_bad_input(tmp_path):
    result = run_cli("run", "--profile", "nope", "--runs-dir", str(tmp_path))
    assert result.exit_code == 2 and "unknown profile 'nope'" in result.output
    result = run_cli("run", "--profile", "smoke", "--set", "memory.kappa=0", "--runs-dir", str(tmp_path))
    assert result.exit_code == 2 and "memory.kappa" in result.output
    result = run_cli("watch", str(tmp_path))
    assert result.exit_code == 2 and "not a run directory" in result.output
    assert not any(tmp_path.iterdir())  # nothing was created
