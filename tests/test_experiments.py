"""Sweeps, the paper's statistics, reports and the checkpoint analyses, on tiny runs."""

import json
from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

from jepa_tui.cli.main import app, expand_multi_value_options
from jepa_tui.config import ReportConfig, list_profiles, load_config
from jepa_tui.evaluation.metrics import effective_rank
from jepa_tui.experiments.spec import load_sweep
from jepa_tui.reporting.statistics import outcome, relative_delta_pct, summarise

runner = CliRunner()

# The paper's seed-level values (spec §7, Table 1; Track B's derived from its CI and mean, spec §6).
PAPER = {"A": [0.8000, 0.8159, 0.8108], "B": [0.8217, 0.8248, 0.8249], "C": [0.7776, 0.7838, 0.7931]}


def test_statistics_arithmetic_on_the_papers_seed_values():
    """Arithmetic only: fed the paper's per-seed values, the statistics give its Table 1 numbers. Track B's values
    are derived from the paper's own mean and CI (spec §6), so for B this is circular, and with 3 seeds a
    percentile bootstrap CI is [min, max] by construction; what is checked is the mean, std, δ and outcome class."""
    a, b, c = (summarise(PAPER[t]) for t in "ABC")
    assert (round(a.mean, 4), round(a.ci_low, 4), round(a.ci_high, 4)) == (0.8089, 0.8000, 0.8159)
    assert (round(b.mean, 4), round(b.ci_low, 4), round(b.ci_high, 4)) == (0.8238, 0.8217, 0.8249)
    assert (round(c.mean, 4), round(c.ci_low, 4), round(c.ci_high, 4)) == (0.7848, 0.7776, 0.7931)
    assert round(c.std, 4) == 0.0078  # "0.7848 ± 0.0078": sample std, ddof = 1
    delta = relative_delta_pct(b.mean, c.mean)
    assert 4.725 <= delta <= 4.745  # the paper's 4.73-4.74 %
    assert round(relative_delta_pct(0.82384, 0.7848), 2) == 4.74  # with D_B unrounded
    assert outcome(delta) == "C"
    assert round(relative_delta_pct(min(PAPER["A"]), c.mean), 2) == 1.90  # against A's best seed
    assert round(relative_delta_pct(a.mean, c.mean), 2) == 2.98  # against A's mean


def test_bootstrap_is_seeded_and_narrower_than_the_range_with_more_seeds():
    values = [0.80, 0.81, 0.79, 0.83, 0.78, 0.82, 0.80, 0.81]
    first, second = summarise(values), summarise(values)
    assert first == second
    assert min(values) < first.ci_low < first.mean < first.ci_high < max(values)
    assert summarise([0.8]).ci_low is None and summarise([0.8]).std is None  # one seed: undefined, not [x, x]


@pytest.mark.parametrize(("delta", "expected"), [
    (25.0, "A"), (10.0, "A"), (9.999, "B"), (5.0, "B"), (4.999, "C"), (0.0, "C"), (-4.999, "C"), (-5.0, "D"),
    (-30.0, "D"),
])
def test_outcome_classes_at_their_boundaries(delta, expected):
    assert outcome(delta) == expected


def test_outcome_thresholds_come_from_the_configuration():
    strict = ReportConfig(strong_pct=4.0, null_band_pct=2.0)
    assert outcome(4.73, strict) == "A" and outcome(3.0, strict) == "B" and outcome(-2.0, strict) == "D"


def test_effective_rank():
    assert effective_rank(torch.ones(8)) == pytest.approx(8.0)
    assert effective_rank(torch.tensor([3.0, 0.0, 0.0])) == pytest.approx(1.0)
    assert 1.0 < effective_rank(torch.tensor([4.0, 2.0, 1.0])) < 3.0


def test_attention_table_bins_by_age_and_world():
    from jepa_tui.evaluation.analysis import attention_table

    rows = [{"age": a, "world": "shift" if a < 2 else "base", "weight": w}
            for a, w in enumerate([0.1, 0.3, 0.2, 0.4])]
    assert attention_table(rows, bin_size=2) == [
        {"ages": "0-1", "world": "shift", "entries": 2, "mean_weight": pytest.approx(0.2), "mass": pytest.approx(0.4)},
        {"ages": "2-3", "world": "base", "entries": 2, "mean_weight": pytest.approx(0.3), "mass": pytest.approx(0.6)}]


