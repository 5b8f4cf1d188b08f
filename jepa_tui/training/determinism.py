"""What a bitwise rerun needs, pinned before a run starts (``train.deterministic``, ``--deterministic``).

On a CPU the thread count is what varies: a run pinned to a fixed count (``train.threads``, or the count this
process would start with: an exported OMP_NUM_THREADS, else the cores it may use) has no thread governor and reruns
and resumes bitwise. On a GPU PyTorch's deterministic algorithms are switched on as well (and cuBLAS's workspace
fixed, which it needs), at some cost in speed. :func:`jepa_tui.runs.reproducibility.reproducibility` reads back
whether a run had all this.
"""

from __future__ import annotations

import os
from dataclasses import replace

import torch

from jepa_tui.config import Config
from jepa_tui.threads import usable_cores


def pin_if_deterministic(config: Config) -> Config:
    """``config`` with ``train.threads`` fixed when ``train.deterministic`` asks for it and the count is left to
    the load (0); unchanged otherwise."""
    t = config.train
    if not t.deterministic or t.threads > 0:
        return config
    try:
        count = int(os.environ["OMP_NUM_THREADS"])
    except (KeyError, ValueError):
        count = usable_cores()
    return replace(config, train=replace(t, threads=max(1, count)))


def apply_determinism(config: Config) -> bool:
    """Switch on PyTorch's deterministic algorithms for a ``train.deterministic`` run (a process-wide setting; an
    operation without a deterministic version warns rather than fails); returns whether it did."""
    if not config.train.deterministic:
        return False
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    return True
