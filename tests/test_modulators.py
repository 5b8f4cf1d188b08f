"""Tracks D (FiLM) and E (hypernetwork), the paper's §5.3 future work: a no-op at initialisation, per-sample
modulation equal to a naive per-sample computation, and present wherever a track is (training records, the
dashboard's state, sweeps, `analyze`, `report`)."""

from __future__ import annotations

import asyncio
import json

import pytest
import torch
from torch.nn import functional as F
from typer.testing import CliRunner

from jepa_tui.cli.main import app
from jepa_tui.config import MEMORY_TRACKS, TRACKS, ModelConfig
from jepa_tui.experiments.spec import load_sweep
from jepa_tui.model.modulators.film import FilmModulation
from jepa_tui.model.modulators.hypernetwork import (
    HyperFeatures,
    HyperModulation,
    PhiGradient,
    PhiTimesVector,
    VectorTimesPhi,
)
from jepa_tui.model.predictor import Predictor
from jepa_tui.reporting.collect import collect_runs
from jepa_tui.reporting.report import build_report
from jepa_tui.ui.state import RunState
from tests.test_model import fill_buffer, small_model

runner = CliRunner()
MODEL = ModelConfig(latent_dim=6, hidden_dim=10, horizons=(1, 2, 3))


def _perturb(module: torch.nn.Module, seed: int) -> None:
    """Every parameter of ``module`` moved off its initial value (the zero-initialised last layers included)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))


@pytest.mark.parametrize("track", ["D", "E"])
def test_a_fresh_modulator_is_a_no_op_and_equals_track_a(track):
    """Zero-initialised last layers: with experience in the buffer the predictions equal Track A's predictor with
    the same weights, exactly; once the modulator's weights move they no longer do (so the check can fail)."""
    a, other = small_model("A"), small_model(track)
    missing, _ = other.load_state_dict(a.state_dict(), strict=False)  # share encoder and base predictor weights
    assert all(k.startswith(("predictor.film", "predictor.hyper", "memory.")) for k in missing)
    fill_buffer(other, 6)
    z = torch.randn(32, 16)
    e = other.experience(z)
    assert e.abs().sum() > 0  # experience is there, the modulator just does nothing with it yet
    assert torch.equal(other.predict(z, e).latents, a.predict(z, a.experience(z)).latents)
    assert all(float(n) == 0.0 for n in other.modulation_norms(e))
    _perturb(other.predictor.film if track == "D" else other.predictor.hyper, 1)
    assert not torch.allclose(other.predict(z, other.experience(z)).latents, a.predict(z).latents)
    assert all(float(n) > 0.0 for n in other.modulation_norms(e))


@pytest.mark.parametrize("film_bias", [False, True])
def test_an_empty_experience_gives_track_a_at_any_film_weights(film_bias):
    """Track D's γ, β are bias-free by default: with every weight moved, e = 0 predicts what the base predictor
    does; a FiLM with biases (runs written before memory.film_bias) does not, which is why it is off."""
    torch.manual_seed(0)
    p = Predictor(MODEL, "D", exp_dim=5, lora_rank=2, film_bias=film_bias).double()
    _perturb(p, 4)
    z = torch.randn(4, 6, dtype=torch.float64)
    zero = torch.zeros(4, 5, dtype=torch.float64)
    with torch.no_grad():
        same = torch.equal(p.step(z, zero, p.modulate(zero)), p.step(z))
    assert same is not film_bias


