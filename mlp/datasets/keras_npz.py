"""Keras-style ``mnist.npz``: a zip of ``x_train.npy``, ``y_train.npy``, ``x_test.npy``, ``y_test.npy``.

Read by ``mlp._npz``, the package's one .npz reader (never ``np.load``), so that nothing is inflated
before it is checked: the zip directory first (duplicate names refused, unknown entries ignored and
never inflated, only stored or deflated entries), then the ``.npy`` header of each wanted entry, whose
declared size must agree with the entry's uncompressed size in the directory and stay within
:data:`limits`; then the data, inflated in bounded chunks that stop at the declared size (the CRC is
checked at the end). Object arrays (pickles) are never loaded. This module adds what a Keras
``mnist.npz`` must hold: the four keys, integer arrays, (N, 28, 28) images and N labels.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from mlp._files import atomic_write
from mlp._npz import NpzError, NpzReader

from ._common import (
    COLS,
    PIXELS,
    ROWS,
    as_images,
    check_split,
    limits,
    open_regular,
    pixels_to_uint8,
    read_up_to,
)
from .errors import DatasetFormatError, bad

__all__ = ["save_npz"]

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
_SPLIT_KEYS = {"train": ("x_train", "y_train"), "test": ("x_test", "y_test")}
_NPY_MAGIC = b"\x93NUMPY"


def read_npz_arrays(path: Path, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of an .npz file, read by the package's one .npz reader (``mlp._npz``) with
    at most ``limits.max_array_bytes`` of data each; a DatasetFormatError for anything wrong with it."""
    handle, _ = open_regular(path)
    try:
        if read_up_to(handle, len(_NPY_MAGIC)) == _NPY_MAGIC:
            raise bad(
                path, "is a single .npy array; expected an .npz archive with keys " + ", ".join(NPZ_KEYS)
            )
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    try:
        with NpzReader(handle, str(path)) as archive:
            missing = [k for k in keys if k not in archive]
            if missing:
                found = ", ".join(sorted(archive.keys)) or "none"
                raise bad(
                    path,
                    f"missing key(s) {', '.join(missing)}; found {found} "
                    f"(expected the Keras layout {', '.join(NPZ_KEYS)})",
                )
            arrays: dict[str, np.ndarray] = {}
            for key in keys:
                dtype = archive.header(key).dtype()  # object arrays (pickles) are refused here
                if dtype.kind not in "biuf" or dtype.shape:
                    raise bad(path, f"{key} has dtype {dtype}; expected integer pixels or labels")
                arrays[key] = archive.read(
                    key, max_bytes=limits.max_array_bytes, limit_name="mlp.datasets.limits.max_array_bytes"
                )
    except NpzError as error:
        raise DatasetFormatError(str(error), path=path) from None
    return arrays


def _check_pair(
    path: Path, X: np.ndarray, y: np.ndarray, x_key: str, y_key: str
) -> tuple[np.ndarray, np.ndarray]:
    if X.ndim == 2 and X.shape[1] == PIXELS:
        X = X.reshape(-1, ROWS, COLS)
    if X.ndim != 3 or X.shape[1:] != (ROWS, COLS):
        raise bad(path, f"{x_key} has shape {X.shape}; expected (N, 28, 28) or (N, 784)")
    if y.ndim != 1:
        raise bad(path, f"{y_key} has shape {y.shape}; expected (N,)")
    if y.dtype.kind not in "iu":
        raise bad(path, f"{y_key} has dtype {y.dtype}; expected integer labels 0..9")
    X = pixels_to_uint8(X, path, x_key)
    check_split(X, y, path)
    return np.ascontiguousarray(X), y.astype(np.uint8)


def load_npz(path: Path, splits: Sequence[str] = ("train", "test")) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(X uint8 (N, 28, 28), y uint8 (N,)) for each split], reading only those entries."""
    keys = [key for split in splits for key in _SPLIT_KEYS[split]]
    arrays = read_npz_arrays(path, keys)
    return [
        _check_pair(path, arrays[x_key], arrays[y_key], x_key, y_key)
        for x_key, y_key in (_SPLIT_KEYS[split] for split in splits)
    ]


def save_npz(
    path: str | os.PathLike,
    train: tuple[ArrayLike, ArrayLike],
    test: tuple[ArrayLike, ArrayLike],
    *,
    compress: bool = True,
) -> Path:
    """Save ``(X_train, y_train), (X_test, y_test)`` as a Keras-style ``mnist.npz`` (atomic).

    Stored as uint8 ``x_*`` of shape (N, 28, 28) and uint8 ``y_*`` of shape (N,). X may be
    uint8/integer pixels 0..255 or floats in [0, 1] (as ``load_mnist`` returns), flat or not.
    ``compress=False`` writes faster and larger (np.savez instead of np.savez_compressed).
    """
    path = Path(path)
    arrays: dict[str, Any] = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    for (X, y), suffix in ((train, "train"), (test, "test")):
        X, y = as_images(X, y, f"x_{suffix}")
        arrays[f"x_{suffix}"], arrays[f"y_{suffix}"] = X, y
    with atomic_write(path) as handle:
        (np.savez_compressed if compress else np.savez)(handle, **arrays)
    return path
