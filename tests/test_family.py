"""The JEPA family as options: each loss term and head against a hand computation on tiny tensors, each option
doing what it says in a real training step, and each shipped profile training on the smoke worlds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from jepa_tui.config import ConfigError, load_config
from jepa_tui.evaluation.metrics import latent_rank
from jepa_tui.evaluation.probe import fit_ridge, kinematics, r2
from jepa_tui.model.jepa import JEPAWorldModel
from jepa_tui.training.objectives import (
    context_mask,
    delta_loss,
    hard_weights,
    orth_loss,
    random_directions,
    sigreg,
    static_loss,
    weighted_mean,
)
from jepa_tui.training.trainer import Trainer

CPU = torch.device("cpu")


def test_sigreg_against_a_direct_integration():
    z = torch.tensor([[0.5, -1.0], [1.5, 0.0], [-0.5, 2.0]], dtype=torch.float64)
    directions = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)  # the two coordinate axes
    t = np.linspace(-5, 5, 17)
    expected = []
    for column in range(2):
        x = z[:, column].numpy()
        ecf = np.exp(1j * np.outer(x, t)).mean(0)
        integrand = np.abs(ecf - np.exp(-t**2 / 2)) ** 2 * np.exp(-t**2 / 2)
        expected.append(3 * np.trapezoid(integrand, t))
    assert sigreg(z, directions).item() == pytest.approx(np.mean(expected), rel=1e-10)
    generator = torch.Generator().manual_seed(0)
    gaussian = torch.randn(4096, 8, generator=generator, dtype=torch.float64)
    collapsed = torch.zeros(4096, 8, dtype=torch.float64)
    unit = random_directions(8, 64, generator, CPU).double()
    assert torch.allclose(unit.norm(dim=0), torch.ones(64, dtype=torch.float64))
    assert sigreg(gaussian, unit) < 2.0 < sigreg(collapsed, unit)  # N(0, I) passes, a collapse does not


def test_seed_002_terms_against_hand_computations():
    z_t = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    z_next = torch.tensor([[2.0, 2.0], [0.0, 1.0]])
    h_t = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    h_next = torch.tensor([[0.5, 0.0], [1.0, 3.0]])
    # Eq. 5: |(1, 0) − (0.5, 0)|₁ = 0.5 and |(0, 2) − (0, 2)|₁ = 0, mean 0.25
    assert delta_loss(z_t, z_next, h_t, h_next).item() == pytest.approx(0.25)
    # Eq. 7 on the first dimension: mean(|2 − 1|, |0 − 0|) = 0.5
    assert static_loss(z_t[:, :1], z_next[:, :1]).item() == pytest.approx(0.5)
    # Eq. 8: centred app (0.5, −0.5), dyn (1.5, −1.5): (0.5·1.5 + 0.5·1.5)² / 2 = 1.125
    assert orth_loss(z_t[:, :1], z_t[:, 1:]).item() == pytest.approx(1.125)
    errors = torch.tensor([1.0, 2.0, 3.0])
    weights = torch.softmax(errors, 0) * 3
    assert torch.allclose(hard_weights(errors, 1.0), weights)  # Eq. 9
    assert weighted_mean(errors, 1.0).item() == pytest.approx(float((weights * errors).mean()))  # Eqs. 10-11
    assert weighted_mean(errors, None).item() == pytest.approx(2.0)
    assert weighted_mean(errors.requires_grad_(), 1.0).grad_fn is not None and not hard_weights(errors, 1.0) \
        .requires_grad  # the weights steer, they are not optimised


def test_context_mask_hides_whole_patches():
    mask = context_mask(64, 64, 8, 0.25, torch.Generator().manual_seed(1), CPU)
    assert mask.shape == (64, 1, 64, 64) and set(mask.unique().tolist()) <= {0.0, 1.0}
    cells = mask[:, 0, ::8, ::8]
    assert torch.equal(mask, cells.repeat_interleave(8, 1).repeat_interleave(8, 2).unsqueeze(1))
    assert 0.2 < 1 - float(cells.mean()) < 0.3


def test_residual_prior_and_conditioned_predictors():
    residual = JEPAWorldModel(load_config("smoke", ["model.predict_residual=true"]))
    z = torch.randn(5, 16)
    base = residual.predictor.w2(residual.predictor.act(residual.predictor.w1(z)))
    assert torch.allclose(residual.predictor.step(z), z + base)
    prior = JEPAWorldModel(load_config("smoke", ["model.dynamics_prior=true", "model.prior_hidden=8"]))
    p = prior.predictor
    assert p.prior[0].out_features == 8
    assert torch.allclose(p.step(z), z + p.prior(z) + p.w2(p.act(p.w1(z))))
    conditioned = JEPAWorldModel(load_config("smoke", ['model.horizon_mode="conditioned"', 'train.track="C"',
                                                       "train.k_set=[1, 2, 4]"]))
    c = conditioned.predictor
    assert c.w1.in_features == 16 + 4 and c.lora1.A.shape[1] == 20
    embedded = torch.cat([z, c.time(torch.full((5, 1), 4.0))], dim=-1)
    assert torch.allclose(c.step(z, k=4), c.w2(c.act(c.w1(embedded))))
    out = c.rollout(z, horizons=(1, 4))  # one application per horizon, not a rollout
    assert torch.allclose(out[:, 1], c.step(z, k=4)) and not torch.allclose(out[:, 0], out[:, 1])
    with pytest.raises(ConfigError, match="train.k_set"):
        load_config("smoke", ['model.horizon_mode="conditioned"'])  # smoke's 9 frames cannot reach k = 10


def _steps(trainer: Trainer, n: int) -> dict:
    for _ in range(n):
        trainer.train_step()
    return trainer.drain_stats()


@pytest.mark.parametrize(("sets", "terms"), [
    (['train.regularizer="sigreg"'], ["loss_sigreg"]),
    (["train.delta_lambda=0.5"], ["loss_delta"]),
    (["train.ld_lambda=1.0"], ["loss_ld"]),
    (["train.hw_lambda=0.3"], ["loss_hw"]),
    (["train.fwm=true"], ["loss_static", "loss_orth"]),
    (["train.fwm=true", "train.ld_lambda=1.0", "train.hw_lambda=1.0"],
     ["loss_ld", "loss_hw", "loss_static", "loss_orth"]),
])
def test_each_objective_trains_and_is_logged(smoke_worlds, sets, terms):
    trainer = Trainer(load_config("smoke", sets), CPU, smoke_worlds)
    stats = _steps(trainer, 10)
    for name in terms:
        assert math.isfinite(stats[name]) and stats[name] > 0, name
    plain = _steps(Trainer(load_config("smoke"), CPU, smoke_worlds), 10)
    assert not any(name in plain for name in terms)
    assert stats["loss"] != pytest.approx(plain["loss"], rel=1e-6)  # the term entered the objective


def test_ld_reads_only_the_dynamics_subspace_with_fwm():
    model = JEPAWorldModel(load_config("smoke", ["train.fwm=true", "train.ld_lambda=1.0"]))
    assert model.app_dim == 8 and model.dyn_head.net[0].in_features == 8  # D/2 of latent_dim 16


def test_stop_gradient_targets_have_no_target_encoder(smoke_worlds):
    trainer = Trainer(load_config("smoke", ['model.target="stopgrad"']), CPU, smoke_worlds)
    assert trainer.model.target_encoder is trainer.model.encoder and not trainer.model.has_target
    assert all(p.requires_grad for p in trainer.model.encoder.parameters())
    frames = trainer.sample_batch()
    with torch.no_grad():
        online = trainer.model.encoder(frames[:, 1])
    assert torch.equal(trainer.model.encode_target(frames[:, 1]), online)
    _steps(trainer, 5)
    assert math.isfinite(trainer.evaluate().d_shift)


def test_conditioned_training_samples_k_and_evaluates_at_the_eval_horizons(smoke_worlds):
    config = load_config("smoke", ['model.horizon_mode="conditioned"', "train.k_set=[1, 2, 4]",
                                   "eval.horizons=[1, 2]"])
    trainer = Trainer(config, CPU, smoke_worlds)
    seen = set()
    for _ in range(12):
        trainer.train_step()
        seen.add(trainer._frame_horizons[0])
    assert seen == {1, 2, 4}
    result = trainer.evaluate()
    assert set(result.d_shift_per_horizon) == {"1", "2"}


def test_the_horizon_k_is_drawn_on_the_host_and_its_generator_travels_in_the_checkpoint(smoke_worlds):
    """On the CPU k comes from the training sampler as it always did (so CPU runs are unchanged); on a GPU from a host
    generator beside it, whose state the checkpoint carries (simulated here by giving a CPU trainer its own)."""
    config = load_config("smoke", ['model.horizon_mode="conditioned"', "train.k_set=[1, 2, 4]"])
    trainer = Trainer(config, CPU, smoke_worlds)
    assert trainer.horizon_sampler is trainer.sampler and "horizon_rng" not in trainer.state_dict()
    reference = torch.Generator().manual_seed(config.train.seed)  # what the sampler drew for k before
    assert [trainer._sample_k() for _ in range(6)] == \
        [config.train.k_set[int(torch.randint(3, (1,), generator=reference))] for _ in range(6)]
    first = Trainer(config, CPU, smoke_worlds)
    first.horizon_sampler = torch.Generator().manual_seed(7)  # a separate host generator, as on a GPU
    for _ in range(3):
        first.train_step()
    state = first.state_dict()
    assert "horizon_rng" in state
    expected = [first._sample_k() for _ in range(8)]
    second = Trainer(config, CPU, smoke_worlds)
    second.horizon_sampler = torch.Generator().manual_seed(99)
    second.load_state_dict(state)
    assert [second._sample_k() for _ in range(8)] == expected and len(set(expected)) > 1
    assert all(torch.equal(second._offsets_for[k], torch.tensor([0, k, *second._frame_horizons[1:]]))
               for k in config.train.k_set)


def test_diagnostics_effective_rank_and_the_kinematic_probe(smoke_worlds):
    assert latent_rank(torch.eye(6)) == pytest.approx(6.0)
    assert latent_rank(torch.ones(10, 6)) == pytest.approx(1.0)
    split = smoke_worlds.base["train"]
    position, velocity = kinematics(split, 4)
    assert position.shape == (4 * (split.num_frames - 1), 4)  # 2 digits × (row, col)
    first = split.positions[0, 0].float()
    order = torch.argsort(first[:, 1] * 10_000 + first[:, 0])
    assert torch.equal(position[0], first[order].flatten())  # left to right at frame t
    assert torch.equal(velocity[0], (split.positions[0, 1].float() - first)[order].flatten())
    # a latent that is a linear function of the kinematics is read back perfectly
    y = torch.cat([position, velocity], dim=1)
    x = y @ torch.randn(8, 12, generator=torch.Generator().manual_seed(0))
    mean, std, weights, y_mean = fit_ridge(x, y, 1e-6)
    assert r2(y, ((x.double() - mean) / std) @ weights + y_mean) > 0.999
    trainer = Trainer(load_config("smoke"), CPU, smoke_worlds)
    result = trainer.evaluate()
    assert 1.0 <= result.effective_rank <= 16.0
    assert set(result.probe_r2) == {"base", "shift"} and set(result.probe_r2["shift"]) == {"position", "velocity"}


@pytest.mark.parametrize("profile", ["lejepa", "sigreg", "fwm_hw_ld"])
def test_each_family_profile_trains_on_the_smoke_worlds(profile, smoke_worlds):
    smoke = load_config("smoke")
    sets = [f"data.{k}={v!r}".replace("'", '"') if not isinstance(v, tuple) else f"data.{k}={list(v)}"
            for k, v in vars(smoke.data).items() if k not in ("shift", "base", "stream")]  # the default physics
    model_sets = [f"model.{k}={list(getattr(smoke.model, k))}" for k in ("encoder_channels",)] + \
        [f"model.hidden_dim={smoke.model.hidden_dim}", f"model.latent_dim={smoke.model.latent_dim}",
         "train.batch_size=8", "train.k_set=[1, 2, 4]", "memory.capacity=16", "memory.exp_dim=16",
         "memory.exp_ff_dim=32", "eval.n_experiences=5", "eval.base_sequences=8", "train.mask_patch=8",
         "eval.probe_sequences=8", "eval.n_curve=[0, 5]"]
    config = load_config(profile, [*sets, *model_sets])
    trainer = Trainer(config, CPU, smoke_worlds)
    stats = _steps(trainer, 10)
    assert math.isfinite(stats["loss"]) and math.isfinite(trainer.evaluate().d_shift)
