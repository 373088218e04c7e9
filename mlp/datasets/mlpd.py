"""The binary ``.mlpd`` format (one split per file, read by the C++ port).

Little-endian, no padding::

    offset  size          field
    0       4             magic, the bytes b"MLPD"
    4       4  uint32     version, 1
    8       4  uint32     n, the number of images
    12      4  uint32     rows (28 for MNIST)
    16      4  uint32     cols (28 for MNIST)
    20      n*rows*cols   pixels, uint8 0..255, image after image, each row-major
    20+n*rows*cols  n     labels, uint8

The file size is exactly ``20 + n*rows*cols + n`` bytes; readers compare it with the file's size
(and with ``limits.max_array_bytes``) before reading anything past the header.
"""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from mlp._files import atomic_write

from ._common import (
    COLS,
    ROWS,
    check_declared,
    check_split,
    labels_for_writing,
    open_regular,
    pixels_for_writing,
    read_exact,
    read_up_to,
)
from .errors import bad

__all__ = ["BINARY_MAGIC", "BINARY_VERSION", "read_binary", "write_binary"]

BINARY_MAGIC = b"MLPD"
BINARY_VERSION = 1
_HEADER = struct.Struct("<4sIIII")  # magic, version, n, rows, cols


def write_binary(path: str | os.PathLike, X: ArrayLike, y: ArrayLike) -> Path:
    """Write one split in the ``.mlpd`` format of the module docstring (atomic).

    X: (n, rows, cols), or (n, d) stored as square images when d is a perfect square, else
    (n, 1, d); uint8/integer pixels 0..255 or floats in [0, 1]. y: (n,) integers 0..255.
    """
    path = Path(path)
    X = pixels_for_writing(np.asarray(X), "X")
    if X.ndim == 2:
        side = math.isqrt(X.shape[1])
        X = X.reshape(len(X), side, side) if side * side == X.shape[1] else X.reshape(len(X), 1, -1)
    if X.ndim != 3:
        raise ValueError(f"X must have shape (n, rows, cols) or (n, features), got {X.shape}")
    y = labels_for_writing(y, len(X), max_label=255)
    n, rows, cols = X.shape
    if max(n, rows, cols) >= 2**32:
        raise ValueError(f"MLPD sizes must be < 2**32, got X of shape {X.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:
        handle.write(_HEADER.pack(BINARY_MAGIC, BINARY_VERSION, n, rows, cols))
        handle.write(np.ascontiguousarray(X).tobytes())
        handle.write(y.tobytes())
    return path


def read_binary(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one ``.mlpd`` split: X uint8 (n, rows, cols), y uint8 (n,).

    Checks the magic, the version and that the size is exactly header + pixels + labels, before
    allocating.
    """
    path = Path(path)
    handle, size = open_regular(path)
    with handle:
        head = read_up_to(handle, _HEADER.size)
        if len(head) < _HEADER.size:
            raise bad(path, f"too short for the {_HEADER.size}-byte MLPD header ({size} bytes)")
        magic, version, n, rows, cols = _HEADER.unpack(head)
        if magic != BINARY_MAGIC:
            raise bad(path, f"not an MLPD file: magic {magic!r}, expected {BINARY_MAGIC!r}")
        if version != BINARY_VERSION:
            raise bad(
                path,
                f"MLPD version {version}; this reader knows version {BINARY_VERSION} "
                f"(regenerate with mlp.datasets.convert(src, dst, 'binary'))",
            )
        pixels = n * rows * cols
        expected = _HEADER.size + pixels + n
        if size != expected:
            problem = "truncated" if size < expected else "trailing bytes"
            raise bad(
                path,
                f"{problem}: the header declares {n} images of {rows}x{cols} "
                f"({expected} bytes in all) but the file has {size} bytes",
            )
        check_declared(path, pixels + n, "the MLPD header")
        X = read_exact(handle, pixels, path, "the MLPD header").reshape(n, rows, cols)
        y = read_exact(handle, n, path, "the MLPD header")
    return X, y


def load_binary(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One split of MNIST from an ``.mlpd`` file: 28x28 images and labels 0..9 checked."""
    X, y = read_binary(path)
    if X.shape[1:] != (ROWS, COLS):
        raise bad(path, f"images are {X.shape[1]}x{X.shape[2]}, expected {ROWS}x{COLS}")
    check_split(X, y, path)
    return X, y
