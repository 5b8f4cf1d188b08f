"""A run trained on a GPU continues on a machine without one: its checkpoints' tensors carry a CUDA device tag and
its sampler was on cuda:0 (made here by hand, as no GPU is at hand). Resuming on the CPU loads every tensor intact
(checkpoints load with map_location="cpu"), says that the sampler is reseeded for the CPU, and trains on."""

import json
import shutil
import zipfile

import pytest
import torch
from typer.testing import CliRunner

from jepa_tui.cli.main import app
from jepa_tui.config import load_config
from jepa_tui.runs.checkpoint import _tensors
from jepa_tui.training.loop import RunLoop
from jepa_tui.training.session import prepare_run

runner = CliRunner()


def tag_as_cuda(path) -> int:
    """Rewrite a torch.save zip so that every storage says it was saved from cuda:0; returns how many location
    strings were rewritten."""
    tmp = path.with_suffix(".retag")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as target:
        count = 0
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename.endswith("data.pkl"):
                count = data.count(b"X\x03\x00\x00\x00cpu")  # the pickled location string of each storage
                data = data.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
            target.writestr(info, data)
    tmp.replace(path)
    return count


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks loading CUDA-tagged tensors without CUDA")
def test_a_checkpoint_written_on_a_gpu_resumes_on_the_cpu_bitwise(tmp_path):
    config = load_config("smoke", ["train.steps=40", "eval.every_steps=20"])
    prepared = prepare_run(config, torch.device("cpu"), tmp_path, "cpu_tagged")
    trainer = prepared.trainer
    RunLoop(trainer, prepared.directory, should_stop=lambda: "stop" if trainer.progress.step >= 20 else None).run()
    shutil.copytree(tmp_path / "cpu_tagged", tmp_path / "cuda_tagged")
    (tmp_path / "cuda_tagged" / "writer.lock").unlink(missing_ok=True)
    for path in (tmp_path / "cuda_tagged").glob("*/step_*.pt"):  # checkpoints/ and weights/
        assert tag_as_cuda(path) >= 1  # pickle memoises the string: one or a few occurrences tag every storage
    checkpoint = next((tmp_path / "cuda_tagged" / "checkpoints").glob("step_*.pt"))
    with pytest.raises(RuntimeError, match="CUDA"):
        torch.load(checkpoint, weights_only=True)  # the tag is real: without map_location this machine refuses it
    loaded = [torch.load(sorted((tmp_path / name / "checkpoints").glob("step_*.pt"))[-1], map_location="cpu",
                         weights_only=True)["trainer"] for name in ("cpu_tagged", "cuda_tagged")]
    assert loaded[1]["sampler_device"] == "cuda:0"
    for part in ("model", "optimizer"):
        flat = [dict(_tensors(state[part], part)) for state in loaded]
        assert flat[0].keys() == flat[1].keys() and all(torch.equal(flat[0][k], flat[1][k]) for k in flat[0])
    outputs = {}
    for name in ("cpu_tagged", "cuda_tagged"):
        result = runner.invoke(app, ["train", "--resume", str(tmp_path / name), "--device", "cpu", "--threads", "1"])
        assert result.exit_code == 0, result.output
        outputs[name] = result.output
    assert "the data sampler was saved on cuda:0 and is reseeded for cpu" in outputs["cuda_tagged"]
    assert "reseeded" not in outputs["cpu_tagged"]
    records = [[json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
               for name in ("cpu_tagged", "cuda_tagged")]
    before = [[r for r in run if r["step"] <= 20] for run in records]
    assert before[0] == before[1] and records[1][-1]["step"] == 40  # history kept, training went on
    summary = json.loads((tmp_path / "cuda_tagged" / "summary.json").read_text())
    assert summary["status"] == "done" and summary["device"] == "cpu"

