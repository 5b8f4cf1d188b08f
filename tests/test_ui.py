"""The dashboard against real tiny trainers: keys, events.jsonl, track switching, watch, quitting."""

import asyncio
import json
import threading

import pytest
import torch

from jepa_tui.config import load_config
from jepa_tui.runs import JsonlTail, RunDirectory
from jepa_tui.training.control import Command, take_requests, write_request
from jepa_tui.training.loop import RunLoop
from jepa_tui.training.trainer import Trainer
from jepa_tui.ui.app import Dashboard
from jepa_tui.ui.controllers import LiveController, WatchController
from jepa_tui.ui.screens import HelpScreen

LONG = ["train.steps=100000", "eval.every_steps=1000"]


def commands_in(run_dir):
    path = run_dir / "events.jsonl"
    if not path.exists():
        return []
    return [r for r in map(json.loads, path.read_text().splitlines()) if r["kind"] == "command"]


async def until(pilot, condition, timeout=20.0):
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not reached in time")


def live_app(tmp_path, *overrides):
    controller = LiveController(load_config("smoke", [*LONG, *overrides]), tmp_path, torch.device("cpu"))
    return controller, Dashboard(controller, sensor=None, redraw_hz=4)


def test_pause_freeze_keys_reach_the_trainer_and_events(tmp_path):
    controller, app = live_app(tmp_path)
    run = controller.runs["C"]

    async def scenario():
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: run.trainer.progress.step >= 5)
            await pilot.press("p")
            await until(pilot, lambda: controller.states["C"].status == "paused")
            paused_at = run.trainer.progress.step
            await pilot.pause(0.4)
            assert run.trainer.progress.step == paused_at  # no step while paused
            ui = controller.states["C"]
            await pilot.press("b")
            await until(pilot, lambda: run.trainer.buffer_frozen and ui.buffer_frozen)
            await pilot.press("e")
            await until(pilot, lambda: run.trainer.ema_frozen and ui.ema_frozen)
            assert run.trainer.current_tau() == 1.0
            await pilot.press("f")  # both frozen already: the dual-freeze key unfreezes both
            await until(pilot, lambda: not ui.buffer_frozen and not ui.ema_frozen)
            assert not run.trainer.buffer_frozen and not run.trainer.ema_frozen
            await pilot.press("f")
            await until(pilot, lambda: ui.buffer_frozen and ui.ema_frozen)
            assert run.trainer.buffer_frozen and run.trainer.ema_frozen
            await pilot.press("s")
            await until(pilot, lambda: any(r.get("reason") == "request" for r in app.controller.states["C"].events))
            await pilot.press("p")
            await until(pilot, lambda: run.trainer.progress.step > paused_at)
            status = app.query_one("#status").render()
            assert "buffer frozen" in str(status) and "EMA frozen" in str(status)
            await pilot.press("q")
            await until(pilot, lambda: run.summary is not None)

    asyncio.run(scenario())
    sequence = [c["command"] for c in commands_in(run.run_dir)]
    assert sequence == ["pause", "freeze_buffer", "freeze_ema", "unfreeze_buffer", "unfreeze_ema", "freeze_buffer",
                        "freeze_ema", "save", "resume"]
    assert all(c["source"] == "ui" and isinstance(c["step"], int) and c["time"] > 0 for c in commands_in(run.run_dir))
    assert run.summary["status"] == "stopped"
    checkpoints = [r for r in map(json.loads, (run.run_dir / "events.jsonl").read_text().splitlines())
                   if r["kind"] == "checkpoint"]
    assert [c["reason"] for c in checkpoints][-2:] == ["request", "stop"]
    assert (run.run_dir / "summary.json").exists()


