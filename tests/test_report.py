"""`jepa-tui report` over real run sets: every kind of run, guards before the pre-registered verdict, the paper's
statistics beside ours, interventions in the text and on the figures."""

from __future__ import annotations

import json
import queue

import pytest
import torch
from typer.testing import CliRunner

from jepa_tui.cli.main import app
from jepa_tui.config import load_config
from jepa_tui.reporting.collect import collect_runs
from jepa_tui.reporting.report import build_report
from jepa_tui.reporting.statistics import relative_delta_pct, summarise, welch
from jepa_tui.runs import RunDirectory
from jepa_tui.runs.manifest import write_manifest
from jepa_tui.training.control import Command
from jepa_tui.training.loop import RunLoop
from jepa_tui.training.session import prepare_run

runner = CliRunner()


def _train(runs_dir, name, *sets, steps=40, worlds=None, stop_at=None, commands=None, runs_subdir=None):
    """A real smoke run through the run loop; ``stop_at`` stops it (as the dashboard's quit does) at that step."""
    config = load_config("smoke", [*sets, f"train.steps={steps}"])
    prepared = prepare_run(config, torch.device("cpu"), runs_dir, name, worlds=worlds)
    trainer = prepared.trainer
    stop = (lambda: "stop" if trainer.progress.step >= stop_at else None) if stop_at is not None else None
    RunLoop(trainer, prepared.directory, should_stop=stop, commands=commands).run()
    return runs_dir / name


@pytest.fixture(scope="module")
def run_set(tmp_path_factory, smoke_worlds):
    """One directory with a run of every kind a person reports on."""
    root = tmp_path_factory.mktemp("run_set")
    w = smoke_worlds
    _train(root, "done_C", worlds=w)
    _train(root, "short_grid_C", 'train.track="C"', "eval.every_steps=10", "train.seed=43", steps=20, worlds=w)
    _train(root, "stopped_C", "train.seed=44", worlds=w, stop_at=25)
    _train(root, "never_evaluated_B", 'train.track="B"', worlds=w, stop_at=5)
    _train(root, "done_A", 'train.track="A"', worlds=w)
    commands = queue.Queue()
    commands.put((Command.FREEZE_BUFFER, "ui"))  # pressed before the first step, as `b` in the dashboard
    commands.put((Command.PAUSE, "switch"))
    commands.put((Command.RESUME, "switch"))
    _train(root, "frozen_by_hand_C", "train.seed=45", worlds=w, commands=commands)
    failed = runner.invoke(app, ["train", "--profile", "smoke", "--runs-dir", str(root), "--run-id", "failed_C",
                                 "--set", "train.lr=30.0", "--set", "train.warmup_frac=0.9",
                                 "--set", "eval.every_steps=5"])
    assert failed.exit_code == 3, failed.output
    sweep = root / "sweep"
    _train(sweep, "wide_C_s1", "train.seed=1", "memory.capacity=8", worlds=w, steps=30)
    write_manifest(sweep, {"spec": {}, "runs": [{"name": "wide_C_s1", "variant": "wide", "track": "C", "seed": 1,
                                                 "overrides": ["memory.capacity=8"]}]})
    return root


def test_report_over_every_kind_of_run(run_set, tmp_path):
    result = runner.invoke(app, ["report", str(run_set), "--out", str(tmp_path), "--terminal"])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "report.md").read_text()
    header = text.split("## Flags")[0]
    for name, status in (("done_C", "done"), ("short_grid_C", "done"), ("stopped_C", "stopped"),
                         ("never_evaluated_B", "stopped"), ("failed_C", "failed"), ("frozen_by_hand_C", "done"),
                         ("wide_C_s1", "done")):
        assert f"| {name} | {status} |" in header, name
    assert "- B s42 (never_evaluated_B): no evaluation yet" in text
    assert "| wide | C | 1 |" in text  # the sweep variant from its manifest
    assert "stopped at step 25 of 40" in text and "failed at step" in text
    assert "changed interactively" in text.split("## Table 1")[1]  # marked in the tables too
    interventions = text.split("## Interventions")[1]
    assert "C s45 (frozen_by_hand_C): step 0: buffer frozen (ui); step 0: track switched away (switch); step 0: " \
           "track switched back (switch)" in interventions
    assert "**No outcome**" in text.split("## Flags")[0]  # opens the report
    for name in ("fig2_peak_bars", "fig3_d_shift", "fig4_track_c", "fig5_sigma_z", "buffer_and_events"):
        assert (tmp_path / "figures" / f"{name}.png").stat().st_size > 5000, name
    assert "Traceback" not in result.output and "\x1b[" not in result.output
    curves = result.output.split("D_shift against step (mean over seeds)")[1]
    assert "A A" in curves and "C C" in curves  # each series names its own marker character


