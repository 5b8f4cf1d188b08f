"""The training stream ([data.stream]) and the oracle context (memory.oracle_context): memory given a job, and the
pathway's own test."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from jepa_tui.cli.main import app
from jepa_tui.config import ConfigError, load_config
from jepa_tui.data.worlds import Physics, Worlds
from jepa_tui.evaluation.evaluate import evaluate
from jepa_tui.training.group import GroupError, check_groupable
from jepa_tui.training.trainer import Trainer
from jepa_tui.ui.state import RunState

CPU = torch.device("cpu")
runner = CliRunner()
STREAM = ["data.stream.worlds=4", "data.stream.segment_steps=5", "data.stream.sequences=12"]


def _config(*sets: str):
    return load_config("smoke", [*STREAM, *sets])


def test_each_world_comes_once_a_round_and_never_twice_in_a_row():
    for worlds in (3, 4, 7):
        stream = Worlds(_config(f"data.stream.worlds={worlds}").data, CPU).stream
        segments = [stream.world_of_segment(j) for j in range(worlds * 30)]
        assert all(a != b for a, b in zip(segments, segments[1:], strict=False))
        for start in range(0, len(segments), worlds):
            assert sorted(segments[start:start + worlds]) == list(range(worlds))
    two = Worlds(_config("data.stream.worlds=2").data, CPU).stream
    assert [two.world_of_segment(j) for j in range(6)] == [two.world_of_segment(0), 1 - two.world_of_segment(0)] * 3


def test_the_schedule_is_a_function_of_the_seed_and_the_step():
    first = Worlds(_config().data, CPU).stream
    again = Worlds(_config().data, CPU).stream
    steps = list(range(0, 400, 7))
    assert [first.world_at(s) for s in reversed(steps)][::-1] == [again.world_at(s) for s in steps]
    assert [first.world_at(s) for s in range(5)] == [first.world_at(0)] * 5 != [first.world_at(5)] * 5
    other = Worlds(_config("data.data_seed=3").data, CPU).stream
    assert [other.world_at(s) for s in range(0, 200, 5)] != [first.world_at(s) for s in range(0, 200, 5)]
    per_batch = Worlds(_config("data.stream.segment_steps=0").data, CPU).stream
    assert all(per_batch.world_at(s) != per_batch.world_at(s + 1) for s in range(50))


def test_worlds_are_drawn_inside_the_family_and_the_evaluation_worlds_do_not_move():
    config = _config("data.stream.worlds=16", "data.stream.gravity=[0.2, 0.8]", "data.stream.friction=[0.01, 0.05]",
                     "data.stream.gravity_direction_deg=[90, 180]")
    worlds = Worlds(config.data, CPU)
    for p in worlds.stream.physics:
        magnitude = math.hypot(p.gravity_row, p.gravity_col)
        assert 0.2 <= magnitude <= 0.8 and 0.01 <= p.friction <= 0.05
        assert p.gravity_row <= 1e-12 and p.gravity_col >= -1e-12  # 90°..180°: right to up
    assert worlds.stream.train.positions.shape[0] == 16 * 12
    assert torch.equal(worlds.stream.context[3], torch.tensor(worlds.stream.physics[3].context()))
    plain = Worlds(load_config("smoke").data, CPU)
    for name in ("base", "shift"):  # the stream has its own seed: base and shift worlds are the paper's, bitwise
        for split in ("train", "val", "test"):
            assert torch.equal(getattr(plain, name)[split].positions, getattr(worlds, name)[split].positions)
    assert plain.stream is None and Physics().context() == (0.0, 0.0, 0.0, 0.0, 0.0)


def test_every_sequence_of_a_batch_comes_from_the_steps_world():
    trainer = Trainer(_config(), CPU)
    stream = trainer.worlds.stream
    seen = []
    real = trainer.worlds.render
    trainer.worlds.render = lambda split, seq, frames: (seen.append((split, seq)), real(split, seq, frames))[1]
    for step in range(12):
        trainer.train_step()
        split, seq = seen[-1]
        world = stream.world_at(step)
        assert split is stream.train
        assert bool(((seq >= world * stream.sequences) & (seq < (world + 1) * stream.sequences)).all())
    assert len({stream.world_at(s) for s in range(12)}) == 3


def test_switches_are_recorded_printed_and_shown(tmp_path):
    result = runner.invoke(app, ["train", "--profile", "smoke", "--runs-dir", str(tmp_path), "--run-id", "s",
                                 "--threads", "1", *[a for s in STREAM for a in ("--set", s)]])
    assert result.exit_code == 0, result.output
    run = tmp_path / "s"
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    switches = [e for e in events if e["kind"] == "world_switch"]
    stream = Worlds(_config().data, CPU).stream
    assert [e["first_step"] for e in switches] == list(range(0, 40, 5))
    assert [e["world"] for e in switches] == [stream.world_at(s) for s in range(0, 40, 5)]
    assert switches[0]["previous"] is None and all(a["world"] == b["previous"] for a, b in zip(switches, switches[1:],
                                                                                              strict=False))
    assert f"world {switches[1]['world']} from step 5: {stream.describe(switches[1]['world'])}" in result.output
    train = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in train if r["kind"] == "train"]
    assert [r["world"] for r in train] == [stream.world_at(r["step"] - 1) for r in train]
    per_batch = runner.invoke(app, ["train", "--profile", "smoke", "--runs-dir", str(tmp_path), "--run-id", "b",
                                    "--threads", "1", *[a for s in STREAM for a in ("--set", s)],
                                    "--set", "data.stream.segment_steps=0"])
    assert per_batch.exit_code == 0 and per_batch.output.count("world ") == 1  # only the first world is news
    state = RunState(track="C")
    for event in switches:
        state.ingest(event)
    assert state.world == f"world {switches[-1]['world']}: {switches[-1]['physics']}"


def test_a_stream_run_resumes_exactly():
    """Stopped at step 17 (inside a segment) and restored into a fresh trainer, a stream run with the oracle context
    goes on exactly as the run left alone: the world of a step depends on the step only."""
    config = _config("memory.oracle_context=true")
    alone = Trainer(config, CPU)
    for _ in range(30):
        alone.train_step()
    cut = Trainer(config, CPU)
    for _ in range(17):
        cut.train_step()
    state = cut.state_dict()
    resumed = Trainer(config, CPU)
    assert resumed.load_state_dict(state) == []
    for _ in range(13):
        resumed.train_step()
    for name, value in alone.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name


def test_oracle_context_of_no_physics_is_track_a_and_of_the_shift_is_not(smoke_worlds):
    config = load_config("smoke", ["memory.oracle_context=true"])
    trainer = Trainer(config, CPU, smoke_worlds)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in trainer.model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=generator))
    model = trainer.model
    z = torch.randn(6, config.model.latent_dim, generator=generator)
    with torch.no_grad():
        plain = model.predict(z, None).latents
        model.set_world_context(torch.zeros(5))
        assert torch.equal(model.predict(z, model.experience(z)).latents, plain)
        model.set_world_context(smoke_worlds.shift_context)
        assert not torch.equal(model.predict(z, model.experience(z)).latents, plain)
    model.set_world_context(torch.tensor([0.1, 0.2, 0.0, 0.0, 0.0]))
    result = evaluate(model, smoke_worlds, config, step=3)
    assert torch.equal(model.world_context, torch.tensor([0.1, 0.2, 0.0, 0.0, 0.0]))  # put back
    curve = result.n_curve["d_shift"]["ratio_of_sums"]
    assert len(set(curve[1:])) == 1 and curve[0] != curve[1]  # unknown physics at n = 0, known from the first on
    assert result.memory_gain == curve[0] - result.d_shift
    # base entries tell the base world's physics: zero, so the content control equals n = 0
    assert result.content["d_shift"]["ratio_of_sums"] == curve[0]


def test_the_oracle_context_learns_on_a_stream_and_is_refused_where_it_cannot_work():
    trainer = Trainer(_config("memory.oracle_context=true"), CPU)
    before = [p.clone() for p in trainer.model.oracle.parameters()]
    for _ in range(8):
        trainer.train_step()
        stream = trainer.worlds.stream
        assert torch.equal(trainer.model.world_context, stream.context[stream.world_at(trainer.progress.step - 1)])
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.oracle.parameters(), strict=True))
    with pytest.raises(ConfigError, match="memory.oracle_context"):
        load_config("smoke", ["memory.oracle_context=true", 'train.track="A"'])
    with pytest.raises(GroupError, match="memory.oracle_context"):
        check_groupable([load_config("smoke", ["memory.oracle_context=true", f"train.seed={s}"]) for s in (1, 2)])
    for bad, key in ((["data.stream.gravity=[1.0, 0.5]"], "data.stream.gravity"),
                     (["data.stream.friction=[0.1]"], "data.stream.friction"),
                     (["data.stream.worlds=-1"], "data.stream.worlds")):
        with pytest.raises(ConfigError, match=key):
            load_config("smoke", bad)
    assert np.isfinite(trainer.evaluate().d_shift)
