"""Run groups: seeds of one configuration trained as one vectorised step, each writing a single run's directory."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from jepa_tui.cli.main import app
from jepa_tui.config import load_config
from jepa_tui.runs import RunDirectory
from jepa_tui.runs.checkpoint import load_checkpoint
from jepa_tui.training.group import GroupError, RunGroup, check_groupable
from jepa_tui.training.trainer import Trainer

runner = CliRunner()
# The smoke model with a detector that fires within the first 100 steps, so buffers receive entries.
FIRING = ["memory.stats_momentum=0.5", 'train.track="C"']
CPU = torch.device("cpu")


def _evals(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").open() if '"eval"' in line]


def _final_model(run_dir):
    paths = RunDirectory.open(run_dir).checkpoint_paths()
    state = load_checkpoint(paths[max(paths)])
    return state["trainer"]["model"], state["trainer"]["optimizer"]


def _close(a: torch.Tensor, b: torch.Tensor, scale: float) -> bool:
    return float((a - b).abs().max()) <= scale * float(b.abs().max()) + 1e-7


def test_group_members_match_their_single_runs(tmp_path):
    """After 100 steps each member's evaluations agree with its single run within 1e-5 relative and its
    parameters within 1e-4 of each tensor's scale (vmap's grouped convolutions round differently, and AdamW's
    normalisation magnifies that in coordinates whose gradients are near zero); buffers hold the same entries."""
    common = ["--profile", "smoke", "--steps", "100", "--runs-dir", str(tmp_path)] + \
        [arg for s in FIRING for arg in ("--set", s)]
    group = runner.invoke(app, ["train", *common, "--seeds", "42", "--seeds", "43", "--run-id", "g"])
    assert group.exit_code == 0, group.output
    assert "[s42] " in group.output and "[s43] " in group.output
    for seed in (42, 43):
        single = runner.invoke(app, ["train", *common, "--seed", str(seed), "--run-id", f"single_s{seed}"])
        assert single.exit_code == 0, single.output
        grouped, alone = tmp_path / f"g_s{seed}", tmp_path / f"single_s{seed}"
        assert json.loads((grouped / "summary.json").read_text())["status"] == "done"
        a, b = _evals(grouped), _evals(alone)
        assert [e["step"] for e in a] == [e["step"] for e in b] and len(a) >= 2
        for x, y in zip(a, b, strict=True):
            assert x["d_shift"] == pytest.approx(y["d_shift"], rel=1e-5)
            assert x["sigma_z"] == pytest.approx(y["sigma_z"], rel=1e-5)
        (model_g, opt_g), (model_s, opt_s) = _final_model(grouped), _final_model(alone)
        assert set(model_g) == set(model_s)
        assert int(model_g["memory.buffer.size"]) == int(model_s["memory.buffer.size"]) > 0
        for name, value in model_s.items():
            if value.dtype.is_floating_point:
                assert _close(model_g[name], value, 1e-4), name
            else:
                assert torch.equal(model_g[name], value), name
        moments_g = [s["exp_avg"] for s in opt_g["state"].values()]
        moments_s = [s["exp_avg"] for s in opt_s["state"].values()]
        assert len(moments_g) == len(moments_s) and moments_g[0].shape == moments_s[0].shape  # its own slice


def test_a_member_resumes_as_a_single_run(tmp_path):
    """A member's directory is a single run's: `train --resume` continues it to a longer budget."""
    result = runner.invoke(app, ["train", "--profile", "smoke", "--steps", "40", "--seeds", "1", "--seeds", "2",
                                 "--runs-dir", str(tmp_path), "--run-id", "g"])
    assert result.exit_code == 0, result.output
    resumed = runner.invoke(app, ["train", "--resume", str(tmp_path / "g_s2"), "--steps", "60", "--force"])
    assert resumed.exit_code == 0, resumed.output
    starts = [json.loads(line) for line in (tmp_path / "g_s2" / "events.jsonl").open()]
    assert [e["kind"] for e in starts if e["kind"] in ("start", "resume")] == ["start", "resume"]
    assert json.loads((tmp_path / "g_s2" / "summary.json").read_text())["steps"] == 60


def test_each_member_keeps_its_own_freezes_and_buffer():
    """Freezing one member's buffer leaves the other's filling; each member's sampler is its own."""
    configs = [load_config("smoke", [*FIRING, f"train.seed={s}"]) for s in (5, 6)]
    trainers = [Trainer(c, CPU) for c in configs]
    group = RunGroup(trainers)
    trainers[0].buffer_frozen = True
    for _ in range(60):
        group.step([0, 1])
    assert int(trainers[0].model.memory.buffer.size) == 0 < int(trainers[1].model.memory.buffer.size)
    assert trainers[0].progress.step == trainers[1].progress.step == 60
    assert not torch.equal(trainers[0].sampler.get_state(), trainers[1].sampler.get_state())


