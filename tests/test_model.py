import math

import pytest
import torch

from jepa_tui.config import build_config
from jepa_tui.model.encoder import ema_update, make_target
from jepa_tui.model.jepa import JEPAWorldModel
from jepa_tui.model.memory import AttentionAggregator, BoundaryDetector, ExperienceBuffer, ExperienceEncoder
from jepa_tui.model.modulators.lora import LoRAFactors
from jepa_tui.training.losses import jepa_loss, variance_hinge
from jepa_tui.training.schedules import ema_tau, learning_rate

SMALL = {"model": {"encoder_channels": [4, 8, 8, 8], "hidden_dim": 32, "latent_dim": 16},
         "memory": {"capacity": 8, "exp_dim": 16, "exp_ff_dim": 32}}


def small_model(track: str, seed: int = 0) -> JEPAWorldModel:
    torch.manual_seed(seed)
    return JEPAWorldModel(build_config([("t", {**SMALL, "train": {"track": track}})]))


def fill_buffer(model: JEPAWorldModel, n: int) -> None:
    for i in range(n):
        model.memory.buffer.push(torch.randn(2, 16), True, step=i)


@pytest.mark.parametrize("track", ["B", "C"])
def test_empty_buffer_reproduces_track_a(track):
    a, other = small_model("A"), small_model(track)
    other.load_state_dict(a.state_dict(), strict=False)  # share encoder and base predictor weights
    z = torch.randn(32, 16)
    e = other.experience(z)
    assert torch.equal(e, torch.zeros_like(e))
    assert torch.equal(other.predict(z, e).latents, a.predict(z, a.experience(z)).latents)
    # the same model with experience in its buffer predicts differently (so the check above can fail)
    fill_buffer(other, 5)
    if track == "C":
        for lora in (other.predictor.lora1, other.predictor.lora2):
            torch.nn.init.normal_(lora.B)
    assert not torch.allclose(other.predict(z, other.experience(z)).latents, a.predict(z).latents)


def test_factorised_lora_equals_materialised_weights():
    torch.manual_seed(1)
    lora = LoRAFactors(in_dim=16, out_dim=32, rank=4, exp_dim=8)
    torch.nn.init.normal_(lora.B)
    x, e = torch.randn(10, 16), torch.randn(10, 8)
    w = torch.randn(32, 16)
    s = lora.scales(e)
    factorised = x @ w.T + lora.delta(x, s)
    per_sample = w + lora.B @ torch.diag_embed(s) @ lora.A  # (10, 32, 16): W + B·diag(s)·A
    materialised = torch.einsum("noi,ni->no", per_sample, x)
    assert torch.allclose(factorised, materialised, atol=1e-5)
    assert torch.allclose(lora.materialise(s), per_sample - w, atol=1e-6)
    norms = torch.linalg.matrix_norm(per_sample - w)
    assert torch.allclose(lora.delta_frobenius(s), norms, rtol=1e-4)


def test_track_c_lora_path_matches_per_sample_predictor():
    model = small_model("C")
    p = model.predictor
    for lora in (p.lora1, p.lora2):
        torch.nn.init.normal_(lora.B, std=0.1)
    z, e = torch.randn(6, 16), torch.randn(6, 16)
    s1, s2 = p.lora_scales(e)
    w1 = p.w1.weight + p.lora1.materialise(s1)
    w2 = p.w2.weight + p.lora2.materialise(s2)
    h = p.act(torch.einsum("noi,ni->no", w1, z) + p.w1.bias)
    expected = torch.einsum("noi,ni->no", w2, h) + p.w2.bias
    assert torch.allclose(p.step(z, e, p.modulate(e, (s1, s2))), expected, atol=1e-5)


def perturbed_experience_encoder(seed: int) -> ExperienceEncoder:
    """A float64 experience encoder with every parameter moved off its initial value (LayerNorm gains too)."""
    torch.manual_seed(seed)
    encoder = ExperienceEncoder(build_config([("t", SMALL)]).memory, latent_dim=16).double()
    with torch.no_grad():
        for p in encoder.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return encoder


def test_experience_encoder_matches_transformer_encoder_layers():
    """The 2-token shortcut (sigmoid of the score difference) gives the layers' own outputs and gradients."""
    encoder = perturbed_experience_encoder(seed=3)
    entries = torch.randn(7, 2, 16, dtype=torch.float64)
    out_grad = torch.randn(7, 16, dtype=torch.float64)
    params = list(encoder.parameters())

    def reference() -> torch.Tensor:  # the layers' own forward, one token pair per sequence
        x = encoder.tokens(entries)
        for layer in encoder.layers:
            x = layer(x)
        return x.mean(dim=1)

    expected, actual = reference(), encoder(entries)
    assert torch.allclose(actual, expected, rtol=0, atol=1e-12)
    for want, got in zip(torch.autograd.grad(expected, params, out_grad),
                         torch.autograd.grad(actual, params, out_grad), strict=True):
        assert torch.allclose(got, want, rtol=0, atol=1e-10)


