"""The thermal guard: pause training while the GPU is too hot and resume once it has cooled.

The paper (App. D) trained on a GTX 1050 Ti whose heat made it pause runs by hand through ``pause_request.flag``;
it gives no temperature. The guard automates that pause with thresholds of ours (``thermal.pause_at_c`` 83 °C,
``thermal.resume_at_c`` 70 °C), below the usual slowdown thresholds of NVIDIA GPUs. The run loop
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
from jepa_tui.gpu import GpuSample, NvmlSensor, sensor_for


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
    """

    def __init__(self, sensor: TemperatureSensor, config: ThermalConfig,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.sensor = sensor
        self.config = config
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
        return temperature if temperature is not None and temperature > self.config.pause_at_c else None

    def wait_until_cool(self, keep_waiting: Callable[[], bool]) -> float | None:
        """Read once per interval until the temperature is below ``resume_at_c``; returns it.

        ``keep_waiting`` is called between readings (to take commands); when it returns False the wait ends early
        and None is returned.
        """
        while keep_waiting():
            self.sleep(self.config.sample_every_seconds)
            temperature = self.read()
            if temperature is not None and temperature < self.config.resume_at_c:
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
        sensor = sensor_for(device) or NvmlSensor()
    if sensor.unavailable:
        return None, f"thermal guard off: {sensor.unavailable}"
    sample = sensor.sample()
    if sample is None or sample.temperature_c is None:
        return None, "thermal guard off: NVML gives no temperature for this GPU (not supported)"
    return ThermalGuard(sensor, config), (f"thermal guard on: pause above {config.pause_at_c:g} °C, resume below "
                                         f"{config.resume_at_c:g} °C ({sample.temperature_c:g} °C now)")
