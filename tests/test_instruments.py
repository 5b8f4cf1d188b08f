"""The instruments that separate memory from the shift: adaptation curve, content control, raw and pixel-space
errors, test-time training, re-evaluation of kept weights, context frames and the base world's physics table."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from jepa_tui.cli.main import app
from jepa_tui.config import ConfigError, load_config
from jepa_tui.data.worlds import Physics, Worlds
from jepa_tui.evaluation.evaluate import (
    _errors,
    eval_horizons,
    evaluate,
    predict_split,
    split_latents,
    start_latents,
)
from jepa_tui.evaluation.experience import ExperienceFeed, eval_generator
from jepa_tui.evaluation.ttt import adapted
from jepa_tui.model.memory import WORLD_BASE, WORLD_SHIFT
from jepa_tui.training.trainer import Trainer

CPU = torch.device("cpu")
runner = CliRunner()


def _trainer(track: str, *sets: str, worlds: Worlds | None = None) -> Trainer:
    config = load_config("smoke", [f"train.track={track!r}".replace("'", '"'), *sets])
    return Trainer(config, CPU, worlds)


def _perturb(trainer: Trainer, scale: float = 0.3) -> None:
    """Every weight moved, so that modulation by experience is far from zero (B of LoRA starts at zero)."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in trainer.model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator))


@pytest.mark.parametrize("track", ["B", "C", "D", "E"])
def test_n0_from_an_empty_buffer_is_the_unmodulated_model(track, smoke_worlds):
    trainer = _trainer(track, 'eval.buffer_start="empty"', worlds=smoke_worlds)
    _perturb(trainer)
    model, config = trainer.model, trainer.config
    result = evaluate(model, smoke_worlds, config, step=7)
    test = smoke_worlds.shift["test"]
    online, target = split_latents(model, smoke_worlds, test, len(test))
    horizons = eval_horizons(model, config)
    z = start_latents(model, online, horizons)
    with torch.no_grad():
        plain = model.predict(z, None, horizons=horizons).latents  # no experience at all: Track A's path
    _, future, current = predict_split(model, online, target, horizons)
    expected = _errors(plain, future, current, config)["ratio_of_sums"]
    curve = result.n_curve["d_shift"]["ratio_of_sums"]
    assert curve[0] == float(expected.mean())
    assert curve[result.n_curve["n"].index(5)] != curve[0]  # experience changes the prediction
    assert result.memory_gain == curve[0] - result.d_shift
    assert result.d_shift == curve[result.n_curve["n"].index(config.eval.n_experiences)]


def test_the_curve_passes_through_the_protocols_point(smoke_worlds):
    """D_shift at n_experiences on the curve is the protocol's D_shift, pushed incrementally or all at once."""
    trainer = _trainer("C", "eval.n_curve=[0, 3, 9]", worlds=smoke_worlds)
    _perturb(trainer)
    incremental = evaluate(trainer.model, smoke_worlds, trainer.config, step=3)
    once = evaluate(trainer.model, smoke_worlds, load_config("smoke", ["eval.n_curve=[]"]), step=3)
    assert incremental.n_curve["n"] == [0, 3, 5, 9]
    assert incremental.d_shift == once.d_shift and once.n_curve["n"] == [5]
    assert once.memory_gain is None  # no n = 0 point


def test_track_a_has_no_memory_gain_and_no_content_effect(smoke_worlds):
    trainer = _trainer("A", worlds=smoke_worlds)
    _perturb(trainer)
    result = evaluate(trainer.model, smoke_worlds, trainer.config, step=1)
    assert result.memory_gain == 0.0 and result.content_effect == 0.0
    assert len(set(result.n_curve["d_shift"]["ratio_of_sums"])) == 1


