import pytest

from jepa_tui.config import ConfigError, build_config, list_profiles, load_config, load_run_config, parse_set


def test_shipped_profiles_load_with_paper_values():
    names = set(list_profiles())
    assert {"track_a", "track_b", "track_c", "quick", "smoke"} <= names
    for track in "abc":
        cfg = load_config(f"track_{track}")
        assert cfg.train.track == track.upper()
        assert cfg.train.steps == 22000 and cfg.train.seconds is None
        assert cfg.model.hidden_dim == 1024 and cfg.model.latent_dim == 64
        assert cfg.memory.capacity == 256 and cfg.memory.lora_rank == 4
        assert cfg.train.batch_size == 64 and cfg.train.gamma == 0.75 and cfg.train.lambda_var == 0.05
    assert load_config("track_b").kappa == 2.0 and load_config("track_c").kappa == 1.5
    assert load_config("track_b").train.learning_rate == 3e-4
    assert load_config("track_a").train.learning_rate == load_config("track_c").train.learning_rate == 1e-3


def test_quick_is_paper_sized():
    quick, paper = load_config("quick"), load_config("track_c")
    assert quick.model == paper.model and quick.data == paper.data and quick.memory == paper.memory
    assert quick.eval.every_steps == 500


def test_unknown_key_suggests_nearest():
    with pytest.raises(ConfigError, match=r"unknown key 'train\.lrr'.*Did you mean 'lr'"):
        build_config([("p.toml", {"train": {"lrr": 1e-3}})])


def test_unknown_section_and_wrong_type():
    with pytest.raises(ConfigError, match=r"unknown section \[trian\].*'train'"):
        build_config([("p.toml", {"trian": {}})])
    with pytest.raises(ConfigError, match=r"'model\.horizons'.*expected a list of integers"):
        build_config([("p.toml", {"model": {"horizons": "1,2"}})])
    with pytest.raises(ConfigError, match=r"'train\.track'.*one of 'A', 'B', 'C', 'D', 'E'"):
        build_config([("p.toml", {"train": {"track": "F"}})])


@pytest.mark.parametrize(("layer", "key"), [
    ({"train": {"lr": 0.0}}, "train.lr"),
    ({"memory": {"kappa": -1.0}}, "memory.kappa"),
    ({"memory": {"capacity": 0}}, "memory.capacity"),
    ({"model": {"horizons": []}}, "model.horizons"),
    ({"model": {"horizons": [0, 1]}}, "model.horizons"),
    ({"train": {"gamma": 0.0}}, "train.gamma"),
])
def test_out_of_range_values_name_the_key(layer, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build_config([("p.toml", layer)])


def test_budget_is_steps_or_seconds():
    cfg = build_config([("p.toml", {"train": {"seconds": 600}})])
    assert cfg.train.seconds == 600.0 and cfg.train.steps is None
    with pytest.raises(ConfigError, match="not both"):
        build_config([("p.toml", {"train": {"seconds": 600, "steps": 10}})])


def test_set_overrides_parse_toml_values():
    assert parse_set("train.lr=5e-4") == {"train": {"lr": 5e-4}}
    assert parse_set("model.horizons=[1,3,5]") == {"model": {"horizons": [1, 3, 5]}}
    assert parse_set("train.track=B") == {"train": {"track": "B"}}
    cfg = load_config("track_c", ["train.lr=5e-4", "model.horizons=[1,3,5]"], seed=7)
    assert cfg.train.lr == 5e-4 and cfg.model.horizons == (1, 3, 5) and cfg.train.seed == 7
    with pytest.raises(ConfigError, match="expected section.key=value"):
        parse_set("lr=3")
    with pytest.raises(ConfigError, match="does not parse"):
        parse_set("train.lr=[1,")


def test_unknown_profile_lists_known():
    with pytest.raises(ConfigError, match="unknown profile 'nope'.*track_c"):
        load_config("nope")


def test_toml_syntax_error_names_file_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nsteps = = 3\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: TOML syntax error.*line 2"):
        load_config(str(bad))


def test_resolved_config_round_trips(tmp_path):
    import tomli_w

    cfg = load_config("quick", ["train.lr=2e-3"])
    path = tmp_path / "config.toml"
    path.write_text(tomli_w.dumps(cfg.to_dict()))
    assert load_config(str(path)) == cfg


def test_a_run_written_before_aggregator_bias_existed_is_read_with_biases(tmp_path):
    import tomli_w

    tables = load_config("quick").to_dict()
    del tables["memory"]["aggregator_bias"]  # as an earlier version wrote config.toml
    run_dir = tmp_path / "old_run"
    run_dir.mkdir()
    (run_dir / "config.toml").write_text(tomli_w.dumps(tables))
    assert load_config("quick").memory.aggregator_bias is False  # a profile gets the spec's default
    assert load_config(str(run_dir / "config.toml")).memory.aggregator_bias is False  # not a run yet
    (run_dir / "metrics.jsonl").write_text("")
    assert load_run_config(run_dir).memory.aggregator_bias is True
    assert load_config(str(run_dir / "config.toml")).memory.aggregator_bias is True  # rerunning it
    assert load_run_config(run_dir, ["memory.aggregator_bias=false"]).memory.aggregator_bias is False
