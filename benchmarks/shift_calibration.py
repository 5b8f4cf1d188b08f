"""Model-free shift calibration: how much of a shift's error can a predictor repair, before any model is trained?

For each shift kind × strength × horizon set × context frames, on digit positions simulated by the tool's own
physics (``jepa_tui.data.worlds.simulate``, the default ``[data]`` settings otherwise):

- the persistence error (RMSE of p_{t+k} − p_t, px) in the base and in the shift world;
- the share of (digit, t → t + k) windows with a wall bounce in them, in the shift world;
- the position-space ceiling: the best *linear* predictor of p_{t+k} from the C context positions
  (p_{t−C+1} … p_t, per axis, with a constant) fitted on the base world against the same fitted on the shift world,
  both scored on the shift world: D_pos = Σ error² / Σ persistence error² (1 = persistence, 0 = perfect, like
  ``ratio_of_sums``), and the share of the base-fitted predictor's error that the shift-fitted one removes
  (*repairable*: what memory of the shift could win at most, for a linear reader of positions);
- the reverse penalty: the shift-fitted predictor on the base world, against the base-fitted one there.

A cell worth studying has a large repairable share at context frames where velocity is observable (C ≥ 2); with
C = 1 only the mean drift is predictable. Seconds on a CPU; no model, no GPU. Prints a Markdown table (and
``--csv FILE``).

Usage: python benchmarks/shift_calibration.py [--sequences 2000] [--csv calibration.csv]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
import time

import numpy as np

from jepa_tui.config import DataConfig
from jepa_tui.data.worlds import Physics, simulate

KINDS: dict[str, list[tuple[str, Physics]]] = {
    "gravity": [(f"{g:g}", Physics(gravity_row=g)) for g in (0.5, 1.0, 2.0)],
    "friction": [(f"{mu:g}", Physics(friction=mu)) for mu in (0.02, 0.05, 0.1)],
    "restitution": [(f"{r:g}", Physics(restitution=r)) for r in (0.8, 0.6)],
    "speed": [(f"x{s:g}", Physics(speed_scale=s)) for s in (1.5, 2.0)],
}
HORIZON_SETS = ((1, 2, 4), (1, 5, 10))
CONTEXTS = (1, 2)


@dataclasses.dataclass
class World:
    positions: np.ndarray  # (N, T, D, 2) px
    bounces: np.ndarray  # (N, T, D) bool: a wall hit on the way to that frame


def make_world(cfg: DataConfig, physics: Physics, count: int, seed: int) -> World:
    bounces = np.zeros((count, cfg.frames, cfg.num_digits), dtype=bool)
    positions, _ = simulate(count, cfg, physics, 1, np.random.default_rng(seed), bounces=bounces)
    return World(positions, bounces)


def samples(world: World, k: int, context: int, last_start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features (M, C + 1) per coordinate, targets (M,), current positions (M,) over every start t in
    [C − 1, last_start), digit and axis; and the bounce flag of each (digit, window) (M,)."""
    p = world.positions  # (N, T, D, 2)
    starts = np.arange(context - 1, last_start)
    lags = [p[:, starts - lag] for lag in range(context)]  # each (N, S, D, 2)
    features = np.stack([*lags, np.ones_like(lags[0])], axis=-1)  # (N, S, D, 2, C + 1)
    target = p[:, starts + k]
    window = np.stack([world.bounces[:, starts + j] for j in range(1, k + 1)], axis=-1).any(-1)  # (N, S, D)
    bounce = np.broadcast_to(window[..., None], target.shape)
    return features, target, bounce


