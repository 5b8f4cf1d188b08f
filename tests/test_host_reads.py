"""No step reads a tensor's value back to the host (on a GPU each such read waits for every queued kernel): the
training step of every track, the JEPA family's options on, is trapped for reads at the dispatcher. Two reads are
by design and allowed by name: the CPU-only detector flag (``Trainer._host_flag``) and the conditioned predictor's
horizon, drawn from a host generator (``Trainer._sample_k``)."""

import traceback

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from jepa_tui.config import load_config
from jepa_tui.training.trainer import Trainer

READS = {torch.ops.aten._local_scalar_dense.default, torch.ops.aten.is_nonzero.default,
         torch.ops.aten.equal.default}
ALLOWED = {"_host_flag", "_sample_k"}


class HostReads(TorchDispatchMode):
    """Records where each read of a tensor's value to the host happened (the innermost jepa_tui function)."""

    def __init__(self) -> None:
        super().__init__()
        self.where: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in READS:
            frames = [f for f in traceback.extract_stack() if "jepa_tui" in f.filename]
            self.where.append(frames[-1].name if frames else "?")
        return func(*args, **(kwargs or {}))


# every track, and Track C with the JEPA family's options on: the steps the dispatcher-level tests run
STEPS = [['train.track="A"'], ['train.track="B"'], ['train.track="C"'], ['train.track="D"'], ['train.track="E"'],
         ['train.track="C"', 'model.horizon_mode="conditioned"', "train.k_set=[1, 2, 4]",
          'train.regularizer="sigreg"', "train.delta_lambda=0.5", "train.ld_lambda=1.0", "train.hw_lambda=0.3",
          "train.mask_ratio=0.25"]]
STEP_IDS = ["A", "B", "C", "D", "E", "C-family"]


@pytest.mark.parametrize("sets", STEPS, ids=STEP_IDS)
def test_a_training_step_reads_nothing_back_to_the_host(sets, smoke_worlds):
    trainer = Trainer(load_config("smoke", sets), torch.device("cpu"), smoke_worlds)
    for _ in range(12):  # past the warm-up of the detector and the first logged step
        trainer.train_step()
    trap = HostReads()
    with trap:
        for _ in range(10):  # one logged step among them
            trainer.train_step()
    assert set(trap.where) <= ALLOWED, trap.where
    if "train.k_set=[1, 2, 4]" in sets:
        assert trap.where.count("_sample_k") == 10  # the trap sees reads: one horizon draw a step