def test_switching_track_pauses_and_resumes_runs(tmp_path):
    controller, app = live_app(tmp_path)

    async def scenario():
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: controller.runs["C"].trainer.progress.step >= 3)
            await pilot.press("1")
            await until(pilot, lambda: "A" in controller.runs and controller.runs["A"].trainer.progress.step >= 3)
            await until(pilot, lambda: controller.states["C"].status == "paused")
            c_step = controller.runs["C"].trainer.progress.step
            assert controller.active == "A" and "Track A" in str(app.query_one("#status").render())
            await pilot.press("t")  # A -> B
            await until(pilot, lambda: "B" in controller.runs and controller.runs["B"].trainer.progress.step >= 3)
            await pilot.press("3")  # back to C: continues where it left off
            await until(pilot, lambda: controller.runs["C"].trainer.progress.step > c_step)
            assert controller.states["A"].status == "paused" and controller.states["B"].status == "paused"
            await pilot.press("q")
            await until(pilot, lambda: all(r.summary is not None for r in controller.runs.values()))

    asyncio.run(scenario())
    dirs = {t: r.run_dir for t, r in controller.runs.items()}
    assert len(set(dirs.values())) == 3 and all(d.name.split("_")[2] == t for t, d in dirs.items())
    assert [c["command"] for c in commands_in(dirs["C"])] == ["pause", "resume"]
    assert not any(t.is_alive() and t.name.startswith("train-") for t in threading.enumerate())


def test_help_screen_opens_and_closes(tmp_path):
    controller, app = live_app(tmp_path)

    async def scenario():
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("question_mark")
            await pilot.pause(0.2)
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("x", "down", "pagedown", "j")  # other keys scroll or do nothing: help stays open
            await pilot.pause(0.2)
            assert isinstance(app.screen, HelpScreen)
            from textual.containers import VerticalScroll

            assert app.screen.query_one(VerticalScroll).scroll_y > 0  # the keys below the fold can be read
            await pilot.press("escape")
            await pilot.pause(0.2)
            assert not isinstance(app.screen, HelpScreen)
            await pilot.press("q")
            await until(pilot, lambda: controller.runs["C"].summary is not None)

    asyncio.run(scenario())


def test_profile_replays_a_dual_freeze(tmp_path):
    config = load_config("smoke", ["train.freeze_buffer_at=10", "train.freeze_ema_at=10"])
    trainer = Trainer(config, torch.device("cpu"))
    run_dir = RunDirectory.create(tmp_path, config, run_id="r")
    RunLoop(trainer, run_dir).run()
    commands = commands_in(run_dir.path)
    assert [(c["command"], c["step"], c["source"]) for c in commands] == [
        ("freeze_buffer", 10, "profile"), ("freeze_ema", 10, "profile")]
    assert trainer.buffer_frozen and trainer.ema_frozen


def test_requests_are_taken_in_order(tmp_path):
    write_request(tmp_path, Command.PAUSE)
    write_request(tmp_path, Command.FREEZE_EMA)
    (tmp_path / "requests" / "junk.json").write_text("not json")
    commands, rejected = take_requests(tmp_path)
    assert commands == [Command.PAUSE, Command.FREEZE_EMA]
    assert [(r.name, r.reason) for r in rejected] == [("junk.json", "not JSON")]
    assert take_requests(tmp_path) == ([], [])


def test_jsonl_tail_reads_only_new_complete_lines(tmp_path):
    path = tmp_path / "m.jsonl"
    tail = JsonlTail(path)
    assert tail.read() == []
    path.write_text('{"kind": "train", "step": 1}\n{"kind": "train", "step": 2}\n{"kind": "train", "st')
    assert tail.read() == [{"kind": "train", "step": 1}, {"kind": "train", "step": 2}]
    with path.open("a") as fh:
        fh.write('ep": 3}\n[1]\n{"kind": "eval", "step": null}\n')  # two malformed lines are skipped
    assert tail.read() == [{"kind": "train", "step": 3}]
    assert tail.read() == []


def test_jsonl_tail_starts_again_when_the_file_is_replaced(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"kind": "train", "step": 1}\n{"kind": "train", "step": 2}\n')
    tail = JsonlTail(path)
    assert len(tail.read()) == 2 and not tail.replaced
    new = tmp_path / "new.jsonl"
    new.write_text('{"kind": "train", "step": 1}\n')
    new.replace(path)  # as a resume's roll-back does
    assert tail.read() == [{"kind": "train", "step": 1}] and tail.replaced


def test_watch_redraws_a_resumed_run_from_its_rolled_back_history(tmp_path):
    from jepa_tui.training.resume import prepare_resume

    config = load_config("smoke", ["train.steps=30", "eval.every_steps=20"])
    run_dir = RunDirectory.create(tmp_path, config, run_id="r")
    RunLoop(Trainer(config, torch.device("cpu")), run_dir).run()
    controller = WatchController(run_dir.path)
    controller.poll()
    assert controller.states["C"].d_shift.xs == [20, 30] and controller.states["C"].step == 30
    (run_dir.path / "checkpoints" / "step_00000030.pt").unlink()
    prepare_resume(run_dir.path)  # rolls metrics.jsonl back to the step-20 checkpoint
    assert controller.poll()
    state = controller.states["C"]
    assert state.d_shift.xs == [20] and state.step == 20 and state.loss.xs == [10, 20]


