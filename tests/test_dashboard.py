"""The dashboard in small and large terminals, its event marks, its run browser, and what it says when it stops."""

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import torch
from textual.widgets import DataTable
from typer.testing import CliRunner

from jepa_tui.cli.main import app as cli_app
from jepa_tui.config import load_config
from jepa_tui.ui.app import MIN_PANEL_HEIGHT, MIN_PANEL_WIDTH, Dashboard, grid_shape
from jepa_tui.ui.controllers import LiveController, WatchController
from jepa_tui.ui.panels import BufferPanel, LossPanel, ShiftPanel
from jepa_tui.ui.plot import Plot, nice_ticks, tick_label

from .test_snapshot import FixedController, FixedSensor
from .test_ui import until

runner = CliRunner()


@pytest.mark.parametrize(("size", "per_page"), [((80, 24), 2), ((100, 30), 2), ((120, 36), 6), ((160, 45), 6)])
def test_panels_stay_legible_at_every_size(size, per_page):
    app = Dashboard(FixedController(), FixedSensor(), redraw_hz=0.001, gpu_interval=None)

    async def scenario():
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            app.refresh_panels(force=True)
            await pilot.pause()
            seen = set()
            for _ in range(len(app.pages())):
                shown = [p for p in app.panels if p.display]
                assert len(shown) == min(per_page, 6 - len(seen))
                for panel in shown:
                    seen.add(type(panel).__name__)
                    outer = panel.outer_size
                    assert outer.width >= MIN_PANEL_WIDTH - 1 and outer.height >= MIN_PANEL_HEIGHT - 1
                    for plot in panel.query(Plot):
                        if plot.display:
                            assert plot.size.height >= 8, (type(panel).__name__, plot.size)
                await pilot.press("tab")
                await pilot.pause()
            assert len(seen) == 6  # every panel is reachable by paging
            await pilot.press("z")
            await pilot.pause()
            assert [type(p) for p in app.panels if p.display] == [LossPanel]  # zoomed: one panel, whole screen
            assert app.query_one(LossPanel).size.height >= size[1] - 6
            await pilot.press("tab")
            await pilot.pause()
            assert [type(p) for p in app.panels if p.display] == [ShiftPanel]
            await pilot.press("z")
            await pilot.pause()
            assert len([p for p in app.panels if p.display]) == per_page

    asyncio.run(scenario())


def test_grid_shape_and_nice_ticks():
    assert grid_shape(80, 24) == (2, 1) and grid_shape(100, 30) == (2, 1) and grid_shape(160, 45) == (3, 2)
    assert nice_ticks(10, 3000, 3) == [1000, 2000, 3000]
    assert nice_ticks(0.93, 1.82, 4) == [1.0, 1.25, 1.5, 1.75]
    assert [tick_label(t, 500, steps_axis=True) for t in (500, 1000, 1500, 12000)] == ["500", "1k", "1.5k", "12k"]
    assert [tick_label(t, 0.25) for t in (1.0, 1.25)] == ["1.00", "1.25"]
    assert tick_label(0.4, 0.2) == "0.4"


def test_counts_start_at_zero_and_an_empty_count_panel_is_0_to_1(monkeypatch):
    limits = []
    real = Plot.axes

    def spy(self, *args, **kwargs):
        real(self, *args, **kwargs)
        limits.append((type(self.parent).__name__, [self._range]))  # the curves' range (marks' lane below it)

    monkeypatch.setattr(Plot, "axes", spy)
    controller = FixedController()
    controller.states["C"].buffer.xs.clear()
    controller.states["C"].buffer.ys.clear()
    app = Dashboard(controller, FixedSensor(), redraw_hz=0.001, gpu_interval=None)

    async def scenario():
        async with app.run_test(size=(160, 45)) as pilot:
            await pilot.pause()
            app.refresh_panels(force=True)
            await pilot.pause()

    asyncio.run(scenario())
    found = dict(limits)
    assert found["BufferPanel"][-1] == (0.0, 1.0)  # no entries yet: 0 … 1
    assert found["EventsPanel"][-1][0] == 0.0 and found["ModulationPanel"][-1][0] == 0.0


