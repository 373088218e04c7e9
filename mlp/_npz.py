"""The one reader of `.npz` archives and their `.npy` arrays: model files, checkpoints and Keras-style
data sets all go through it, with every check and in bounded memory.

Nothing in the file is trusted. In order, before anything large is allocated or inflated:
- the zip's end record (zip64 aware): the entry count and the central directory's size are capped
  (MAX_ENTRIES, MAX_CENTRAL_DIRECTORY) and must fit in the file, before `zipfile` parses the directory;
- the directory: no two entries for one array name ("W0.npy" twice, or "W0" and "W0.npy");
- an entry, only when it is asked for (entries nobody asks for are never inflated): named `*.npy`, not
  encrypted, stored or deflated, inside the file, a stored entry's two sizes equal;
- its `.npy` header, parsed by one bounded parser (`read_npy_header`): version 1 or 2, at most
  MAX_NPY_HEADER bytes of text, exactly the keys descr (a string), fortran_order and shape (at most
  MAX_DIMENSIONS non-negative integers);
- its dtype (object arrays, i.e. pickles, are refused), then the size of data it declares: within the
  caller's `max_bytes`, no more than the entry's compressed size can inflate to (MAX_DEFLATE_RATIO),
  and equal to the entry's uncompressed size in the directory less the header;
- only then the data, read in bounded chunks into one buffer; inflation stops at the declared size,
  and the CRC is checked.

Every problem raises `NpzError` (a ValueError) with one line that starts with the file's name; each
caller turns it into its own documented error (`mlp.model_file.ModelFileError` for model files and
checkpoints, `mlp.datasets.DatasetFormatError` for data). What the arrays must hold (names, dtypes,
shapes, metadata) is the caller's business. Files are opened by `mlp._files.open_regular_file` (regular
files only, never blocking on a FIFO). No other module of the package parses zip files or `.npy` headers.
"""

from __future__ import annotations

import ast
import contextlib
import math
import os
import struct
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, Literal

import numpy as np

from ._files import open_regular_file
from .options import MAX_HIDDEN_LAYERS

__all__ = ["NpyHeader", "NpzError", "NpzReader"]

# The reader's own structural limits (the C++ port's npz.hpp has the same numbers). The limit on an
# array's data is the caller's: `max_bytes` of `NpzReader.read`.
MAX_NPY_HEADER = 4096  # bytes of the .npy header's text; NumPy writes about 100
MAX_DIMENSIONS = 32  # NumPy's own maximum (NPY_MAXDIMS) before NumPy 2
MAX_ENTRIES = 16 * (MAX_HIDDEN_LAYERS + 1) + 16  # a checkpoint: parameters, optimizer state, best copy
MAX_CENTRAL_DIRECTORY = 8 << 20
MAX_DEFLATE_RATIO = 1032  # the most deflate can compress: more declared output is a lie
_READ_CHUNK = 1 << 20
_NPY_MAGIC = b"\x93NUMPY"
# What a damaged archive can make zipfile or zlib raise.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    struct.error,
    OverflowError,
    KeyError,
    IndexError,
    UnicodeDecodeError,
)


class NpzError(ValueError):
    """A malformed, truncated, tampered-with or oversized `.npz` archive or `.npy` entry (one line,
    starting with the file's name). Callers turn it into their own documented error."""


def short(value: object, limit: int = 60) -> str:
    """A value for an error message: repr() (str() for an exception), cut to `limit` characters."""
    text = str(value) if isinstance(value, BaseException) else repr(value)
    return clip(text, limit)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextlib.contextmanager
def _zip_errors(what: str) -> Iterator[None]:
    """Turn anything zipfile or zlib raises on a damaged archive into one NpzError about `what`."""
    try:
        yield
    except NpzError:
        raise
    except _ZIP_ERRORS as error:
        raise NpzError(
            f"{what} is corrupt or truncated ({type(error).__name__}: {clip(str(error), 160)})"
        ) from None