def test_watch_follows_a_headless_run_and_sends_requests(tmp_path):
    config = load_config("smoke", ["train.steps=100000", "eval.every_steps=30"])
    trainer = Trainer(config, torch.device("cpu"))
    run_dir = RunDirectory.create(tmp_path, config, run_id="headless")
    stop = threading.Event()
    loop = RunLoop(trainer, run_dir, should_stop=lambda: "stop" if stop.is_set() else None)
    worker = threading.Thread(target=loop.run, daemon=True)
    worker.start()
    controller = WatchController(run_dir.path)
    app = Dashboard(controller, sensor=None, redraw_hz=4)
    state = controller.states["C"]

    async def scenario():
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: state.step >= 20 and len(state.d_shift) >= 1)
            await pilot.press("b")  # becomes a request file, applied at the next 50-step poll
            await until(pilot, lambda: trainer.buffer_frozen)
            await until(pilot, lambda: state.buffer_frozen)
            assert "buffer frozen" in str(app.query_one("#status").render())
            await pilot.press("q")  # detaches; training goes on
            await pilot.pause(0.3)
        step = trainer.progress.step
        for _ in range(200):  # detaching leaves the headless run training
            if trainer.progress.step > step:
                break
            await asyncio.sleep(0.05)
        assert trainer.progress.step > step

    try:
        asyncio.run(scenario())
    finally:
        stop.set()
        worker.join(30)
    assert [(c["command"], c["source"]) for c in commands_in(run_dir.path)] == [("freeze_buffer", "request")]
    assert commands_in(run_dir.path)[0]["step"] % 50 == 0


def test_watch_rejects_a_directory_that_is_not_a_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        WatchController(tmp_path)