def test_every_curve_shows_the_runs_interventions(monkeypatch):
    drawn = []
    real = Plot.markers

    def spy(self, state):
        texts = []
        monkeypatch.setattr(self.plt, "text", lambda label, x, y, **kw: texts.append((label, x)))
        real(self, state)
        drawn.append((type(self.parent).__name__, texts))

    monkeypatch.setattr(Plot, "markers", spy)
    app = Dashboard(FixedController(), FixedSensor(), redraw_hz=0.001, gpu_interval=None)

    async def scenario():
        async with app.run_test(size=(160, 45)) as pilot:
            await pilot.pause()
            app.refresh_panels(force=True)
            await pilot.pause()

    asyncio.run(scenario())
    panels = {name for name, texts in drawn if ("bF", 3000) in texts}
    assert panels == {"LossPanel", "ShiftPanel", "BufferPanel", "EventsPanel", "ModulationPanel"}


def test_each_series_has_its_own_marker(monkeypatch):
    markers = {}
    real = Plot.line

    def spy(self, series, label, color, marker="braille", alpha=1.0):
        if label:
            markers.setdefault(type(self.parent).__name__, {})[label] = marker
        real(self, series, label, color, marker, alpha)

    monkeypatch.setattr(Plot, "line", spy)
    app = Dashboard(FixedController(), FixedSensor(), redraw_hz=0.001, gpu_interval=None)

    async def scenario():
        async with app.run_test(size=(160, 45)) as pilot:
            await pilot.pause()
            app.refresh_panels(force=True)
            await pilot.pause()

    asyncio.run(scenario())
    for name, series in markers.items():
        assert len(set(series.values())) == len(series), (name, series)
    assert markers["ShiftPanel"]["A D_shift"] == "A"


def live(tmp_path, *overrides):
    controller = LiveController(load_config("smoke", ["train.steps=100000", "eval.every_steps=1000", *overrides]),
                                tmp_path, torch.device("cpu"))
    return controller, Dashboard(controller, sensor=None, redraw_hz=4)


def test_state_badges_redraw_at_once_while_curves_wait(tmp_path):
    controller, app = live(tmp_path)

    async def scenario():
        async with app.run_test(size=(160, 45)) as pilot:
            await until(pilot, lambda: controller.runs["C"].trainer.progress.step >= 5)
            app._next_curves = float("inf")  # curves throttled for good
            await pilot.press("b")
            gauge = app.query_one(BufferPanel).query_one("#gauge")
            await until(pilot, lambda: "FROZEN" in str(gauge.render()), timeout=5)
            await pilot.press("b")
            await until(pilot, lambda: "FROZEN" not in str(gauge.render()), timeout=5)
            await pilot.press("q")
            await until(pilot, lambda: controller.runs["C"].summary is not None)

    asyncio.run(scenario())


def test_save_is_kept_and_confirmed_and_quit_says_how_to_continue(tmp_path):
    controller, app = live(tmp_path, "eval.every_steps=20")
    run = controller.runs["C"]
    toasts = []

    async def scenario():
        async with app.run_test(size=(120, 36)) as pilot:
            real = app.notify
            app.notify = lambda message, **kw: (toasts.append(message), real(message, **kw))[1]
            await until(pilot, lambda: run.trainer.progress.step >= 3)
            await pilot.press("s")
            await until(pilot, lambda: any("kept" in t and "checkpoint saved at step" in t for t in toasts))
            await until(pilot, lambda: run.trainer.progress.step >= 90)  # several evaluations and checkpoints later
            await pilot.press("q")
            await until(pilot, lambda: run.summary is not None)

    asyncio.run(scenario())
    events = [json.loads(line) for line in (run.run_dir / "events.jsonl").read_text().splitlines()]
    saved = [e for e in events if e["kind"] == "checkpoint" and e["reason"] == "request"]
    assert len(saved) == 1 and saved[0]["kept"] is True
    assert (run.run_dir / saved[0]["path"]).is_file()  # not pruned by "last two plus best"
    farewell = controller.farewell()
    assert f"track C: stopped at step {run.trainer.progress.step}" in farewell
    assert f"continue with: jepa-tui run --resume {run.run_dir}" in farewell


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("browse")
    for run_id, track in (("first_C", "C"), ("second_A", "A")):
        result = runner.invoke(cli_app, ["train", "--profile", "smoke", "--runs-dir", str(root), "--run-id", run_id,
                                         "--set", f'train.track="{track}"'])
        assert result.exit_code == 0, result.output
    return root