def test_what_cannot_be_grouped_is_refused_before_any_directory_exists(tmp_path):
    smoke = load_config("smoke")
    with pytest.raises(GroupError, match="train.grad_clip"):
        check_groupable([load_config("smoke", ["train.grad_clip=1.0", f"train.seed={s}"]) for s in (1, 2)])
    with pytest.raises(GroupError, match="one configuration apart from train.seed"):
        check_groupable([smoke, load_config("smoke", ["train.seed=7", "train.lr=0.01"])])
    result = runner.invoke(app, ["train", "--profile", "smoke", "--seeds", "1", "--seeds", "2", "--runs-dir",
                                 str(tmp_path), "--set", 'train.compile="default"'])
    assert result.exit_code == 2 and "train.compile" in result.output
    bad = runner.invoke(app, ["train", "--profile", "smoke", "--seeds", "1", "--seeds", "1", "--runs-dir",
                              str(tmp_path)])
    assert bad.exit_code == 2 and "--seeds 1 1: a run group needs two or more distinct seeds" in bad.output
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_a_sweep_starts_each_tracks_seeds_as_one_group(tmp_path):
    """`sweep --group`: one process per (variant, track), its runs' directories named as in any sweep, the manifest
    naming one job for both; `report` reads them; the evaluations agree with the single runs of the same seeds."""
    args = ["sweep", "--profile", "smoke", "--tracks", "C", "--seeds", "1", "--seeds", "2", "--jobs", "2",
            "--runs-dir", str(tmp_path)]
    grouped = runner.invoke(app, [*args, "--sweep-id", "grouped", "--group"])
    assert grouped.exit_code == 0, grouped.output
    assert "C_s1, C_s2: starting (1/2) as run group of 2" in grouped.output
    assert (tmp_path / "grouped" / "logs" / "C.log").is_file()
    manifest = json.loads((tmp_path / "grouped" / "manifest.json").read_text())
    assert len({run["jobs"][0]["job_id"] for run in manifest["runs"]}) == 1
    single = runner.invoke(app, [*args, "--sweep-id", "single"])
    assert single.exit_code == 0, single.output
    for name in ("C_s1", "C_s2"):
        for x, y in zip(_evals(tmp_path / "grouped" / name), _evals(tmp_path / "single" / name), strict=True):
            assert x["d_shift"] == pytest.approx(y["d_shift"], rel=1e-5)
    report = runner.invoke(app, ["report", str(tmp_path / "grouped")])
    assert report.exit_code == 0 and "C_s2" in report.output
    refused = runner.invoke(app, [*args, "--sweep-id", "ray", "--group", "--backend", "ray"])
    assert refused.exit_code == 2 and "--group runs on the local backend" in refused.output


def test_a_group_of_resumed_runs_continues_as_they_would_alone():
    """Trainers restored from checkpoints (optimiser moments included) and then grouped continue as the same
    trainers stepped alone."""
    configs = [load_config("smoke", [*FIRING, f"train.seed={s}"]) for s in (3, 4)]
    started = [Trainer(c, CPU) for c in configs]
    for trainer in started:
        for _ in range(15):
            trainer.train_step()
    states = [t.state_dict() for t in started]
    alone, grouped = [Trainer(c, CPU) for c in configs], [Trainer(c, CPU) for c in configs]
    for trainer, state in [*zip(alone, states, strict=True), *zip(grouped, states, strict=True)]:
        trainer.load_state_dict(state)
    group = RunGroup(grouped)
    for _ in range(15):
        for trainer in alone:
            trainer.train_step()
        group.step([0, 1])
    for a, g in zip(alone, grouped, strict=True):
        assert g.progress.step == a.progress.step == 30
        for (name, value), other in zip(a.model.named_parameters(), g.model.parameters(), strict=True):
            assert _close(other.detach(), value.detach(), 1e-4), name


def test_a_members_checkpoint_resumed_alone_continues_its_run():
    """A member's checkpoint (contiguous moments) loaded by a single trainer (channels-last encoder) continues
    as the run would have alone: each moment takes its parameter's layout on load, which the fused AdamW needs."""
    configs = [load_config("smoke", [*FIRING, f"train.seed={s}"]) for s in (8, 9)]
    grouped = [Trainer(c, CPU) for c in configs]
    group = RunGroup(grouped)
    for _ in range(15):
        group.step([0, 1])
    resumed = Trainer(configs[0], CPU)
    resumed.load_state_dict(grouped[0].state_dict())
    alone = Trainer(configs[0], CPU)
    for _ in range(15):
        alone.train_step()
    for _ in range(15):
        alone.train_step()
        resumed.train_step()
    for (name, value), other in zip(alone.model.named_parameters(), resumed.model.parameters(), strict=True):
        assert _close(other.detach(), value.detach(), 1e-4), name
