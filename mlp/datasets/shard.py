"""One rank's rows of a training split, read without the others' (``mpiexec -n N mlp train --shard``).

``read_train_rows(path, dataset, select)`` finds the training split as ``load_mnist`` does (a folder
or file, else ``$MLP_DATA_DIR``, else the cache; nothing is downloaded) and reads rows [start, stop)
= ``select(n)`` of its n rows, checking the headers as the whole-file readers do. Memory: the slice,
plus one chunk (1 MiB) of a compressed stream. How each format is entered:

- IDX, raw: the header is parsed and the file's size checked against it, then one seek to
  header + start * 784 bytes and a read of (stop - start) * 784 bytes; the labels file alike.
- IDX, gzip: a gzip stream cannot be entered in the middle, so it is inflated in 1 MiB chunks that
  are thrown away up to the slice; the slice is kept and the rest is never inflated (nor its CRC read).
- ``.mlpd``: the header and the exact size checked, then a seek to the slice's pixels and one to its
  labels (header + n * rows * cols + start).
- Keras ``.npz``: each entry's ``.npy`` header is checked by the package's one reader
  (``mlp._npz.NpzReader.header``: size against the zip directory, no pickles), then the entry is
  inflated in chunks, keeping only the slice's bytes (a stored entry is read the same way: zipfile
  gives a stream either way), and nothing after it is inflated.
- CSV: the whole file is read and sliced (text rows have no fixed width to seek to).
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mlp._npz import NpzError, NpzReader, read_npy_header

from ._common import CHUNK, COLS, PIXELS, ROWS, SPLIT_FILES, check_split, open_regular, read_exact, read_up_to
from .discovery import data_dir_from_environment, default_cache_dir, env_candidates, find_source
from .errors import DatasetFormatError, DatasetNotFoundError, bad
from .idx import IMAGES_MAGIC, LABELS_MAGIC, _parse_header, find_idx_file

__all__ = ["read_train_rows"]

Select = Callable[[int], tuple[int, int]]  # n rows -> this rank's [start, stop)


def read_train_rows(path: str | Path | None, dataset: str, select: Select) -> tuple[np.ndarray, np.ndarray]:
    """(X uint8 (m, 28, 28), y uint8 (m,)): rows [start, stop) = select(n) of the training split."""
    kind, where = _find(path, dataset)
    if kind == "idx":
        folder = Path(where)
        images_name, labels_name = SPLIT_FILES["train"]
        images, labels = find_idx_file(folder, images_name), find_idx_file(folder, labels_name)
        if images is None or labels is None:
            raise DatasetNotFoundError(f"{folder}: no {images_name}[.gz] and {labels_name}[.gz]")
        X, n = _idx_rows(images, IMAGES_MAGIC, select)
        y, n_labels = _idx_rows(labels, LABELS_MAGIC, select)
        if n_labels != n:
            raise bad(labels, f"{n_labels} labels but {images} holds {n} images")
        check_split(X, y, images, labels)
        return X, y
    if kind == "binary":
        return _mlpd_rows(Path(where[0]), select)
    if kind == "npz":
        return _npz_rows(Path(where), select)
    from .discovery import load_source  # CSV: read whole, then sliced

    X, y = load_source(kind, where, ("train",))[0]
    start, stop = select(X.shape[0])
    return np.ascontiguousarray(X[start:stop]), np.ascontiguousarray(y[start:stop])


def _find(path: str | Path | None, dataset: str) -> tuple[str, Any]:
    """(kind, where) of the data as load_mnist looks for it, without downloading."""
    if path is not None:
        found = find_source(Path(path), dataset)
        if found is None:
            raise DatasetNotFoundError(
                f"no {dataset} data found at {path}", dataset=dataset, looked_in=[str(path)]
            )
        return found
    root = data_dir_from_environment(dataset)
    places = env_candidates(root, dataset) if root is not None else []
    places.append(default_cache_dir(dataset))
    for place in places:
        if place.exists():
            found = find_source(place, dataset)
            if found is not None:
                return found
    raise DatasetNotFoundError(
        f"no {dataset} data found in {' or '.join(map(str, places))} (--shard reads files, it never "
        "downloads: fetch them once with mlp download)",
        dataset=dataset,
        looked_in=[str(p) for p in places],
    )


def _skip(stream: Any, nbytes: int, path: Path) -> None:
    """Read and drop nbytes of a stream, a chunk at a time."""
    while nbytes:
        got = len(stream.read(min(CHUNK, nbytes)))
        if not got:
            raise bad(path, "truncated before the rows asked for")
        nbytes -= got


def _idx_rows(path: Path, magic: int, select: Select) -> tuple[np.ndarray, int]:
    """Rows select(n) of an MNIST IDX file (images or labels, raw or gzip) and its n."""
    handle, size = open_regular(path)
    with handle:
        compressed = read_up_to(handle, 2) == b"\x1f\x8b"
        handle.seek(0)
        try:
            stream: Any = gzip.GzipFile(fileobj=handle, mode="rb") if compressed else handle
            found, dtype, dims, offset, nbytes = _parse_header(stream, path)
            if found != magic:
                raise bad(path, f"magic number {found}, expected {magic}")
            if magic == IMAGES_MAGIC and tuple(dims[1:]) != (ROWS, COLS):
                raise bad(path, f"images are {_shape(dims[1:])}, expected {ROWS}x{COLS}")
            if not compressed and size != offset + nbytes:
                raise bad(path, f"the header declares {nbytes} bytes of data but {size - offset} follow")
            n = dims[0]
            row_bytes = math.prod(dims[1:]) * dtype.itemsize
            start, stop = select(n)
            if compressed:
                _skip(stream, start * row_bytes, path)
            else:
                handle.seek(offset + start * row_bytes)
            data = read_exact(stream, (stop - start) * row_bytes, path, "the IDX header")
        except (OSError, EOFError, zlib.error) as error:
            raise bad(path, f"corrupt or truncated gzip data ({error})") from None
    array = data.view(dtype).reshape((stop - start, *dims[1:]))
    return (array if dtype.isnative else array.astype(dtype.newbyteorder("="))), n


def _shape(dims: Any) -> str:
    return "x".join(map(str, dims))


_MLPD_HEADER = struct.Struct("<4sIIII")  # as mlp.datasets.mlpd: magic, version, n, rows, cols


def _mlpd_rows(path: Path, select: Select) -> tuple[np.ndarray, np.ndarray]:
    from .mlpd import BINARY_MAGIC, BINARY_VERSION

    handle, size = open_regular(path)
    with handle:
        head = read_up_to(handle, _MLPD_HEADER.size)
        if len(head) < _MLPD_HEADER.size:
            raise bad(path, f"too short for the {_MLPD_HEADER.size}-byte MLPD header ({size} bytes)")
        magic, version, n, rows, cols = _MLPD_HEADER.unpack(head)
        if magic != BINARY_MAGIC or version != BINARY_VERSION:
            raise bad(
                path, f"not an MLPD file of version {BINARY_VERSION} (magic {magic!r}, version {version})"
            )
        if (rows, cols) != (ROWS, COLS):
            raise bad(path, f"images are {rows}x{cols}, expected {ROWS}x{COLS}")
        if size != _MLPD_HEADER.size + n * (PIXELS + 1):
            raise bad(path, f"the header declares {n} images but the file has {size} bytes")
        start, stop = select(n)
        handle.seek(_MLPD_HEADER.size + start * PIXELS)
        X = read_exact(handle, (stop - start) * PIXELS, path, "the MLPD header").reshape(-1, ROWS, COLS)
        handle.seek(_MLPD_HEADER.size + n * PIXELS + start)
        y = read_exact(handle, stop - start, path, "the MLPD header")
    check_split(X, y, path)
    return X, y


def _npz_rows(path: Path, select: Select) -> tuple[np.ndarray, np.ndarray]:
    """Rows select(n) of x_train and y_train of a Keras .npz, each entry inflated up to the slice."""
    try:
        with NpzReader.open(path, "data file") as archive:
            parts: list[np.ndarray[Any, Any]] = []
            n_rows = None
            for key in ("x_train", "y_train"):
                header = archive.header(key)
                dtype = header.dtype()
                header.data_bytes()  # the declared size agrees with the zip directory
                if dtype.kind not in "iu" or header.fortran_order or not header.shape:
                    raise bad(path, f"{key} must be C-order integer values, got {dtype} {header.shape}")
                n = header.shape[0]
                if n_rows is not None and n != n_rows:
                    raise bad(path, f"{n_rows} images but {n} labels")
                n_rows = n
                start, stop = select(n)
                row_bytes = math.prod(header.shape[1:]) * dtype.itemsize
                info = archive.entry(key)
                assert archive._zip is not None  # open: the directory was read
                with archive._zip.open(info) as entry:
                    stream: Any = entry  # a zipfile stream: read and readinto
                    read_npy_header(entry, f"{path}: {key}", info)
                    _skip(stream, start * row_bytes, path)
                    data = read_exact(stream, (stop - start) * row_bytes, path, f"{key}'s .npy header")
                parts.append(data.view(dtype).reshape((stop - start, *header.shape[1:])))
    except NpzError as error:
        raise DatasetFormatError(str(error), path=path) from None
    X, y = parts
    if X.ndim == 2 and X.shape[1] == PIXELS:
        X = X.reshape(-1, ROWS, COLS)
    if X.shape[1:] != (ROWS, COLS) or y.ndim != 1:
        raise bad(
            path,
            f"x_train rows of {X.shape[1:]} and y_train rows of {y.shape[1:]}; expected 28x28 and labels",
        )
    if X.dtype != np.uint8:
        if X.size and (X.min() < 0 or X.max() > 255):
            raise bad(path, "x_train holds pixels outside 0..255")
        X = X.astype(np.uint8)
    check_split(X, y, path)
    return np.ascontiguousarray(X), y.astype(np.uint8)
