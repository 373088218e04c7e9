"""IDX files (LeCun's MNIST format), raw or gzip-compressed: read, write, find in a folder.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions), one
big-endian uint32 per dimension, then the values. Readers take the size from the header, check it
against :data:`limits` and against the file (or, compressed, against what the compressed bytes can
hold) before allocating, and never inflate past it: a ``.gz`` that declares 300 images and then
holds gigabytes of zeros fails after reading 300 images and at most 1 MiB more.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from mlp._files import atomic_write

from ._common import (
    CHUNK,
    COLS,
    FILE_NAMES,
    ROWS,
    SPLIT_FILES,
    BinaryStream,
    check_declared,
    check_split,
    open_regular,
    read_exact,
    read_up_to,
)
from .errors import DatasetNotFoundError, bad, describe_start

__all__ = ["IMAGES_MAGIC", "LABELS_MAGIC", "read_idx", "write_idx"]

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension

# IDX type codes (third byte of the magic number) -> big-endian dtype.
_IDX_TYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dt.newbyteorder("=").str[1:]: code for code, dt in _IDX_TYPES.items()}  # 'u1' -> 0x08
_GZIP_MAGIC = b"\x1f\x8b"
_Read = tuple[int, np.dtype[Any], tuple[int, ...], np.ndarray]  # (magic, dtype, dims, the raw bytes)


def _parse_header(
    stream: BinaryStream, path: str | os.PathLike
) -> tuple[int, np.dtype[Any], tuple[int, ...], int, int]:
    """Read and check an IDX header: (magic, dtype, dims, header bytes, data bytes)."""
    head = read_up_to(stream, 4)
    if len(head) < 4:
        raise bad(path, f"too short for an IDX file ({len(head)} bytes)")
    magic = int.from_bytes(head, "big")
    code, ndim = head[2], head[3]
    if head[:2] != b"\x00\x00" or code not in _IDX_TYPES or ndim == 0:
        start = head + read_up_to(stream, 12)
        raise bad(
            path,
            f"not an IDX file: magic number {magic} (0x{magic:08x}); expected "
            f"{IMAGES_MAGIC} for images or {LABELS_MAGIC} for labels; {describe_start(start)}",
        )
    offset = 4 + 4 * ndim
    rest = read_up_to(stream, offset - 4)
    if len(rest) < offset - 4:
        raise bad(
            path, f"truncated IDX header: {ndim} dimensions need {offset} bytes, the file has {4 + len(rest)}"
        )
    dims = struct.unpack(f">{ndim}I", rest)
    dtype = _IDX_TYPES[code]
    return magic, dtype, dims, offset, math.prod(dims) * dtype.itemsize


def _shape(dims: Sequence[int]) -> str:
    return " x ".join(map(str, dims))


def _read_raw(handle: io.BufferedReader, size: int, path: str | os.PathLike) -> _Read:
    magic, dtype, dims, offset, nbytes = _parse_header(handle, path)
    actual = size - offset
    if actual < nbytes:
        raise bad(
            path,
            f"truncated: the header declares {_shape(dims)} values ({nbytes} bytes of data) "
            f"but only {actual} bytes follow",
        )
    if actual > nbytes:
        raise bad(
            path,
            f"{actual - nbytes} unexpected trailing bytes after the {_shape(dims)} values "
            f"declared in the header",
        )
    check_declared(path, nbytes, "the IDX header")
    return magic, dtype, dims, read_exact(handle, nbytes, path, "the IDX header")


def _read_gzip(handle: io.BufferedReader, size: int, path: str | os.PathLike) -> _Read:
    try:
        with gzip.GzipFile(fileobj=handle, mode="rb") as stream:
            magic, dtype, dims, _offset, nbytes = _parse_header(stream, path)
            check_declared(path, nbytes, "the IDX header", compressed_size=size)
            data = read_exact(stream, nbytes, path, f"the IDX header ({_shape(dims)} values)")
            extra = len(read_up_to(stream, CHUNK))  # bounded: a bomb stops here
    except (OSError, EOFError, zlib.error) as exc:
        raise bad(path, f"corrupt or truncated gzip data ({exc})") from None
    if extra:
        amount = f"{extra}" if extra < CHUNK else "more than 1 MiB of"
        raise bad(
            path, f"{amount} unexpected trailing bytes after the {_shape(dims)} values declared in the header"
        )
    return magic, dtype, dims, data


def read_idx_with_magic(path: Path) -> tuple[int, np.ndarray]:
    """(magic number, native-endian writable array) of an IDX file, raw or gzip (told by content)."""
    handle, size = open_regular(path)
    with handle:
        compressed = read_up_to(handle, 2) == _GZIP_MAGIC
        handle.seek(0)
        reader = _read_gzip if compressed else _read_raw
        magic, dtype, dims, data = reader(handle, size, path)
    array = data.view(dtype).reshape(dims)
    return magic, array if dtype.isnative else array.astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed or not, told by content) into a NumPy array.

    Any IDX type code (uint8, int8, int16, int32, float32, float64) and number of dimensions;
    the array is native-endian, writable, of the shape in the header. Raises
    :class:`DatasetFormatError` for a bad magic number, a truncated file, trailing bytes, or a
    declared size over :data:`limits` or over what the compressed file can hold.
    """
    return read_idx_with_magic(Path(path))[1]


