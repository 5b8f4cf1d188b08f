"""What the training data and the buffer entries are, checked against independent computations, and every spec
guess that is a setting: its default is today's behaviour and its alternatives do what they say."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from jepa_tui.config import ConfigError, DataConfig, load_config
from jepa_tui.data import worlds as worlds_module
from jepa_tui.data.worlds import Worlds, simulate
from jepa_tui.model.encoder import ConvEncoder
from jepa_tui.model.jepa import JEPAWorldModel
from jepa_tui.training.trainer import Trainer

from .conftest import smoke_config

CPU = torch.device("cpu")


def test_training_batches_come_only_from_the_base_worlds_train_split(smoke_worlds):
    # (the kinematic probe and the content control are off here, so only the protocol and the decoder are seen)
    config = load_config("smoke", ["eval.diagnostics=false", "eval.content_control=false"])
    trainer = Trainer(config, CPU, smoke_worlds)
    worlds = trainer.worlds
    seen = []
    real = worlds.render
    worlds.render = lambda split, seq, frames: (seen.append((split, seq)), real(split, seq, frames))[1]
    for _ in range(5):
        trainer.train_step()
    assert len(seen) == 5 and all(split is worlds.base["train"] for split, _ in seen)
    seen.clear()
    sampler_state = trainer.sampler.get_state()
    trainer.evaluate()  # evaluation uses the other splits, and the shift world
    assert torch.equal(trainer.sampler.get_state(), sampler_state)  # the training RNG is never drawn from
    # base train frames only for the pixel-space decoder: the first probe_sequences sequences, in order, no draws
    fitted = [seq for split, seq in seen if split is worlds.base["train"]]
    assert torch.equal(torch.cat(fitted), torch.arange(min(config.eval.probe_sequences, len(worlds.base["train"]))))
    assert any(split is worlds.shift["test"] for split, _ in seen) and any(split is worlds.shift["train"]
                                                                         for split, _ in seen)


def test_each_world_gets_its_own_gravity(monkeypatch):
    cfg = DataConfig(base_splits=(300, 10, 10), shift_splits=(300, 10, 10), base_gravity=0.0, shift_gravity=0.5)
    calls = []
    real = worlds_module.simulate
    monkeypatch.setattr(worlds_module, "simulate",
                        lambda num, c, gravity, *a: (calls.append((num, gravity)), real(num, c, gravity, *a))[1])
    pool = np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    worlds = Worlds(cfg, CPU, pool)
    # base first, then shift, each with its own gravity (down, towards larger rows)
    assert [(num, physics.gravity_row, physics.gravity_col) for num, physics in calls] == [(320, 0.0, 0.0),
                                                                                           (320, 0.5, 0.0)]
    rows = {name: w["train"].positions[:, 10:, :, 0].float().mean().item()
            for name, w in (("base", worlds.base), ("shift", worlds.shift))}
    assert rows["shift"] > rows["base"] + 3  # the shift world's digits fall towards the floor


def _expected_entry(trainer: Trainer, before: JEPAWorldModel, sampler_state: torch.Tensor) -> torch.Tensor:
    """The batch the step drew, encoded by the encoders as they were before the step: (mean online z_t, mean target
    z̄_{t+k}) at the smallest horizon, computed here without the trainer's code path."""
    generator = torch.Generator().set_state(sampler_state)
    split = trainer.worlds.base["train"]
    batch, horizons = trainer.config.train.batch_size, before.horizons
    seq = torch.randint(len(split), (batch,), generator=generator)
    t = torch.randint(split.num_frames - max(horizons), (batch, 1), generator=generator)
    frames = trainer.worlds.render(split, seq, torch.cat([t, t + horizons[0]], dim=1))
    with torch.no_grad():
        return torch.stack([before.encoder(frames[:, 0]).mean(0), before.target_encoder(frames[:, 1]).mean(0)])


