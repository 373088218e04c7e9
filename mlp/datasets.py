"""MNIST and Fashion-MNIST: find them in any common layout, download them safely, convert them.

``load_mnist()`` returns ``(X_train, y_train), (X_test, y_test)`` as NumPy arrays: X of shape
(N, 784) (or (N, 28, 28) with ``flatten=False``), float32 in [0, 1] by default; y int64 of shape (N,).

Where the data comes from
-------------------------
With ``path``, the first layout found there is used:

- a folder of the four IDX files, gzip-compressed or not: ``train-images-idx3-ubyte[.gz]``,
  ``train-labels-idx1-ubyte[.gz]``, ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``
  (the ``train-images.idx3-ubyte`` spelling is accepted too), also in ``raw/`` or in the
  ``MNIST/raw`` (``FashionMNIST/raw``) layout that torchvision writes;
- a Keras-style ``mnist.npz`` (keys ``x_train``, ``y_train``, ``x_test``, ``y_test``), the file or a
  folder holding it;
- Kaggle-style CSVs ``mnist_train.csv`` and ``mnist_test.csv`` (an optional header row, then one row
  per image: the label and 784 pixels 0..255), the folder or the path of either file;
- the binary files ``train.mlpd`` and ``test.mlpd`` described below, the folder or either file.

Without ``path``: ``$MLP_DATA_DIR`` (for MNIST ``$MLP_DATA_DIR/mnist`` then ``$MLP_DATA_DIR``; for
Fashion-MNIST ``$MLP_DATA_DIR/fashion-mnist``), then the cache folder (``cache_dir``, else
``$XDG_CACHE_HOME/mlp/<dataset>``, else ``~/.cache/mlp/<dataset>``), then a download into the cache
folder when ``download=True``.

Downloads use urllib only. Each file is streamed to a hidden temporary file in the cache folder,
decompressed, checked (IDX magic number and sizes; for MNIST the SHA-256 of the *uncompressed*
content, so any faithful mirror passes whether it serves .gz or not), and only then renamed into
place: a failed, truncated or corrupt download never lands at the final path. A cached file that
fails the check is deleted and fetched again.

Every reader checks what it reads and raises :class:`DatasetFormatError` (a ``ValueError``) naming
the file and the problem: IDX magic numbers (2051 images, 2049 labels), dimensions, declared sizes
against the bytes present, image and label counts, labels in 0..9, pixels in 0..255.

The binary format (``.mlpd``, read by the C++ port)
----------------------------------------------------
One file per split, little-endian, no padding::

    offset  size          field
    0       4             magic, the bytes b"MLPD"
    4       4  uint32     version, 1
    8       4  uint32     n, the number of images
    12      4  uint32     rows (28 for MNIST)
    16      4  uint32     cols (28 for MNIST)
    20      n*rows*cols   pixels, uint8 0..255, image after image, each row-major
    20+n*rows*cols  n     labels, uint8

The file size is exactly ``20 + n*rows*cols + n`` bytes; readers reject anything else.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import struct
import sys
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from mlp._files import atomic_write, temporary_path

__all__ = [
    "DEFAULT_MIRRORS",
    "DatasetFormatError",
    "DatasetNotFoundError",
    "DownloadError",
    "FILE_NAMES",
    "MNIST_SHA256",
    "convert",
    "default_cache_dir",
    "download_mnist",
    "load_mnist",
    "read_binary",
    "read_idx",
    "save_csv",
    "save_npz",
    "write_binary",
    "write_idx",
]

# --------------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------------

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
#: The four canonical IDX file names (uncompressed; mirrors serve them with ``.gz`` appended).
FILE_NAMES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

#: SHA-256 of the *uncompressed* canonical MNIST files (the .gz bytes differ between mirrors).
MNIST_SHA256 = {
    TRAIN_IMAGES: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    TRAIN_LABELS: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    TEST_IMAGES: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    TEST_LABELS: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

# Fashion-MNIST: we do not have reliable SHA-256 values of the uncompressed files, and the
# published checksums are of the .gz bytes (which a recompressing mirror changes), so Fashion-MNIST
# downloads are verified by structure only: magic numbers, dimensions, sizes, counts, label range.
_KNOWN_SHA256: dict[str, dict[str, str] | None] = {"mnist": MNIST_SHA256, "fashion-mnist": None}

#: Public mirrors tried in order after any ``mirrors=`` given by the caller. Each serves
#: ``<mirror><file name>.gz``. Tests replace this with empty lists.
DEFAULT_MIRRORS: dict[str, list[str]] = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ],
    "fashion-mnist": [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    ],
}

_PRETTY = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
_TORCHVISION_FOLDER = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
_NPZ_NAMES = {"mnist": ("mnist.npz",), "fashion-mnist": ("fashion-mnist.npz", "fashion_mnist.npz")}
_CSV_PREFIXES = {"mnist": ("mnist",), "fashion-mnist": ("fashion-mnist", "fashion_mnist")}
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
_ROWS = _COLS = 28
_PIXELS = _ROWS * _COLS
_NUM_CLASSES = 10

# IDX type codes (third byte of the magic number) -> big-endian dtype.
_IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dt.newbyteorder("=").str[1:]: code for code, dt in _IDX_TYPES.items()}  # 'u1' -> 0x08

BINARY_MAGIC = b"MLPD"
BINARY_VERSION = 1
_BINARY_HEADER = struct.Struct("<4sIIII")  # magic, version, n, rows, cols

_CHUNK = 1 << 20
_DEFAULT_TIMEOUT = 30.0
_DTYPES = {"float32": np.float32, "float64": np.float64, "uint8": np.uint8}

# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class DatasetFormatError(ValueError):
    """A data file is malformed: wrong magic number, truncated, wrong shape, bad values.

    ``path`` is the offending file (also at the start of the message).
    """

    def __init__(self, message: str, *, path: str | os.PathLike | None = None):
        super().__init__(message)
        self.path = path


class DatasetNotFoundError(FileNotFoundError):
    """No data set files where they were looked for; the message says where and what to do."""


class DownloadError(RuntimeError):
    """Every mirror failed. ``failures`` lists ``(url, reason)`` for each attempt."""

    def __init__(self, message: str, failures: Sequence[tuple[str, str]] = ()):
        super().__init__(message)
        self.failures = list(failures)


def _bad(path, problem: str) -> DatasetFormatError:
    return DatasetFormatError(f"{path}: {problem}", path=path)


class _MirrorFailure(Exception):
    """Internal: one mirror could not deliver one good file (the message is the reason)."""


# --------------------------------------------------------------------------------------------
# IDX
# --------------------------------------------------------------------------------------------


def _read_maybe_gzip(path: Path) -> bytes:
    """All the bytes of ``path``, decompressed when they start with the gzip magic bytes."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise _bad(path, f"corrupt or truncated gzip data ({exc})") from None
    return data