def test_state_event_rate_is_per_100_steps():
    from jepa_tui.ui.state import RunState

    state = RunState(track="C", capacity=256)
    base = {"kind": "train", "elapsed": 0.0, "loss": 1.0, "loss_pred": 1.0, "loss_var": 0.0, "lr": 0.0,
            "ema_tau": 0.996, "buffer_size": 0, "steps_per_s": 1.0}
    for step in range(10, 410, 10):  # one event every 20 steps: 5 per 100 steps
        state.ingest({**base, "step": step, "boundary_events": step // 20})
    assert state.event_rate.ys[-1] == pytest.approx(5.0)
    assert state.event_rate.xs[-1] == 400


def test_the_dashboards_training_thread_follows_the_load(tmp_path):
    """`jepa-tui run` hands its thread governor to each track's run: the worker thread that trains polls it, the
    change is an event of the run, and the run's state (the CPU panel) shows the count."""
    from tests.test_threads import FakeLoad, governed

    load = FakeLoad()
    load.others, load.own = 1.0, 1.0
    governor, counts = governed(load)
    controller = LiveController(load_config("smoke", LONG), tmp_path, torch.device("cpu"), threads=governor)
    app = Dashboard(controller, sensor=None, redraw_hz=4)
    run = controller.runs["C"]

    async def scenario():
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: controller.states["C"].cpu_threads == 1)
            await pilot.press("q")
            await until(pilot, lambda: run.summary is not None)

    asyncio.run(scenario())
    state = controller.states["C"]
    assert state.follows_load and state.others_cores == 1.0
    events = [json.loads(line) for line in (run.run_dir / "events.jsonl").read_text().splitlines()]
    assert [(e["previous"], e["threads"]) for e in events if e["kind"] == "threads"] == [(2, 1)]
    assert counts[-1] == 2  # restored when the run ended


def test_a_series_entirely_outside_the_range_is_drawn_clipped_and_a_failing_plot_never_ends_the_app():
    """The switch-back crash: another track's early D_shift (all far above the cap) was a labelled series with no
    point on the canvas, and plotext's legend raised IndexError inside the render, ending the dashboard."""
    from textual.app import App

    from jepa_tui.ui.panels import ShiftPanel
    from jepa_tui.ui.plot import Plot
    from jepa_tui.ui.state import RunState

    class One(App):
        def compose(self):
            yield ShiftPanel()

    def state(track, values):
        s = RunState(track=track)
        for i, v in enumerate(values, start=1):
            s.ingest({"kind": "eval", "step": 100 * i, "d_shift": v, "sigma_z": 0.8, "d_base": 0.9})
        return s

    async def scenario():
        app = One()
        async with app.run_test(size=(100, 30)) as pilot:
            panel = app.query_one(ShiftPanel)
            others = {"A": state("A", [1200.0, 900.0, 700.0])}  # far above this run's cap
            panel.update(state("C", [0.95, 0.9, 0.85]), others, force=True)
            await pilot.pause()
            plot = app.query_one("#d-shift", Plot)
            assert plot.clipped == (0, 3)
            drawn = str(plot.render())
            assert "cannot draw" not in drawn and "3 points above" in drawn
            plot.plt.build = lambda: (_ for _ in ()).throw(IndexError("list index out of range"))
            assert "cannot draw this plot (IndexError" in str(plot.render())
            await pilot.pause()
            assert app.is_running

    asyncio.run(scenario())


def test_a_log_scale_with_zero_values_draws_them_at_the_bottom_edge():
    """The random-key walk found it: `l` on the loss panel while the variance hinge is exactly 0 made plotext raise
    "math domain error" (log of 0), so the panel showed an error instead of its curves."""
    from textual.app import App

    from jepa_tui.ui.panels import LossPanel
    from jepa_tui.ui.plot import Plot
    from jepa_tui.ui.state import RunState

    class One(App):
        def compose(self):
            yield LossPanel()

    s = RunState(track="C")
    for i in range(1, 30):
        s.loss.add(10 * i, 0.5 / i)
        s.loss_pred.add(10 * i, 0.4 / i)
        s.loss_var.add(10 * i, 0.0 if i > 10 else 0.1 / i)

    async def scenario():
        app = One()
        async with app.run_test(size=(100, 30)) as pilot:
            panel = app.query_one(LossPanel)
            panel.log_scale, panel.smoothing = True, 1.0  # raw curves: the hinge's zeros are drawn as they are
            panel.update(s, {}, force=True)
            await pilot.pause()
            plot = app.query_one(Plot)
            drawn = [str(plot.render()) for _ in range(3)]  # plotext's own log scale failed from the second render
            assert all("cannot draw" not in d for d in drawn) and not getattr(plot, "failures", 0)
            assert plot.clipped[0] == 19 and "19 points below" in drawn[-1] and "0.01" in drawn[-1]

    asyncio.run(scenario())


def test_a_dashboard_that_dies_records_crashed_with_the_error_not_a_quit(tmp_path, monkeypatch):
    controller, app = live_app(tmp_path)
    calls = []

    def broken(self, force=False):
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("a panel bug")

    monkeypatch.setattr(Dashboard, "refresh_panels", broken)

    async def scenario():
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: len(calls) > 3 or not app.is_running)

    with pytest.raises(RuntimeError, match="a panel bug"):
        asyncio.run(scenario())
    run = controller.runs["C"]
    for _ in range(400):
        if run.summary is not None:
            break
        threading.Event().wait(0.05)
    assert run.summary["status"] == "crashed" and run.summary["stop_reason"] == "crashed"
    assert "RuntimeError: a panel bug" in run.summary["error"]
    summary = json.loads((run.run_dir / "summary.json").read_text())
    end = [json.loads(line) for line in (run.run_dir / "events.jsonl").read_text().splitlines()][-1]
    assert summary["status"] == "crashed" and end["kind"] == "end" and "a panel bug" in end["error"]
    assert (run.run_dir / "checkpoints").is_dir() and any((run.run_dir / "checkpoints").iterdir())


def test_stale_requests_are_set_aside_not_applied(tmp_path):
    import os
    import time as clock

    old = write_request(tmp_path, Command.PAUSE)
    os.utime(old, (clock.time() - 3600, clock.time() - 3600))  # an hour before the run started
    write_request(tmp_path, Command.FREEZE_EMA)
    commands, rejected = take_requests(tmp_path, since=clock.time() - 60)
    assert commands == [Command.FREEZE_EMA]
    assert len(rejected) == 1 and rejected[0].name == old.name and rejected[0].reason.startswith("stale: written")


