"""The analyses the paper planned but could not run without checkpoints (spec §7, "planned but not done").

For one checkpoint, under the evaluation protocol (spec §5: the training buffer plus n = 50 shift-world
experiences, the shift test split):

- SVD of the predictor's outputs (smallest horizon, centred): singular values and the effective rank
  exp(H(p)), p_i = s_i / Σ s (Roy & Vetterli 2007), to test "transient contraction, not collapse" at σ_z < 0.5;
- buffer attention: the mean attention weight of each entry against its age (pushes ago, 0 = newest) and its
  world (base or shift);
- D_shift per horizon k, and the surprisal trace of the base predictor across a base → shift switch, with the
  detector's threshold μ + κσ (on a copy of the detector: nothing of the run changes).
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field

import torch

from jepa_tui.config import Config
from jepa_tui.data.worlds import Worlds
from jepa_tui.evaluation.evaluate import buffer_restored, evaluate, prepare_shift_buffer, split_latents, start_latents
from jepa_tui.evaluation.metrics import effective_rank
from jepa_tui.model.jepa import JEPAWorldModel
from jepa_tui.model.memory import WORLD_SHIFT


@dataclass
class Analysis:
    """One checkpoint's analyses (all JSON-ready). ``attention`` rows: age (pushes ago), world, step, weight."""

    step: int
    d_shift: float
    sigma_z: float
    d_shift_per_horizon: dict[str, float]
    singular_values: list[float]
    effective_rank: float
    attention: list[dict] = field(default_factory=list)
    attention_mass: dict[str, float] = field(default_factory=dict)  # total weight on base / shift entries
    surprisal_trace: list[dict] = field(default_factory=list)
    evaluations: dict[str, dict] = field(default_factory=dict)  # tag -> the re-evaluation at this step

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def _shift_outputs(model: JEPAWorldModel, worlds: Worlds, config: Config, step: int
                   ) -> tuple[torch.Tensor, list[dict], dict[str, float]]:
    """Predictor outputs (N, d) at the smallest horizon on the shift test split, and the attention rows."""
    memory = model.memory
    with buffer_restored(model):
        prepare_shift_buffer(model, worlds, config, step)
        test = worlds.shift["test"]
        online, _ = split_latents(model, worlds, test, len(test))
        z = start_latents(model, online)
        rows: list[dict] = []
        mass: dict[str, float] = {}
        if memory is None:
            experience = None
        else:
            encoded, valid = memory.encode_entries()
            experience, weights = memory.aggregator(z, encoded, valid)
            mean_weight = weights.mean(0)
            order = memory.buffer.order().tolist()  # oldest first
            for age, slot in enumerate(reversed(order)):
                world = "shift" if int(memory.buffer.entry_world[slot]) == WORLD_SHIFT else "base"
                rows.append({"age": age, "world": world, "step": int(memory.buffer.entry_step[slot]),
                             "weight": float(mean_weight[slot])})
            for world in ("base", "shift"):
                mass[world] = sum(r["weight"] for r in rows if r["world"] == world)
        outputs = model.predict(z, experience).latents[:, 0]
    return outputs, rows, mass


@torch.no_grad()
def surprisal_trace(model: JEPAWorldModel, worlds: Worlds, config: Config, batches: int = 30,
                    seed: int = 0) -> list[dict]:
    """Base-predictor surprisal of ``batches`` base-world then ``batches`` shift-world training batches, with the
    threshold μ + κσ of a copy of the run's detector before each observation and whether it fired."""
    detector = copy.deepcopy(model.memory.detector) if model.memory is not None else None
    generator = torch.Generator(device=worlds.device)
    generator.manual_seed(seed)
    k = model.surprisal_horizon
    rows = []
    for world, split in (("base", worlds.base["train"]), ("shift", worlds.shift["train"])):
        batch = min(config.train.batch_size, len(split))
        for _ in range(batches):
            frames = worlds.sample_transitions(split, batch, k, generator)
            surprisal = model.base_surprisal(model.encode(frames[:, 0]), model.encode_target(frames[:, 1]))
            row = {"index": len(rows), "world": world, "surprisal": float(surprisal)}
            if detector is not None:
                row["threshold"] = float(detector.mu + detector.kappa * detector.sigma)
                row["fired"] = bool(detector.observe(surprisal))
            rows.append(row)
    return rows


def analyse(model: JEPAWorldModel, worlds: Worlds, config: Config, step: int) -> Analysis:
    """All analyses of the model as it is at ``step`` (its training state is left unchanged)."""
    was_training = model.training
    model.eval()
    try:
        result = evaluate(model, worlds, config, step)
        outputs, rows, mass = _shift_outputs(model, worlds, config, step)
        centred = outputs - outputs.mean(0, keepdim=True)
        singular = torch.linalg.svdvals(centred.double())
        trace = surprisal_trace(model, worlds, config)
    finally:
        model.train(was_training)
    values = [float(v) for v in singular]
    return Analysis(step, result.d_shift, result.sigma_z, result.d_shift_per_horizon, values,
                    effective_rank(singular), rows, mass, trace)


def evaluations_at(evaluations: dict[str, list[dict]], step: int, formula: str) -> dict[str, dict]:
    """What ``jepa-tui evaluate`` found at ``step``, per tag (``evaluations/<tag>.jsonl``): D_shift under
    ``formula``, memory gain, content effect, pixel RMSE (px) and test-time-trained D_shift, with the settings that
    differed from the run's; tags without a record at that step are left out."""
    found = {}
    for tag, records in sorted(evaluations.items()):
        record = next((r for r in records if isinstance(r, dict) and r.get("step") == step), None)
        if record is None:
            continue
        table = record.get("formulas")
        under = table.get(formula) if isinstance(table, dict) else None
        d_shift = under.get("d_shift") if isinstance(under, dict) else record.get("d_shift")
        row = {"d_shift": d_shift, **{key: record.get(key) for key in
                                      ("memory_gain", "content_effect", "pos_rmse_px", "d_shift_ttt")}}
        found[tag] = {key: float(value) for key, value in row.items()
                      if isinstance(value, int | float) and not isinstance(value, bool)}
        diff = record.get("config_diff")
        found[tag]["settings"] = {k: v[1] for k, v in diff.items() if isinstance(v, list) and len(v) == 2} \
            if isinstance(diff, dict) else {}
    return found


def age_correlation(rows: list[dict]) -> float:
    """Pearson correlation between entry age and mean attention weight (nan for fewer than 3 entries)."""
    if len(rows) < 3:
        return math.nan
    ages = torch.tensor([r["age"] for r in rows], dtype=torch.float64)
    weights = torch.tensor([r["weight"] for r in rows], dtype=torch.float64)
    return float(torch.corrcoef(torch.stack([ages, weights]))[0, 1])


def attention_table(rows: list[dict], bin_size: int = 50) -> list[dict]:
    """Mean attention weight per (age bin, world): ``[{"ages": "0-49", "world": "shift", "entries": n,
    "mean_weight": w, "mass": m}, ...]``, youngest bin first. A uniform attention gives 1 / entries everywhere."""
    table: dict[tuple[int, str], list[float]] = {}
    for r in rows:
        table.setdefault((r["age"] // bin_size, r["world"]), []).append(r["weight"])
    return [{"ages": f"{b * bin_size}-{(b + 1) * bin_size - 1}", "world": world, "entries": len(weights),
             "mean_weight": sum(weights) / len(weights), "mass": sum(weights)}
            for (b, world), weights in sorted(table.items())]
