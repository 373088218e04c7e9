"""What every reader and writer of the package shares: constants, size limits, bounded reads, checks.

Standard library and NumPy only; imports nothing else from the package but :mod:`.errors` and
``mlp._files`` (its one safe opener of input files).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike

from mlp._files import open_regular_file

from .errors import DatasetFormatError, DatasetNotFoundError, bad

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
#: The four canonical IDX file names (uncompressed; mirrors serve them with ``.gz`` appended).
FILE_NAMES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
#: The (images, labels) IDX file names of each split.
SPLIT_FILES = {"train": (TRAIN_IMAGES, TRAIN_LABELS), "test": (TEST_IMAGES, TEST_LABELS)}
SPLITS = ("train", "test")

DATASETS = ("mnist", "fashion-mnist")
PRETTY = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}

ROWS = COLS = 28
PIXELS = ROWS * COLS
NUM_CLASSES = 10
CHUNK = 1 << 20

#: Deflate cannot expand data more than about 1032 times: a compressed file of n bytes that
#: declares more than this many times n of content is lying, whatever it holds.
MAX_DEFLATE_RATIO = 1032


@dataclass
class Limits:
    """Sizes the readers refuse before allocating anything (change ``mlp.datasets.limits``).

    max_array_bytes: the largest array one file may declare (2 GiB; MNIST's biggest is 47 MB).
    max_csv_line_bytes: the longest CSV line (64 KiB; an MNIST row is at most about 4 KB).
    """

    max_array_bytes: int = 2**31
    max_csv_line_bytes: int = 1 << 16


limits = Limits()


def normalize_dataset(dataset: str) -> str:
    key = str(dataset).lower().replace("_", "-")
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected 'mnist' or 'fashion-mnist'")
    return key


def normalize_split(split: str) -> tuple[str, ...]:
    """The splits to read for ``split`` = "both", "train" or "test"."""
    if split == "both":
        return SPLITS
    if split in SPLITS:
        return (split,)
    raise ValueError(f"split must be 'both', 'train' or 'test', got {split!r}")


# --------------------------------------------------------------------------------------------
# Bounded reading
# --------------------------------------------------------------------------------------------


class BinaryStream(Protocol):
    """What the readers read from: a file, a gzip stream or a zip entry, opened in binary mode."""

    def read(self, size: int = -1, /) -> bytes: ...
    def readinto(self, buffer: memoryview, /) -> int | None: ...
    def tell(self) -> int: ...


def open_regular(path: Path) -> tuple[io.BufferedReader, int]:
    """Open a regular file for reading: (handle, size). Devices, pipes and folders are refused, and a
    FIFO never blocks (the package's one opener, ``mlp._files.open_regular_file``)."""
    try:
        handle = open_regular_file(path, "data file", lambda message: DatasetFormatError(message, path=path))
    except FileNotFoundError:
        raise DatasetNotFoundError(f"{path} does not exist") from None
    except OSError as exc:
        raise bad(path, f"cannot be read ({exc.strerror or exc})") from None
    return handle, os.fstat(handle.fileno()).st_size


def check_declared(
    path: str | os.PathLike, nbytes: int, what: str, *, compressed_size: int | None = None
) -> None:
    """Refuse a declared size over the limit, or over what ``compressed_size`` bytes can inflate to."""
    if nbytes > limits.max_array_bytes:
        raise bad(
            path,
            f"{what} declares {nbytes:,} bytes of data, more than the limit of "
            f"{limits.max_array_bytes:,} (mlp.datasets.limits.max_array_bytes; raise it "
            f"if the file is genuine)",
        )
    if compressed_size is not None and nbytes > MAX_DEFLATE_RATIO * compressed_size + 1024:
        raise bad(
            path,
            f"{what} declares {nbytes:,} bytes of data, more than {compressed_size:,} "
            f"compressed bytes can hold: the header is corrupt",
        )


def read_exact(stream: BinaryStream, nbytes: int, path: str | os.PathLike, what: str) -> np.ndarray:
    """Exactly ``nbytes`` bytes of ``stream`` as a new uint8 array, read in bounded chunks.

    The size must already be checked (:func:`check_declared`). Fewer bytes: "truncated".
    """
    buffer = np.empty(nbytes, dtype=np.uint8)
    view = buffer.data
    got = 0
    while got < nbytes:
        n = stream.readinto(view[got : got + CHUNK])
        if not n:
            raise bad(path, f"truncated: {what} declares {nbytes:,} bytes of data but only {got:,} follow")
        got += n
    return buffer


def read_up_to(stream: BinaryStream, nbytes: int) -> bytes:
    """At most ``nbytes`` bytes (fewer only at the end of the stream)."""
    parts, got = [], 0
    while got < nbytes:
        part = stream.read(nbytes - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


# --------------------------------------------------------------------------------------------
# Checks shared by all readers
# --------------------------------------------------------------------------------------------


def check_split(
    X: np.ndarray, y: np.ndarray, x_where: str | os.PathLike, y_where: str | os.PathLike | None = None
) -> None:
    """Counts match and labels are in 0..9 (X: (N, 28, 28) uint8, y: (N,) integer)."""
    y_where = x_where if y_where is None else y_where
    if X.shape[0] != y.shape[0]:
        if x_where == y_where:
            raise bad(x_where, f"{X.shape[0]} images but {y.shape[0]} labels")
        raise bad(y_where, f"{y.shape[0]} labels but {x_where} has {X.shape[0]} images")
    if y.size:
        wrong = np.flatnonzero((y < 0) | (y >= NUM_CLASSES))
        if wrong.size:
            i = int(wrong[0])
            raise bad(
                y_where,
                f"label {y[i]} at index {i} is outside 0..{NUM_CLASSES - 1} ({wrong.size} bad labels in all)",
            )


def pixels_to_uint8(X: np.ndarray, where: str | os.PathLike, name: str = "pixels") -> np.ndarray:
    """Integer pixels in 0..255 -> uint8, or a DatasetFormatError."""
    if X.dtype == np.uint8:
        return X
    if X.dtype.kind not in "iub":
        raise bad(where, f"{name} have dtype {X.dtype}; expected integers 0..255 (uint8)")
    if X.size and (X.min() < 0 or X.max() > 255):
        raise bad(where, f"{name} must be in 0..255, found values in {X.min()}..{X.max()}")
    return X.astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Conversion helpers for writers (bad arguments: ValueError / TypeError)
# --------------------------------------------------------------------------------------------


def pixels_for_writing(X: np.ndarray, name: str) -> np.ndarray:
    """uint8 pixels from integers 0..255 or floats in [0, 1] (rounded x*255)."""
    if X.dtype == np.uint8:
        return X
    if X.dtype.kind in "iub":
        if X.size and (X.min() < 0 or X.max() > 255):
            raise ValueError(f"{name}: integer pixels must be in 0..255, got {X.min()}..{X.max()}")
        return X.astype(np.uint8)
    if X.dtype.kind == "f":
        if X.size and not (np.isfinite(X).all() and X.min() >= 0 and X.max() <= 1):
            raise ValueError(
                f"{name}: floating-point pixels must be normalized to [0, 1] as load_mnist "
                f"returns them; cast 0..255 data to uint8 first"
            )
        return np.rint(X * 255).astype(np.uint8)
    raise TypeError(f"{name}: pixels must be numeric, got dtype {X.dtype}")


def labels_for_writing(y: ArrayLike, n: int, *, max_label: int = NUM_CLASSES - 1) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"labels must have shape ({n},) to match the images, got {y.shape}")
    if y.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers, got dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() > max_label):
        raise ValueError(f"labels must be in 0..{max_label}, got {y.min()}..{y.max()}")
    return y.astype(np.uint8)


def as_images(X: ArrayLike, y: ArrayLike, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(N, 28, 28) uint8 images and (N,) uint8 labels 0..9 from what load_mnist returns."""
    X = np.asarray(X)
    if X.ndim == 2 and X.shape[1] == PIXELS:
        X = X.reshape(-1, ROWS, COLS)
    if X.ndim != 3 or X.shape[1:] != (ROWS, COLS):
        raise ValueError(f"{name} must have shape (N, 784) or (N, 28, 28), got {X.shape}")
    return pixels_for_writing(X, name), labels_for_writing(y, len(X))