def test_runs_command_lists_runs_as_a_table_and_json(tiny_runs):
    result = runner.invoke(cli_app, ["runs", str(tiny_runs)])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].startswith("run ") and "peak D_shift @ step" in lines[0]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {"first_C", "second_A"} and rows["first_C"][1:4] == ["C", "42", "done"]
    assert rows["first_C"][4] == "40/40"
    data = json.loads(runner.invoke(cli_app, ["runs", str(tiny_runs), "--json"]).output)
    evals = [json.loads(line) for line in (tiny_runs / "first_C" / "metrics.jsonl").read_text().splitlines()
             if '"kind":"eval"' in line]
    first = next(d for d in data if d["run_id"] == "first_C")
    assert first["peak_d_shift"] == min(e["d_shift"] for e in evals) and first["status"] == "done"
    assert first["budget_steps"] == 40 and first["budget_seconds"] is None  # numbers, not text
    assert runner.invoke(cli_app, ["runs", str(tiny_runs / "nowhere")]).exit_code == 2


def test_the_run_browser_overlays_runs_and_watch_attaches_to_one(tiny_runs):
    controller = WatchController(tiny_runs / "first_C")
    app = Dashboard(controller, sensor=None, redraw_hz=4)

    async def scenario():
        async with app.run_test(size=(160, 45)) as pilot:
            await pilot.pause()
            assert str(app.query_one("#status").render()).startswith("watching")
            assert not app.check_action("next_track", ()) and "track" not in str(app.query_one("Footer").render())
            await pilot.press("r")
            await pilot.pause(0.3)
            table = app.screen.query_one(DataTable)
            assert table.row_count == 2
            names = [table.get_row_at(i)[0] for i in range(2)]
            await pilot.press(*["down"] * names.index("second_A"), "enter")
            await pilot.pause(0.3)
            assert list(app.overlays) == ["A s42"] and len(app.overlays["A s42"].d_shift) == 2  # evals at 20, 40
            drawn = {}
            for panel in app.panels:
                if panel.CURVES:
                    assert panel.overlays is app.overlays  # every curve panel draws the overlaid run
                    panel.update(controller.states[controller.active], {}, force=True)
                    drawn[type(panel).__name__] = [label for plot in panel.query(Plot)
                                                   for label in getattr(plot, "labels", [])]
            assert all("1 A s42" in labels for name, labels in drawn.items() if name != "ModulationPanel"), drawn
            await pilot.press("r")
            await pilot.pause(0.3)
            table = app.screen.query_one(DataTable)
            marks = {table.get_row_at(i)[0]: table.get_row_at(i)[1] for i in range(2)}
            assert marks == {"second_A": "1 A s42", "first_C": ""}  # the browser says which run is on the curves
            await pilot.press(*["down"] * names.index("second_A"), "w")
            await pilot.pause(0.3)
            assert controller.run_dir == tiny_runs / "second_A" and controller.active == "A"
            assert "second_A" in str(app.query_one("#status").render()) or controller.states["A"].run_id == \
                "second_A"

    asyncio.run(scenario())


def test_the_cpu_panel_replaces_the_gpu_panel_without_a_gpu():
    from jepa_tui.system import PsutilSensor
    from jepa_tui.ui.panels import GpuPanel, SystemPanel

    controller = FixedController()
    app = Dashboard(controller, sensor=None, redraw_hz=0.001, gpu_interval=None)
    state = controller.states["C"]

    async def scenario():
        async with app.run_test(size=(160, 45)) as pilot:
            await pilot.pause()
            assert not app.query(GpuPanel) and app.query_one(SystemPanel)
            texts = []
            for record in ({"kind": "start", "step": 0, "cpu_threads": 2, "follows_load": True},
                           {"kind": "threads", "step": 40, "previous": 2, "threads": 1, "others_cores": 0.96}):
                state.ingest(record)
                app.sample_gpu()
                await pilot.pause()
                texts.append(str(app.query_one(SystemPanel).query_one("#cpu-values").render()))
            assert all("training process" in t and "steal" in t and "RSS" in t for t in texts)
            assert all("sparklines, each from its lowest to its highest value: process CPU " in t for t in texts)
            assert "training on 2 CPU threads (follows the load)" in texts[0]
            assert "training on 1 CPU thread (follows the load: others used 1.0 cores)" in texts[1]

    asyncio.run(scenario())
    sample = PsutilSensor().sample()
    assert sample.rss_mib > 10 and sample.threads >= 1 and sample.cores >= 1