def _describe_start(head: bytes) -> str:
    """A short description of what a wrong file starts with (for error messages)."""
    stripped = head.lstrip().lower()
    if stripped.startswith((b"<!doctype", b"<html", b"<?xml", b"<")):
        return f"an HTML/XML page, not data (starts with {head[:15]!r})"
    if not head:
        return "an empty file"
    return f"it starts with {head[:8]!r}"


def _idx_header(data: bytes, path) -> tuple[int, np.dtype, tuple[int, ...], int]:
    """Parse and check an IDX header against the data length: (magic, dtype, dims, offset)."""
    if len(data) < 4:
        raise _bad(path, f"too short for an IDX file ({len(data)} bytes)")
    magic = int.from_bytes(data[:4], "big")
    code, ndim = data[2], data[3]
    if data[:2] != b"\x00\x00" or code not in _IDX_TYPES or ndim == 0:
        raise _bad(path, f"not an IDX file: magic number {magic} (0x{magic:08x}); expected "
                         f"{IMAGES_MAGIC} for images or {LABELS_MAGIC} for labels; "
                         f"{_describe_start(data[:16])}")
    offset = 4 + 4 * ndim
    if len(data) < offset:
        raise _bad(path, f"truncated IDX header: {ndim} dimensions need {offset} bytes, "
                         f"the file has {len(data)}")
    dims = struct.unpack(f">{ndim}I", data[4:offset])
    dtype = _IDX_TYPES[code]
    expected = math.prod(dims) * dtype.itemsize
    actual = len(data) - offset
    shape = " x ".join(map(str, dims))
    if actual < expected:
        raise _bad(path, f"truncated: the header declares {shape} values ({expected} bytes of data) "
                         f"but only {actual} bytes follow")
    if actual > expected:
        raise _bad(path, f"{actual - expected} unexpected trailing bytes after the {shape} values "
                         f"declared in the header")
    return magic, dtype, dims, offset