def test_every_sweep_profile_describes_the_papers_experiment():
    profiles = list_profiles()
    for name in ("table1", "dual_freeze_8000", "dual_freeze_10000", "lambda_sweep", "buffer_only_freeze",
                 "ema_only_freeze", "kappa_sweep"):
        assert name in profiles, name
    table1 = load_sweep("table1")
    assert [r.name for r in table1.runs()] == [f"{t}_s{s}" for t in "ABC" for s in (42, 43, 44)]
    lam = load_sweep("lambda_sweep").runs()
    assert [r.overrides for r in lam] == [("train.lambda_var=0.05",), ("train.lambda_var=0.1",),
                                          ("train.lambda_var=0.15",)]
    dual = {r.variant: r.overrides for r in load_sweep("dual_freeze_8000").runs()}
    assert dual["dual_freeze_8000"] == ("train.freeze_buffer_at=8000", "train.freeze_ema_at=8000")
    assert load_sweep("buffer_only_freeze").runs()[0].overrides == ("train.freeze_buffer_at=8000",)
    assert load_sweep("ema_only_freeze").runs()[0].overrides == ("train.freeze_ema_at=8000",)
    assert len(load_sweep("kappa_sweep").runs()) == 4


def test_a_sweep_profile_is_not_a_training_profile(tmp_path):
    result = runner.invoke(app, ["train", "--profile", "table1", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and "jepa-tui sweep --profile table1" in result.output


def test_multi_value_options_are_expanded():
    assert expand_multi_value_options(["sweep", "--tracks", "a", "b", "--seeds", "1", "2", "--jobs", "2"]) == [
        "sweep", "--tracks", "a", "--tracks", "b", "--seeds", "1", "--seeds", "2", "--jobs", "2"]


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    """Tracks A, B, C x seeds 1, 2 of the smoke profile at 30 steps, two runs at a time."""
    runs = tmp_path_factory.mktemp("sweeps")
    args = expand_multi_value_options(["sweep", "--profile", "smoke", "--tracks", "a", "b", "c", "--seeds", "1",
                                       "2", "--steps", "30", "--jobs", "2", "--runs-dir", str(runs), "--sweep-id",
                                       "tiny"])
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return runs / "tiny"


def test_a_sweep_runs_one_directory_per_track_and_seed(sweep_dir):
    for track in "ABC":
        for seed in (1, 2):
            summary = json.loads((sweep_dir / f"{track}_s{seed}" / "summary.json").read_text())
            assert summary["status"] == "done" and summary["steps"] == 30
            assert summary["track"] == track and summary["seed"] == seed
    assert len(json.loads((sweep_dir / "manifest.json").read_text())["runs"]) == 6
    again = runner.invoke(app, ["sweep", "--resume", str(sweep_dir)])  # finished runs are skipped
    assert again.exit_code == 0 and again.output.count("done already") == 6


def test_a_failed_run_does_not_stop_the_others_and_is_reported(tmp_path):
    profile = tmp_path / "two.toml"
    profile.write_text('[sweep]\nbase = "smoke"\nseeds = [42]\n'
                       '[[sweep.variant]]\nname = "diverging"\n'
                       'set = { "train.lr" = 30.0, "train.warmup_frac" = 0.9, "eval.every_steps" = 5 }\n'
                       '[[sweep.variant]]\nname = "fine"\nset = { "train.steps" = 20 }\n')
    result = runner.invoke(app, ["sweep", "--profile", str(profile), "--runs-dir", str(tmp_path), "--sweep-id", "s"])
    assert result.exit_code == 1, result.output
    assert "sweep finished: 1 of 2 runs done; not done: diverging_C_s42 (failed (exit 3))" in result.output
    assert json.loads((tmp_path / "s" / "fine_C_s42" / "summary.json").read_text())["status"] == "done"
    assert "non-finite" in (tmp_path / "s" / "logs" / "diverging_C_s42.log").read_text()


def test_report_over_a_sweep(sweep_dir, tmp_path):
    base_runs = [sweep_dir / f"{t}_s{s}" for t in "ABC" for s in (1, 2)]
    result = runner.invoke(app, ["report", str(sweep_dir), "--out", str(tmp_path), "--terminal"])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "report.md").read_text()
    assert "## Table 1" in text and "| - | C | 2 |" in text
    assert "| - | B | 2 | B_s2 | done |" in text  # the per-seed rows
    # Two seeds of a collapsed smoke model whose memory never acted: no verdict, every reason named at the top.
    top = text.split("| run |")[0]
    assert "**No outcome**" in top and "δ =" not in text and "Outcome" not in text.replace("No outcome", "")
    for reason in ("Track B has 2 seed(s) with an evaluation; the comparison needs ≥ 3",
                   "Track C has 2 seed(s) with an evaluation; the comparison needs ≥ 3"):
        assert reason in top
    flags = text.split("## Flags")[1].split("## Table 1")[0]
    assert "σ_z" in flags and "< 0.5 at the peak (collapse line)" in flags and "no better than persistence" in flags
    peaks = {}
    for run in base_runs:
        evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
                 if '"kind":"eval"' in line]
        peaks.setdefault(run.name[0], []).append(min(e["d_shift"] for e in evals))
    b = summarise(peaks["B"])
    assert f"Track B: mean {b.mean:.4f} over 2 seed(s); CI (paper) [{b.ci_low:.4f}, {b.ci_high:.4f}]; CI t (ours) " \
           f"[{b.t_low:.4f}, {b.t_high:.4f}]" in text
    assert "Welch's t-test (ours), C against B: t = " in text
    for name in ("fig2_peak_bars", "fig3_d_shift", "fig4_track_c", "fig5_sigma_z", "buffer_and_events"):
        png = tmp_path / "figures" / f"{name}.png"
        assert png.read_bytes()[:4] == b"\x89PNG", name
    assert "D_shift at the peak step per run" in result.output and "\x1b[" not in result.output