def test_watch_samples_the_training_process_while_it_runs(tmp_path):
    """`watch`'s CPU figures are the run's writer's (its pid from the lock, on this host), and the dashboard's own,
    named so, once that process has ended."""
    import subprocess
    import sys

    from jepa_tui.runs import RunDirectory
    from jepa_tui.runs.files import local_writer_pid
    from jepa_tui.system import PsutilSensor

    run = RunDirectory.create(tmp_path, load_config("smoke"), "r")  # created locked, by this process
    assert local_writer_pid(run.path) == os.getpid()
    run.close()
    assert local_writer_pid(run.path) is None  # no live writer
    child = subprocess.Popen([sys.executable, "-c", "import threading, time\n"
                              "[threading.Thread(target=time.sleep, args=(30,), daemon=True).start() for _ in range(5)]"
                              "\ntime.sleep(30)"])
    try:
        time.sleep(0.5)
        sensor = PsutilSensor(child.pid)
        sample = sensor.sample()
        assert sample.whose == "training process" and sample.threads == 6  # the child's threads, not ours
    finally:
        child.kill()
        child.wait()
    assert sensor.sample().whose == "dashboard process"


def test_screenshots_are_saved_where_the_runs_are(tmp_path):
    controller = FixedController()
    controller.runs_root = tmp_path
    app = Dashboard(controller, FixedSensor(), redraw_hz=0.001, gpu_interval=None)

    async def scenario():
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            await pilot.press("x")
            await pilot.pause()

    asyncio.run(scenario())
    (svg,) = (tmp_path / "screenshots").glob("*.svg")  # beside the run directories, not among them
    assert svg.read_text().startswith("<svg") and not list(tmp_path.glob("*.svg"))


def test_version_and_did_you_mean():
    from jepa_tui.provenance import code_version

    said = runner.invoke(cli_app, ["--version"]).output
    assert said.startswith(f"jepa-tui {code_version()} (the suffix is a digest of the package's source files; ")
    import jepa_tui

    checkout = Path(jepa_tui.__file__).parent.parent
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, cwd=checkout)
    if (checkout / ".git").exists() and head.returncode == 0:  # run from a checkout: the commit is named
        assert f"git commit {head.stdout.strip()}" in said
    else:
        assert "installed, not a git checkout" in said
    result = runner.invoke(cli_app, ["train", "--profile", "trak_c"])
    assert result.exit_code == 2 and "Did you mean 'track_c'?" in result.output
    result = runner.invoke(cli_app, ["train", "--profile", "smoke", "--set", "trian.lr=1"])
    assert "Did you mean 'train'? Known sections:" in result.output
    assert "<bool>" not in runner.invoke(cli_app, ["train", "--help"]).output


def test_headless_lines_after_a_resume_show_the_last_evaluation_and_requests_from_watch(tmp_path):
    from jepa_tui.training.control import Command, write_request

    assert runner.invoke(cli_app, ["train", "--profile", "smoke", "--runs-dir", str(tmp_path), "--run-id",
                                   "r"]).exit_code == 0
    request = write_request(tmp_path / "r", Command.FREEZE_EMA)
    later = time.time() + 600  # as if watch wrote it while the resumed run trains (an older one would be stale)
    os.utime(request, (later, later))
    result = runner.invoke(cli_app, ["train", "--resume", str(tmp_path / "r"), "--steps", "60", "--force",
                                     "--set", "train.print_every_seconds=0.0001"])
    assert result.exit_code == 0, result.output
    step_lines = [line for line in result.output.splitlines() if line.startswith("step ")]
    assert step_lines and "D_shift -" not in step_lines[0] and "@40" in step_lines[0]
    assert "freeze_ema applied at step 50 from a request (watch)" in result.output  # the 50-step poll