def _parse_idx(data: bytes, path) -> tuple[int, np.ndarray]:
    magic, dtype, dims, offset = _idx_header(data, path)
    array = np.frombuffer(data, dtype=dtype, count=math.prod(dims), offset=offset).reshape(dims)
    return magic, array.astype(dtype.newbyteorder("="), copy=True)  # native order, writable


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed or not, told by content) into a NumPy array.

    Any IDX type code (uint8, int8, int16, int32, float32, float64) and number of dimensions;
    the array is native-endian, writable, of the shape in the header. Raises
    :class:`DatasetFormatError` for a bad magic number, a truncated file or trailing bytes.
    """
    path = Path(path)
    return _parse_idx(_read_maybe_gzip(path), path)[1]


def write_idx(path: str | os.PathLike, array, *, compresslevel: int = 6) -> Path:
    """Write ``array`` as an IDX file, atomically; gzip-compressed when ``path`` ends in ``.gz``.

    The dtype must be one IDX knows: uint8, int8, int16, int32, float32 or float64.
    """
    path = Path(path)
    array = np.asarray(array)
    key = array.dtype.newbyteorder("=").str[1:] if array.dtype.kind in "uif" else None
    if key not in _IDX_CODES:
        raise TypeError(f"IDX cannot store dtype {array.dtype}; cast to uint8, int8, int16, int32, "
                        f"float32 or float64 first (labels: .astype(np.uint8))")
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
            with gzip.GzipFile(filename=path.name, mode="wb", fileobj=handle, mtime=0,
                               compresslevel=compresslevel) as gz:
                gz.write(header)
                gz.write(body)
        else:
            handle.write(header)
            handle.write(body)
    return path


def _idx_candidates(folder: Path, base: str) -> list[Path]:
    alt = base.replace("-idx", ".idx")  # train-images.idx3-ubyte
    return [folder / name for name in (base, base + ".gz", alt, alt + ".gz")]


def _find_idx_file(folder: Path, base: str) -> Path | None:
    for candidate in _idx_candidates(folder, base):
        if candidate.is_file():
            return candidate
    return None


def _read_idx_expect(path: Path, kind: str) -> np.ndarray:
    """Read an MNIST images or labels IDX file and check its magic number and dimensions."""
    magic, array = _parse_idx(_read_maybe_gzip(path), path)
    expected = IMAGES_MAGIC if kind == "images" else LABELS_MAGIC
    if magic != expected:
        what = {IMAGES_MAGIC: "an images file", LABELS_MAGIC: "a labels file"}.get(magic, "a different IDX file")
        raise _bad(path, f"magic number {magic}, expected {expected} ({kind}); this is {what}")
    if kind == "images" and array.shape[1:] != (_ROWS, _COLS):
        raise _bad(path, f"images are {array.shape[1]}x{array.shape[2]}, expected {_ROWS}x{_COLS}")
    return array


def _load_idx_folder(folder: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    found = {base: _find_idx_file(folder, base) for base in FILE_NAMES}
    missing = [base for base, p in found.items() if p is None]
    if missing:
        raise DatasetNotFoundError(
            f"{folder}: incomplete IDX folder, missing {', '.join(b + '[.gz]' for b in missing)}")
    splits = []
    for images_name, labels_name in ((TRAIN_IMAGES, TRAIN_LABELS), (TEST_IMAGES, TEST_LABELS)):
        X = _read_idx_expect(found[images_name], "images")
        y = _read_idx_expect(found[labels_name], "labels")
        _check_split(X, y, found[images_name], found[labels_name])
        splits.append((X, y))
    return splits[0], splits[1]


# --------------------------------------------------------------------------------------------
# Checks shared by all readers
# --------------------------------------------------------------------------------------------


def _check_split(X: np.ndarray, y: np.ndarray, x_where, y_where=None) -> None:
    """Counts match and labels are in 0..9 (X: (N, 28, 28) uint8, y: (N,) integer)."""
    y_where = x_where if y_where is None else y_where
    if X.shape[0] != y.shape[0]:
        if x_where == y_where:
            raise _bad(x_where, f"{X.shape[0]} images but {y.shape[0]} labels")
        raise _bad(y_where, f"{y.shape[0]} labels but {x_where} has {X.shape[0]} images")
    if y.size:
        bad = np.flatnonzero((y < 0) | (y >= _NUM_CLASSES))
        if bad.size:
            i = int(bad[0])
            raise _bad(y_where, f"label {y[i]} at index {i} is outside 0..{_NUM_CLASSES - 1} "
                                f"({bad.size} bad labels in all)")


def _pixels_to_uint8(X: np.ndarray, where, name: str = "pixels") -> np.ndarray:
    """Integer pixels in 0..255 -> uint8, or a DatasetFormatError."""
    if X.dtype == np.uint8:
        return X
    if X.dtype.kind not in "iub":
        raise _bad(where, f"{name} have dtype {X.dtype}; expected integers 0..255 (uint8)")
    if X.size and (X.min() < 0 or X.max() > 255):
        raise _bad(where, f"{name} must be in 0..255, found values in {X.min()}..{X.max()}")
    return X.astype(np.uint8)


# --------------------------------------------------------------------------------------------
# npz (Keras layout)
# --------------------------------------------------------------------------------------------


def _load_npz(path: Path):
    try:
        archive = np.load(path, allow_pickle=False)
    except ValueError as exc:  # pickled data, which allow_pickle=False refuses
        raise _bad(path, f"not a NumPy .npz archive ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise _bad(path, f"cannot read as a NumPy .npz archive ({exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise _bad(path, "is a single .npy array; expected an .npz archive with keys "
                         + ", ".join(_NPZ_KEYS))
    with archive:
        missing = [k for k in _NPZ_KEYS if k not in archive.files]
        if missing:
            raise _bad(path, f"missing key(s) {', '.join(missing)}; found {', '.join(archive.files) or 'none'} "
                             f"(expected the Keras layout {', '.join(_NPZ_KEYS)})")
        arrays = {}
        for key in _NPZ_KEYS:
            try:
                arrays[key] = archive[key]
            except ValueError as exc:  # "Object arrays cannot be loaded when allow_pickle=False"
                raise _bad(path, f"{key} is an object array, which is never loaded (no pickles): {exc}") from None
            except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
                raise _bad(path, f"{key} is corrupt ({exc})") from None
    splits = []
    for x_key, y_key in (("x_train", "y_train"), ("x_test", "y_test")):
        X, y = arrays[x_key], arrays[y_key]
        if X.ndim == 2 and X.shape[1] == _PIXELS:
            X = X.reshape(-1, _ROWS, _COLS)
        if X.ndim != 3 or X.shape[1:] != (_ROWS, _COLS):
            raise _bad(path, f"{x_key} has shape {X.shape}; expected (N, 28, 28) or (N, 784)")
        if y.ndim != 1:
            raise _bad(path, f"{y_key} has shape {y.shape}; expected (N,)")
        if y.dtype.kind not in "iu":
            raise _bad(path, f"{y_key} has dtype {y.dtype}; expected integer labels 0..9")
        X = _pixels_to_uint8(X, path, x_key)
        _check_split(X, y, path)
        splits.append((X, y.astype(np.uint8)))
    return splits[0], splits[1]


def save_npz(path: str | os.PathLike, train, test, *, compress: bool = True) -> Path:
    """Save ``(X_train, y_train), (X_test, y_test)`` as a Keras-style ``mnist.npz`` (atomic).

    Stored as uint8 ``x_*`` of shape (N, 28, 28) and uint8 ``y_*`` of shape (N,). X may be
    uint8/integer pixels 0..255 or floats in [0, 1] (as ``load_mnist`` returns), flat or not.
    ``compress=False`` writes faster and larger (np.savez instead of np.savez_compressed).
    """
    path = Path(path)
    arrays = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    for (X, y), suffix in ((train, "train"), (test, "test")):
        X, y = _as_images(X, y, f"x_{suffix}")
        arrays[f"x_{suffix}"], arrays[f"y_{suffix}"] = X, y
    with atomic_write(path) as handle:
        (np.savez_compressed if compress else np.savez)(handle, **arrays)
    return path


# --------------------------------------------------------------------------------------------
# CSV (Kaggle layout)
# --------------------------------------------------------------------------------------------


def _csv_header() -> str:
    return "label," + ",".join(f"{r}x{c}" for r in range(1, _ROWS + 1) for c in range(1, _COLS + 1))


def _load_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as handle:
        first = handle.readline()
    first_field = first.removeprefix(b"\xef\xbb\xbf").split(b",", 1)[0].strip().lstrip(b"+-")
    has_header = bool(first.strip()) and not first_field.isdigit()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            table = np.loadtxt(path, delimiter=",", dtype=np.int32, skiprows=int(has_header),
                               ndmin=2, encoding="utf-8-sig")
    except (ValueError, OverflowError) as exc:
        message = str(exc).split("; use `usecols`")[0]
        raise _bad(path, f"bad CSV: {message} (counting data rows from 0"
                         f"{', after the header' if has_header else ''})") from None
    except UnicodeDecodeError as exc:
        raise _bad(path, f"not a UTF-8 text CSV ({exc})") from None
    if table.size == 0:
        raise _bad(path, "no data rows")
    if table.shape[1] != _PIXELS + 1:
        raise _bad(path, f"{table.shape[1]} columns; expected {_PIXELS + 1} (label, then "
                         f"{_PIXELS} pixels)")
    X = _pixels_to_uint8(table[:, 1:], path).reshape(-1, _ROWS, _COLS)
    y = table[:, 0]
    _check_split(X, y, path)
    return X, y.astype(np.uint8)


def save_csv(folder: str | os.PathLike, train, test, *, prefix: str = "mnist") -> tuple[Path, Path]:
    """Write Kaggle-style ``<prefix>_train.csv`` and ``<prefix>_test.csv`` into ``folder`` (atomic).

    A header row ``label,1x1,1x2,...,28x28``, then per image its label and 784 pixels 0..255.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for (X, y), split in ((train, "train"), (test, "test")):
        X, y = _as_images(X, y, f"X_{split}")
        table = np.concatenate([y[:, None], X.reshape(len(X), -1)], axis=1)
        path = folder / f"{prefix}_{split}.csv"
        with atomic_write(path, "w", newline="\n") as handle:
            handle.write(_csv_header() + "\n")
            for row in table.tolist():
                handle.write(",".join(map(str, row)))
                handle.write("\n")
        written.append(path)
    return written[0], written[1]


