"""The thermal guard with a scripted fake sensor: pause above 83 °C, checkpoint, resume below 70 °C."""

import io
import json
import time

import torch

from jepa_tui.cli.console import ConsolePrinter
from jepa_tui.config import ThermalConfig
from jepa_tui.gpu import GpuSample
from jepa_tui.runs import RunDirectory
from jepa_tui.training.loop import RunLoop
from jepa_tui.training.thermal import ThermalGuard, guard_for
from jepa_tui.ui.state import RunState


class ScriptedSensor:
    """Answers the temperatures given, then the last one forever."""

    unavailable = None

    def __init__(self, temperatures):
        self.temperatures = list(temperatures)
        self.reads = 0

    def sample(self):
        self.reads += 1
        value = self.temperatures.pop(0) if len(self.temperatures) > 1 else self.temperatures[0]
        return GpuSample(name="fake", temperature_c=value)


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_guard_reads_once_per_interval_and_uses_strict_thresholds():
    clock = FakeClock()
    sensor = ScriptedSensor([83.0, 83.5, 70.0, 69.9])
    guard = ThermalGuard(sensor, ThermalConfig(), clock=clock, sleep=clock.sleep)
    assert guard.too_hot() is None  # 83.0 is not above 83
    assert guard.too_hot() is None and sensor.reads == 1  # within the 1 s interval: no reading
    clock.now += 1.0
    assert guard.too_hot() == 83.5
    assert guard.wait_until_cool(lambda: True) == 69.9  # 70.0 is not below 70
    assert clock.now == 3.0 and sensor.reads == 4


def test_guard_is_off_without_a_gpu_or_when_disabled():
    assert guard_for(ThermalConfig(), "cpu")[0] is None
    assert guard_for(ThermalConfig(enabled=False), "cuda", ScriptedSensor([50]))[0] is None

    class Missing(ScriptedSensor):
        unavailable = "no NVIDIA GPU or driver"

    guard, note = guard_for(ThermalConfig(), "cuda", Missing([50]))
    assert guard is None and "no NVIDIA GPU" in note
    guard, note = guard_for(ThermalConfig(), "cuda", ScriptedSensor([50]))
    assert isinstance(guard, ThermalGuard) and "83" in note and "70" in note


def run_with(tmp_path, make_trainer, sensor, sleep, name, **train):
    trainer = make_trainer(steps=40, **train)
    run_dir = RunDirectory.create(tmp_path, trainer.config, name)
    guard = ThermalGuard(sensor, ThermalConfig(sample_every_seconds=0.05), sleep=sleep)
    console, state = io.StringIO(), RunState.from_config(trainer.config, name)
    statuses = []

    class Watch:
        def on_train(self, r):
            state.ingest(r)

        def on_eval(self, r):
            state.ingest(r)

        def on_event(self, r):
            state.ingest(r)
            statuses.append(state.status)

        def on_summary(self, r):
            state.ingest({"kind": "summary", **r})

    sinks = [ConsolePrinter(trainer.config, stream=console), Watch()]
    summary = RunLoop(trainer, run_dir, sinks, thermal=guard).run()
    return trainer, run_dir.path, summary, console.getvalue(), statuses


def test_a_hot_gpu_pauses_checkpoints_and_resumes_by_itself(tmp_path, make_trainer):
    # cool for a few readings, then 88 °C, cooling through 79 and 72, resuming at 65
    sensor = ScriptedSensor([60, 61, 88, 79, 72, 65, 60])
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        time.sleep(0.1)

    trainer, run_dir, summary, console, statuses = run_with(tmp_path, make_trainer, sensor, sleep, "hot",
                                                            seconds=2.0)
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    kinds = [e["kind"] for e in events]
    pause, resume = events[kinds.index("thermal_pause")], events[kinds.index("thermal_resume")]
    assert pause["temperature_c"] == 88 and pause["pause_at_c"] == 83.0 and pause["resume_at_c"] == 70.0
    assert resume["temperature_c"] == 65 and resume["step"] == pause["step"]  # no training while cooling
    checkpoint = events[kinds.index("thermal_pause") + 1]
    assert checkpoint["kind"] == "checkpoint" and checkpoint["reason"] == "thermal"
    assert len(slept) == 3  # readings at 79, 72, 65
    assert "cooling" in statuses and statuses[-1] != "cooling"
    assert "cooling: GPU at 88 °C (above 83 °C)" in console and "training again: GPU at 65 °C" in console
    # paused time does not count against the seconds budget: 0.3 s of cooling, 2 s of training
    assert summary["status"] == "done" and summary["train_seconds"] >= 2.0
    assert summary["wall_seconds"] > summary["train_seconds"] + 0.3


def test_cooling_does_not_change_the_numbers(tmp_path, make_trainer):
    hot = ScriptedSensor([60, 90, 60])
    _, hot_dir, *_ = run_with(tmp_path, make_trainer, hot, lambda s: None, "hot")
    _, cool_dir, *_ = run_with(tmp_path, make_trainer, ScriptedSensor([60]), lambda s: None, "cool")

    def evals(run_dir):
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        return [(r["step"], r["d_shift"]) for r in map(json.loads, lines) if r["kind"] == "eval"]

    assert evals(hot_dir) == evals(cool_dir)

    def final(run_dir):
        return torch.load(run_dir / "checkpoints" / "step_00000040.pt", weights_only=True)["trainer"]["model"]

    hot_params, cool_params = final(hot_dir), final(cool_dir)
    assert all(torch.equal(hot_params[k], cool_params[k]) for k in cool_params)