def test_every_figure_draws_runs_of_different_lengths_and_grids(run_set, tmp_path):
    from jepa_tui.reporting.figures import mean_band

    runs, _ = collect_runs([run_set / "done_C", run_set / "short_grid_C", run_set / "stopped_C"])
    steps, mean, std, count = mean_band(runs, "d_shift")
    assert steps.tolist() == [10, 20, 40]  # the union of the grids (20, 40), (10, 20), (20)
    assert count.tolist() == [1, 3, 1]
    values_at_20 = [r.d_shift(e) for r in runs for e in r.evals if e["step"] == 20]
    assert mean[1] == pytest.approx(sum(values_at_20) / 3) and std[0] == 0.0


def test_interventions_are_drawn_as_marks_on_a_lane_with_their_key(run_set, monkeypatch, tmp_path):
    from jepa_tui.reporting import figures

    drawn = []
    real = figures.mark_interventions

    def spy(ax, runs):
        real(ax, runs)
        drawn.append([t.get_text() for t in ax.texts])

    monkeypatch.setattr(figures, "mark_interventions", spy)
    runs, _ = collect_runs([run_set / "frozen_by_hand_C", run_set / "done_C"])
    made = figures.write_figures(runs, tmp_path)
    assert len(made) == 5 and len(drawn) == 6  # fig3 (two panels), fig4, fig5, buffer and events (two panels)
    # the three at step 0 share one mark on the lane; the key under the plot says what each mark means
    key = "marks: S< track switched back, S> track switched away, bF buffer frozen"
    assert all(key in texts and "bF+2" in texts for texts in drawn), drawn


def _fake_run(root, name, track, seed, peak, *, steps=40, status="done", buffer=8, sigma=0.6, **config_sets):
    """A run directory written as the trainer writes one, with chosen evaluations (no training)."""
    sets = [f'train.track="{track}"', f"train.seed={seed}", f"train.steps={steps}",
            *(f"{k}={v}" for k, v in config_sets.items())]
    directory = RunDirectory.create(root, load_config("smoke", sets), run_id=name)
    directory.append_event({"kind": "start", "step": 0})
    for step in (10, 20, 30, 40):
        directory.append_metric({"kind": "train", "step": step, "buffer_size": buffer if track != "A" else 0,
                                 "boundary_events": buffer})
    for step, value in ((20, peak + 0.05), (40, peak)):
        directory.append_metric({"kind": "eval", "step": step, "d_shift": value, "sigma_z": sigma,
                                 "d_base": value - 0.1, "d_shift_val": value + 0.01, "seconds": 1.0})
    directory.append_event({"kind": "end", "step": steps, "status": status})
    directory.close()


PAPER = {"A": [0.8000, 0.8159, 0.8108], "B": [0.8217, 0.8248, 0.8249], "C": [0.7776, 0.7838, 0.7931]}


def test_the_outcome_is_stated_when_every_precondition_holds(tmp_path):
    """With the paper's per-seed values (Track B's derived from its CI and mean, spec §6) the report states δ, the
    outcome and our statistics beside the paper's."""
    for track, values in PAPER.items():
        for seed, value in zip((42, 43, 44), values, strict=True):
            _fake_run(tmp_path, f"{track}_s{seed}", track, seed, value)
    report = build_report(*collect_runs([tmp_path]))
    assert report.no_outcome == {"": []} and report.outcome == {"": "C"}
    text = report.markdown()
    assert "**Outcome C** (null result): δ = 4.73%" in text.split("| run |")[0]
    b, c = summarise(PAPER["B"]), summarise(PAPER["C"])
    test = welch(PAPER["C"], PAPER["B"])
    assert f"CI (paper) [{b.ci_low:.4f}, {b.ci_high:.4f}]; CI t (ours) [{b.t_low:.4f}, {b.t_high:.4f}]" in text
    assert f"Welch's t-test (ours), C against B: t = {test.t:+.3f}, df = {test.df:.1f}, two-sided p = " \
           f"{test.p:.4f}" in text
    assert test.t < 0 and 2 < test.df < 4  # C below B, Welch–Satterthwaite degrees of freedom
    assert "with 3 or fewer seeds is exactly [min, max]" in text
    assert f"against A's mean ({summarise(PAPER['A']).mean:.4f}): {relative_delta_pct(0.8089, c.mean):.2f}%" in text
    assert "**No outcome**" not in text