def _split_pair(path: Path) -> tuple[Path, Path] | None:
    """The (train, test) pair of files given one of them (``train`` <-> ``test`` in the name)."""
    head, train, tail = path.name.rpartition("train")
    if train:
        return path, path.with_name(head + "test" + tail)
    head, test, tail = path.name.rpartition("test")
    if test:
        return path.with_name(head + "train" + tail), path
    return None


# --------------------------------------------------------------------------------------------
# Binary (.mlpd, for the C++ port)
# --------------------------------------------------------------------------------------------


def write_binary(path: str | os.PathLike, X, y) -> Path:
    """Write one split in the ``.mlpd`` format of the module docstring (atomic).

    X: (n, rows, cols), or (n, d) stored as square images when d is a perfect square, else
    (n, 1, d); uint8/integer pixels 0..255 or floats in [0, 1]. y: (n,) integers 0..255.
    """
    path = Path(path)
    X = _pixels_for_writing(np.asarray(X), "X")
    if X.ndim == 2:
        side = math.isqrt(X.shape[1])
        X = X.reshape(len(X), side, side) if side * side == X.shape[1] else X.reshape(len(X), 1, -1)
    if X.ndim != 3:
        raise ValueError(f"X must have shape (n, rows, cols) or (n, features), got {X.shape}")
    y = _labels_for_writing(y, len(X), max_label=255)
    n, rows, cols = X.shape
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:
        handle.write(_BINARY_HEADER.pack(BINARY_MAGIC, BINARY_VERSION, n, rows, cols))
        handle.write(np.ascontiguousarray(X).tobytes())
        handle.write(y.tobytes())
    return path