def screen_text(app) -> str:
    """What the terminal shows now, as plain text."""
    import io

    from rich.console import Console

    console = Console(width=app.size.width, height=app.size.height, file=io.StringIO(), record=True,
                      force_terminal=True, color_system="truecolor", legacy_windows=False)
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text()


MANY_KEYS = ["freeze_buffer", "unfreeze_buffer", "freeze_ema", "pause", "resume", "unfreeze_ema", "freeze_buffer",
             "unfreeze_buffer", "pause", "resume", "freeze_ema", "unfreeze_ema"]


@pytest.mark.parametrize("size", [(80, 24), (160, 45)])
def test_a_dozen_interventions_leave_legends_and_curves_readable(size):
    """Issue: after a dozen keys the legends read "⢕⢕ enPeFes"; marks now sit on their own lane, merged."""
    controller = FixedController()
    state = controller.states["C"]
    state.events = [e for e in state.events if e.get("kind") != "command"]
    for i, command in enumerate(MANY_KEYS):
        state.ingest({"kind": "command", "command": command, "step": 1000 + 150 * i, "time": 0.0, "source": "ui"})
    app = Dashboard(controller, FixedSensor(), redraw_hz=0.001, gpu_interval=None)
    lanes = []

    async def scenario():
        async with app.run_test(size=size) as pilot:
            for _ in range(len(app.pages())):
                await pilot.pause()
                app.refresh_panels(force=True)
                await pilot.pause()
                text = screen_text(app)
                shown = {type(p).__name__ for p in app.panels if p.display}
                if "LossPanel" in shown:
                    for legend in ("⢕⢕ total", "++ prediction", "xx variance hinge"):
                        assert legend in text
                if "ShiftPanel" in shown:
                    assert "⢕⢕ C D_shift (this run)" in text and "·· d_base" in text
                lanes.extend(line for line in text.splitlines() if "bF" in line or "+3" in line or "+2" in line)
                for plot in app.query(Plot):
                    if plot.display and plot.parent.display and plot._range is not None:
                        assert plot.lane_y is not None and plot.lane_y < plot._range[0]  # below the curves
                await pilot.press("tab")

    asyncio.run(scenario())
    assert lanes  # the merged marks are on screen, on their own rows


def test_log_scale_and_smoothing_act_on_every_curve_panel_on_screen():
    app = Dashboard(FixedController(), FixedSensor(), redraw_hz=0.001, gpu_interval=None)

    async def scenario():
        async with app.run_test(size=(160, 45)) as pilot:
            await pilot.pause()
            await pilot.press("l", "plus")
            await pilot.pause()
            curves = [p for p in app.panels if p.CURVES]
            assert len(curves) == 5
            for panel in curves:
                assert panel.log_scale and panel.smoothing < 1.0, type(panel).__name__
                assert panel.border_subtitle.startswith("log (l) · EMA")
                assert not any(getattr(plot, "failures", 0) for plot in panel.query(Plot))
            assert not [p for p in app.panels if not p.CURVES][0].border_subtitle
            await pilot.press("l")
            await pilot.pause()
            assert not any(p.log_scale for p in curves)

    asyncio.run(scenario())


@pytest.mark.parametrize("size", [(60, 18), (80, 24), (100, 30)])
def test_the_page_line_names_every_page_and_the_current_ones_panels(size):
    """Issue: at 80×24 the page line never named page 3."""
    app = Dashboard(FixedController(), FixedSensor(), redraw_hz=0.001, gpu_interval=None)

    async def scenario():
        async with app.run_test(size=size) as pilot:
            for _ in range(len(app.pages())):
                await pilot.pause()
                line = screen_text(app).splitlines()[1]
                for n in range(1, len(app.pages()) + 1):
                    assert f" {n} " in line, (n, line)
                for panel in app.panels:
                    if panel.display:
                        assert panel.SHORT in line or panel.TITLE.split(" (")[0] in line, line
                await pilot.press("tab")

    asyncio.run(scenario())