def fit(features: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares weights per axis: (2, C + 1)."""
    return np.stack([np.linalg.lstsq(features[..., a, :].reshape(-1, features.shape[-1]),
                                     target[..., a].reshape(-1), rcond=None)[0] for a in range(2)])


def sq_error(weights: np.ndarray, features: np.ndarray, target: np.ndarray) -> float:
    predicted = np.einsum("...ac,ac->...a", features, weights)
    return float(((predicted - target) ** 2).sum())


def cell(cfg: DataConfig, physics: Physics, horizons: tuple[int, ...], context: int, count: int, seed: int
         ) -> dict:
    """One calibration cell's figures (means over the horizon set, and per horizon)."""
    base_fit, base_test = (make_world(cfg, Physics(), count, seed + i) for i in (0, 1))
    shift_fit, shift_test = (make_world(cfg, physics, count, seed + i) for i in (2, 3))
    last_start = cfg.frames - max(horizons)
    per_k = []
    for k in horizons:
        fb, tb, _ = samples(base_fit, k, context, last_start)
        fs, ts, _ = samples(shift_fit, k, context, last_start)
        w_base, w_shift = fit(fb, tb), fit(fs, ts)
        ftb, ttb, _ = samples(base_test, k, context, last_start)
        fts, tts, bounce = samples(shift_test, k, context, last_start)
        persistence_shift = float(((tts - fts[..., 0]) ** 2).sum())
        persistence_base = float(((ttb - ftb[..., 0]) ** 2).sum())
        e_base_on_shift, e_shift_on_shift = sq_error(w_base, fts, tts), sq_error(w_shift, fts, tts)
        e_base_on_base, e_shift_on_base = sq_error(w_base, ftb, ttb), sq_error(w_shift, ftb, ttb)
        n_shift, n_base = tts.size, ttb.size
        per_k.append({
            "k": k,
            "persistence_rmse_base": (persistence_base / n_base) ** 0.5,
            "persistence_rmse_shift": (persistence_shift / n_shift) ** 0.5,
            "bounce_share": float(bounce[..., 0].mean()),
            "d_pos_base_fit": e_base_on_shift / persistence_shift,
            "d_pos_shift_fit": e_shift_on_shift / persistence_shift,
            "repairable": 1.0 - e_shift_on_shift / e_base_on_shift,
            "reverse_penalty": e_shift_on_base / e_base_on_base - 1.0,
        })
    mean = {key: float(np.mean([row[key] for row in per_k])) for key in per_k[0] if key != "k"}
    return {**mean, "per_k": per_k}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=2000, help="sequences per world and split")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--csv", help="also write every cell and horizon to this CSV file")
    args = parser.parse_args()
    cfg = DataConfig()
    started = time.perf_counter()
    rows = []
    print(f"# Model-free shift calibration ({args.sequences} sequences per world and split, frames {cfg.frames}, "
          f"velocity ±{cfg.velocity_max:g} px/frame, canvas {cfg.canvas} px)\n")
    print("| shift | horizons | C | persistence RMSE px base / shift | bounces | D_pos base-fit | D_pos shift-fit "
          "| repairable | reverse penalty |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for kind, strengths in KINDS.items():
        for label, physics in strengths:
            for horizons in HORIZON_SETS:
                for context in CONTEXTS:
                    result = cell(cfg, physics, horizons, context, args.sequences, args.seed)
                    name = f"{kind} {label}"
                    print(f"| {name} | {list(horizons)} | {context} | {result['persistence_rmse_base']:.2f} / "
                          f"{result['persistence_rmse_shift']:.2f} | {100 * result['bounce_share']:.0f} % | "
                          f"{result['d_pos_base_fit']:.3f} | {result['d_pos_shift_fit']:.3f} | "
                          f"{100 * result['repairable']:.0f} % | {100 * result['reverse_penalty']:+.0f} % |",
                          flush=True)
                    for row in result["per_k"]:
                        rows.append({"shift": kind, "strength": label, "horizons": " ".join(map(str, horizons)),
                                     "context_frames": context, **row})
    print(f"\n{time.perf_counter() - started:.1f} s")
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print(f"wrote {args.csv}", file=sys.stderr)


if __name__ == "__main__":
    main()