def read_binary(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one ``.mlpd`` split: X uint8 (n, rows, cols), y uint8 (n,).

    Checks the magic, the version and that the size is exactly header + pixels + labels.
    """
    path = Path(path)
    data = path.read_bytes()
    if len(data) < _BINARY_HEADER.size:
        raise _bad(path, f"too short for the {_BINARY_HEADER.size}-byte MLPD header ({len(data)} bytes)")
    magic, version, n, rows, cols = _BINARY_HEADER.unpack_from(data)
    if magic != BINARY_MAGIC:
        raise _bad(path, f"not an MLPD file: magic {magic!r}, expected {BINARY_MAGIC!r}")
    if version != BINARY_VERSION:
        raise _bad(path, f"MLPD version {version}; this reader knows version {BINARY_VERSION} "
                         f"(regenerate with mlp.datasets.convert(src, dst, 'binary'))")
    pixels = n * rows * cols
    expected = _BINARY_HEADER.size + pixels + n
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "trailing bytes"
        raise _bad(path, f"{problem}: the header declares {n} images of {rows}x{cols} "
                         f"({expected} bytes in all) but the file has {len(data)} bytes")
    X = np.frombuffer(data, np.uint8, pixels, _BINARY_HEADER.size).reshape(n, rows, cols).copy()
    y = np.frombuffer(data, np.uint8, n, _BINARY_HEADER.size + pixels).copy()
    return X, y


def _load_binary(path: Path) -> tuple[np.ndarray, np.ndarray]:
    X, y = read_binary(path)
    if X.shape[1:] != (_ROWS, _COLS):
        raise _bad(path, f"images are {X.shape[1]}x{X.shape[2]}, expected {_ROWS}x{_COLS}")
    _check_split(X, y, path)
    return X, y


# --------------------------------------------------------------------------------------------
# Conversion helpers for writers
# --------------------------------------------------------------------------------------------


def _pixels_for_writing(X: np.ndarray, name: str) -> np.ndarray:
    """uint8 pixels from integers 0..255 or floats in [0, 1] (rounded x*255)."""
    if X.dtype == np.uint8:
        return X
    if X.dtype.kind in "iub":
        if X.size and (X.min() < 0 or X.max() > 255):
            raise ValueError(f"{name}: integer pixels must be in 0..255, got {X.min()}..{X.max()}")
        return X.astype(np.uint8)
    if X.dtype.kind == "f":
        if X.size and not (np.isfinite(X).all() and X.min() >= 0 and X.max() <= 1):
            raise ValueError(f"{name}: floating-point pixels must be normalized to [0, 1] as load_mnist "
                             f"returns them; cast 0..255 data to uint8 first")
        return np.rint(X * 255).astype(np.uint8)
    raise TypeError(f"{name}: pixels must be numeric, got dtype {X.dtype}")


def _labels_for_writing(y, n: int, *, max_label: int = _NUM_CLASSES - 1) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"labels must have shape ({n},) to match the images, got {y.shape}")
    if y.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers, got dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() > max_label):
        raise ValueError(f"labels must be in 0..{max_label}, got {y.min()}..{y.max()}")
    return y.astype(np.uint8)


def _as_images(X, y, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(N, 28, 28) uint8 images and (N,) uint8 labels 0..9 from what load_mnist returns."""
    X = np.asarray(X)
    if X.ndim == 2 and X.shape[1] == _PIXELS:
        X = X.reshape(-1, _ROWS, _COLS)
    if X.ndim != 3 or X.shape[1:] != (_ROWS, _COLS):
        raise ValueError(f"{name} must have shape (N, 784) or (N, 28, 28), got {X.shape}")
    return _pixels_for_writing(X, name), _labels_for_writing(y, len(X))


# --------------------------------------------------------------------------------------------
# Finding a source
# --------------------------------------------------------------------------------------------


def _normalize_dataset(dataset: str) -> str:
    key = str(dataset).lower().replace("_", "-")
    if key not in _KNOWN_SHA256:
        raise ValueError(f"unknown dataset {dataset!r}; expected 'mnist' or 'fashion-mnist'")
    return key


def _looked_for(path: Path, dataset: str) -> str:
    tv = _TORCHVISION_FOLDER[dataset]
    return (f"the four IDX files ({', '.join(b + '[.gz]' for b in FILE_NAMES)}) in {path}, "
            f"{path / 'raw'} or {path / tv / 'raw'}; {' or '.join(_NPZ_NAMES[dataset])}; "
            f"{_CSV_PREFIXES[dataset][0]}_train.csv + {_CSV_PREFIXES[dataset][0]}_test.csv; "
            f"train.mlpd + test.mlpd")


def _find_source(path: Path, dataset: str) -> tuple[str, object] | None:
    """(kind, where) of the first layout found at ``path``, or None."""
    if path.is_file():
        name = path.name.lower()
        if name.endswith(".npz"):
            return "npz", path
        if name.endswith(".csv"):
            kind = "csv"
        elif name.endswith(".mlpd"):
            kind = "binary"
        else:
            kind = None
        if kind is not None:
            pair = _split_pair(path)
            if pair is None:
                raise DatasetNotFoundError(
                    f"{path}: cannot tell whether this is the train or the test split; put 'train' "
                    f"or 'test' in the file names (e.g. mnist_train.csv, train.mlpd) or pass their folder")
            return kind, pair
        if any(path in _idx_candidates(path.parent, base) for base in FILE_NAMES):
            return "idx", path.parent
        return None
    if not path.is_dir():
        return None
    tv = _TORCHVISION_FOLDER[dataset]
    for folder in (path, path / "raw", path / tv / "raw"):
        if any(_find_idx_file(folder, base) for base in FILE_NAMES):
            return "idx", folder
    for name in _NPZ_NAMES[dataset]:
        if (path / name).is_file():
            return "npz", path / name
    for prefix in _CSV_PREFIXES[dataset]:
        if (path / f"{prefix}_train.csv").is_file() or (path / f"{prefix}_test.csv").is_file():
            return "csv", (path / f"{prefix}_train.csv", path / f"{prefix}_test.csv")
    if (path / "train.mlpd").is_file() or (path / "test.mlpd").is_file():
        return "binary", (path / "train.mlpd", path / "test.mlpd")
    return None


def _load_source(kind: str, where):
    if kind == "idx":
        return _load_idx_folder(where)
    if kind == "npz":
        return _load_npz(where)
    for p in where:
        if not p.is_file():
            raise DatasetNotFoundError(f"{p} not found (needed beside {[q for q in where if q != p][0]})")
    loader = _load_csv if kind == "csv" else _load_binary
    return loader(where[0]), loader(where[1])


def _load_path(path: Path, dataset: str):
    if not path.exists():
        raise DatasetNotFoundError(f"{path} does not exist")
    source = _find_source(path, dataset)
    if source is None:
        raise DatasetNotFoundError(f"no {_PRETTY[dataset]} data found at {path}; looked for "
                                   f"{_looked_for(path, dataset)}")
    return _load_source(*source)


def _env_candidates(root: Path, dataset: str) -> list[Path]:
    if dataset == "mnist":
        return [root / "mnist", root]
    return [root / dataset, root / _TORCHVISION_FOLDER[dataset] / "raw"]


def default_cache_dir(dataset: str = "mnist") -> Path:
    """``$XDG_CACHE_HOME/mlp/<dataset>`` if XDG_CACHE_HOME is an absolute path, else ``~/.cache/mlp/<dataset>``."""
    dataset = _normalize_dataset(dataset)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "mlp" / dataset


def _manual_help(dataset: str, cache: Path | None = None) -> str:
    names = ", ".join(b + ".gz" for b in FILE_NAMES)
    where = f", or copy them into the cache folder {cache}" if cache is not None else ""
    return (f"To supply the files by hand: put the four {_PRETTY[dataset]} files ({names}; "
            f"gzip-compressed or not) in one folder and pass it, load_mnist('/that/folder'), "
            f"or set MLP_DATA_DIR=/that/folder{where}. A Keras mnist.npz or Kaggle "
            f"mnist_train.csv/mnist_test.csv can be passed the same way.")


# --------------------------------------------------------------------------------------------
# Cache and download
# --------------------------------------------------------------------------------------------


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int | None, desc: str):
    """A tqdm bar when tqdm is installed and stderr is a terminal, else a silent stand-in."""
    stream = sys.stderr
    if stream is not None and getattr(stream, "isatty", lambda: False)():
        try:
            from tqdm import tqdm
        except ImportError:
            pass
        else:
            return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, leave=False)
    return _NoProgress()