@pytest.mark.parametrize(("change", "reason"), [
    ({"C_s44": {"status": "stopped"}}, "C s44 did not finish its budget (stopped at step 40)"),
    ({"B_s44": {"buffer": 0}}, "B s44's experience buffer never received an entry"),
    ({"C_s43": {"steps": 50}}, "the configurations differ beyond track and seed: train.steps: 40 (B s42, B s43, "
                                "B s44, C s42, C s44), 50 (C s43)"),
    ({"C_s44": None}, "Track C has 2 seed(s) with an evaluation; the comparison needs ≥ 3"),
])
def test_no_outcome_names_every_failed_precondition(tmp_path, change, reason):
    for track in "BC":
        for seed, value in zip((42, 43, 44), PAPER[track], strict=True):
            name = f"{track}_s{seed}"
            if name in change and change[name] is None:
                continue
            _fake_run(tmp_path, name, track, seed, value, **(change.get(name) or {}))
    report = build_report(*collect_runs([tmp_path]))
    assert report.outcome == {} and reason in report.no_outcome[""]
    top = report.markdown().split("| run |")[0]
    assert "**No outcome**" in top and reason in top and "δ =" not in report.markdown()


def test_single_seed_statistics_are_undefined_not_zero():
    one = summarise([0.8])
    assert one.std is None and one.ci_low is None and one.t_low is None
    assert welch([0.8], [0.7, 0.75]) is None
    two = summarise([0.8, 0.9])
    assert two.ci_low == 0.8 and two.ci_high == 0.9 and two.t_low < 0.8 < 0.9 < two.t_high


def test_the_val_split_picks_a_step_and_the_report_shows_the_test_value_there(run_set):
    runs, _ = collect_runs([run_set / "done_C"])
    (run,) = runs
    assert all(isinstance(e["d_shift_val"], float) and e["val_seconds"] >= 0 for e in run.evals)
    pick = min(run.evals, key=lambda e: e["d_shift_val"])
    assert run.val_pick is pick
    text = build_report(runs).markdown()
    assert f"| {pick['step']} → {pick['d_shift']:.4f} |" in text