def test_a_key_pressed_in_watch_on_a_dead_run_is_refused_and_never_acts_later(tmp_path):
    from typer.testing import CliRunner

    from jepa_tui.cli.main import app as cli

    runner = CliRunner()
    result = runner.invoke(cli, ["train", "--profile", "smoke", "--runs-dir", str(tmp_path), "--run-id", "r",
                                 "--steps", "20", "--threads", "1"])
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "r"
    controller = WatchController(run_dir)
    controller.poll()
    refusal = controller.command(Command.PAUSE)
    assert refusal is not None and "done" in refusal and not (run_dir / "requests").exists()
    # a request that reached the folder anyway (an older watch) is dropped when the run is resumed, with a notice
    write_request(run_dir, Command.PAUSE)
    resumed = runner.invoke(cli, ["train", "--resume", str(run_dir), "--steps", "60", "--force"])
    assert resumed.exit_code == 0, resumed.output
    assert "set aside: stale" in resumed.output
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert not [e for e in events if e["kind"] == "command" and e.get("command") == "pause"]
    assert [e for e in events if e["kind"] == "request_rejected" and e["reason"].startswith("stale")]
    # the directory vanishing under watch is a refusal too, not a traceback
    import shutil

    shutil.rmtree(run_dir)
    assert "not sent" in controller.command(Command.SAVE)


KEYS = ["1", "2", "3", "4", "5", "t", "p", "b", "e", "f", "s", "tab", "shift+tab", "z", "l", "plus", "minus",
        "question_mark", "escape", "r", "escape", "down", "v", "c", "escape"]
SIZES = [(60, 18), (80, 24), (120, 36), (160, 45)]


def test_random_keys_and_resizes_never_end_the_dashboard(tmp_path, seed=0):
    """A seeded random walk over every key of the dashboard and four terminal sizes: the app is still running after
    it, no plot failed to draw, and the active track's numbers and curves keep coming."""
    import random

    from jepa_tui.ui.plot import Plot

    rng = random.Random(seed)
    controller, app = live_app(tmp_path)

    async def scenario():
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: controller.runs["C"].trainer.progress.step >= 3)
            for _ in range(45):  # each key waits for the app to settle: ~1 s on 2 busy cores
                if rng.random() < 0.1:
                    await pilot.resize_terminal(*rng.choice(SIZES))
                else:
                    await pilot.press(rng.choice(KEYS))
                await pilot.pause(rng.choice([0.0, 0.02, 0.1]))
                assert app.is_running and getattr(app, "_exception", None) is None
            await pilot.press("escape", "escape")  # close a help screen or run browser left open
            await pilot.pause(0.2)
            assert isinstance(app.screen, Dashboard) or app.screen is app.screen_stack[0]
            state = controller.states[controller.active]
            if state.status == "paused":
                await pilot.press("p")
            before = state.step
            await until(pilot, lambda: state.step > before + 5)  # fresh numbers after the walk
            failed = [(plot.id, plot.last_failure) for plot in app.query(Plot) if getattr(plot, "failures", 0)]
            assert not failed
            await pilot.press("q")
            await until(pilot, lambda: all(r.summary is not None for r in controller.runs.values()))

    asyncio.run(scenario())
    for run in controller.runs.values():
        assert run.summary["status"] in ("stopped", "done"), run.summary


def test_speed_and_eta_are_averaged_over_a_trailing_minute():
    """Issue: speed and ETA swung tenfold within seconds (65 → 6.3 → 64.5 steps/s) as each 10-step record's own
    rate was shown."""
    from jepa_tui.ui.state import RATE_WINDOW_S, RunState

    state = RunState(track="A", budget_steps=10_000)
    record = {"kind": "train", "loss": 0.1, "loss_pred": 0.1, "loss_var": 0.0, "lr": 1e-3, "ema_tau": 0.99,
              "buffer_size": 0, "boundary_events": 0}
    elapsed = 0.0
    for i in range(1, 200):
        dt = 0.1 if i % 3 else 1.6  # a record every 10 steps, one in three ten times slower: ~20 steps/s overall
        elapsed += dt
        state.ingest({**record, "step": 10 * i, "elapsed": elapsed, "steps_per_s": 10 / dt})
        if elapsed > 10:
            assert 15 < state.steps_per_s < 30, (i, state.steps_per_s)
    window = [e for e in state._rate_history]
    assert window[-1][0] - window[0][0] <= RATE_WINDOW_S + 2
    assert state.eta_seconds == pytest.approx((10_000 - state.step) / state.steps_per_s)
    state.ingest({**record, "step": 50, "elapsed": 5.0, "steps_per_s": 7.0})  # a resumed run's history went back
    assert state.steps_per_s == 7.0


