"""The compiled step (``train.compile``): one graph for a whole run, no recompiles, the same numbers as eager up to
a stated tolerance, and exact resume within the compiled mode."""

from __future__ import annotations

import torch
import torch._dynamo

from jepa_tui.config import load_config
from jepa_tui.training.trainer import Trainer

CPU = torch.device("cpu")
TOLERANCE = 1e-4  # relative, after 200 steps: inductor fuses and orders floating-point sums differently


def _always_fire(trainer: Trainer) -> None:
    """Every step is a boundary event, so the buffer fills, wraps and keeps changing under the compiled graph."""
    trainer.model.memory.detector.observe = lambda surprisal: torch.tensor(True)


def test_the_compiled_step_is_one_graph_without_recompiles(smoke_worlds):
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    graphs = []

    def counting(graph_module, example_inputs):
        graphs.append(len(graph_module.graph.nodes))
        return graph_module.forward

    trainer = Trainer(load_config("smoke", ['train.compile="default"']), CPU, smoke_worlds,
                      compile_backend=counting)
    _always_fire(trainer)
    sizes = []
    for step in range(60):
        if step == 20:
            trainer.buffer_frozen = True
        if step == 30:
            trainer.buffer_frozen, trainer.ema_frozen = False, True
        if step == 45:
            trainer.ema_frozen = False
        if step in (40, 50):
            trainer.evaluate()
        trainer.train_step()
        sizes.append(int(trainer.model.memory.buffer.size))
    assert sizes[0] == 1 and sizes[19] == 16 and len(set(sizes[20:30])) == 1  # filled, then frozen
    assert len(graphs) == 1, f"compiled {len(graphs)} graphs"  # no recompile over the run
    assert not torch._dynamo.utils.counters["graph_break"]
    assert trainer.compile_seconds is not None


def test_compiled_and_eager_runs_agree_and_a_compiled_run_resumes_exactly(smoke_worlds):
    def run(mode: str, steps: int, state: dict | None = None) -> Trainer:
        trainer = Trainer(load_config("smoke", [f'train.compile="{mode}"', "train.steps=200"]), CPU, smoke_worlds)
        _always_fire(trainer)
        if state is not None:
            trainer.load_state_dict(state)
        for _ in range(steps):
            trainer.train_step()
        return trainer

    eager, compiled = run("off", 200), run("default", 200)
    for name, value in eager.model.state_dict().items():
        other = compiled.model.state_dict()[name]
        if value.is_floating_point():
            scale = value.abs().max().clamp_min(1e-3)
            assert ((value - other).abs().max() / scale) < TOLERANCE, name
        else:
            assert torch.equal(value, other), name
    a, b = eager.evaluate(), compiled.evaluate()
    assert abs(a.d_shift - b.d_shift) / abs(a.d_shift) < TOLERANCE and abs(a.sigma_z - b.sigma_z) < 1e-5

    half = run("default", 100)
    resumed = run("default", 100, half.state_dict())
    for name, value in compiled.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name  # bitwise within the compiled mode


def test_cuda_graphs_pick_the_replaying_mode_and_are_refused_off_cuda(tmp_path):
    """train.cuda_graphs = true compiles with "reduce-overhead" (CUDA graphs; max-autotune already replays them);
    on a CPU it is bad input, exit 2, before any run directory exists."""
    from typer.testing import CliRunner

    from jepa_tui.cli.main import app
    from jepa_tui.training.build import compile_mode

    assert compile_mode("off", True) == compile_mode("default", True) == "reduce-overhead"
    assert compile_mode("max-autotune", True) == compile_mode("max-autotune", False) == "max-autotune"
    assert compile_mode("default", False) is None
    result = CliRunner().invoke(app, ["train", "--profile", "smoke", "--device", "cpu", "--runs-dir", str(tmp_path),
                                      "--set", "train.cuda_graphs=true"])
    assert result.exit_code == 2 and "train.cuda_graphs = true needs a CUDA device" in result.output
    assert not any(tmp_path.iterdir())


def test_more_compiled_trainers_in_one_process_than_dynamos_recompile_limit(smoke_worlds):
    """benchmarks/gpu_suite.py builds a dozen compiled trainers in one process; past dynamo's recompile limit (8) a
    recompiling step would be a hard error under fullgraph=True. Eleven trainers of different tracks and seeds each
    step here (the eager backend: dynamo's guards and cache are the same as under inductor)."""
    torch._dynamo.reset()
    graphs = []

    def counting(graph_module, example_inputs):
        graphs.append(len(graph_module.graph.nodes))
        return graph_module.forward

    limit = getattr(torch._dynamo.config, "recompile_limit", None) or torch._dynamo.config.cache_size_limit
    count = limit + 3
    for i in range(count):
        track = "ABCDE"[i % 5]
        trainer = Trainer(load_config("smoke", ['train.compile="default"', f'train.track="{track}"',
                                                f"train.seed={i}"]), CPU, smoke_worlds, compile_backend=counting)
        trainer.train_step()
        trainer.train_step()
    assert count > limit and 5 <= len(graphs) <= count  # one graph per track at least; no recompile-limit error