def test_a_real_boundary_event_pushes_the_batch_mean_transition(make_trainer):
    trainer = make_trainer(batch_size=16)
    memory = trainer.model.memory
    for _ in range(memory.detector.warmup_steps):  # the detector warms up and pushes nothing
        trainer.train_step()
    assert int(memory.buffer.size) == 0
    memory.detector.mu.zero_()  # any surprisal now exceeds μ + κσ = 0: the next step is a real boundary event
    memory.detector.var.zero_()
    before, state = copy.deepcopy(trainer.model), trainer.sampler.get_state()
    trainer.train_step()
    assert int(memory.buffer.size) == 1 and int(trainer.boundary_events) == 1
    entry = memory.buffer.entries[0]
    expected = _expected_entry(trainer, before, state)
    assert torch.allclose(entry, expected, atol=1e-5)
    # not the updated encoder's latents, not the online encoder for the target, not a single sample
    assert not torch.allclose(entry[1], expected[0], atol=1e-3)
    assert int(memory.buffer.entry_step[0]) == memory.detector.warmup_steps
    trainer.buffer_frozen = True  # frozen: events still counted, nothing pushed, entries still attended
    memory.detector.mu.zero_()
    memory.detector.var.zero_()
    trainer.train_step()
    assert int(memory.buffer.size) == 1 and int(trainer.boundary_events) == 2


def test_target_target_entries_take_z_t_from_the_target_encoder():
    model = JEPAWorldModel(load_config("smoke", ['memory.entry="target_target"']))
    frames = torch.rand(4, 1, 64, 64)
    with torch.no_grad():
        torch.nn.init.normal_(model.encoder.proj.weight)  # online and target encoders now differ
        online, target = model.encoder(frames), model.target_encoder(frames)
        entry = model.buffer_entry(frames, online, target)
    assert torch.allclose(entry[0], target.mean(0)) and not torch.allclose(entry[0], online.mean(0))
    default = JEPAWorldModel(load_config("smoke"))
    assert torch.allclose(default.buffer_entry(frames, online, target)[0], online.mean(0))


def test_surprisal_horizon_and_norm():
    config = load_config("smoke", ["memory.surprisal_horizon=2", 'memory.surprisal_norm="l2"'])
    model = JEPAWorldModel(config)
    z, target = torch.randn(8, 16), torch.randn(8, 16)
    two_steps = model.predictor.step(model.predictor.step(z))
    assert model.surprisal_index == 1
    assert torch.allclose(model.base_surprisal(z, target), (two_steps - target).norm(dim=-1).mean())
    default = JEPAWorldModel(load_config("smoke"))
    default.load_state_dict(model.state_dict())
    one = default.predictor.step(z)
    assert torch.allclose(default.base_surprisal(z, target), (one - target).pow(2).mean())
    with pytest.raises(ConfigError, match="memory.surprisal_horizon.*one of model.horizons"):
        load_config("smoke", ["memory.surprisal_horizon=3"])


def test_lora_scale_and_initialisation():
    base = JEPAWorldModel(load_config("smoke"))
    scaled = JEPAWorldModel(load_config("smoke", ["memory.lora_scale=2.0"]))
    scaled.load_state_dict(base.state_dict())
    e = torch.randn(5, 16)
    assert torch.allclose(scaled.predictor.lora1.scales(e), 2 * base.predictor.lora1.scales(e))
    torch.manual_seed(0)
    gaussian = JEPAWorldModel(load_config("smoke", ['memory.lora_a_init="gaussian"', "memory.lora_rank=16"]))
    a = gaussian.predictor.lora2.A
    assert abs(a.std().item() - 1 / 4) < 0.02 and torch.equal(gaussian.predictor.lora2.B, torch.zeros_like(
        gaussian.predictor.lora2.B))


def test_injection_bias_and_encoder_padding():
    biased = JEPAWorldModel(load_config("smoke", ['train.track="B"', "model.injection_bias=true"]))
    assert biased.predictor.inj.bias is not None
    assert JEPAWorldModel(load_config("smoke", ['train.track="B"'])).predictor.inj.bias is None
    cfg = load_config("smoke", ["model.encoder_padding=0"])
    encoder = ConvEncoder(cfg.model, 64)  # 64 -> 31 -> 14 -> 6 -> 2 px
    assert encoder.proj.in_features == 8 * 2 * 2 and encoder(torch.rand(3, 1, 64, 64)).shape == (3, 16)
    with pytest.raises(ConfigError, match="model.encoder_padding"):
        load_config("smoke", ["model.encoder_padding=0", "data.canvas=32"])


def _one_digit(**kw) -> DataConfig:
    return DataConfig(num_digits=1, frames=4, canvas=64, velocity_max=2.0, **kw)