def test_base_source_fills_the_buffer_from_the_base_split(smoke_worlds):
    trainer = _trainer("C", worlds=smoke_worlds)
    model, config = trainer.model, trainer.config
    memory = model.memory
    feed = ExperienceFeed(model, smoke_worlds, config, "base", eval_generator(config, 4, CPU), 4)
    feed.push(3)
    assert memory.buffer.entry_world[:3].tolist() == [WORLD_BASE] * 3 and int(memory.buffer.size) == 3
    generator = eval_generator(config, 4, CPU)
    for slot in range(3):
        frames = smoke_worlds.sample_transitions(smoke_worlds.base["train"], config.train.batch_size,
                                                 model.surprisal_horizon, generator)
        entry = model.buffer_entry(frames[:, 0], model.encode(frames[:, 0]), model.encode_target(frames[:, 1]))
        assert torch.equal(memory.buffer.entries[slot], entry)


def test_shuffled_source_permutes_each_entrys_dimensions(smoke_worlds):
    trainer = _trainer("C", worlds=smoke_worlds)
    model, config = trainer.model, trainer.config
    shift = _trainer("C", worlds=smoke_worlds).model
    shift.load_state_dict(model.state_dict())
    ExperienceFeed(model, smoke_worlds, config, "shuffled", eval_generator(config, 2, CPU), 2).push(1)
    ExperienceFeed(shift, smoke_worlds, config, "shift", eval_generator(config, 2, CPU), 2).push(1)
    shuffled, plain = model.memory.buffer.entries[0], shift.memory.buffer.entries[0]
    assert not torch.equal(shuffled, plain)
    assert torch.equal(shuffled.sort(dim=-1).values, plain.sort(dim=-1).values)  # the same values, moved
    assert int(model.memory.buffer.entry_world[0]) == WORLD_SHIFT
    with pytest.raises(ValueError, match="experience_source"):
        ExperienceFeed(model, smoke_worlds, config, "other", eval_generator(config, 2, CPU))


def test_content_control_uses_base_entries_and_changes_d(smoke_worlds):
    trainer = _trainer("C", worlds=smoke_worlds)
    _perturb(trainer)
    result = evaluate(trainer.model, smoke_worlds, trainer.config, step=5)
    base_d = result.content["d_shift"]["ratio_of_sums"]
    assert result.content["source"] == "base" and result.content["n"] == 5
    assert result.content_effect == base_d - result.d_shift and result.content_effect != 0.0
    off = evaluate(trainer.model, smoke_worlds, load_config("smoke", ["eval.content_control=false"]), step=5)
    assert off.content is None and off.content_effect is None and off.d_shift == result.d_shift


def test_raw_numbers_and_pixel_errors_are_consistent(smoke_worlds):
    trainer = _trainer("A", worlds=smoke_worlds)
    result = evaluate(trainer.model, smoke_worlds, trainer.config, step=0)
    shift, base = result.raw["shift"], result.raw["base"]
    for k in ("1", "2", "4"):
        # ratio_of_sums is latent MSE over persistence MSE (no sample is below denominator_eps here)
        ratio = shift["latent_mse"][k] / shift["persistence_mse"][k]
        assert ratio == pytest.approx(result.formulas["ratio_of_sums"]["d_shift_per_horizon"][k], rel=1e-4)
        assert shift["d_base_norm"][k] == pytest.approx(shift["latent_mse"][k] / base["persistence_mse"][k])
        assert shift["pos_rmse_px_floor"][k] >= 0 and shift["pos_rmse_px_persistence"][k] > 0
    assert shift["persistence_mse"]["4"] > shift["persistence_mse"]["1"]  # digits move further in 4 frames
    assert result.pos_rmse_px == pytest.approx(sum(shift["pos_rmse_px"].values()) / 3)


