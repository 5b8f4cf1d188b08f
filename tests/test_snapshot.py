"""SVG snapshots of the dashboard drawn from fixed records at an SSH-sized, a mid-sized and a large terminal: no
clock, no NVML, no training thread."""

import math
from pathlib import Path

import pytest

from jepa_tui.gpu import GpuSample
from jepa_tui.training.control import Command
from jepa_tui.ui.app import Dashboard
from jepa_tui.ui.state import RunState


def synthetic_state(track: str, offset: float) -> RunState:
    state = RunState(track=track, run_id=f"20260101_000000_{track}_s42", capacity=256,
                     kappa={"A": None, "B": 2.0, "C": 1.5}[track], budget_steps=5000,
                     shift="gravity 0.5 px/frame² down")
    events = 0
    for step in range(10, 3010, 10):
        events += 1 if (step // 10) % 7 == 0 and step > 1300 else 0
        memory = track != "A"
        state.ingest({"kind": "train", "step": step, "elapsed": step / 10.0,
                      "loss": 0.05 + 0.4 * (1 - math.exp(-step / 900)),
                      "loss_pred": 0.02 + 0.38 * (1 - math.exp(-step / 900)), "loss_var": 0.6 * math.exp(-step / 400),
                      "lr": 1e-3 * 0.5 * (1 + math.cos(math.pi * step / 5000)), "ema_tau": 0.996 + 0.0039 * step / 5000,
                      "buffer_size": min(256, events) if memory else 0, "boundary_events": events,
                      "surprisal_mu": 0.004 if memory else None, "surprisal_sigma": 0.0005 if memory else None,
                      "lora_delta_norm_w1": 0.01 * step / 3000 if track == "C" else None,
                      "lora_delta_norm_w2": 0.02 * step / 3000 if track == "C" else None, "steps_per_s": 10.0})
    for step in range(500, 3001, 500):
        d = 1.75 * math.exp(-step / 900) + 0.93 + offset
        state.ingest({"kind": "eval", "step": step, "d_shift": d, "sigma_z": 0.2 + 0.6 * (1 - math.exp(-step / 800)),
                      "d_base": d + 0.05})
    state.ingest({"kind": "command", "command": Command.FREEZE_BUFFER.value, "step": 3000, "time": 0.0,
                  "source": "ui", "paused": False, "buffer_frozen": True, "ema_frozen": False})
    return state


class FixedController:
    live = True
    runs_root = Path("runs")

    def __init__(self) -> None:
        self.active = "C"
        self.states = {"C": synthetic_state("C", 0.0), "A": synthetic_state("A", 0.03)}

    def start(self, start_thread) -> None:
        pass

    def poll(self) -> bool:
        return False

    def command(self, command) -> None:
        pass

    def switch(self, track: str) -> None:
        pass

    def shutdown(self, reason: str = "stop") -> None:
        pass

    def farewell(self) -> str:
        return ""


class FixedSensor:
    unavailable = None

    def sample(self) -> GpuSample:
        return GpuSample(name="NVIDIA H100 80GB HBM3", temperature_c=61, slowdown_c=90, power_w=312.5,
                         power_limit_w=700, sm_clock_mhz=1980, utilisation_pct=87, memory_used_mib=4210,
                         memory_total_mib=81559, throttle=[])


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (160, 45)])
def test_dashboard_snapshot(snap_compare, size):
    async def draw(pilot):
        await pilot.pause()  # laid out first: curves are downsampled to the panel widths
        pilot.app.sample_gpu()
        pilot.app.refresh_panels(force=True)
        await pilot.pause()

    app = Dashboard(FixedController(), FixedSensor(), redraw_hz=0.001, gpu_interval=None)
    assert snap_compare(app, terminal_size=size, run_before=draw)
