"""The track registry (config/tracks.py) is the one place a track is defined: the schema, the predictor, the trainer's
records, the dashboard and the report figures read it."""

from __future__ import annotations

import typing

import pytest
import torch

from jepa_tui.config import MEMORY_TRACKS, MODULATED_TRACKS, TRACKS, TrainConfig, load_config
from jepa_tui.config.tracks import MODULATION_STATS, REGISTRY, describe_tracks, track
from jepa_tui.model.predictor import Predictor
from jepa_tui.reporting.figures import STYLES
from jepa_tui.ui.app import Dashboard


def test_the_registry_defines_the_tracks_the_schema_accepts():
    assert TRACKS == tuple(REGISTRY) == typing.get_args(typing.get_type_hints(TrainConfig)["track"])
    assert tuple(t for t in TRACKS if t != "A") == MEMORY_TRACKS and MODULATED_TRACKS == ("C", "D", "E")
    assert describe_tracks().startswith("A vanilla JEPA, B EI-JEPA, C EPM-JEPA")
    for letter in TRACKS:  # the defaults of lr and κ in force come from the registry
        config = load_config("smoke", [f'train.track="{letter}"'])
        assert config.train.learning_rate == track(letter).lr and config.kappa == track(letter).kappa
    assert load_config("track_b").train.learning_rate == 3e-4 and load_config("track_b").kappa == 2.0


def test_each_track_is_told_apart_everywhere():
    """Distinct dashboard keys and colours, figure styles, and modulation statistics exactly for modulated tracks."""
    records = list(REGISTRY.values())
    for attribute in ("key", "color", "marker", "hex_color"):
        assert len({getattr(t, attribute) for t in records}) == len(records), attribute
    assert {t.letter: (t.line, t.marker, t.hex_color, t.hatch) for t in records} == STYLES
    for t in records:
        assert bool(t.modulation_stats) == t.modulated == bool(t.modulation_labels), t.letter
    assert MODULATION_STATS[0] == ("lora_delta_norm_w1", "film_gamma_norm", "hyper_delta_norm_w1")
    keys = {b.key: b.action for b in Dashboard.BINDINGS if b.action.startswith("track(")}
    assert keys == {t.key: f"track('{t.letter}')" for t in records}


def test_the_predictor_builds_the_modulator_the_registry_names():
    config = load_config("smoke")
    kinds = {"none": "inj", "injection": "inj", "lora": "lora1", "film": "film", "hypernetwork": "hyper"}
    for letter, entry in REGISTRY.items():
        p = Predictor(config.model, letter, exp_dim=8, lora_rank=2)
        assert p.modulator == entry.modulator
        assert getattr(p, kinds[entry.modulator]) is not None, letter
        trainable = [n for n, q in p.named_parameters() if q.requires_grad and not n.startswith(("w1", "w2"))]
        assert bool(trainable) == entry.memory, letter  # Track A's injection is carried frozen
        assert torch.isfinite(p.rollout(torch.randn(3, config.model.latent_dim), torch.randn(3, 8))).all()


def test_a_new_modulator_is_one_module_and_a_registry_entry(monkeypatch):
    """The README's worked example: Track F gates the predictor's hidden units, h' = (1 + tanh(G e)) ⊙ h, from a
    module of its own named by its registry entry; the predictor builds its layer, applies it, starts as a no-op
    (G = 0) and reports its statistics under the entry's names, with no other edit."""
    import sys
    import types

    from torch import nn

    from jepa_tui.config.tracks import Track
    from jepa_tui.model.modulators import Modulator, load_modulator

    class Gate:
        def __init__(self, scale: torch.Tensor) -> None:
            self.scale = scale

        def apply(self, predictor, x):
            return predictor.w2((1 + self.scale) * predictor.act(predictor.w1(x)))

    class GateModulator(Modulator):
        def build(self, model, memory, in_dim):
            gate = nn.Linear(memory.exp_dim, model.hidden_dim, bias=False)
            nn.init.zeros_(gate.weight)
            return {"gate": gate}

        def modulate(self, predictor, e, scales=None):
            return Gate(torch.tanh(predictor.gate(e)))

        def norms(self, predictor, e, scales=None):
            scale = torch.tanh(predictor.gate(e))
            return scale.norm(dim=-1).mean(), scale.abs().amax(dim=-1).mean()

    module = types.ModuleType("jepa_tui.model.modulators.gate")
    module.MODULATOR = GateModulator()
    monkeypatch.setitem(sys.modules, module.__name__, module)
    entry = Track("F", "gated", "gate", ("gate_norm", "gate_max"), ("gate ‖g‖", "gate max |g|"), key="6")
    monkeypatch.setitem(REGISTRY, "F", entry)

    config = load_config("smoke")
    p = Predictor(config.model, "F", exp_dim=8)
    assert p.modulator == "gate" and entry.memory and entry.modulated
    assert [n for n, q in p.named_parameters() if not n.startswith(("w1", "w2"))] == ["gate.weight"]
    z, e = torch.randn(5, config.model.latent_dim), torch.randn(5, 8)
    assert torch.equal(p.rollout(z, e), p.rollout(z))  # G = 0: the base predictor
    assert all(float(n) == 0.0 for n in p.modulation_norms(e))
    torch.nn.init.normal_(p.gate.weight)
    assert not torch.allclose(p.rollout(z, e), p.rollout(z))
    hidden = p.act(p.w1(z))
    assert torch.allclose(p.step(z, e), p.w2((1 + torch.tanh(p.gate(e))) * hidden))
    norms = p.modulation_norms(e)
    assert set(entry.modulation_record(*map(float, norms))) == {"gate_norm", "gate_max"}
    assert float(norms[0]) > 0.0

    with pytest.raises(ValueError, match="jepa_tui/model/modulators/no_such_kind.py"):  # refused by name
        load_modulator("no_such_kind")