def test_the_run_browser_says_when_columns_are_off_screen(tiny_runs):
    """Issue: at 80×24 the run browser was cut after six columns with no hint."""
    async def note(size) -> str:
        app = Dashboard(WatchController(tiny_runs / "first_C"), sensor=None, redraw_hz=4)
        async with app.run_test(size=size) as pilot:
            await pilot.press("r")
            await pilot.pause(0.3)
            return str(app.screen.query_one("#browser-note").render())

    assert "← → more columns (10)" in asyncio.run(note((80, 24)))
    assert "more columns" not in asyncio.run(note((220, 40)))


def test_watch_on_a_folder_of_runs_follows_the_latest_and_browses_the_rest(tiny_runs):
    """`jepa-tui watch SWEEP_DIR`: the most recently active run is followed, the browser lists the folder's runs."""
    latest = max(tiny_runs.iterdir(), key=lambda p: (p / "metrics.jsonl").stat().st_mtime)
    controller = WatchController(tiny_runs)
    assert controller.run_dir == latest and controller.collection == 2 and controller.runs_root == tiny_runs
    app = Dashboard(controller, sensor=None, redraw_hz=4)
    toasts = []
    app.notify = lambda text, **kw: toasts.append(text)

    async def scenario():
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.press("r")
            await pilot.pause(0.3)
            assert app.screen.query_one(DataTable).row_count == 2

    asyncio.run(scenario())
    assert any(t.startswith(f"2 runs under {tiny_runs}: following {latest.name}") for t in toasts), toasts
    empty = tiny_runs / "empty_folder"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="holds none"):
        WatchController(empty)
    empty.rmdir()


@pytest.mark.parametrize("size", [(80, 24), (160, 45)])
def test_a_toast_covers_no_axis(size):
    """Issue: toasts covered the right panel's axis; they now sit at the top right, over titles and notes."""
    app = Dashboard(FixedController(), FixedSensor(), redraw_hz=0.001, gpu_interval=None)

    async def scenario():
        async with app.run_test(size=size, notifications=True) as pilot:
            await pilot.pause()
            app.refresh_panels(force=True)
            app.notify("Track C evaluated at step 3000: D_shift 0.9924 (σ_z 0.786)", timeout=10)
            await pilot.pause(0.5)
            toasts = [t.region for t in app.screen.query("Toast")]
            assert toasts
            plots = [p.region for p in app.query(Plot) if p.display and p.parent.display]
            for toast in toasts:
                for plot in plots:
                    overlap = toast.intersection(plot)
                    assert overlap.height <= 1, (toast, plot)  # at most the plot's top border row

    asyncio.run(scenario())


def test_track_is_an_option_and_help_names_its_values(tmp_path):
    """Issue: no --track option; metavars read <list[str]>."""
    result = runner.invoke(cli_app, ["train", "--profile", "smoke", "--track", "A", "--steps", "2", "--runs-dir",
                                     str(tmp_path), "--run-id", "a"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["track"] == "A"
    result = runner.invoke(cli_app, ["train", "--profile", "smoke", "--track", "Z", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and "expected one of 'A', 'B', 'C', 'D', 'E'" in result.output
    for command in ("train", "run", "sweep", "evaluate"):
        text = runner.invoke(cli_app, [command, "--help"]).output
        assert "<list[" not in text, command
    assert "--track A|B|C|D|E" in runner.invoke(cli_app, ["run", "--help"]).output


def test_log_scale_ticks_are_round_values():
    """Issue: log-scale ticks were not round (10 ** evenly spaced exponents: 1.58, 3.98, ...)."""
    import math

    from jepa_tui.ui.plot import log_ticks

    for low, high in ((0.03, 0.9), (0.001, 1000.0), (1e-12, 1e5), (0.5, 1.3), (2.0, 2000.0)):
        ticks = log_ticks(math.log10(low), math.log10(high), 4)
        assert 2 <= len(ticks) <= 6, (low, high, ticks)
        for t in ticks:
            mantissa = t / 10 ** math.floor(math.log10(t) + 1e-9)
            assert low * 0.999 <= t <= high * 1.001 and round(mantissa, 6) in (1.0, 2.0, 5.0), (low, high, ticks)