def test_freeze_and_lambda_tables(tmp_path):
    common = ["--profile", "smoke", "--steps", "40", "--runs-dir", str(tmp_path)]
    for run_id, sets in (("baseline", []), ("dual", ["train.freeze_buffer_at=20", "train.freeze_ema_at=20"]),
                         ("lam", ["train.lambda_var=0.15"])):
        args = [a for s in sets for a in ("--set", s)]
        assert runner.invoke(app, ["train", *common, "--run-id", run_id, *args]).exit_code == 0
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 0, result.output
    evals = [json.loads(line) for line in (tmp_path / "dual" / "metrics.jsonl").read_text().splitlines()
             if '"kind":"eval"' in line]
    at_freeze, final = evals[0]["d_shift"], evals[-1]["d_shift"]
    assert f"| C s42 | dual at 20, profile | {at_freeze:.4f} (step 20) | {final:.4f} (step 40) | " \
           f"{final - at_freeze:+.4f} |" in result.output
    assert "## Table 3" in result.output and "| 0.15 |" in result.output and "| 0.05 |" in result.output


def test_analyze_a_runs_checkpoints(tmp_path):
    assert runner.invoke(app, ["train", "--profile", "smoke", "--runs-dir", str(tmp_path), "--run-id",
                               "r"]).exit_code == 0
    result = runner.invoke(app, ["analyze", str(tmp_path / "r"), "--step", "40"])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "r" / "analysis" / "step_00000040.json").read_text())
    values = data["singular_values"]
    assert len(values) == 16 and values == sorted(values, reverse=True)  # latent_dim 16 in the smoke profile
    assert 1.0 <= data["effective_rank"] <= 16.0
    assert set(data["d_shift_per_horizon"]) == {"1", "2", "4"}
    metrics = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    evals = {r["step"]: r for r in metrics if r["kind"] == "eval"}
    assert data["d_shift"] == pytest.approx(evals[40]["d_shift"], rel=1e-6)  # the same protocol as the run's
    ages = [r["age"] for r in data["attention"]]
    assert ages == list(range(len(ages))) and len(ages) == 5  # the 5 shift experiences of the smoke profile
    assert sum(r["weight"] for r in data["attention"]) == pytest.approx(1.0, abs=1e-5)
    assert [r["world"] for r in data["surprisal_trace"]] == ["base"] * 30 + ["shift"] * 30
    assert "attention during shift-world inference at step 40" in result.output
    assert "0-49                     shift        5" in result.output
    for name in ("svd_spectrum", "attention_by_age", "horizons_and_surprisal"):
        assert (tmp_path / "r" / "analysis" / f"{name}.png").stat().st_size > 1000
    bad = runner.invoke(app, ["analyze", str(tmp_path / "r"), "--step", "7"])
    assert bad.exit_code == 2 and "no kept model at that step; kept: 20, 40" in bad.output