def test_every_formula_is_recorded_and_the_report_reads_any(run_set, tmp_path):
    from jepa_tui.evaluation.metrics import FORMULAS

    records = [json.loads(line) for line in (run_set / "done_C" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["kind"] == "eval"]
    for record in evals:
        assert set(record["formulas"]) == set(FORMULAS)
        assert record["formulas"]["ratio_of_sums"]["d_shift"] == record["d_shift"]  # the configured one on top
        for values in record["formulas"].values():
            assert set(values["d_base_per_horizon"]) == {"1", "2", "4"}
    result = runner.invoke(app, ["report", str(run_set / "done_C"), "--out", str(tmp_path), "--formula",
                                 "per_sample"])
    assert result.exit_code == 0, result.output
    best = min(r["formulas"]["per_sample"]["d_shift"] for r in evals)
    assert f"| {best:.4f} |" in result.output and "formula: **per_sample**" in result.output
    bad = runner.invoke(app, ["report", str(run_set / "done_C"), "--formula", "mean"])
    assert bad.exit_code == 2 and "ratio_of_sums" in bad.output


def test_headless_lines_and_the_summary_mark_sigma_z_below_the_collapse_line(run_set):
    summary = json.loads((run_set / "done_C" / "summary.json").read_text())
    assert summary["sigma_z_at_peak"] < 0.5  # the smoke model collapses
    assert "sigma_z at the peak below 0.5 (collapse line)" in summary["flags"]
    result = runner.invoke(app, ["train", "--profile", "smoke", "--steps", "20", "--runs-dir", str(run_set.parent),
                                 "--run-id", "printed"])
    assert "(below 0.5: collapse?)" in result.output.split("eval  step 20")[1].splitlines()[0]


def test_the_report_writes_runs_and_evals_as_csv(run_set, tmp_path):
    """runs.csv (one row per run) and evals.csv (one row per evaluation, every formula) beside report.md, with the
    numbers of the run directories."""
    import csv

    result = runner.invoke(app, ["report", str(run_set), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    runs = {r["directory"]: r for r in csv.DictReader((tmp_path / "runs.csv").open())}
    evals = list(csv.DictReader((tmp_path / "evals.csv").open()))
    records, _ = collect_runs([run_set])
    assert set(runs) == {r.path.name for r in records}
    done = next(r for r in records if r.path.name == "done_C")
    row = runs["done_C"]
    assert row["status"] == "done" and int(row["peak_step"]) == done.peak["step"]
    assert float(row["peak_d_shift"]) == pytest.approx(done.d_shift(done.peak), rel=1e-5)
    assert float(row["drift"]) == pytest.approx(done.d_shift(done.final) - done.d_shift(done.peak), abs=1e-5)
    assert runs["never_evaluated_B"]["peak_step"] == "" and runs["frozen_by_hand_C"]["changed_interactively"] == "True"
    summary = json.loads((run_set / "done_C" / "summary.json").read_text())
    assert float(row["steps_per_s"]) == pytest.approx(summary["steps_per_s"], rel=1e-5)
    mine = [e for e in evals if e["directory"] == "done_C"]
    assert [int(e["step"]) for e in mine] == [e["step"] for e in done.evals]
    first = done.evals[0]
    for formula, values in first["formulas"].items():
        assert float(mine[0][f"{formula}_d_shift"]) == pytest.approx(values["d_shift"], rel=1e-5)
        assert float(mine[0][f"{formula}_d_base_k4"]) == pytest.approx(values["d_base_per_horizon"]["4"], rel=1e-5)


def test_a_freeze_of_what_is_already_frozen_is_not_listed_again():
    from jepa_tui.runs.interventions import interventions

    events = [{"kind": "command", "step": s, "command": c, "source": "ui"}
              for s, c in ((10, "freeze_ema"), (20, "freeze_ema"), (30, "unfreeze_ema"), (40, "unfreeze_ema"),
                           (50, "freeze_ema"), (60, "freeze_buffer"))]
    assert [(i.step, i.kind) for i in interventions(events)] == [(10, "freeze_ema"), (30, "unfreeze_ema"),
                                                                 (50, "freeze_ema"), (60, "freeze_buffer")]


def test_a_curve_spanning_decades_is_drawn_on_a_log_scale():
    from jepa_tui.reporting.figures import log_if_wide, subplots

    fig, (wide, narrow) = subplots(1, 2, figsize=(6, 3))
    log_if_wide(wide, [1200.0, 40.0, 0.9, 0.85, None, float("nan")])
    log_if_wide(narrow, [1.2, 0.9, 0.85])
    assert wide.get_yscale() == "log" and narrow.get_yscale() == "linear"


def test_fig4_zooms_on_the_peak_and_counts_the_early_values_it_leaves_above():
    """Issue: fig. 4 was scaled to 1,200, so the peak and the drift were invisible."""
    from jepa_tui.reporting.figures import subplots, zoom_if_wide

    fig, (wide, narrow) = subplots(1, 2, figsize=(6, 3))
    zoom_if_wide(wide, [1200.0, 40.0, 0.9, 0.85, 0.87, None, float("nan")])
    zoom_if_wide(narrow, [1.2, 0.9, 0.85])
    low, high = wide.get_ylim()
    assert low < 0.85 and 1.1 <= high < 1.5  # the region of the peak and the drift, persistence in view
    assert [t.get_text() for t in wide.texts] == ["2 evaluations above the axis (^), up to 1.2e+03"]
    assert narrow.get_autoscaley_on() and not narrow.texts


def test_figures_render_one_at_a_time_whatever_thread_saves_them(tmp_path, monkeypatch):
    """matplotlib's text rendering is not thread-safe: a run group's members ending together drew
    "ParseException" instead of their titles. Figures saved from several threads at once render in turn."""
    import threading
    import time

    from matplotlib.figure import Figure

    from jepa_tui.reporting.figures import save_figure, subplots

    active, most = [0], [0]
    lock = threading.Lock()
    render = Figure.savefig

    def slow_render(fig, *args, **kwargs):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        time.sleep(0.05)
        try:
            return render(fig, *args, **kwargs)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(Figure, "savefig", slow_render)

    def draw(index: int) -> None:
        fig, ax = subplots(figsize=(3, 2))
        ax.plot([0, 1], [index, index + 1])
        ax.set_title(rf"$D_\mathrm{{shift}}^{{\,n={index}}}$")
        save_figure(fig, tmp_path / f"{index}.png")

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1 and sorted(p.name for p in tmp_path.glob("*.png")) == [f"{i}.png" for i in range(4)]


def test_the_reproducibility_note_names_each_verdict(tmp_path):
    """A run written before thread counts were recorded is "unknown", not "reproducible to rounding"."""
    _fake_run(tmp_path / "runs", "C_s42", "C", 42, 0.8)  # its start records no thread count
    result = runner.invoke(app, ["report", str(tmp_path / "runs"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "out" / "report.md").read_text()
    assert "Reproducibility *unknown*: written before thread counts were recorded." in text
    assert "to rounding" not in text
