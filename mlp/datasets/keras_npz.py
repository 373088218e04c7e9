"""Keras-style ``mnist.npz``: a zip of ``x_train.npy``, ``y_train.npy``, ``x_test.npy``, ``y_test.npy``.

Read without ``np.load``, so that nothing is inflated before it is checked: the zip central
directory first (duplicate names refused, unknown entries ignored and never inflated, only stored or
deflated entries), then the ``.npy`` header of each wanted entry, whose declared size must agree with
the entry's uncompressed size in the directory and with :data:`limits`; then the data, inflated in
bounded chunks that stop at the declared size (the CRC is checked at the end). Object arrays
(pickles) are never loaded.
"""

from __future__ import annotations

import collections
import math
import os
import struct
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike

from mlp._files import atomic_write

from ._common import (
    COLS,
    PIXELS,
    ROWS,
    BinaryStream,
    as_images,
    check_declared,
    check_split,
    open_regular,
    pixels_to_uint8,
    read_exact,
    read_up_to,
)
from .errors import DatasetFormatError, bad

__all__ = ["save_npz"]

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
_SPLIT_KEYS = {"train": ("x_train", "y_train"), "test": ("x_test", "y_test")}
_NPY_MAGIC = b"\x93NUMPY"
_MAX_NPY_HEADER = 10_000
# What a broken zip directory can make the standard library raise.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    EOFError,
    ValueError,
    OverflowError,
    struct.error,
    NotImplementedError,
    RuntimeError,
    zlib.error,
    KeyError,
)


def _entries(path: Path, archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """Key (entry name without ``.npy``) -> ZipInfo; refuses duplicate names or keys."""
    infos = archive.infolist()
    counts = collections.Counter(info.filename for info in infos)
    twice = sorted(name for name, count in counts.items() if count > 1)
    if twice:
        raise bad(
            path,
            f"holds more than one entry named {twice[0]!r}; refusing an ambiguous archive "
            f"(readers would disagree on which one counts)",
        )
    entries = {}
    for info in infos:
        key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        if key in entries:
            raise bad(path, f"holds both {key!r} and {key + '.npy'!r}; refusing an ambiguous archive")
        entries[key] = info
    return entries


def _npy_header(stream: BinaryStream, path: Path, key: str) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    """(shape, fortran_order, dtype) from the header of one ``.npy`` entry, checked."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "created on Python 2", odd escapes: parsed or refused below
            return _checked_header(stream, path, key)
    except DatasetFormatError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:  # the zip stream, not the header
        raise bad(path, f"{key} is corrupt ({type(exc).__name__}: {exc})") from None
    except Exception as exc:
        # SyntaxError, tokenize.TokenError, RecursionError, ... on malformed input: all mean "not .npy"
        raise bad(path, f"{key} is not a valid .npy array ({type(exc).__name__}: {exc})") from None


def _checked_header(
    stream: BinaryStream, path: Path, key: str
) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    major, _minor = np.lib.format.read_magic(stream)
    if major == 1:
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream, max_header_size=_MAX_NPY_HEADER)
    elif major == 2:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream, max_header_size=_MAX_NPY_HEADER)
    else:
        raise ValueError(f".npy format version {major} (this reader knows 1 and 2)")
    if dtype.hasobject:
        raise bad(path, f"{key} is an object array, which is never loaded (no pickles)")
    if dtype.kind not in "biuf" or dtype.shape:
        raise bad(path, f"{key} has dtype {dtype}; expected integer pixels or labels")
    if any(d < 0 for d in shape):
        raise bad(path, f"{key} declares the impossible shape {shape}")
    return tuple(shape), bool(fortran), dtype


def _read_entry(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str) -> np.ndarray:
    """One array, its declared size checked against the zip directory before anything is inflated."""
    if info.flag_bits & 0x1:
        raise bad(path, f"{key} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise bad(
            path,
            f"{key} uses zip compression method {info.compress_type}; only stored or "
            f"deflated entries are read (save with np.savez or np.savez_compressed)",
        )
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        raise bad(
            path,
            f"{key} is stored uncompressed but its sizes disagree "
            f"({info.compress_size} and {info.file_size} bytes)",
        )
    with archive.open(info) as entry:
        stream = cast("BinaryStream", entry)  # a zipfile.ZipExtFile, an io.BufferedIOBase
        shape, fortran, dtype = _npy_header(stream, path, key)
        nbytes = math.prod(shape) * dtype.itemsize
        header_size = stream.tell()
        if header_size + nbytes != info.file_size:
            raise bad(
                path,
                f"{key}: the .npy header declares shape {shape} of {dtype} ({nbytes:,} bytes) "
                f"but the zip entry holds {info.file_size - header_size:,} bytes of data",
            )
        deflated = info.compress_type == zipfile.ZIP_DEFLATED
        check_declared(path, nbytes, key, compressed_size=info.compress_size if deflated else None)
        data = read_exact(stream, nbytes, path, key)
        if read_up_to(stream, 1):
            raise bad(path, f"{key}: more data than its .npy header declares")
    return data.view(dtype).reshape(shape, order="F" if fortran else "C")


def read_npz_arrays(path: Path, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of an .npz file; a DatasetFormatError for anything wrong with it."""
    handle, _ = open_regular(path)
    with handle:
        if read_up_to(handle, len(_NPY_MAGIC)) == _NPY_MAGIC:
            raise bad(
                path, "is a single .npy array; expected an .npz archive with keys " + ", ".join(NPZ_KEYS)
            )
        handle.seek(0)
        try:
            archive = zipfile.ZipFile(handle)
        except _ZIP_ERRORS as exc:
            raise bad(path, f"cannot read as a NumPy .npz archive ({exc})") from None
        with archive:
            entries = _entries(path, archive)
            missing = [k for k in keys if k not in entries]
            if missing:
                found = ", ".join(sorted(entries)) or "none"
                raise bad(
                    path,
                    f"missing key(s) {', '.join(missing)}; found {found} "
                    f"(expected the Keras layout {', '.join(NPZ_KEYS)})",
                )
            arrays: dict[str, np.ndarray] = {}
            for key in keys:
                try:
                    arrays[key] = _read_entry(path, archive, entries[key], key)
                except DatasetFormatError:  # noqa: PERF203  (each entry's zip error names its key)
                    raise
                except _ZIP_ERRORS as exc:
                    raise bad(path, f"{key} is corrupt ({type(exc).__name__}: {exc})") from None
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