def test_position_decoder_reads_positions_in_pixels(smoke_worlds):
    """A latent that is a linear map of the ordered positions decodes to them: pos_rmse of a perfect prediction is 0
    and of the persistence prediction is the true displacement."""
    from jepa_tui.evaluation.probe import PositionDecoder, ordered_positions

    split = smoke_worlds.shift["test"]
    positions = ordered_positions(split, len(split))  # (S, T, 4)
    mixing = torch.randn(positions.shape[-1], 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    latents = positions.double() @ mixing
    decoder = PositionDecoder(latents.flatten(0, 1), positions.flatten(0, 1), ridge=1e-9)
    assert torch.allclose(decoder.decode(latents), positions.double(), atol=1e-4)


def test_test_time_training_restores_the_model_bitwise(smoke_worlds):
    for which in ("predictor", "all"):
        trainer = _trainer("C", "eval.ttt_steps=6", "eval.ttt_lr=0.01", f'eval.ttt_params="{which}"',
                           worlds=smoke_worlds)
        _perturb(trainer, 0.1)
        before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
        result = evaluate(trainer.model, smoke_worlds, trainer.config, step=2)
        after = trainer.model.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before), which
        assert all(p.grad is None for p in trainer.model.parameters())
        assert result.ttt["params"] == which and result.d_shift_ttt != result.d_shift
        assert result.ttt["losses"][1] < result.ttt["losses"][0]  # it fitted the n mini-batches
        plain = evaluate(trainer.model, smoke_worlds, load_config("smoke", ["train.track=\"C\""]), step=2)
        assert plain.d_shift == result.d_shift


def test_context_frames_stack_consecutive_frames_as_channels():
    config = load_config("smoke", ["data.context_frames=2", "train.track=\"C\""])
    worlds = Worlds(config.data, CPU)
    split = worlds.base["train"]
    seq = torch.tensor([0, 3])
    frames = torch.tensor([[1, 4], [5, 8]])
    seen = worlds.observe(split, seq, frames)
    assert seen.shape == (2, 2, 2, config.data.canvas, config.data.canvas)
    single = worlds.render(split, seq, torch.tensor([[0, 1, 3, 4], [4, 5, 7, 8]]))
    assert torch.equal(seen[:, 0, 0], single[:, 0, 0]) and torch.equal(seen[:, 0, 1], single[:, 1, 0])
    assert torch.equal(seen[:, 1, 1], single[:, 3, 0])
    trainer = Trainer(config, CPU, worlds)
    assert trainer.model.encoder.convs[0].in_channels == 2
    for _ in range(3):
        trainer.train_step()
    result = trainer.evaluate()
    assert np.isfinite(result.d_shift) and np.isfinite(result.pos_rmse_px)
    latents, _ = split_latents(trainer.model, worlds, worlds.shift["test"], 2)
    assert latents.shape[1] == config.data.frames - 1  # one observation per frame from x_1 on


def test_context_frames_are_range_checked():
    with pytest.raises(ConfigError, match="data.context_frames"):
        load_config("smoke", ["data.context_frames=5"])
    with pytest.raises(ConfigError, match="model.horizons"):  # 9 frames, 2 of context: horizons below 8
        load_config("smoke", ["data.context_frames=2", "model.horizons=[1, 8]"])
    with pytest.raises(ConfigError, match="eval.n_curve"):
        load_config("smoke", ["eval.n_curve=[-1]"])


def test_base_physics_table_trains_an_oracle():
    config = load_config("smoke", ["data.base.gravity=0.5", "data.base.friction=0.1"])
    assert Physics.base(config.data) == Physics(gravity_row=0.5, friction=0.1)
    default = Worlds(load_config("smoke").data, CPU)
    oracle = Worlds(config.data, CPU)
    assert torch.equal(default.shift["test"].positions, oracle.shift["test"].positions)  # the same shift world
    assert not torch.equal(default.base["train"].positions, oracle.base["train"].positions)
    assert torch.equal(default.base["train"].positions[:, 0], oracle.base["train"].positions[:, 0])  # same starts
    with pytest.raises(ConfigError, match="data.base.friction"):
        load_config("smoke", ["data.base.friction=1.5"])
    assert load_config("oracle").data.base.gravity == 0.5


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "evaluations" not in p.parts}


