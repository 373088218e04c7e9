"""Small file helpers shared by the I/O modules (datasets, model files).

Standard library only, so that any part of the package (or a script) can import it.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator

__all__ = ["atomic_write", "sha256_of", "temporary_path"]

_CHUNK = 1 << 20
_WRITE_MODES = {"w", "wb", "wt", "w+", "w+b", "wb+", "w+t", "wt+"}


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    """Best effort: make the rename itself durable (POSIX only)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def temporary_path(path: str | os.PathLike, *, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield the path of a new, empty, hidden file beside ``path``; always removed on exit.

    For writers that want a file name rather than a file object (e.g. a download that is
    checked before it is moved into place with :func:`os.replace`).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent or ".")
    os.close(fd)
    try:
        yield Path(tmp)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, encoding: str | None = None,
                 newline: str | None = None) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; move it onto ``path`` on success.

    The data is written to a hidden temporary file in the same folder (``.NAME.XXXX.tmp``),
    flushed and fsynced, then renamed over ``path`` with :func:`os.replace`, so readers see
    either the old file or the complete new one, never a partial file. If the ``with`` body
    raises, the temporary file is removed and ``path`` is left untouched.

    >>> with atomic_write("model.npz") as f:      # doctest: +SKIP
    ...     f.write(data)
    """
    if mode not in _WRITE_MODES:
        raise ValueError(f"atomic_write supports write modes only ({sorted(_WRITE_MODES)}), got {mode!r}")
    if "b" in mode and (encoding is not None or newline is not None):
        raise ValueError("encoding and newline are for text modes only")
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        # mkstemp creates the file 0600; give it the permissions a plain open() would.
        try:
            os.chmod(tmp, 0o666 & ~_current_umask())
        except OSError:
            pass
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def sha256_of(source: str | os.PathLike | bytes | bytearray | memoryview) -> str:
    """Hex SHA-256 of a bytes-like object, or of a file's bytes (read in chunks)."""
    digest = hashlib.sha256()
    if isinstance(source, (bytes, bytearray, memoryview)):
        digest.update(source)
        return digest.hexdigest()
    with open(source, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
