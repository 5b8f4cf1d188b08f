"""Every tensor a training step makes is on the trainer's device: the step of every track (the JEPA family's options
on too) runs with the default device set to ``meta``, so a tensor made without a device taken from the model, the
worlds or the sampler would land there; the dispatcher records every op that touches one. On a GPU such a tensor
would be made on the CPU and copied, or fail, at every step; this finds it on the CPU."""

import traceback

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from jepa_tui.config import load_config
from jepa_tui.training.trainer import Trainer
from tests.test_host_reads import STEP_IDS, STEPS


class OffDevice(TorchDispatchMode):
    """Records the innermost jepa_tui function of every op whose inputs or outputs are on another device."""

    def __init__(self, device: torch.device) -> None:
        super().__init__()
        self.device = device
        self.where: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        tensors = [t for t in torch.utils._pytree.tree_leaves((args, kwargs, out)) if isinstance(t, torch.Tensor)]
        if any(t.device.type != self.device.type for t in tensors):
            frames = [f for f in traceback.extract_stack() if "jepa_tui" in f.filename]
            self.where.append(f"{func} in {frames[-1].name if frames else '?'}")
        return out


@pytest.mark.parametrize("sets", STEPS, ids=STEP_IDS)
def test_every_tensor_of_a_step_is_made_on_the_trainers_device(sets, smoke_worlds):
    device = torch.device("cpu")
    trainer = Trainer(load_config("smoke", sets), device, smoke_worlds)
    memory = trainer.model.memory
    if memory is not None:  # a full buffer: the step encodes and attends to every entry
        for i in range(memory.buffer.capacity):
            memory.buffer.push(torch.randn(2, memory.buffer.entries.shape[-1]), True, step=i)
    for _ in range(12):  # past the detector's warm-up and the first logged step
        trainer.train_step()
    mode = OffDevice(device)
    with torch.device("meta"), mode:
        for _ in range(3):
            trainer.train_step()
    assert not mode.where, "\n".join(mode.where[:10])
    trainer.drain_stats()  # the records' read-out, outside the step, also works
