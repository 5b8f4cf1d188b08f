"""The thermal guard: pause training while the GPU is too hot and resume once it has cooled.

The paper (App. D) trained on a GTX 1050 Ti whose heat made it pause runs by hand through ``pause_request.flag``;
it gives no temperature. The guard automates that pause. Its thresholds (:func:`thresholds`): ``thermal.pause_at_c``
and ``thermal.resume_at_c`` when set; otherwise the pause comes 5 °C below the GPU's own slowdown temperature when
NVML reports it, and at 83 °C (ours, below the usual 85-90 °C slowdown of NVIDIA GPUs) when it does not, and the
resume 13 °C below the pause (83 → 70). The run loop
asks :meth:`ThermalGuard.too_hot` between steps (a reading at most once per ``sample_every_seconds``) and, when it
answers with a temperature, checkpoints and waits in :meth:`ThermalGuard.wait_until_cool`. Any object with the
:class:`TemperatureSensor` interface works, so tests drive the guard with a scripted fake sensor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import torch

from jepa_tui.config import ThermalConfig
from jepa_tui.gpu import GpuSample, sensor_for

PAUSE_FALLBACK_C = 83.0  # ours, when NVML gives no slowdown temperature
SLOWDOWN_MARGIN_C = 5.0  # the pause this far below the GPU's slowdown temperature
COOL_GAP_C = 13.0  # resume this far below the pause (ours: 83 → 70)


def thresholds(config: ThermalConfig, slowdown_c: float | None) -> tuple[float, float]:
    """(pause above, resume below) in °C: the configured values, else derived from the GPU's slowdown temperature
    (``slowdown_c``, NVML's, or None) as the module docstring says."""
    pause = config.pause_at_c if config.pause_at_c is not None else (
        slowdown_c - SLOWDOWN_MARGIN_C if slowdown_c is not None else PAUSE_FALLBACK_C)
    resume = config.resume_at_c if config.resume_at_c is not None and config.resume_at_c < pause else \
        pause - COOL_GAP_C
    return pause, resume


class TemperatureSensor(Protocol):
    """A GPU sensor (:class:`jepa_tui.gpu.NvmlSensor` or a fake); ``sample()`` may return None or no temperature."""

    unavailable: str | None

    def sample(self) -> GpuSample | None: ...


class ThermalGuard:
    """Decides when training must pause for heat and when it may go on.

    Args:
        sensor: where temperatures (°C) come from.
        config: ``pause_at_c``, ``resume_at_c`` and ``sample_every_seconds``.
        clock: monotonic seconds (injectable for tests).
        sleep: waits between readings while cooling (injectable for tests).
        slowdown_c: the GPU's slowdown temperature (NVML), from which unset thresholds derive (:func:`thresholds`).
    """

    def __init__(self, sensor: TemperatureSensor, config: ThermalConfig,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 slowdown_c: float | None = None) -> None:
        self.sensor = sensor
        self.config = config
        self.pause_at_c, self.resume_at_c = thresholds(config, slowdown_c)
        self.clock = clock
        self.sleep = sleep
        self._last_sample = -float("inf")
        self.last_temperature_c: float | None = None

    def read(self) -> float | None:
        """One temperature reading in °C, or None when the sensor has none."""
        self._last_sample = self.clock()
        sample = self.sensor.sample()
        self.last_temperature_c = None if sample is None else sample.temperature_c
        return self.last_temperature_c

    def too_hot(self) -> float | None:
        """The temperature when it is above ``pause_at_c`` (read at most once per interval), else None."""
        if self.clock() - self._last_sample < self.config.sample_every_seconds:
            return None
        temperature = self.read()
        return temperature if temperature is not None and temperature > self.pause_at_c else None

    def wait_until_cool(self, keep_waiting: Callable[[], bool]) -> float | None:
        """Read once per interval until the temperature is below ``resume_at_c``; returns it.

        ``keep_waiting`` is called between readings (to take commands); when it returns False the wait ends early
        and None is returned.
        """
        while keep_waiting():
            self.sleep(self.config.sample_every_seconds)
            temperature = self.read()
            if temperature is not None and temperature < self.resume_at_c:
                return temperature
        return None


def guard_for(config: ThermalConfig, device: torch.device | str,
              sensor: TemperatureSensor | None = None) -> tuple[ThermalGuard | None, str]:
    """The guard for a run on ``device`` (a CUDA device: the GPU it is, by UUID; :func:`jepa_tui.gpu.sensor_for`),
    and one line saying whether it is on and why: off without a GPU, without NVML, or when the GPU gives no
    temperature (it never claims to be on when it cannot read one). Used only for CUDA runs with
    ``thermal.enabled``.
    """
    device = torch.device(device) if isinstance(device, str) else device
    if not config.enabled:
        return None, "thermal guard off (thermal.enabled = false)"
    if device.type != "cuda":
        return None, "thermal guard off: not training on a GPU"
    if sensor is None:
        sensor = sensor_for(device)
    if sensor is None or sensor.unavailable:
        return None, f"thermal guard off: {sensor.unavailable if sensor else 'no GPU sensor'}"
    sample = sensor.sample()
    if sample is None or sample.temperature_c is None:
        return None, "thermal guard off: NVML gives no temperature for this GPU (not supported)"
    guard = ThermalGuard(sensor, config, slowdown_c=sample.slowdown_c)
    source = "thermal.pause_at_c" if config.pause_at_c is not None else (
        f"5 °C below this GPU's slowdown at {sample.slowdown_c:g} °C" if sample.slowdown_c is not None else
        "ours: NVML gives no slowdown temperature")
    return guard, (f"thermal guard on: pause above {guard.pause_at_c:g} °C ({source}), resume below "
                   f"{guard.resume_at_c:g} °C ({sample.temperature_c:g} °C now)")