def _read_exact(stream: IO[bytes], n: int, where: str) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise NpzError(f"{where} is not a valid .npy array (its header ends early: truncated)")
    return data


# ---- the .npy header ------------------------------------------------------------------------------
@dataclass(frozen=True)
class NpyHeader:
    """The header of one `.npy` entry, as parsed (`descr` not yet interpreted) and where it lies.

    where: "FILE: KEY" for messages; header_bytes: magic, length field and text; entry_bytes and
    compressed_bytes: the entry's sizes in the zip directory."""

    where: str
    descr: str
    fortran_order: bool
    shape: tuple[int, ...]
    header_bytes: int
    entry_bytes: int
    compressed_bytes: int

    def dtype(self) -> np.dtype[Any]:
        """`descr` as a NumPy dtype; object dtypes (pickles) and unknown or empty ones are refused."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dtype = np.dtype(self.descr)
        except Exception:  # any text at all may be in a hostile header
            raise NpzError(f"{self.where} has an unknown dtype {short(self.descr, 40)}") from None
        if dtype.hasobject:
            raise NpzError(f"{self.where} is an object array, which is never loaded (no pickles)")
        if dtype.itemsize == 0:
            raise NpzError(f"{self.where} has the empty dtype {short(self.descr, 40)}")
        return dtype

    def data_bytes(self, max_bytes: int | None = None, limit_name: str = "") -> int:
        """The bytes of data the header declares, checked in this order: at most `max_bytes` (the
        message names `limit_name`, the setting that raises it), no more than the entry's compressed
        size can inflate to, and equal to what the zip directory says the entry holds."""
        dtype = self.dtype()
        nbytes = math.prod(self.shape) * dtype.itemsize
        if max_bytes is not None and nbytes > max_bytes:
            setting = f" ({limit_name}; raise it if the file is genuine)" if limit_name else ""
            raise NpzError(
                f"{self.where} declares {nbytes:,} bytes of data, more than the limit of {max_bytes:,}{setting}"
            )
        if self.entry_bytes > MAX_DEFLATE_RATIO * self.compressed_bytes + 1024:
            raise NpzError(
                f"{self.where}: its zip entry claims {self.entry_bytes:,} bytes from {self.compressed_bytes:,} "
                "compressed, more than deflate can produce (corrupt or crafted file)"
            )
        if self.header_bytes + nbytes != self.entry_bytes:
            raise NpzError(
                f"{self.where}: the .npy header declares shape {short(self.shape)} of {dtype} "
                f"({nbytes:,} bytes) but the zip entry holds {self.entry_bytes - self.header_bytes:,} "
                "bytes of data (truncated or tampered with)"
            )
        return nbytes


def read_npy_header(stream: IO[bytes], where: str, info: zipfile.ZipInfo) -> NpyHeader:
    """The header at the start of a `.npy` stream, read with limits (at most 12 + MAX_NPY_HEADER bytes)
    and parsed as a Python literal of one small dict."""
    start = _read_exact(stream, 10, where)
    if start[:6] != _NPY_MAGIC:
        raise NpzError(f"{where} is not a valid .npy array (bad magic {short(start[:6])})")
    major = start[6]
    if major == 1:
        length, prefix = int.from_bytes(start[8:10], "little"), 10
    elif major == 2:
        length, prefix = int.from_bytes(start[8:10] + _read_exact(stream, 2, where), "little"), 12
    else:
        raise NpzError(f"{where} is not a valid .npy array (format version {major}; 1 and 2 are read)")
    if length > MAX_NPY_HEADER:
        raise NpzError(
            f"{where} is not a valid .npy array (its header is {length:,} bytes, over the "
            f"{MAX_NPY_HEADER}-byte limit)"
        )
    text = _read_exact(stream, length, where).decode("latin-1")
    malformed = f"{where} is not a valid .npy array (malformed header {short(clip(text.strip(), 60))})"
    try:
        header = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
        raise NpzError(malformed) from None
    if not (isinstance(header, dict) and set(header) == {"descr", "fortran_order", "shape"}):
        raise NpzError(malformed)
    descr, fortran, shape = header["descr"], header["fortran_order"], header["shape"]
    if not (
        isinstance(descr, str)
        and isinstance(fortran, bool)
        and isinstance(shape, tuple)
        and len(shape) <= MAX_DIMENSIONS
        and all(type(d) is int for d in shape)
    ):
        raise NpzError(malformed)
    if not all(0 <= d < 2**62 for d in shape):
        raise NpzError(f"{where} declares the impossible shape {short(shape)}")
    return NpyHeader(where, descr, fortran, shape, prefix + length, info.file_size, info.compress_size)


# ---- the archive ----------------------------------------------------------------------------------
def _end_record(handle: IO[bytes], size: int, where: str) -> None:
    """Check the zip's end record (zip64 aware) against the limits before zipfile parses the directory."""
    tail_length = min(size, 22 + 0xFFFF)
    handle.seek(size - tail_length)
    tail = handle.read(tail_length)
    at = len(tail) - 22 if tail[-22:-18] == b"PK\x05\x06" else tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        raise NpzError(f"{where} is truncated or not an .npz file (no zip end record)")
    entries, directory_size = struct.unpack("<10xHI6x", tail[at : at + 22])
    locator = tail[at - 20 : at] if at >= 20 else b""
    has_locator = locator[:4] == b"PK\x06\x07"
    if (entries == 0xFFFF or directory_size == 0xFFFFFFFF) and not has_locator:
        raise NpzError(f"{where}: its zip64 end record is missing (truncated or corrupt file)")
    if has_locator:  # zip64 (zipfile then trusts these numbers, so they are the ones to check)
        (offset,) = struct.unpack("<8xQ4x", locator)
        if offset > size - 56:
            raise NpzError(f"{where}: its zip64 end record points past the end of the file")
        handle.seek(offset)
        record = handle.read(56)
        if record[:4] != b"PK\x06\x06":
            raise NpzError(f"{where}: its zip64 end record is corrupt")
        entries, directory_size = struct.unpack("<32xQQ8x", record)
    if entries > MAX_ENTRIES or directory_size > min(MAX_CENTRAL_DIRECTORY, size):
        raise NpzError(
            f"{where}: the archive declares {entries:,} entries in a {directory_size:,}-byte directory; "
            f"an .npz this reader opens has at most {MAX_ENTRIES:,} entries in a directory of at most "
            f"{MAX_CENTRAL_DIRECTORY:,} bytes within the file"
        )