def test_an_empty_experience_gives_track_a_at_any_hypernetwork_weights():
    """Track E's deltas are taken relative to e = 0, as Track C's generator and Track B's W_inj are bias-free: with
    every weight moved, e = 0 predicts exactly what the base predictor does, and any other e does not."""
    torch.manual_seed(0)
    p = Predictor(MODEL, "E", exp_dim=5, lora_rank=2, hyper_hidden=7, hyper_chunk_dim=4, hyper_block=3).double()
    _perturb(p, 4)
    z = torch.randn(4, 6, dtype=torch.float64)
    zero, e = torch.zeros(4, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    assert torch.equal(p.rollout(z, zero), p.rollout(z))
    with torch.no_grad():
        assert all(float(d.abs().max()) == 0.0 for d in p.modulate(zero).materialise())
    assert not torch.allclose(p.rollout(z, e), p.rollout(z))


@pytest.mark.parametrize("film_output", [False, True])
def test_film_modulation_equals_a_per_sample_loop(film_output):
    torch.manual_seed(0)
    p = Predictor(MODEL, "D", exp_dim=5, lora_rank=2, film_output=film_output, film_bias=True).double()
    _perturb(p, 2)
    z, e = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    mod = p.modulate(e)
    assert isinstance(mod, FilmModulation)
    got = p.step(z, e, mod)
    for n in range(4):  # one sample at a time, from the layer weights: h' = (1 + γ(e)) ⊙ h + β(e)
        gamma = p.film.gamma.weight @ e[n] + p.film.gamma.bias
        beta = p.film.beta.weight @ e[n] + p.film.beta.bias
        h = (1 + gamma) * p.act(p.w1.weight @ z[n] + p.w1.bias) + beta
        out = p.w2.weight @ h + p.w2.bias
        if film_output:
            out = (1 + p.film.gamma_out.weight @ e[n] + p.film.gamma_out.bias) * out \
                + p.film.beta_out.weight @ e[n] + p.film.beta_out.bias
        assert torch.allclose(got[n], out, atol=1e-12)


@pytest.mark.parametrize("block", [1, 3, 10, 256])
def test_hypernetwork_deltas_equal_naively_generated_weights(block):
    """ΔW1 and ΔW2 generated chunk by chunk (hidden unit j from [e; c_j]) and applied as full matrices, per sample,
    equal the factorised path for every block size (blocks that do not divide H included)."""
    torch.manual_seed(0)
    p = Predictor(MODEL, "E", exp_dim=5, lora_rank=2, hyper_hidden=7, hyper_chunk_dim=4, hyper_block=block).double()
    _perturb(p, 3)
    hyper = p.hyper
    z, e = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    mod = p.modulate(e)
    assert isinstance(mod, HyperModulation)
    got = p.step(z, e, mod)
    delta1_all, delta2_all = mod.materialise()
    for n in range(4):
        delta1 = torch.zeros(10, 6, dtype=torch.float64)
        delta2 = torch.zeros(6, 10, dtype=torch.float64)
        for j in range(10):  # chunk j: the j-th row of ΔW1 and the j-th column of ΔW2, relative to e = 0, over hh
            chunk = hyper.from_chunk.weight @ hyper.chunks[j]
            phi = F.gelu(hyper.from_e.weight @ e[n] + hyper.from_e.bias + chunk) - F.gelu(hyper.from_e.bias + chunk)
            delta1[j] = hyper.out1.weight @ phi / 7
            delta2[:, j] = hyper.out2.weight @ phi / 7
        h = p.act((p.w1.weight + delta1) @ z[n] + p.w1.bias)
        out = (p.w2.weight + delta2) @ h + p.w2.bias
        assert torch.allclose(got[n], out, atol=1e-10)
        assert torch.allclose(delta1_all[n], delta1, atol=1e-12) and torch.allclose(delta2_all[n], delta2, atol=1e-12)
        assert delta1.abs().min() > 0 and torch.linalg.matrix_rank(delta1) == 6  # full rank, unlike LoRA's r


@pytest.mark.parametrize("function", [PhiTimesVector, VectorTimesPhi])
def test_the_hypernetwork_products_have_the_gradients_of_their_einsum(function):
    """Track E's per-sample products carry their own backward (for speed); it is the exact gradient (gradcheck in
    float64) and, in float32, autograd's gradient of the einsum they replace up to rounding."""
    g = torch.Generator().manual_seed(0)
    phi = torch.randn(3, 5, 4, dtype=torch.float64, generator=g, requires_grad=True)
    width = 4 if function is PhiTimesVector else 5
    vec = torch.randn(3, width, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(function.apply, (phi, vec))
    equation = "nbk,nk->nb" if function is PhiTimesVector else "nbk,nb->nk"
    phi32, vec32 = phi.detach().float().requires_grad_(), vec.detach().float().requires_grad_()
    weights = torch.randn(3, 5 if function is PhiTimesVector else 4, generator=g).float()
    ours = torch.autograd.grad((function.apply(phi32, vec32) * weights).sum(), (phi32, vec32))
    einsum = torch.autograd.grad((torch.einsum(equation, phi32, vec32) * weights).sum(), (phi32, vec32))
    for a, b in zip(ours, einsum, strict=True):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)


def test_the_feature_node_has_its_gradient_and_leaves_the_incoming_one_alone():
    """Track E's φ node computes GELU's backward in place in the gradient the products summed on its tape (its own
    buffer), never in a gradient autograd hands it, which other nodes may still read: exact gradients (gradcheck,
    float64) with the tape, without it and with both, and an incoming gradient left as it came."""
    g = torch.Generator().manual_seed(0)
    a, c, phi0, u = (torch.randn(*shape, dtype=torch.float64, generator=g, requires_grad=True)
                     for shape in ((3, 4), (5, 4), (5, 4), (3, 4)))

    def through_tape(a, c, phi0, u, direct=False):
        tape = PhiGradient()
        phi = HyperFeatures.apply(a, c, phi0, tape)
        out = PhiTimesVector.apply(phi, u, tape) + PhiTimesVector.apply(phi, u * u, tape)
        return out + phi.sum(-1) if direct else out

    assert torch.autograd.gradcheck(lambda a, c, phi0: HyperFeatures.apply(a, c, phi0, None), (a, c, phi0))
    assert torch.autograd.gradcheck(through_tape, (a, c, phi0, u))
    assert torch.autograd.gradcheck(lambda *x: through_tape(*x, direct=True), (a, c, phi0, u))
    phi = HyperFeatures.apply(a, c, phi0, None)
    incoming = torch.randn(phi.shape, dtype=phi.dtype, generator=g)
    kept = incoming.clone()
    torch.autograd.grad(phi, (a, c, phi0), incoming)
    assert torch.equal(incoming, kept)


@pytest.mark.parametrize("block", [3, 1024])
def test_a_hypernetwork_rollout_has_the_gradient_of_its_materialised_weights(block):
    """Over a rollout of several steps, φ's gradient summed in one buffer (one block: φ read by every step) or
    formed per block gives every parameter the gradient of the same rollout computed with per-sample ΔW1 and ΔW2
    materialised (float64)."""
    torch.manual_seed(0)
    p = Predictor(MODEL, "E", exp_dim=5, lora_rank=2, hyper_hidden=7, hyper_chunk_dim=4, hyper_block=block).double()
    _perturb(p, 3)
    z, e = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    target = torch.randn(4, 3, 6, dtype=torch.float64)
    params = dict(p.named_parameters())
    ours = torch.autograd.grad((p.rollout(z, e) - target).square().sum(), list(params.values()), allow_unused=True)
    mod = p.modulate(e)
    assert isinstance(mod, HyperModulation)
    delta1, delta2 = mod.materialise()
    current, outputs = z, []
    for _ in range(3):
        h = p.act(torch.einsum("nhi,ni->nh", p.w1.weight + delta1, current) + p.w1.bias)
        current = torch.einsum("ndh,nh->nd", p.w2.weight + delta2, h) + p.w2.bias
        outputs.append(current)
    loss = (torch.stack(outputs, dim=1) - target).square().sum()
    reference = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    for name, a, b in zip(params, ours, reference, strict=True):
        assert (a is None) == (b is None), name
        if a is not None:
            assert torch.allclose(a, b, rtol=1e-9, atol=1e-12), name
    grads = dict(zip(params, ours, strict=True))
    assert all(grads[f"hyper.{n}"].abs().sum() > 0 for n in ("chunks", "from_e.weight", "out1.weight"))


@pytest.mark.parametrize("block", [4, 1024])
def test_a_hypernetwork_step_trains_under_bf16_autocast(block):
    """Under bf16 autocast the products run in bf16 while φ stays float32: the backward hands each input a gradient
    of its own dtype, and every generator weight gets one."""
    torch.manual_seed(0)
    p = Predictor(MODEL, "E", exp_dim=5, lora_rank=2, hyper_hidden=7, hyper_chunk_dim=4, hyper_block=block)
    _perturb(p, 3)
    z, e = torch.randn(4, 6), torch.randn(4, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        modulation = p.modulate(e)
        assert isinstance(modulation, HyperModulation)
        assert all(phi.dtype == torch.float32 for _, phi, _ in modulation.blocks())
        loss = p.rollout(z, e).float().square().mean()
    loss.backward()
    assert p.hyper is not None
    for name, param in p.hyper.named_parameters():
        assert param.grad is not None and param.grad.dtype == param.dtype and param.grad.abs().sum() > 0, name


def test_the_hypernetwork_never_forms_a_per_sample_weight_matrix():
    """Applied to a batch, the largest tensor Track E's step allocates is one block of φ (N × block × hh), never the
    N × H × d of the per-sample ΔW1 it stands for."""
    cfg = ModelConfig(latent_dim=32, hidden_dim=512, horizons=(1,))
    p = Predictor(cfg, "E", exp_dim=8, lora_rank=4, hyper_hidden=8, hyper_chunk_dim=4, hyper_block=64)
    z, e = torch.randn(16, 32), torch.randn(16, 8)
    sizes = []

    class Largest(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if isinstance(out, torch.Tensor):
                sizes.append(out.numel())
            return out

    with torch.no_grad(), Largest():
        p.step(z, e, p.modulate(e))
    assert max(sizes) <= 16 * 64 * 8 < 16 * 512 * 32


def test_parameter_counts_of_the_modulators_beside_track_c():
    """The modulators' sizes at the paper's dimensions (d = 64, H = 1024, d_e = 64, r = 4), as the README states."""
    counts = {t: sum(p.numel() for n, p in small_model_at_paper_size(t).named_parameters()
                     if any(k in n for k in ("lora", "film", "hyper")))
              for t in ("C", "D", "E")}
    r, d, h, de = 4, 64, 1024, 64
    assert counts["C"] == 2 * (r * d + r * h + r * de)  # A, B and the generator G of both layers
    assert counts["D"] == 2 * de * h  # γ and β bias-free (memory.film_bias = false)
    hh, cd = 32, 16
    assert counts["E"] == h * cd + (de * hh + hh) + cd * hh + hh * d + hh * d  # U1, U2 bias-free
    assert counts["C"] < counts["E"] < counts["D"]


def small_model_at_paper_size(track: str):
    from jepa_tui.config import build_config
    from jepa_tui.model.jepa import JEPAWorldModel

    return JEPAWorldModel(build_config([("t", {"train": {"track": track}})]))


def test_tracks_d_and_e_are_tracks_everywhere():
    assert {"D", "E"} <= set(TRACKS) and {"D", "E"} <= set(MEMORY_TRACKS)
    spec = load_sweep("modulators")
    assert {r.track for r in spec.runs()} == {"C", "D", "E"} and len(spec.runs()) == 18
    assert load_sweep("track_c", tracks=["A", "B", "C", "D", "E"]).tracks == ("A", "B", "C", "D", "E")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Smoke runs of Tracks C, D and E through the command line, checkpoints kept."""
    root = tmp_path_factory.mktemp("modulators")
    for track in "CDE":
        result = runner.invoke(app, ["train", "--profile", "smoke", "--runs-dir", str(root), "--run-id",
                                     f"{track}_s42", "--set", f'train.track="{track}"', "--set", "train.steps=60",
                                     "--set", "train.log_every_steps=10", "--set", "memory.kappa=0.1",
                                     "--set", "memory.stats_momentum=0.5"])  # boundary events within 60 steps
        assert result.exit_code == 0, result.output
    return root


def test_d_and_e_train_and_record_their_modulation(trained):
    names = {"D": ("film_gamma_norm", "film_beta_norm"), "E": ("hyper_delta_norm_w1", "hyper_delta_norm_w2")}
    for track, (first, second) in names.items():
        records = [json.loads(line) for line in (trained / f"{track}_s42" / "metrics.jsonl").read_text().splitlines()]
        trains = [r for r in records if r["kind"] == "train"]
        assert trains and all(first in r and second in r and "lora_delta_norm_w1" not in r for r in trains)
        assert trains[-1][first] > 0 and trains[-1][second] > 0  # the modulator learned to use experience
        assert trains[-1]["buffer_size"] > 0
        assert any(r["kind"] == "eval" for r in records)
        state = RunState(track=track)  # what the dashboard's modulation panel draws
        for record in records:
            state.ingest(record)
        assert state.modulation_1.ys == [r[first] for r in trains]
        assert state.modulation_2.ys == [r[second] for r in trains]


def test_analyze_and_report_take_d_and_e(trained, tmp_path):
    result = runner.invoke(app, ["analyze", str(trained / "E_s42")])
    assert result.exit_code == 0, result.output
    assert list((trained / "E_s42" / "analysis").glob("step_*.json"))
    report = build_report(*collect_runs([trained]))
    text = report.markdown()
    assert {t for _, t in report.groups} == {"C", "D", "E"}
    for track in "DE":
        assert f"### {track} against C: not pre-registered" in text
    assert "pre-registered comparison" not in text.split("## Comparisons")[1].split("### D against C")[0]
    table2 = text.split("## Table 2")[1].split("\n## ")[0]
    assert all(f"{t} s42 | none (peak)" in table2 for t in "CDE") and "length (steps)" in table2
    assert "| D | after the peak | 1 |" in table2


def test_the_dashboard_switches_to_d_and_e_and_names_their_modulation(tmp_path):
    """Keys 4 and 5 start Tracks D and E beside C; the modulation panel and the status line follow the track."""
    from jepa_tui.ui.panels import ModulationPanel

    from .test_dashboard import live
    from .test_ui import until

    controller, app = live(tmp_path, "train.log_every_steps=5")

    async def scenario():
        async with app.run_test(size=(160, 45)) as pilot:
            await until(pilot, lambda: controller.runs["C"].trainer.progress.step >= 5)
            for key, track, label in (("4", "D", "FiLM ‖γ‖"), ("5", "E", "hyper ‖ΔW1‖")):
                await pilot.press(key)
                await until(pilot, lambda t=track: t in controller.runs
                            and controller.runs[t].trainer.progress.step >= 10, timeout=60)
                note = app.query_one(ModulationPanel).query_one("#modulation-note")
                await until(pilot, lambda lab=label, n=note: lab in str(n.render()), timeout=10)
                status = str(app.query_one("#status").render())
                assert f"Track {track}" in status and "shift: gravity 0.5 px/frame² down" in status
            await pilot.press("q")
            await until(pilot, lambda: all(r.summary is not None for r in controller.runs.values()), timeout=60)

    asyncio.run(scenario())
    assert {run.name[-5] for run in tmp_path.iterdir() if run.is_dir()} >= {"C", "D", "E"}
