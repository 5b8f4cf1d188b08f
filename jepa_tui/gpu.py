"""GPU readings through NVML (``nvidia-ml-py``, imported as ``pynvml``), for the dashboard and the thermal guard.

Every field is optional: consumer GPUs answer "not supported" for some, and a machine without an NVIDIA driver
has none, in which case :attr:`NvmlSensor.unavailable` says why. Tests use a fake sensor with the same interface.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch

THROTTLE_REASONS = {0x4: "SW power cap", 0x8: "HW slowdown", 0x20: "SW thermal", 0x40: "HW thermal",
                    0x80: "power brake"}


@dataclass
class GpuSample:
    """One reading. Temperatures in °C, power in W, clocks in MHz, utilisation in %, memory in MiB."""

    name: str = ""
    temperature_c: float | None = None
    slowdown_c: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    sm_clock_mhz: float | None = None
    utilisation_pct: float | None = None
    memory_used_mib: float | None = None
    memory_total_mib: float | None = None
    throttle: list[str] = field(default_factory=list)


class GpuSensor(Protocol):
    """Something that can be sampled about once a second."""

    unavailable: str | None

    def sample(self) -> GpuSample | None: ...


class NvmlSensor:
    """Samples one GPU through NVML; ``unavailable`` holds the reason when there is no usable GPU.

    Args:
        index: NVML's index of the GPU (NVML counts every GPU of the machine, whatever ``CUDA_VISIBLE_DEVICES``
            says), used when no ``uuid`` is given.
        uuid: the GPU's UUID ("GPU-…", as CUDA reports it): the way to find the GPU a CUDA device is
            (:func:`sensor_for`).
    """

    def __init__(self, index: int = 0, uuid: str | None = None) -> None:
        self.unavailable: str | None = None
        self._handle = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self._handle = pynvml.nvmlDeviceGetHandleByUUID(uuid) if uuid is not None else \
                pynvml.nvmlDeviceGetHandleByIndex(index)
        except ImportError:
            self.unavailable = "nvidia-ml-py is not installed"
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, NotFound, ...
            self.unavailable = f"no NVIDIA GPU or driver ({type(exc).__name__})"


    def _read(self, fn, *args):
        try:
            return fn(self._handle, *args)
        except Exception:
            return None

    def sample(self) -> GpuSample | None:
        if self._handle is None:
            return None
        n = self._nvml
        name = self._read(n.nvmlDeviceGetName)
        temp = self._read(n.nvmlDeviceGetTemperature, n.NVML_TEMPERATURE_GPU)
        slowdown = self._read(n.nvmlDeviceGetTemperatureThreshold, n.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN)
        power = self._read(n.nvmlDeviceGetPowerUsage)
        limit = self._read(n.nvmlDeviceGetEnforcedPowerLimit)
        clock = self._read(n.nvmlDeviceGetClockInfo, n.NVML_CLOCK_SM)
        util = self._read(n.nvmlDeviceGetUtilizationRates)
        memory = self._read(n.nvmlDeviceGetMemoryInfo)
        reasons_fn = getattr(n, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
            getattr(n, "nvmlDeviceGetCurrentClocksThrottleReasons", None)
        mask = self._read(reasons_fn) if reasons_fn else None
        return GpuSample(
            name=name.decode() if isinstance(name, bytes) else (name or ""),
            temperature_c=temp, slowdown_c=slowdown,
            power_w=power / 1000 if power is not None else None,
            power_limit_w=limit / 1000 if limit is not None else None,
            sm_clock_mhz=clock,
            utilisation_pct=util.gpu if util is not None else None,
            memory_used_mib=memory.used / 2**20 if memory is not None else None,
            memory_total_mib=memory.total / 2**20 if memory is not None else None,
            throttle=[text for bit, text in THROTTLE_REASONS.items() if mask and mask & bit],
        )


def cuda_uuid(device: torch.device) -> str | None:
    """The UUID ("GPU-…") of a CUDA device as NVML names it, or None when CUDA cannot say."""
    try:
        index = device.index if device.index is not None else torch.cuda.current_device()
        uuid = torch.cuda.get_device_properties(index).uuid
    except Exception:  # no CUDA, an old driver
        return None
    text = str(uuid)
    return text if text.startswith("GPU-") else f"GPU-{text}"


def sensor_for(device: torch.device) -> NvmlSensor | None:
    """The sensor of the GPU that ``device`` trains on, found by its UUID (so ``CUDA_VISIBLE_DEVICES`` and
    ``cuda:1`` read the right GPU); None for a CPU device (the dashboard then shows CPU and memory instead)."""
    if device.type != "cuda":
        return None
    uuid = cuda_uuid(device)
    return NvmlSensor(uuid=uuid) if uuid is not None else NvmlSensor(device.index or 0)