def _verify_stream(source, base: str, expected_sha256: str | None, sink=None) -> str | None:
    """Read an uncompressed IDX stream, copying it to ``sink``; return a problem or None.

    Checks the magic number for ``base``, that the size matches the header, and the SHA-256.
    """
    digest = hashlib.sha256()
    head = b""
    size = 0
    for chunk in iter(lambda: source.read(_CHUNK), b""):
        digest.update(chunk)
        if len(head) < 16:
            head += chunk[:16 - len(head)]
        size += len(chunk)
        if sink is not None:
            sink.write(chunk)
    expected_magic = IMAGES_MAGIC if "images" in base else LABELS_MAGIC
    magic = int.from_bytes(head[:4], "big") if len(head) >= 4 else None
    if magic != expected_magic:
        return f"not the expected IDX data (magic {magic}, expected {expected_magic}): {_describe_start(head)}"
    ndim = head[3]
    offset = 4 + 4 * ndim
    if len(head) < offset:
        return f"truncated: {size} bytes, shorter than the IDX header"
    dims = struct.unpack(f">{ndim}I", head[4:offset])
    if ndim == 3 and dims[1:] != (_ROWS, _COLS):
        return f"images are {dims[1]}x{dims[2]}, expected {_ROWS}x{_COLS}"
    if size != offset + math.prod(dims):
        return f"truncated or padded: the header declares {offset + math.prod(dims)} bytes, got {size}"
    if expected_sha256 is not None and digest.hexdigest() != expected_sha256:
        return f"SHA-256 of the content is {digest.hexdigest()}, expected {expected_sha256}"
    return None


def _open_content(path: Path):
    """Open a downloaded/cached file for reading its uncompressed content."""
    with open(path, "rb") as handle:
        start = handle.read(2)
    return gzip.open(path, "rb") if start == b"\x1f\x8b" else open(path, "rb")


def _check_file(path: Path, base: str, expected_sha256: str | None) -> str | None:
    try:
        with _open_content(path) as source:
            return _verify_stream(source, base, expected_sha256)
    except (OSError, EOFError, zlib.error) as exc:
        return f"corrupt or truncated gzip data ({exc})"