def test_aggregator_is_bias_free_by_default():
    aggregator = small_model("C").memory.aggregator
    assert all(layer.bias is None for layer in (aggregator.query, aggregator.key, aggregator.value))


@pytest.mark.parametrize("bias", [False, True])
def test_attention_aggregator_is_softmax_attention_over_valid_entries(bias):
    torch.manual_seed(5)
    aggregator = AttentionAggregator(latent_dim=16, exp_dim=8, bias=bias).double()
    z, encoded = torch.randn(4, 16, dtype=torch.float64), torch.randn(6, 8, dtype=torch.float64)
    valid = torch.tensor([True, True, False, True, False, True])
    e, weights = aggregator(z, encoded, valid)
    keys, values = aggregator.key(encoded[valid]), aggregator.value(encoded[valid])
    expected_weights = torch.softmax(aggregator.query(z) @ keys.T / math.sqrt(8), dim=-1)
    assert torch.allclose(weights[:, valid], expected_weights, atol=1e-12)
    assert torch.equal(weights[:, ~valid], torch.zeros(4, 2, dtype=torch.float64))
    assert torch.allclose(e, expected_weights @ values, atol=1e-12)
    empty_e, empty_weights = aggregator(z, encoded, torch.zeros(6, dtype=torch.bool))
    assert torch.equal(empty_e, torch.zeros_like(empty_e))
    assert torch.equal(empty_weights, torch.zeros_like(empty_weights))


def test_detector_silent_in_warmup_fires_on_spike():
    det = BoundaryDetector(kappa=1.5, momentum=0.99, warmup_steps=10)
    spikes = [bool(det.observe(torch.tensor(v))) for v in (1.0, 50.0, 0.1, 80.0, 0.2, 99.0, 0.1, 70.0, 0.3, 60.0)]
    assert not any(spikes)  # wild values during the 10 warm-up observations never fire
    assert bool(det.observe(torch.tensor(1e4)))  # the 11th observation may fire

    det = BoundaryDetector(kappa=1.5, momentum=0.99, warmup_steps=10)
    steady = [bool(det.observe(torch.tensor(1.0 + 0.1 * (i % 2)))) for i in range(600)]
    assert not any(steady[300:])  # once μ and σ have settled, a steady signal stays below μ + 1.5σ
    assert bool(det.observe(torch.tensor(2.0)))  # a spike fires
    assert not bool(det.observe(torch.tensor(1.0)))
    assert int(det.count) == 602


def test_detector_statistics_follow_the_ema_rule():
    det = BoundaryDetector(kappa=2.0, momentum=0.9, warmup_steps=1)
    det.observe(torch.tensor(2.0))
    assert det.mu.item() == 2.0 and det.var.item() == 0.0
    det.observe(torch.tensor(4.0))
    assert det.mu.item() == pytest.approx(0.9 * 2 + 0.1 * 4)
    assert det.var.item() == pytest.approx(0.1 * (4 - 2) ** 2)


def test_fifo_evicts_oldest_first():
    buf = ExperienceBuffer(capacity=4, latent_dim=3)
    for i in range(6):
        buf.push(torch.full((2, 3), float(i)), True, step=i)
    buf.push(torch.full((2, 3), 99.0), torch.tensor(False), step=99)  # not pushed
    assert int(buf.size) == 4
    ordered = buf.entries[buf.order(), 0, 0].tolist()
    assert ordered == [2.0, 3.0, 4.0, 5.0]
    assert buf.entry_step[buf.order()].tolist() == [2, 3, 4, 5]


def test_ema_schedule_endpoints_and_update():
    assert ema_tau(0.0, 0.996, 0.9999) == pytest.approx(0.996)
    assert ema_tau(1.0, 0.996, 0.9999) == pytest.approx(0.9999)
    assert ema_tau(0.5, 0.996, 0.9999) == pytest.approx((0.996 + 0.9999) / 2)
    online = torch.nn.Linear(3, 3)
    target = make_target(online)
    with torch.no_grad():
        online.weight.add_(1.0)
    before = target.weight.clone()
    ema_update(target, online, 1.0)
    assert torch.equal(target.weight, before)  # τ = 1 freezes the target
    ema_update(target, online, 0.9)
    assert torch.allclose(target.weight, 0.9 * before + 0.1 * online.weight)
    assert not target.weight.requires_grad