class FakeNvml:
    """A stand-in for ``pynvml``: two GPUs by index and UUID; temperatures may be "not supported"."""

    NVML_TEMPERATURE_GPU = 0
    NVML_TEMPERATURE_THRESHOLD_SLOWDOWN = 1
    NVML_CLOCK_SM = 1

    class NVMLError_NotSupported(Exception):  # noqa: N801 (pynvml's name)
        pass

    def __init__(self, temperatures, slowdowns=None):
        self.temperatures = temperatures  # uuid -> °C or None (not supported)
        self.slowdowns = slowdowns or {}  # uuid -> the slowdown threshold in °C (absent: not supported)
        self.uuids = list(temperatures)

    def nvmlDeviceGetTemperatureThreshold(self, handle, kind):  # noqa: N802
        if handle not in self.slowdowns:
            raise self.NVMLError_NotSupported()
        return self.slowdowns[handle]

    def nvmlInit(self):  # noqa: N802
        pass

    def nvmlDeviceGetHandleByIndex(self, index):  # noqa: N802
        return self.uuids[index]

    def nvmlDeviceGetHandleByUUID(self, uuid):  # noqa: N802
        if uuid not in self.temperatures:
            raise KeyError(uuid)
        return uuid

    def nvmlDeviceGetName(self, handle):  # noqa: N802
        return f"fake {handle}"

    def nvmlDeviceGetTemperature(self, handle, kind):  # noqa: N802
        if self.temperatures[handle] is None:
            raise self.NVML_Error_NotSupported()
        return self.temperatures[handle]

    NVML_Error_NotSupported = NVMLError_NotSupported

    def __getattr__(self, name):  # every other query: not supported
        def unsupported(*args):
            raise self.NVMLError_NotSupported()
        return unsupported


def test_the_sensor_reads_the_gpu_the_run_trains_on_by_uuid(monkeypatch):
    import sys
    from types import SimpleNamespace

    from jepa_tui import gpu

    fake = FakeNvml({"GPU-aaaa": 41, "GPU-bbbb": 77})
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda index: SimpleNamespace(uuid=["aaaa", "bbbb"][index]))
    assert gpu.sensor_for(torch.device("cpu")) is None  # a CPU run: no GPU panel, no GPU read
    second = gpu.sensor_for(torch.device("cuda:1"))
    assert second.unavailable is None and second.sample().temperature_c == 77  # not NVML's GPU 0
    assert gpu.sensor_for(torch.device("cuda")).sample().temperature_c == 41  # the current device
    guard, note = guard_for(ThermalConfig(), torch.device("cuda:1"))
    assert isinstance(guard, ThermalGuard) and "thermal guard on" in note and "(77 °C now)" in note


def test_the_guard_says_it_is_off_when_the_gpu_gives_no_temperature(monkeypatch):
    import sys
    from types import SimpleNamespace

    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml({"GPU-aaaa": None}))
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: SimpleNamespace(uuid="aaaa"))
    guard, note = guard_for(ThermalConfig(), torch.device("cuda:0"))
    assert guard is None and note == "thermal guard off: NVML gives no temperature for this GPU (not supported)"
    monkeypatch.setitem(sys.modules, "pynvml", None)  # nvidia-ml-py missing: import fails
    guard, note = guard_for(ThermalConfig(), torch.device("cuda:0"))
    assert guard is None and "nvidia-ml-py is not installed" in note


def test_unset_thresholds_come_from_the_gpus_slowdown_temperature(monkeypatch):
    """Pause 5 °C below the slowdown NVML reports, resume 13 °C below that; ours (83/70) when NVML has none; set
    values always win; the guard's line says where its thresholds come from, and its pause event records them."""
    import sys
    from types import SimpleNamespace

    from jepa_tui.training.thermal import thresholds

    assert thresholds(ThermalConfig(), 90.0) == (85.0, 72.0)
    assert thresholds(ThermalConfig(), None) == (83.0, 70.0)
    assert thresholds(ThermalConfig(pause_at_c=80.0), 95.0) == (80.0, 67.0)
    assert thresholds(ThermalConfig(pause_at_c=80.0, resume_at_c=75.0), 95.0) == (80.0, 75.0)
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml({"GPU-aaaa": 50, "GPU-bbbb": 60}, {"GPU-bbbb": 92}))
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda index: SimpleNamespace(uuid=["aaaa", "bbbb"][index]))
    guard, note = guard_for(ThermalConfig(), torch.device("cuda:1"))
    assert (guard.pause_at_c, guard.resume_at_c) == (87.0, 74.0)
    assert "pause above 87 °C (5 °C below this GPU's slowdown at 92 °C), resume below 74 °C" in note
    guard, note = guard_for(ThermalConfig(), torch.device("cuda:0"))
    assert (guard.pause_at_c, guard.resume_at_c) == (83.0, 70.0) and "NVML gives no slowdown temperature" in note
    guard = ThermalGuard(ScriptedSensor([86.0]), ThermalConfig(), slowdown_c=92.0)
    assert guard.too_hot() is None  # 86 is under the derived 87