def write_idx(path: str | os.PathLike, array: ArrayLike, *, compresslevel: int = 6) -> Path:
    """Write ``array`` as an IDX file, atomically; gzip-compressed when ``path`` ends in ``.gz``.

    The dtype must be one IDX knows: uint8, int8, int16, int32, float32 or float64.
    """
    path = Path(path)
    array = np.asarray(array)
    key = array.dtype.newbyteorder("=").str[1:] if array.dtype.kind in "uif" else None
    if key not in _IDX_CODES:
        raise TypeError(
            f"IDX cannot store dtype {array.dtype}; cast to uint8, int8, int16, int32, "
            f"float32 or float64 first (labels: .astype(np.uint8))"
        )
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"IDX needs 1 to 255 dimensions, got {array.ndim}")
    if any(d >= 2**32 for d in array.shape):
        raise ValueError(f"IDX dimensions must be < 2**32, got shape {array.shape}")
    code = _IDX_CODES[key]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    body = np.ascontiguousarray(array, dtype=_IDX_TYPES[code]).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:
        if path.suffix == ".gz":
            with gzip.GzipFile(
                filename=path.name, mode="wb", fileobj=handle, mtime=0, compresslevel=compresslevel
            ) as gz:
                gz.write(header)
                gz.write(body)
        else:
            handle.write(header)
            handle.write(body)
    return path


# --------------------------------------------------------------------------------------------
# The four MNIST files in a folder
# --------------------------------------------------------------------------------------------


def idx_candidates(folder: Path, base: str) -> list[Path]:
    """The accepted spellings of one IDX file in ``folder``, in the order they are tried."""
    alt = base.replace("-idx", ".idx")  # train-images.idx3-ubyte
    return [folder / name for name in (base, base + ".gz", alt, alt + ".gz")]


def find_idx_file(folder: Path, base: str) -> Path | None:
    for candidate in idx_candidates(folder, base):
        if candidate.is_file():
            return candidate
    return None


def read_idx_expect(path: Path, kind: str) -> np.ndarray:
    """Read an MNIST images or labels IDX file and check its magic number and dimensions."""
    magic, array = read_idx_with_magic(path)
    expected = IMAGES_MAGIC if kind == "images" else LABELS_MAGIC
    if magic != expected:
        what = {IMAGES_MAGIC: "an images file", LABELS_MAGIC: "a labels file"}.get(
            magic, "a different IDX file"
        )
        raise bad(path, f"magic number {magic}, expected {expected} ({kind}); this is {what}")
    if kind == "images" and array.shape[1:] != (ROWS, COLS):
        raise bad(path, f"images are {array.shape[1]}x{array.shape[2]}, expected {ROWS}x{COLS}")
    return array


def load_idx_folder(
    folder: Path, splits: Sequence[str] = ("train", "test")
) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(X uint8 (N, 28, 28), y uint8 (N,)) for each split], reading only the files of ``splits``."""
    wanted = [name for split in splits for name in SPLIT_FILES[split]]
    found = {base: find_idx_file(folder, base) for base in wanted}
    missing = [base for base in FILE_NAMES if base in found and found[base] is None]
    if missing:
        raise DatasetNotFoundError(
            f"{folder}: incomplete IDX folder, missing {', '.join(b + '[.gz]' for b in missing)}"
        )
    result = []
    for split in splits:
        images_name, labels_name = SPLIT_FILES[split]
        images, labels = found[images_name], found[labels_name]
        assert images is not None and labels is not None  # none missing, checked above
        X = read_idx_expect(images, "images")
        y = read_idx_expect(labels, "labels")
        check_split(X, y, images, labels)
        result.append((X, y))
    return result