def test_lr_schedule_warmup_then_cosine():
    assert learning_rate(0.0, 1e-3, 0.05) == 0.0
    assert learning_rate(0.025, 1e-3, 0.05) == pytest.approx(5e-4)
    assert learning_rate(0.05, 1e-3, 0.05) == pytest.approx(1e-3)
    assert learning_rate(0.525, 1e-3, 0.05) == pytest.approx(5e-4)
    assert learning_rate(1.0, 1e-3, 0.05) == pytest.approx(0.0, abs=1e-12)


def test_sgdr_restarts_the_cosine_at_each_cycle():
    # T_0 = 0.25 of the post-warm-up span, no warm-up: restarts at q = 0.25, 0.5, 0.75
    lr = [learning_rate(p, 1.0, 0.0, 0.25) for p in (0.0, 0.125, 0.2499, 0.25, 0.375, 0.5, 0.999)]
    assert lr[0] == lr[3] == lr[5] == 1.0 and lr[1] == pytest.approx(0.5) == lr[4]
    assert lr[2] < 1e-6 and lr[6] < 1e-3
    # T_mult 2: cycles 0.2, 0.4 (restart at 0.2 and 0.6), with a warm-up before them
    assert learning_rate(0.1, 1.0, 0.0, 0.2, 2.0) == pytest.approx(0.5)
    assert learning_rate(0.2, 1.0, 0.0, 0.2, 2.0) == pytest.approx(1.0)
    assert learning_rate(0.4, 1.0, 0.0, 0.2, 2.0) == pytest.approx(0.5)
    assert learning_rate(0.6, 1.0, 0.0, 0.2, 2.0) == pytest.approx(1.0)
    warm = [learning_rate(p, 1.0, 0.5, 0.5) for p in (0.25, 0.5, 0.625, 0.75)]
    assert warm == pytest.approx([0.5, 1.0, 0.5, 1.0])
    assert learning_rate(0.3, 1.0, 0.05) == learning_rate(0.3, 1.0, 0.05, 0.0, 3.0)  # off: one cosine


def test_loss_terms():
    torch.manual_seed(0)
    spread = torch.randn(256, 3, 8) * 2.0
    assert variance_hinge(spread, 0.75, 1e-4).item() == 0.0
    collapsed = torch.zeros(256, 3, 8)
    assert variance_hinge(collapsed, 0.75, 1e-4).item() == pytest.approx(0.75 - math.sqrt(1e-4))
    terms = jepa_loss(collapsed, torch.ones(256, 3, 8), 0.05, 0.75, 1e-4)
    assert terms.pred.item() == pytest.approx(1.0)
    assert terms.total.item() == pytest.approx(1.0 + 0.05 * terms.var.item())


def test_rollout_is_autoregressive():
    model = small_model("A")
    z = torch.randn(4, 16)
    out = model.predict(z).latents
    step = model.predictor.step
    assert out.shape == (4, 3, 16)
    assert torch.allclose(out[:, 0], step(z))
    assert torch.allclose(out[:, 1], step(step(z)))
    assert torch.allclose(out[:, 2], step(step(step(step(z)))))


def test_non_finite_parameters_are_named_after_one_reduction(make_trainer):
    trainer = make_trainer()
    assert trainer.non_finite_parameters() == []
    with torch.no_grad():
        trainer.model.encoder.proj.weight[0, 0] = float("nan")
        trainer.model.encoder.convs[2].weight[0, 0, 0, 0] = float("inf")
    assert set(trainer.non_finite_parameters()) == {"encoder.proj.weight", "encoder.convs.2.weight"}


def test_first_layer_layout_is_a_speed_choice_only():
    """With gradients, a one-channel frame's first convolution runs in the default layout (its weight gradient is
    faster there on CPU); latents and every weight gradient equal the all-channels-last encoder's to the bit."""
    from jepa_tui.model.encoder import ConvEncoder

    cfg = build_config([("t", SMALL)])
    torch.manual_seed(0)
    encoders = [ConvEncoder(cfg.model, cfg.data.canvas), ConvEncoder(cfg.model, cfg.data.canvas)]
    encoders[1].load_state_dict(encoders[0].state_dict())
    encoders[0]._first_layer_default = False  # the layout before: every layer channels-last
    frames = torch.rand(6, 1, cfg.data.canvas, cfg.data.canvas)
    outputs = []
    for encoder in encoders:
        encoder.to(memory_format=torch.channels_last)  # as the trainer places it
        latents = encoder(frames)
        (latents * torch.linspace(-1, 1, latents.shape[1])).sum().backward()
        outputs.append((latents.detach(), [p.grad for p in encoder.parameters()]))
    assert encoders[1]._first_layer_default
    assert torch.equal(outputs[0][0], outputs[1][0])
    assert all(torch.equal(a, b) for a, b in zip(outputs[0][1], outputs[1][1], strict=True))
    with torch.no_grad():  # the target encoder's path (every layer channels-last) gives the same latents too
        assert torch.equal(encoders[1](frames), outputs[0][0])
