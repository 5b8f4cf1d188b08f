"""The track registry (config/tracks.py) is the one place a track is defined: the schema, the predictor, the trainer's
records, the dashboard and the report figures read it."""

from __future__ import annotations

import typing

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