def _keys(infos: list[zipfile.ZipInfo], where: str) -> dict[str, zipfile.ZipInfo]:
    """Array name (the entry's name without `.npy`) -> entry; an array named twice is refused."""
    counts = Counter(info.filename for info in infos)
    twice = [name for name, count in counts.items() if count > 1]
    ambiguous = "refusing an ambiguous archive (readers would disagree on which copy counts)"
    if twice:
        key = twice[0][:-4] if twice[0].endswith(".npy") else twice[0]
        raise NpzError(
            f"{where}: the archive holds the array {key!r} twice (more than one entry named "
            f"{twice[0]!r}); {ambiguous}"
        )
    keys: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        if key in keys:
            raise NpzError(
                f"{where}: the archive holds the array {key!r} twice (as both {key!r} and "
                f"{key + '.npy'!r}); {ambiguous}"
            )
        keys[key] = info
    return keys


class NpzReader:
    """An open `.npz` whose end record and central directory have been checked; `keys` maps each
    array name ("W0", "x_train") to its zip entry. Use as a context manager (it closes `handle`).

    `handle`: the file, opened for binary reading (see `open`); `where`: its name in messages."""

    def __init__(self, handle: IO[bytes], where: str) -> None:
        self.where = where
        self._handle = handle
        self._zip: zipfile.ZipFile | None = None
        try:
            self.size = os.fstat(handle.fileno()).st_size
            self.keys = self._directory()
        except BaseException:
            self.close()
            raise

    @classmethod
    def open(cls, path: str | os.PathLike[str], what: str = "file") -> NpzReader:
        """The archive at `path`, opened by the package's one safe opener: FileNotFoundError when
        missing, NpzError for a folder, device, FIFO or socket (`what` names the file: "model file")."""
        handle = open_regular_file(path, what, NpzError)
        return cls(handle, str(path))

    def __enter__(self) -> NpzReader:
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        self.close()
        return False

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
        self._handle.close()

    def __contains__(self, key: object) -> bool:
        return key in self.keys

    def _directory(self) -> dict[str, zipfile.ZipInfo]:
        where, handle = self.where, self._handle
        if handle.read(2) != b"PK" or self.size < 22:
            raise NpzError(f"{where} is not an .npz file (no ZIP header); is it the right file?")
        with _zip_errors(f"{where}: the zip directory"):
            _end_record(handle, self.size, where)
            handle.seek(0)
            self._zip = zipfile.ZipFile(handle)
            infos = self._zip.infolist()
        if len(infos) > MAX_ENTRIES:
            raise NpzError(
                f"{where}: the archive holds {len(infos):,} entries; this reader opens at most {MAX_ENTRIES:,}"
            )
        return _keys(infos, where)

    def entry(self, key: str) -> zipfile.ZipInfo:
        """The zip entry of array `key`, checked against the file before anything is inflated."""
        info = self.keys.get(key)
        name = info.filename if info is not None else key
        where = f"{self.where}: the entry {name!r}"
        if info is None:
            raise NpzError(f"{self.where} lacks the array {key!r}")
        if not info.filename.endswith(".npy"):
            raise NpzError(f"{where} is not a .npy array (its name does not end in .npy)")
        if info.flag_bits & 0x1:
            raise NpzError(f"{where} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise NpzError(
                f"{where} uses zip compression method {info.compress_type}; only stored and deflated "
                "entries are read (write the file with numpy.savez or numpy.savez_compressed)"
            )
        if info.header_offset + 30 + info.compress_size > self.size:
            raise NpzError(f"{where} extends past the end of the file (truncated or corrupt)")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise NpzError(
                f"{where} is stored uncompressed but its sizes disagree: it declares {info.file_size:,} "
                f"bytes and holds {info.compress_size:,}"
            )
        return info

    def header(self, key: str) -> NpyHeader:
        """The parsed `.npy` header of array `key` (its entry checked first); reads only the header."""
        info = self.entry(key)
        where = f"{self.where}: {key}"
        assert self._zip is not None
        with _zip_errors(where), self._zip.open(info) as stream:
            return read_npy_header(stream, where, info)

    def read(self, key: str, *, max_bytes: int | None = None, limit_name: str = "") -> np.ndarray:
        """The array `key`: header, dtype and size checked (at most `max_bytes` bytes of data; the
        message names `limit_name`, the setting that raises it), then read in bounded chunks into
        one buffer. Shaped as its header says (C or Fortran order)."""
        info = self.entry(key)
        where = f"{self.where}: {key}"
        assert self._zip is not None
        with _zip_errors(where), self._zip.open(info) as stream:
            header = read_npy_header(stream, where, info)
            dtype = header.dtype()
            nbytes = header.data_bytes(max_bytes, limit_name)
            buffer = np.empty(nbytes, dtype=np.uint8)
            view = buffer.data
            position = 0
            while position < nbytes:
                chunk = stream.read(min(_READ_CHUNK, nbytes - position))
                if not chunk:
                    raise NpzError(
                        f"{where} is truncated: its .npy header declares {nbytes:,} bytes of data but "
                        f"only {position:,} follow"
                    )
                view[position : position + len(chunk)] = chunk
                position += len(chunk)
            if stream.read(1):  # also makes zipfile check the CRC
                raise NpzError(f"{where} holds more data than its .npy header declares")
        order: Literal["F", "C"] = "F" if header.fortran_order else "C"
        return buffer.view(dtype).reshape(header.shape, order=order)
