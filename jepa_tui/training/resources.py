"""Whether a configuration fits the machine before anything is allocated.

A configuration can pass every range check and still need more memory than there is (a batch of 60,000 on a
paper-sized model, a canvas of 1,024 px). :func:`check_memory` estimates the peak of a training step and an
evaluation and refuses with a clear message instead of a MemoryError traceback mid-run.
"""

from __future__ import annotations

from pathlib import Path

import torch

from jepa_tui.config import MEMORY_TRACKS, Config
from jepa_tui.model.encoder import feature_side
from jepa_tui.model.jepa import JEPAWorldModel

FLOAT = 4  # bytes
EVAL_CHUNK_FRAMES = 1024
HEADROOM = 0.9  # use at most this share of the memory available now


class ResourceError(ValueError):
    """The configuration needs more memory than the device has; the message gives both figures."""


def parameter_count(config: Config) -> int:
    """Every parameter and buffer of the model (built on the meta device: nothing is allocated)."""
    with torch.device("meta"):
        model = JEPAWorldModel(config)
    return sum(t.numel() for t in (*model.parameters(), *model.buffers()))


def _encoder_activations(config: Config, frames: int) -> int:
    """Floats the encoder's feature maps take for ``frames`` frames (input included)."""
    canvas, padding = config.data.canvas, config.model.encoder_padding
    per_frame = canvas * canvas
    for layer, channels in enumerate(config.model.encoder_channels, start=1):
        per_frame += channels * feature_side(canvas, layer, padding) ** 2
    return frames * per_frame


def estimate_bytes(config: Config) -> int:
    """A rough upper estimate of peak memory in bytes: the model four times over (weights and target, gradients,
    two AdamW moments), a training step's activations three times over (forward values kept for backward, their
    gradients), the worlds' stored trajectories, and one evaluation chunk."""
    t, d, m, mem = config.train, config.data, config.model, config.memory
    horizons = len(m.horizons)
    params = 4 * parameter_count(config) * FLOAT
    rollout = max(m.horizons)
    step = _encoder_activations(config, t.batch_size * (1 + horizons))
    step += t.batch_size * rollout * (4 * m.hidden_dim + 4 * m.latent_dim)
    if t.track in MEMORY_TRACKS:
        step += mem.capacity * 2 * (8 * mem.exp_dim + 2 * mem.exp_ff_dim) * mem.exp_layers
        step += t.batch_size * mem.capacity * 3
    sequences = sum(d.base_splits) + sum(d.shift_splits)
    worlds = sequences * d.frames * d.num_digits * 2 * (2 + 8)  # int16 kept, float64 while simulating
    evaluation = _encoder_activations(config, EVAL_CHUNK_FRAMES)
    return params + 3 * step * FLOAT + worlds + evaluation * FLOAT


def available_bytes(device: torch.device) -> int | None:
    """Memory free on ``device`` now (CUDA: the driver's free memory; CPU: Linux MemAvailable), or None."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_memory(config: Config, device: torch.device) -> None:
    """Refuse a configuration whose estimated peak exceeds the memory available.

    Raises:
        ResourceError: naming the estimate, what is available, and the settings that drive it.
    """
    need = estimate_bytes(config)
    free = available_bytes(device)
    if free is not None and need > HEADROOM * free:
        raise ResourceError(
            f"this configuration needs about {need / 2**30:.1f} GiB on {device.type}, and {free / 2**30:.1f} GiB "
            f"is available; lower train.batch_size ({config.train.batch_size}), data.canvas ({config.data.canvas}), "
            f"model.hidden_dim ({config.model.hidden_dim}), memory.capacity ({config.memory.capacity}) or the "
            "data.*_splits.")
