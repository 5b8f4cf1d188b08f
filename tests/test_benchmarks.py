"""The benchmarks time what users run: a script that times the trainer in its own process starts OpenMP with the
settings ``jepa-tui train`` gives itself (``benchmarks/openmp.py``), so its figures are those of a training run."""

from __future__ import annotations

import argparse
import ast
import os
import re
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


def test_step_profile_times_every_stage_of_real_steps_and_the_library_kernels_in_them():
    out = subprocess.run([sys.executable, str(BENCHMARKS / "step_profile.py"), "--tracks", "AC", "--steps", "3",
                          "--warmup", "1", "--device", "cpu", "--kernels", "8"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    rows = {line.split()[1]: [float(v) for v in line.split()[2:]] for line in lines
            if line.startswith("track ") and len(line.split()[1]) == 1}
    assert set(rows) == {"A", "C"}
    for inputs, forward, backward, optimiser, finish, step in rows.values():
        assert min(inputs, forward, backward, optimiser, finish) > 0
        assert 0.8 * step < inputs + forward + backward + optimiser + finish < 1.2 * step  # medians: not additive
        assert forward + backward > 0.5 * step  # the encoders' work, not the timing, fills the step
    # every track's kernels: the encoders' convolutions (4 online forward, 4 target forward, 4 backward-weights and
    # 3 backward-data, the first layer's input needing no gradient) lead, with an arithmetic rate each
    yardstick = next(line for line in lines if line.startswith("large fp32 problems on this machine"))
    assert "MKL matrix product" in yardstick and "oneDNN 1x1 convolution" in yardstick
    assert all(float(rate) > 1 for rate in re.findall(r"([0-9.]+) GFLOP/s", yardstick))
    totals = [line for line in lines if line.startswith("kernels ")]
    assert len(totals) == 2
    for line in totals:
        kernels, step = float(line.split()[1]), float(line.split()[5])
        assert 0.3 * step < kernels < 2 * step  # their own times: a share of a step, not the verbose step's length
    tables = out.stdout.split("library kernels over 3 steps")[1:]
    for table in tables:
        body = [line for line in table.splitlines()[2:] if not line.startswith("kernels ")][:8]
        assert len(body) == 8 and all(float(line.split()[0]) > 0 for line in body)
        assert "oneDNN convolution forward_training" in body[0] and float(body[0].split()[2]) > 0


def test_kernel_trace_reads_each_librarys_own_time_and_work(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import torch
    from kernel_trace import conv_flop, parse, trace

    text = "\n".join([
        "onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_fwd:avx512_core,forward_training,src:f32 dst:f32,"
        "attr-scratchpad:user,alg:convolution_direct,mb64_ic16oc32_ih32oh16kh4sh2dh0ph1_iw32ow16kw4sw2dw0pw1,0.5",
        "onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_fwd:avx512_core,forward_training,src:f32 dst:f32,"
        "attr-scratchpad:user,alg:convolution_direct,mb64_ic16oc32_ih32oh16kh4sh2dh0ph1_iw32ow16kw4sw2dw0pw1,0.25",
        "onednn_verbose,v1,primitive,exec,cpu,reorder,jit:uni,undef,src:f32 dst:f32,attr-scratchpad:user,,32x16x4x4,"
        "0.01",
        "onednn_verbose,v1,info,cpu,isa:Intel AVX-512",
        "MKL_VERBOSE SGEMM(T,N,64,128,1024,0x1,0x2,1024,0x3,1024,0x4,0x5,64) 52.5us CNR:OFF Dyn:1 FastMM:1 TID:0",
        "an unrelated line"])
    conv, reorder, gemm = parse(text)
    assert (conv.kind, conv.calls, conv.ms) == ("convolution forward_training", 2, 0.75)
    assert conv.flop == 2 * 2 * 64 * 16 * 32 * 16 * 16 * 4 * 4 == 2 * conv_flop(conv.problem)
    assert abs(conv.gflops - conv.flop / 0.75e6) < 1e-9
    assert (reorder.kind, reorder.gflops) == ("reorder", None)
    assert (gemm.library, gemm.problem, gemm.ms, gemm.flop) == ("MKL", "64×128×1024", 0.0525, 2 * 64 * 128 * 1024)

    x = torch.randn(8, 16, 32, 32)
    w = torch.randn(32, 16, 4, 4, requires_grad=True)
    kernels = trace(lambda: (torch.nn.functional.conv2d(x, w, None, 2, 1).sum().backward(),
                             torch.randn(64, 64) @ torch.randn(64, 1024)))
    kinds = {k.kind: k for k in kernels}
    assert kinds["convolution forward_training"].flop == 2 * 8 * 16 * 32 * 16 * 16 * 4 * 4
    assert "convolution backward_weights" in kinds  # the input needs no gradient: no backward_data
    assert "convolution backward_data" not in kinds
    assert any(k.library == "MKL" and k.flop == 2 * 64 * 64 * 1024 for k in kernels)
    assert all(k.ms > 0 for k in kernels)
