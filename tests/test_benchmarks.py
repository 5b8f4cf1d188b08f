"""The benchmarks time what users run: a script that times the trainer in its own process starts OpenMP with the
settings ``jepa-tui train`` gives itself (``benchmarks/openmp.py``), so its figures are those of a training run."""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
from pathlib import Path

from jepa_tui.threads import SPIN_COUNT

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
TORCH_IMPORTERS = {"torch", "common"}  # common imports torch


def _module_imports(path: Path) -> list[str]:
    """Top-level modules imported at module level, in order."""
    names = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names += [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module.split(".")[0])
    return names


def test_every_benchmark_timing_a_trainer_in_process_starts_openmp_as_training_does():
    timing = [path for path in sorted(BENCHMARKS.glob("*.py"))
              if "Trainer(" in path.read_text() and path.name != "common.py"]
    assert {path.name for path in timing} >= {"throughput.py", "track_ratio.py"}
    for path in timing:
        imports = _module_imports(path)
        assert "openmp" in imports, f"{path.name} times the trainer without benchmarks/openmp.py"
        first_torch = min(imports.index(name) for name in TORCH_IMPORTERS if name in imports)
        assert imports.index("openmp") < first_torch, f"{path.name} imports torch before openmp"


def _throughput(*args: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, str(BENCHMARKS / "throughput.py"), "--track", "A", "--profile", "smoke",
                          "--steps", "2", "--warmup", "1", "--device", "cpu", *args],
                         capture_output=True, text=True, env=clean, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()[0]


def test_throughput_runs_with_training_openmp_settings_unless_told_otherwise():
    assert f"GOMP_SPINCOUNT={SPIN_COUNT}" in _throughput()  # (an exported value is kept: test_threads.py)
    assert "libgomp's default waiting" in _throughput("--openmp-defaults")


def test_vs_reference_runs_the_reference_both_as_given_and_with_training_openmp_settings(monkeypatch):
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import vs_reference

    args = argparse.Namespace(reference=Path("reference_epm.py"), track="A", steps=10, lora="naive")
    runs = vs_reference.commands(args)
    assert runs["reference"][0] == runs["reference_omp"][0]
    assert "GOMP_SPINCOUNT" not in runs["reference"][1]
    assert runs["reference_omp"][1]["GOMP_SPINCOUNT"] == SPIN_COUNT
    assert "throughput.py" in runs["eager"][0][1]  # which sets the same itself


def test_step_profile_times_every_stage_of_real_steps():
    out = subprocess.run([sys.executable, str(BENCHMARKS / "step_profile.py"), "--tracks", "AC", "--steps", "3",
                          "--warmup", "1", "--device", "cpu"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    rows = {line.split()[1]: [float(v) for v in line.split()[2:]] for line in out.stdout.splitlines()
            if line.startswith("track ")}
    assert set(rows) == {"A", "C"}
    for inputs, forward, backward, optimiser, finish, step in rows.values():
        assert min(inputs, forward, backward, optimiser, finish) > 0
        assert 0.8 * step < inputs + forward + backward + optimiser + finish < 1.2 * step  # medians: not additive
        assert forward + backward > 0.5 * step  # the encoders' work, not the timing, fills the step