def test_analyze_takes_kept_weights_and_shows_the_re_evaluations_beside(tmp_path):
    run = tmp_path / "r"
    assert runner.invoke(app, ["train", "--profile", "smoke", "--runs-dir", str(tmp_path), "--run-id", "r",
                               "--set", "eval.every_steps=10"]).exit_code == 0
    assert sorted(int(p.stem.split("_")[-1]) for p in (run / "weights").iterdir()) == [10, 20, 30, 40]
    evaluated = runner.invoke(app, ["evaluate", str(run), "--step", "30", "--set", "data.shift_gravity=1.0"])
    assert evaluated.exit_code == 0, evaluated.output
    record = json.loads((run / "evaluations" / "data.shift_gravity-1.0.jsonl").read_text())
    result = runner.invoke(app, ["analyze", str(run), "--step", "30"])  # kept as weights only, no checkpoint
    assert result.exit_code == 0, result.output
    data = json.loads((run / "analysis" / "step_00000030.json").read_text())
    evals = {r["step"]: r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
             if r["kind"] == "eval"}
    assert data["d_shift"] == pytest.approx(evals[30]["d_shift"], rel=1e-6)
    beside = data["evaluations"]["data.shift_gravity-1.0"]
    assert beside["d_shift"] == record["d_shift"] != pytest.approx(data["d_shift"])  # another shift world
    assert beside["memory_gain"] == record["memory_gain"] and beside["settings"] == {"data.shift_gravity": 1.0}
    assert f"evaluations/data.shift_gravity-1.0: d_shift {record['d_shift']:.4f}" in result.output


def test_the_memory_family_is_the_calibrated_cell():
    from jepa_tui.data.worlds import Physics

    cell, oracle = load_config("memory_cell"), load_config("memory_oracle")
    assert cell.data.context_frames == oracle.data.context_frames == 2 and cell.model.horizons == (1, 5, 10)
    shift = Physics(friction=0.1)
    assert Physics.shift(cell.data) == Physics.shift(oracle.data) == Physics.base(oracle.data) == shift
    assert Physics.base(cell.data) == Physics() and oracle.train.track == "A"
    study = load_sweep("memory_study").runs()
    variants = {}
    for run in study:
        variants.setdefault(run.variant, set()).add(run.track)
    assert variants == {"single": set("ABCDE"), "stream": set("ABCDE"), "oracle": {"A"},
                        "stream_oracle_context": {"C"}} and len(study) == 36
    assert load_config("memory_stream").data.stream.worlds == 8


def test_a_sweep_records_a_shipped_base_profile_by_name_and_resumes_an_old_absolute_one(tmp_path):
    from jepa_tui.experiments.spec import load_spec, load_sweep, save_spec

    spec = load_sweep("memory_study", None, None, None, ["single"])
    assert spec.base == "memory_cell"  # not this checkout's path: the sweep resumes from any checkout
    own = tmp_path / "mine.toml"
    own.write_text('[train]\ntrack = "A"\n')
    assert load_sweep(str(own), None, [1], None, None).base == str(own)  # a user's file stays a path
    moved = replace(spec, base="/a/checkout/that/moved/profiles/memory_cell.toml")
    save_spec(tmp_path / "old", moved)
    assert load_spec(tmp_path / "old").base == "memory_cell"