def test_the_event_log_and_the_configuration_open_scroll_and_close(tmp_path):
    """v lists the run's events with their steps (the interventions pressed, evaluations, checkpoints); c shows
    the resolved configuration of the active run's directory."""
    from textual.containers import VerticalScroll
    from textual.widgets import Static

    from jepa_tui.ui.screens import TextScreen

    controller, app = live_app(tmp_path)

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: controller.runs["C"].trainer.progress.step >= 3)
            await pilot.press("b")
            state = controller.states["C"]
            await until(pilot, lambda: any("freeze_buffer applied" in line for _, line in state.log))
            await pilot.press("v")
            await pilot.pause(0.2)
            assert isinstance(app.screen, TextScreen)
            text = str(app.screen.query_one(Static).render())
            assert "started on cpu" in text and "freeze_buffer applied at step" in text
            assert "from the dashboard (buffer frozen)" in text
            await pilot.press("v")
            await pilot.pause(0.2)
            assert not isinstance(app.screen, TextScreen)
            await pilot.press("c")
            await pilot.pause(0.2)
            text = str(app.screen.query_one(Static).render())
            assert str(controller.active_dir() / "config.toml") in text and 'track = "C"' in text
            await pilot.press("pagedown")
            await pilot.pause(0.2)
            assert app.screen.query_one(VerticalScroll).scroll_y > 0  # longer than the screen: it scrolls
            await pilot.press("escape")
            await pilot.pause(0.2)
            assert not isinstance(app.screen, TextScreen)
            await pilot.press("q")
            await until(pilot, lambda: controller.runs["C"].summary is not None)

    asyncio.run(scenario())


def test_a_toggle_pressed_twice_quickly_or_right_after_a_switch_acts_on_what_the_run_will_be(tmp_path):
    """p p in quick succession sent pause twice (the screen still showed "training"), and p right after switching
    back to a paused track resumed it instead of pausing it."""
    controller, app = live_app(tmp_path)
    run = controller.runs["C"]

    async def scenario():
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: run.trainer.progress.step >= 3)
            poll = controller.poll
            controller.poll = lambda: False  # the records come late (a busy machine, a tailed file)
            await pilot.press("p", "p", "b", "b", "b")
            controller.poll = poll
            state = controller.states["C"]
            await until(pilot, lambda: len([e for e in state.events if e.get("kind") == "command"]) >= 5)
            commands = [e["command"] for e in state.events if e.get("kind") == "command"]
            assert commands == ["pause", "resume", "freeze_buffer", "unfreeze_buffer", "freeze_buffer"], commands
            controller.poll = lambda: False
            await pilot.press("1", "3", "p")  # away and back (C resumed by the switch), then pause it
            controller.poll = poll
            await until(pilot, lambda: state.status == "paused")
            await pilot.pause(0.5)
            assert state.status == "paused" and run.trainer.buffer_frozen
            await pilot.press("q")
            await until(pilot, lambda: all(r.summary is not None for r in controller.runs.values()))

    asyncio.run(scenario())


def test_the_configuration_pane_reads_config_toml_with_the_runs_bounded_reader(tmp_path):
    """`c` must never block or read forever: a config.toml that is a link (to a FIFO, a device, anything) is refused
    and said so, as every reader of a run directory refuses it."""
    from jepa_tui.ui.screens import config_text

    run = tmp_path / "run"
    run.mkdir()
    (tmp_path / "elsewhere.toml").write_text('[train]\ntrack = "C"\n')
    (run / "config.toml").symlink_to(tmp_path / "elsewhere.toml")
    assert config_text(run).startswith(f"cannot read {run / 'config.toml'}")
    (run / "config.toml").unlink()
    (run / "config.toml").write_text('[train]\ntrack = "C"\n')
    assert config_text(run) == f"# {run / 'config.toml'}\n[train]\ntrack = \"C\"\n"