def test_integration_order_against_a_hand_simulation():
    rng_state = np.random.default_rng(5)
    semi, _ = simulate(1, _one_digit(start_positions="central_half"), 0.5, 1, np.random.default_rng(5))
    explicit, _ = simulate(1, _one_digit(start_positions="central_half", integration="explicit"), 0.5, 1,
                           np.random.default_rng(5))
    p0 = rng_state.uniform(9.0, 27.0, size=(1, 1, 2))[0, 0]  # central half of [0, 36]
    v0 = rng_state.uniform(-2.0, 2.0, size=(1, 1, 2))[0, 0]
    assert np.allclose(semi[0, 0, 0], p0) and np.allclose(explicit[0, 0, 0], p0)
    g = np.array([0.5, 0.0])
    p_semi, v = p0.copy(), v0.copy()
    p_expl, w = p0.copy(), v0.copy()
    for frame in range(1, 4):
        v = v + g
        p_semi = p_semi + v
        p_expl = p_expl + w
        w = w + g
        assert np.allclose(semi[0, frame, 0], p_semi) and np.allclose(explicit[0, frame, 0], p_expl)
    assert not np.allclose(semi[0, 3], explicit[0, 3])


def test_wall_restitution_against_a_hand_bounce():
    cfg = DataConfig(num_digits=1, frames=3, canvas=64, velocity_max=0.0, wall_restitution=0.5)
    rng = np.random.default_rng(0)
    pos, _ = simulate(1, cfg, 30.0, 1, rng)  # no initial speed, falls 30 px in the first frame
    p0 = pos[0, 0, 0, 0]
    limit = 36.0
    p1 = p0 + 30.0  # v = 30 after the first frame
    v = 30.0
    if p1 > limit:
        p1, v = limit - 0.5 * (p1 - limit), -0.5 * v
    assert pos[0, 1, 0, 0] == pytest.approx(p1)
    v += 30.0
    p2 = p1 + v
    if p2 > limit:
        p2 = limit - 0.5 * (p2 - limit)
    assert pos[0, 2, 0, 0] == pytest.approx(min(max(p2, 0.0), limit))


def test_start_positions_and_digit_size():
    central, _ = simulate(400, DataConfig(start_positions="central_half"), 0.0, 10, np.random.default_rng(0))
    assert central[:, 0].min() >= 9.0 and central[:, 0].max() <= 27.0
    pool = np.random.default_rng(0).integers(0, 256, (10, 28, 28), dtype=np.uint8)
    small = Worlds(DataConfig(digit_size=20, base_splits=(4, 2, 2), shift_splits=(2, 1, 1)), CPU, pool)
    assert small.digits.shape == (10, 20, 20)
    assert int(small.base["train"].positions.max()) <= 64 - 20
    frames = small.render_sequences(small.base["train"], torch.arange(4))
    assert frames.shape[-2:] == (64, 64)


def test_data_seed_per_run():
    shared = [load_config("smoke", [f"train.seed={s}"]) for s in (1, 2)]
    per_run = [load_config("smoke", [f"train.seed={s}", 'data.data_seed="run"']) for s in (1, 2)]
    assert [c.world_seed for c in shared] == [0, 0] and [c.world_seed for c in per_run] == [1, 2]
    pool = np.random.default_rng(0).integers(0, 256, (10, 28, 28), dtype=np.uint8)
    a, b = (Worlds(c.data, CPU, pool, seed=c.world_seed) for c in per_run)
    assert not torch.equal(a.base["train"].positions, b.base["train"].positions)
    with pytest.raises(ValueError, match="another data configuration or world seed"):
        Trainer(per_run[1], CPU, a)


def test_sigma_z_horizon(make_trainer):
    from jepa_tui.evaluation.evaluate import evaluate

    trainer = make_trainer()
    for _ in range(3):
        trainer.train_step()
    default = evaluate(trainer.model, trainer.worlds, trainer.config, 3)
    at_4 = evaluate(trainer.model, trainer.worlds, smoke_config(), 3)
    assert default.sigma_z == at_4.sigma_z  # same configuration, same number
    far = load_config("smoke", ["eval.sigma_z_horizon=4"])
    assert evaluate(trainer.model, trainer.worlds, far, 3).sigma_z != default.sigma_z
    assert evaluate(trainer.model, trainer.worlds, far, 3).d_shift == default.d_shift