def _fetch(url: str, part: Path, timeout: float, desc: str) -> None:
    """Stream ``url`` into ``part``; raise _MirrorFailure with the reason on any failure."""
    request = urllib.request.Request(url, headers={"User-Agent": "mlp-datasets/1 (python urllib)"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(part, "wb") as out:
            length = response.headers.get("Content-Length") if response.headers else None
            total = int(length) if length and length.strip().isdigit() else None
            bar = _progress(total, desc)
            received = 0
            try:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            finally:
                bar.close()
    except urllib.error.HTTPError as exc:
        raise _MirrorFailure(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise _MirrorFailure(f"cannot connect: {exc.reason}") from None
    except http.client.IncompleteRead as exc:
        raise _MirrorFailure(f"truncated: connection closed after {len(exc.partial)} bytes "
                             f"({exc.expected} more expected)") from None
    except (http.client.HTTPException, OSError, ValueError) as exc:
        raise _MirrorFailure(f"{type(exc).__name__}: {exc}") from None
    if total is not None and received != total:
        raise _MirrorFailure(f"truncated: received {received} of {total} bytes")


def _fetch_verified(url: str, base: str, target: Path, expected_sha256: str | None,
                    timeout: float) -> None:
    """Download ``url`` and put its verified, uncompressed content at ``target``."""
    with temporary_path(target, suffix=".part") as part:
        _fetch(url, part, timeout, desc=base)
        try:
            with _open_content(part) as source, atomic_write(target) as sink:
                problem = _verify_stream(source, base, expected_sha256, sink)
                if problem is not None:
                    raise _MirrorFailure(problem)  # inside atomic_write: nothing lands at target
        except (OSError, EOFError, zlib.error) as exc:
            raise _MirrorFailure(f"corrupt or truncated gzip data ({exc})") from None


def _mirror_list(dataset: str, mirrors: Iterable[str] | None, use_default_mirrors: bool) -> list[str]:
    if isinstance(mirrors, (str, bytes)):
        mirrors = [mirrors]
    found = list(mirrors or [])
    if use_default_mirrors:
        found += [m for m in DEFAULT_MIRRORS.get(dataset, []) if m not in found]
    return [m if m.endswith("/") else m + "/" for m in found]


def _ensure_cache(folder: Path, dataset: str, *, download: bool, mirrors, use_default_mirrors: bool,
                  timeout: float, force: bool = False) -> list[str]:
    """Verify the cached files, deleting corrupt ones, and fetch what is missing if allowed.

    Returns notes about what is missing (empty when the folder is complete).
    """
    known = _KNOWN_SHA256[dataset]
    notes = []
    todo = []
    for base in FILE_NAMES:
        present = [p for p in _idx_candidates(folder, base) if p.is_file()]
        good = False
        for path in present:
            problem = "forced re-download" if force else _check_file(path, base, known and known[base])
            if problem is None:
                good = True  # later spellings are never read: _find_idx_file stops at this one
                break
            if not force:
                warnings.warn(f"deleting corrupt cached file {path}: {problem}", stacklevel=4)
                notes.append(f"deleted corrupt {path.name} ({problem})")
            path.unlink(missing_ok=True)
        if not good:
            todo.append(base)
    if not todo:
        return []
    if not download:
        return notes + [f"missing {', '.join(todo)}"]
    folder.mkdir(parents=True, exist_ok=True)
    urls = _mirror_list(dataset, mirrors, use_default_mirrors)
    if not urls:
        raise DownloadError(
            f"cannot download {_PRETTY[dataset]}: no mirrors to try (mirrors= is empty and "
            f"use_default_mirrors=False); missing {', '.join(todo)} in {folder}.\n"
            f"{_manual_help(dataset, folder)}")
    for base in todo:
        failures = []
        for mirror in urls:
            url = f"{mirror}{base}.gz"
            try:
                _fetch_verified(url, base, folder / base, known and known[base], timeout)
            except _MirrorFailure as exc:
                failures.append((url, str(exc)))
                continue
            break
        else:
            lines = "\n".join(f"  - {url}: {reason}" for url, reason in failures)
            raise DownloadError(
                f"could not download {_PRETTY[dataset]} file {base}.gz; every mirror failed:\n{lines}\n"
                f"Nothing was written to {folder / base}.\n{_manual_help(dataset, folder)}",
                failures)
    return []


def download_mnist(folder: str | os.PathLike | None = None, *, dataset: str = "mnist",
                   mirrors: Iterable[str] | None = None, use_default_mirrors: bool = True,
                   timeout: float = _DEFAULT_TIMEOUT, force: bool = False) -> Path:
    """Make sure ``folder`` (default: the cache folder) holds the four verified IDX files.

    Files already there are verified (corrupt ones deleted); missing ones are downloaded from
    ``mirrors`` then, if ``use_default_mirrors``, from :data:`DEFAULT_MIRRORS`. Stored
    uncompressed. Raises :class:`DownloadError` when every mirror fails for a file.
    """
    dataset = _normalize_dataset(dataset)
    folder = Path(folder) if folder is not None else default_cache_dir(dataset)
    _ensure_cache(folder, dataset, download=True, mirrors=mirrors,
                  use_default_mirrors=use_default_mirrors, timeout=timeout, force=force)
    return folder


# --------------------------------------------------------------------------------------------
# Public loading
# --------------------------------------------------------------------------------------------


def _load_uint8(path, *, dataset: str, download: bool, cache_dir, mirrors, use_default_mirrors: bool,
                timeout: float):
    """((X_train, y_train), (X_test, y_test)) with X uint8 (N, 28, 28) and y uint8 (N,)."""
    if path is not None:
        return _load_path(Path(path), dataset)
    looked = []
    env = os.environ.get("MLP_DATA_DIR")
    if env:
        for candidate in _env_candidates(Path(env), dataset):
            if candidate.exists():
                source = _find_source(candidate, dataset)
                if source is not None:
                    return _load_source(*source)
        looked.append(f"MLP_DATA_DIR={env}: no {_PRETTY[dataset]} files in "
                      f"{' or '.join(map(str, _env_candidates(Path(env), dataset)))}")
    else:
        looked.append("MLP_DATA_DIR: not set")
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir(dataset)
    notes = _ensure_cache(folder, dataset, download=download, mirrors=mirrors,
                          use_default_mirrors=use_default_mirrors, timeout=timeout)
    if not notes:
        return _load_idx_folder(folder)
    looked.append(f"cache folder {folder}: {'; '.join(notes)}")
    raise DatasetNotFoundError(
        f"{_PRETTY[dataset]} not found and download=False. Looked in:\n"
        + "\n".join(f"  - {line}" for line in looked)
        + f"\n{_manual_help(dataset, folder)} Or call with download=True.")


def _finish(X: np.ndarray, y: np.ndarray, *, normalize: bool, flatten: bool, dtype) -> tuple[np.ndarray, np.ndarray]:
    if flatten:
        X = X.reshape(len(X), -1)
    if normalize:
        X = X.astype(dtype)
        X /= dtype(255)
    else:
        X = X.astype(dtype, copy=False)
    return np.ascontiguousarray(X), y.astype(np.int64)


def load_mnist(path: str | os.PathLike | None = None, *, dataset: str = "mnist", normalize: bool = True,
               flatten: bool = True, dtype: str = "float32", download: bool = True,
               cache_dir: str | os.PathLike | None = None, mirrors: Iterable[str] | None = None,
               use_default_mirrors: bool = True, timeout: float = _DEFAULT_TIMEOUT):
    """Load MNIST or Fashion-MNIST as ``(X_train, y_train), (X_test, y_test)``.

    Parameters
    ----------
    path : folder or file in any layout of the module docstring; None looks in ``$MLP_DATA_DIR``,
        then the cache folder, then downloads.
    dataset : "mnist" or "fashion-mnist".
    normalize : divide pixels by 255 into [0, 1]; False keeps 0..255.
    flatten : X of shape (N, 784) if True, else (N, 28, 28).
    dtype : "float32", "float64", or "uint8" (only with ``normalize=False``).
    download, cache_dir, mirrors, use_default_mirrors, timeout : see :func:`download_mnist`.

    Returns
    -------
    (X_train, y_train), (X_test, y_test): X of ``dtype``, y int64 (N,) with labels 0..9.
    """
    dataset = _normalize_dataset(dataset)
    key = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if key not in _DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
    np_dtype = _DTYPES[key]
    if normalize and np_dtype is np.uint8:
        raise ValueError("dtype='uint8' keeps pixels 0..255: pass normalize=False with it")
    train, test = _load_uint8(path, dataset=dataset, download=download, cache_dir=cache_dir, mirrors=mirrors,
                              use_default_mirrors=use_default_mirrors, timeout=timeout)
    options = dict(normalize=normalize, flatten=flatten, dtype=np_dtype)
    return _finish(*train, **options), _finish(*test, **options)


def convert(src: str | os.PathLike | None, dst: str | os.PathLike, fmt: str, *, dataset: str = "mnist",
            compress: bool = True, **load_options) -> list[Path]:
    """Read a data set from ``src`` (any layout, or None for the default lookup) and write it to ``dst``.

    fmt:
      "idx": the four IDX files in folder ``dst`` (gzip-compressed when ``compress``);
      "npz": ``dst`` if it ends in .npz, else ``dst/mnist.npz`` (Keras layout; zip-deflated
      when ``compress``);
      "csv": ``dst/mnist_train.csv`` and ``dst/mnist_test.csv`` (Kaggle layout);
      "binary": ``dst/train.mlpd`` and ``dst/test.mlpd``.
    ``load_options`` (download, cache_dir, mirrors, ...) go to the lookup when ``src`` is None.
    Returns the paths written.
    """
    dataset = _normalize_dataset(dataset)
    if fmt not in ("idx", "npz", "csv", "binary"):
        raise ValueError(f"fmt must be 'idx', 'npz', 'csv' or 'binary', got {fmt!r}")
    options = dict(download=True, cache_dir=None, mirrors=None, use_default_mirrors=True,
                   timeout=_DEFAULT_TIMEOUT)
    unknown = set(load_options) - set(options)
    if unknown:
        raise TypeError(f"convert() got unexpected keyword arguments {sorted(unknown)}")
    options.update(load_options)
    train, test = _load_uint8(src, dataset=dataset, **options)
    dst = Path(dst)
    if fmt == "npz":
        if dst.suffix != ".npz":
            dst = dst / _NPZ_NAMES[dataset][0]
        return [save_npz(dst, train, test, compress=compress)]
    dst.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        return list(save_csv(dst, train, test, prefix=_CSV_PREFIXES[dataset][0]))
    if fmt == "binary":
        return [write_binary(dst / "train.mlpd", *train), write_binary(dst / "test.mlpd", *test)]
    suffix = ".gz" if compress else ""
    written = []
    for (X, y), (images, labels) in ((train, (TRAIN_IMAGES, TRAIN_LABELS)), (test, (TEST_IMAGES, TEST_LABELS))):
        written.append(write_idx(dst / (images + suffix), X))
        written.append(write_idx(dst / (labels + suffix), y))
    return written

