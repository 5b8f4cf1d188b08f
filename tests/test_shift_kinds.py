"""Kinds of shift (`[data.shift]`, the paper's §5.3 future work): each kind's trajectories against a hand simulation,
the old `data.shift_gravity` key read as before, the base world untouched, and bad values refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from jepa_tui.cli.main import app
from jepa_tui.config import ConfigError, DataConfig, ShiftConfig, load_config
from jepa_tui.data.worlds import Physics, Worlds, simulate
from jepa_tui.experiments.spec import load_sweep
from jepa_tui.reporting.collect import collect_runs
from jepa_tui.reporting.report import build_report

runner = CliRunner()
POOL = np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)


def hand_simulate(start: tuple[float, float], velocity: tuple[float, float], physics: Physics, limit: float,
                  frames: int, explicit: bool = False) -> tuple[list[tuple[float, float]], int]:
    """One digit, one axis at a time, in plain floats: accelerate (or move first when ``explicit``), bounce off a
    wall keeping the share ``restitution`` of speed and overshoot, then friction. Returns the positions per frame
    and the number of bounces."""
    p, v = list(start), list(velocity)
    g = (physics.gravity_row, physics.gravity_col)
    out, bounces = [tuple(p)], 0
    for _ in range(1, frames):
        for axis in (0, 1):
            if explicit:
                p[axis] += v[axis]
                v[axis] += g[axis]
            else:
                v[axis] += g[axis]
                p[axis] += v[axis]
            bounces += not 0 <= p[axis] <= limit
            if p[axis] < 0:
                p[axis], v[axis] = -physics.restitution * p[axis], -physics.restitution * v[axis]
            elif p[axis] > limit:
                p[axis] = limit - physics.restitution * (p[axis] - limit)
                v[axis] = -physics.restitution * v[axis]
            v[axis] *= 1.0 - physics.friction
            p[axis] = min(max(p[axis], 0.0), limit)
        out.append((p[0], p[1]))
    return out, bounces


KINDS = {
    "paper gravity": ShiftConfig(),
    "sideways gravity": ShiftConfig(gravity=0.5, gravity_direction_deg=90.0),
    "diagonal gravity up-left": ShiftConfig(gravity=0.8, gravity_direction_deg=225.0),
    "friction": ShiftConfig(gravity=0.0, friction=0.1),
    "speed x2": ShiftConfig(gravity=0.0, speed_scale=2.0),
    "soft walls": ShiftConfig(gravity=0.0, restitution=0.6),
    "everything": ShiftConfig(gravity=0.3, gravity_direction_deg=180.0, friction=0.05, speed_scale=1.5,
                              restitution=0.8),
}


@pytest.mark.parametrize("explicit", [False, True])
@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_of_shift_matches_a_hand_simulation(kind, explicit):
    cfg = DataConfig(shift=KINDS[kind], integration="explicit" if explicit else "semi_implicit", frames=30)
    physics = Physics.shift(cfg)
    positions, _ = simulate(40, cfg, physics, len(POOL), np.random.default_rng(7))
    rng = np.random.default_rng(7)  # the same draws: start positions, then velocities
    limit = float(cfg.canvas - cfg.digit_size)
    starts = rng.uniform(0.0, limit, (40, cfg.num_digits, 2))
    velocities = rng.uniform(-cfg.velocity_max, cfg.velocity_max, (40, cfg.num_digits, 2)) * physics.speed_scale
    bounced = 0
    for n in range(40):
        for d in range(cfg.num_digits):
            expected, bounces = hand_simulate(tuple(starts[n, d]), tuple(velocities[n, d]), physics, limit,
                                              cfg.frames, explicit)
            assert np.allclose(positions[n, :, d], expected, atol=1e-9), (kind, n, d)
            bounced += bounces
    assert bounced > 20  # the walls were part of the check
    assert positions.min() >= 0 and positions.max() <= limit


def test_the_kinds_move_digits_as_their_physics_says():
    """Closed forms away from the walls: sideways gravity accelerates columns only; friction shrinks each frame's
    displacement by 1 − μ; a speed scale multiplies the first displacement."""
    cfg = DataConfig()

    def away(shift: ShiftConfig) -> np.ndarray:
        """(digits, frames, 2) of the digits that stay further from every wall than they move in a frame."""
        pos, _ = simulate(300, DataConfig(shift=shift, frames=8), Physics.shift(DataConfig(shift=shift)),
                          len(POOL), np.random.default_rng(3))
        per_digit = pos.transpose(0, 2, 1, 3).reshape(-1, 8, 2)
        limit, margin = cfg.canvas - cfg.digit_size, cfg.velocity_max + 0.5 * 8
        inside = ((per_digit > margin) & (per_digit < limit - margin)).all(axis=(1, 2))
        assert inside.sum() > 10
        return per_digit[inside]

    sideways = away(ShiftConfig(gravity=0.5, gravity_direction_deg=90.0))
    assert np.allclose(np.diff(sideways[..., 1], n=2, axis=1), 0.5)  # columns: +0.5 px/frame²
    assert np.allclose(np.diff(sideways[..., 0], n=2, axis=1), 0.0, atol=1e-12)  # rows: straight lines
    steps = np.diff(away(ShiftConfig(gravity=0.0, friction=0.2)), axis=1)
    assert np.allclose(steps[:, 1:], 0.8 * steps[:, :-1])
    fast, _ = simulate(300, DataConfig(frames=2), Physics(speed_scale=2.0), len(POOL), np.random.default_rng(3))
    slow, _ = simulate(300, DataConfig(frames=2), Physics(), len(POOL), np.random.default_rng(3))
    reach = 2.0 * cfg.velocity_max  # (N, D): digits that start too far from the walls to bounce in one frame
    free = ((fast[:, 0] > reach) & (fast[:, 0] < cfg.canvas - cfg.digit_size - reach)).all(axis=-1)
    assert free.sum() > 100
    assert np.allclose((fast[:, 1] - fast[:, 0])[free], 2.0 * (slow[:, 1] - slow[:, 0])[free])


def test_the_old_gravity_key_reads_as_before(tmp_path):
    """A profile with only `data.shift_gravity` gives the same shift world as before `[data.shift]` existed
    (gravity straight down, elastic walls), and `[data.shift] gravity` says the same thing the new way."""
    old = tmp_path / "old.toml"
    old.write_text('[train]\ntrack = "A"\n\n[data]\nshift_gravity = 1.0\nbase_splits = [6, 2, 2]\n'
                   "shift_splits = [4, 1, 1]\n")
    new = tmp_path / "new.toml"
    new.write_text('[train]\ntrack = "A"\n\n[data]\nbase_splits = [6, 2, 2]\nshift_splits = [4, 1, 1]\n\n'
                   "[data.shift]\ngravity = 1.0\n")
    a, b = load_config(str(old)), load_config(str(new))
    assert a.data.shift_gravity == 1.0 and a.data.shift.gravity is None
    assert Physics.shift(a.data) == Physics.shift(b.data) == Physics(gravity_row=1.0)
    assert a.shift_description == b.shift_description == "gravity 1 px/frame² down"
    wa, wb = (Worlds(c.data, torch.device("cpu"), POOL) for c in (a, b))
    for split in ("train", "val", "test"):
        assert torch.equal(wa.shift[split].positions, wb.shift[split].positions)
    # and both equal the float-gravity simulation the shift world always was, seeded by the second child seed
    _, shift_seed = np.random.SeedSequence(0).spawn(2)
    positions, _ = simulate(6, a.data, 1.0, len(POOL), np.random.default_rng(shift_seed))
    stacked = torch.cat([wa.shift[s].positions for s in ("train", "val", "test")])
    assert torch.equal(stacked, torch.from_numpy(np.rint(positions).astype(np.int16)))
    default = load_config("track_c")
    assert default.shift_description == "gravity 0.5 px/frame² down" and Physics.shift(default.data) == \
        Physics(gravity_row=0.5)


def test_the_base_world_ignores_the_shift_and_worlds_stay_deterministic():
    plain = DataConfig(base_splits=(6, 2, 2), shift_splits=(4, 1, 1))
    shifted = DataConfig(base_splits=(6, 2, 2), shift_splits=(4, 1, 1), shift=KINDS["everything"])
    w0, w1, w2 = (Worlds(c, torch.device("cpu"), POOL) for c in (plain, shifted, shifted))
    assert torch.equal(w0.base["train"].positions, w1.base["train"].positions)
    assert torch.equal(w1.shift["train"].positions, w2.shift["train"].positions)
    assert not torch.equal(w0.shift["train"].positions, w1.shift["train"].positions)


@pytest.mark.parametrize(("setting", "message"), [
    ("data.shift.friction=1.5", "'data.shift.friction' = 1.5 is out of range; allowed: 0 <= value < 1"),
    ("data.shift.speed_scale=0", "'data.shift.speed_scale' = 0.0 is out of range"),
    ("data.shift.restitution=2", "'data.shift.restitution' = 2.0 is out of range"),
    ("data.shift.frction=0.1", "unknown key 'data.shift.frction'"),
    ("data.shift=3", "'data.shift' is a table ([data.shift]) of keys: gravity, gravity_direction_deg, friction"),
    ("data.shift_gravity.x=1", "'data.shift_gravity' is not a table"),
])
def test_bad_shift_settings_name_the_key(setting, message, tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config("smoke", [setting])
    assert message in str(caught.value)
    result = runner.invoke(app, ["train", "--profile", "smoke", "--runs-dir", str(tmp_path), "--set", setting])
    assert result.exit_code == 2 and message in result.output and not any(tmp_path.iterdir())


def test_a_shift_types_sweep_reports_one_table_per_kind(tmp_path):
    spec = load_sweep("shift_types")
    kinds = {r.variant for r in spec.runs()}
    assert len(kinds) == 6 and {r.track for r in spec.runs()} == {"A", "B", "C"}
    result = runner.invoke(app, ["sweep", "--profile", "shift_types", "--variants", "gravity_sideways", "--variants",
                                 "friction", "--tracks", "a", "--runs-dir", str(tmp_path), "--sweep-id", "kinds",
                                 "--steps", "20",
                                 *_smoke_sets()])
    assert result.exit_code == 0, result.output
    text = build_report(*collect_runs([tmp_path / "kinds"])).markdown()
    assert "### friction: Shift world: friction 0.05" in text
    assert "### gravity_sideways: Shift world: gravity 0.5 px/frame² right" in text


def _smoke_sets() -> list[str]:
    """The smoke profile's sizes as overrides, so a sweep of a full-size profile runs in seconds."""
    sets = ["data.frames=9", "data.base_splits=[64, 16, 16]", "data.shift_splits=[32, 8, 8]",
            "model.encoder_channels=[4, 8, 8, 8]", "model.hidden_dim=64", "model.latent_dim=16",
            "model.horizons=[1, 2, 4]", "train.batch_size=8", "eval.every_steps=20", "eval.n_experiences=5",
            "eval.base_sequences=8"]
    return [x for s in sets for x in ("--set", s)]