def test_evaluate_reasks_kept_weights_and_touches_no_run_file(tmp_path):
    result = runner.invoke(app, ["train", "--profile", "smoke", "--runs-dir", str(tmp_path), "--run-id", "r",
                                 "--threads", "1"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "r"
    assert sorted(p.name for p in (run / "weights").iterdir()) == ["step_00000020.pt", "step_00000040.pt"]
    before = _digest(run)
    result = runner.invoke(app, ["evaluate", str(run), "--all"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (run / "evaluations" / "default.jsonl").read_text().splitlines()]
    own = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    own = {r["step"]: r for r in own if r["kind"] == "eval"}
    assert [r["step"] for r in records] == [20, 40] and all(r["config_diff"] == {} for r in records)
    for r in records:  # the same question asked again gives the run's own answer, to the bit
        assert r["d_shift"] == own[r["step"]]["d_shift"] and r["memory_gain"] == own[r["step"]]["memory_gain"]
    result = runner.invoke(app, ["evaluate", str(run), "--step", "20", "--set", "data.shift_gravity=1.0",
                                 "--tag", "g1"])
    assert result.exit_code == 0, result.output
    (g1,) = [json.loads(line) for line in (run / "evaluations" / "g1.jsonl").read_text().splitlines()]
    assert g1["config_diff"] == {"data.shift_gravity": [0.5, 1.0]} and g1["d_shift"] != own[20]["d_shift"]
    assert g1["d_base"] == own[20]["d_base"]  # the base world is not the shift's to change
    for bad, message in ((["--set", "model.hidden_dim=8"], "would change the model"),
                         (["--step", "30"], "no kept model at that step"),
                         (["--step", "20", "--tag", "g1"], "other settings")):
        result = runner.invoke(app, ["evaluate", str(run), *bad])
        assert result.exit_code == 2 and message in result.output, (bad, result.output)
    assert _digest(run) == before
    # report reads the run's own instruments and every evaluations/<tag>.jsonl beside them
    from jepa_tui.reporting.collect import read_run
    from jepa_tui.reporting.memory import content_effect, memory_gain

    record = read_run(run)
    assert memory_gain(record, record.final) == record.final["memory_gain"]
    assert content_effect(record, record.final) == record.final["content_effect"]
    assert sorted(record.evaluations) == ["default", "g1"]
    result = runner.invoke(app, ["report", str(run), "--out", str(run.parent / "report")])
    assert result.exit_code == 0, result.output
    assert "## Is memory at work?" in result.output
    row = next(line for line in result.output.splitlines() if "| g1 |" in line)
    assert "data.shift_gravity = 1.0" in row and f"{g1['d_shift']:.4f}" in row


def test_shift_calibration_separates_repairable_shifts():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "shift_calibration.py"
    spec = importlib.util.spec_from_file_location("shift_calibration", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data = load_config("smoke").data
    gravity = Physics(gravity_row=1.0)
    one = module.cell(data, gravity, (1, 2), 1, 200, 0)
    two = module.cell(data, gravity, (1, 2), 2, 200, 0)
    same = module.cell(data, Physics(), (1, 2), 2, 200, 0)
    assert two["repairable"] > one["repairable"] > 0.0  # velocity makes more of the shift predictable
    assert abs(same["repairable"]) < 0.01 and abs(same["reverse_penalty"]) < 0.01  # no shift: nothing to repair
    assert two["reverse_penalty"] > 0 and 0 < one["bounce_share"] < 1


def test_test_time_training_fits_trainings_prediction_term_at_every_horizon(smoke_worlds):
    trainer = _trainer("C", worlds=smoke_worlds)
    model, config = trainer.model, trainer.config
    feed = ExperienceFeed(model, smoke_worlds, config, "shift", eval_generator(config, 4, CPU), 4)
    feed.push(2)
    split, seq, t = feed.starts[0]
    inside = t[:, 0] + max(model.horizons) < split.num_frames
    assert 0 < int(inside.sum()) < len(seq)  # some samples end past the sequence at the longest horizon
    feed.starts[:] = [(split, seq[inside], t[inside])]
    with adapted(model, feed, steps=1, lr=0.0) as losses:
        pass
    frames = smoke_worlds.observe(split, seq[inside], t[inside] + torch.tensor((0, *model.horizons)))
    expected = trainer.forward_loss(frames, int(model.memory.buffer.size))[1]  # training's prediction term
    assert losses[0] == pytest.approx(float(expected.detach()), rel=1e-5)
