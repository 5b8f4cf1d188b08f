"""What a :class:`~jepa_tui.training.trainer.Trainer` is built from: the device, ``torch.compile``'s mode, the
optimiser, and the progress counters its schedules and budget run on."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from jepa_tui.config import TrainConfig


def build_optimizer(params, train: TrainConfig) -> torch.optim.AdamW:
    """The paper's AdamW at ``train``'s learning rate and weight decay, over ``params`` (a trainer's trainable
    parameters, or a run group's stacked ones). Fused: one kernel for all parameters instead of a loop of small ops
    per tensor (the same AdamW maths)."""
    return torch.optim.AdamW(params, lr=train.learning_rate, weight_decay=train.weight_decay, fused=True)


def pick_device(name: str) -> torch.device:
    """"auto" -> cuda when available, else cpu.

    Raises:
        ValueError: for "cuda" on a machine without CUDA.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: CUDA is not available on this machine (PyTorch "
                         f"{torch.__version__}); use --device cpu or auto.")
    return torch.device(name)


def compile_mode(compile: str, cuda_graphs: bool) -> str | None:
    """``torch.compile``'s mode for ``train.compile`` and ``train.cuda_graphs``: None (default), "max-autotune"
    (which already replays CUDA graphs on CUDA) or "reduce-overhead" (CUDA graphs without autotuning)."""
    if compile == "max-autotune":
        return "max-autotune"
    return "reduce-overhead" if cuda_graphs else None


@dataclass
class Progress:
    """Counters that shape the schedules and the budget; all saved in checkpoints."""

    step: int = 0
    seconds: float = 0.0  # training seconds, without evaluation or paused time
    peak_step: int | None = None
    peak_d_shift: float | None = None
    sigma_z_at_peak: float | None = None


HORIZON_SEED = 1_000_033  # seeds the host generator of the horizon k on a GPU (seed · this + step)
