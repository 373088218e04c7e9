"""Small file helpers shared by the I/O modules (datasets, model files, pictures).

Every file is written to a temporary file in the target's folder and renamed into place, so a reader
sees the old file or the complete new one, never half a file. Temporary files are created exclusively
(``mkstemp``: ``O_EXCL``, no symlink followed) under a recognisable name,
``.NAME.mlp-PID-XXXXXXXX.tmp`` (a download's ``.part``: a dot and up to 10 letters or digits), so
one left behind by a process killed mid-save (``kill -9``, power loss) is removed by the next save
into the same folder.

Standard library only, so that any part of the package (or a script) can import it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

__all__ = [
    "OutputPathError",
    "atomic_write",
    "check_writable",
    "is_write_error",
    "make_folder",
    "refuse_foreign",
    "refuse_special",
    "remove_stale_temporaries",
    "sha256_of",
    "starts_with",
    "temporary_path",
    "write_error",
]

_CHUNK = 1 << 20
_WRITE_MODES = {"w", "wb", "wt", "w+", "w+b", "wb+", "w+t", "wt+"}
_MAX_NAME_IN_PREFIX = 100  # keeps .NAME.mlp-PID-XXXXXXXX.SUFFIX (.tmp, .part) under the 255-byte limit
# errno values of a failed write (full disk, quota, RLIMIT_FSIZE, I/O error, read-only file system)
_WRITE_ERRNOS = {
    getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EFBIG", "EIO", "EROFS") if hasattr(errno, name)
}
STALE_AFTER_SECONDS = 10 * 60  # a temporary file untouched this long is abandoned, whoever made it
_TEMPORARY_NAME = re.compile(r"^\..*\.mlp-(?P<pid>\d{1,10})-[A-Za-z0-9_]{8}\.[A-Za-z0-9]{1,10}$", re.DOTALL)


class OutputPathError(OSError, ValueError):
    """An output path that cannot be written (missing folder, a folder given for a file, no permission).

    Raised before any work starts; both an OSError and a ValueError, so either kind of handler catches it."""


def _special_kind(path: Path) -> str | None:
    """What `path` is when it exists and is not a regular file ("a folder", "a FIFO", ...), else None.
    Links are followed: a link to a FIFO is refused like the FIFO."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        return None  # the write itself will say why (permissions, a loop of links)
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "an unknown kind of file"


def refuse_special(path: str | os.PathLike, what: str = "output file") -> Path:
    """Refuse an existing `path` that is not a regular file (a folder, device, FIFO or socket): every
    writer of the package calls this before it creates anything, so none of them ever replaces, blocks
    on or writes into such a thing. Raises OutputPathError with one line naming `what` and the fix;
    returns `path` as a Path."""
    path = Path(path)
    kind = _special_kind(path)
    name = f"{what} {path}" if what else str(path)
    if kind == "a folder":
        raise OutputPathError(f"{name} is a folder; give a file name inside it")
    if kind is not None:
        raise OutputPathError(f"{name} is not a regular file (it is {kind}); give another path")
    return path


def refuse_foreign(
    path: str | os.PathLike,
    what: str,
    kind: str,
    is_own: Callable[[Path], bool],
    *,
    hint: str = "give another path or delete it",
) -> Path:
    """Refuse to replace an existing file that is not of the `kind` this writer makes ("a PNG image",
    "an IDX file"); `is_own(path)` tells (`starts_with` builds one from magic numbers). A writer
    replaces its own kind of file (atomically), never a user's other file. Non-regular paths are
    refused too (`refuse_special`). Raises OutputPathError with one line; returns `path` as a Path."""
    path = refuse_special(path, what)
    if not path.exists():
        return path
    try:
        own = is_own(path)
    except OSError as error:
        raise OutputPathError(f"{what} {path} exists and cannot be read ({error.strerror}); {hint}") from None
    if not own:
        raise OutputPathError(f"{what} {path} exists and is not {kind}; {hint}")
    return path


def starts_with(*magics: bytes) -> Callable[[Path], bool]:
    """A test for `refuse_foreign`: the file begins with one of `magics`."""

    def test(path: Path) -> bool:
        with open(path, "rb") as handle:
            head = handle.read(max(map(len, magics)))
        return any(head.startswith(magic) for magic in magics)

    return test


def make_folder(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Create the folder `path` (and its parents) unless it exists; an existing path that is not a
    folder is refused with one line (OutputPathError), and any other failure names the folder."""
    path = Path(path)
    if _special_kind(path) not in (None, "a folder"):
        refuse_special(path, what)  # a device, FIFO or socket: the one message for those
    name = f"{what} {path}" if what else str(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{name} exists and is not a folder; give a folder name")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = error.strerror or str(error)
        raise OutputPathError(f"{name}: cannot create the folder ({reason})") from None
    return path


def is_write_error(error: BaseException) -> bool:
    """True for an OSError of a failed write (a full disk, a quota, a file-size limit, an I/O error, a
    read-only file system): the machine's fault, not the data's or the network's."""
    return isinstance(error, OSError) and error.errno in _WRITE_ERRNOS


def write_error(error: OSError, path: str | os.PathLike, what: str = "") -> OSError:
    """`error` as `cannot write WHAT PATH: No space left on device`, same type and errno."""
    return _write_error(error, Path(path), what)


def _write_error(error: OSError, path: Path, what: str, tmp: str | None = None) -> OSError:
    """The same kind of OSError, its message naming the file the caller asked for (never our temporary
    file): `cannot write checkpoint run.npz: No space left on device`."""
    reason = error.strerror or errno.errorcode.get(error.errno or 0, "") or str(error)
    other = getattr(error, "filename", None)
    if other is not None and str(other) not in (str(path), str(tmp)):
        reason = f"{reason} ({other})"
    name = f"{what} {path}" if what else str(path)
    return _named_error(error, f"cannot write {name}: {reason}")


def _named_error(error: OSError, message: str) -> OSError:
    """An OSError of `error`'s type and errno whose text is `message` alone (no "[Errno 28]" before
    it, so that the command line prints it as it is)."""
    try:
        named = type(error)(message)
    except TypeError:  # a subclass with another constructor
        named = OSError(message)
    named.errno = error.errno
    return named


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


def _folder_of(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def _process_is_gone(pid: int) -> bool:
    """True when no process `pid` exists on this machine (POSIX only; elsewhere nothing is known)."""
    if os.name != "posix" or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, OSError):
        return False  # alive under another user, or not a PID at all: leave it to the age rule
    return False


def remove_stale_temporaries(folder: str | os.PathLike[str], *, now: float | None = None) -> list[Path]:
    """Remove this library's temporary files in `folder` left by a save that never finished.

    A file counts as stale when it has our name pattern, is a regular file owned by the current user,
    and either the process that made it no longer exists or it has not been written to for
    STALE_AFTER_SECONDS. Returns the paths removed; errors (a file vanishing meanwhile, no permission)
    are ignored, since cleaning up is never worth failing a save for.
    """
    now = time.time() if now is None else now
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    own_pid = os.getpid()
    for entry in entries:
        match = _TEMPORARY_NAME.match(entry.name)
        if not match:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not entry.is_file(follow_symlinks=False):
            continue
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            continue
        pid = int(match["pid"])
        abandoned = pid != own_pid and _process_is_gone(pid)
        if abandoned or now - info.st_mtime > STALE_AFTER_SECONDS:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def _link_target(path: Path) -> Path:
    """Where a write to `path` lands: a symbolic link (or a chain of them) resolved to the file it
    names, existing or not, so that the link stays and its target is replaced (the checks already
    follow links, so they apply to the target); any other path as it is."""
    return Path(os.path.realpath(path)) if os.path.islink(path) else path


def _make_temporary(path: Path, suffix: str, what: str = "", folder: Path | None = None) -> tuple[int, str]:
    """An exclusively created, empty temporary file beside `path` (in `folder` when given): (fd,
    name). An existing `path` that is not a regular file is refused first (`refuse_special`)."""
    refuse_special(path, what or "output file")
    folder = _folder_of(path) if folder is None else folder
    remove_stale_temporaries(folder)
    prefix = f".{path.name[:_MAX_NAME_IN_PREFIX]}.mlp-{os.getpid()}-"
    try:
        return tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    except OSError as error:  # name the file the caller asked for, not our temporary one
        name = f"{what} {path}" if what else str(path)
        reason = "the folder does not exist" if isinstance(error, FileNotFoundError) else error.strerror
        raise _named_error(error, f"cannot write {name}: {reason or error}") from None


@contextlib.contextmanager
def temporary_path(path: str | os.PathLike, *, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield the path of a new, empty, hidden file beside ``path``; always removed on exit.

    For writers that want a file name rather than a file object (e.g. a download that is
    checked before it is moved into place with :func:`os.replace`). `suffix`: a dot and up to 10
    letters or digits (".tmp", ".part"), so that a file left behind is recognised and removed later.
    """
    if not re.fullmatch(r"\.[A-Za-z0-9]{1,10}", suffix):
        raise ValueError(f"suffix must be a dot and 1-10 letters or digits, like '.part'; got {suffix!r}")
    fd, tmp = _make_temporary(Path(path), suffix)
    os.close(fd)
    try:
        yield Path(tmp)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike,
    mode: str = "wb",
    *,
    encoding: str | None = None,
    newline: str | None = None,
    what: str = "",
) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; move it onto ``path`` on success.

    The data is written to a hidden temporary file in the same folder
    (``.NAME.mlp-PID-XXXXXXXX.tmp``), flushed and fsynced, then renamed over ``path`` with
    :func:`os.replace`, so readers see either the old file or the complete new one, never a partial
    file. If the ``with`` body raises, the temporary file is removed and ``path`` is left untouched.
    A symbolic link at ``path`` stays: the file it names (even one that does not exist yet) is
    replaced, through a temporary file beside that file. An existing ``path`` that is not a regular
    file (folder, device, FIFO, socket) is refused before anything is created (`refuse_special`). An OSError while writing (a full disk, a file-size limit)
    names the file: ``cannot write WHAT PATH: No space left on device`` (`what`: "checkpoint", ...).

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
    target = _link_target(path)  # os.replace onto a link would replace the link, not its file
    fd, tmp = _make_temporary(path, ".tmp", what, _folder_of(target))
    try:
        # mkstemp creates the file 0600; give it the permissions a plain open() would.
        with contextlib.suppress(OSError):
            os.chmod(tmp, 0o666 & ~_current_umask())
        handle = os.fdopen(fd, mode, encoding=encoding, newline=newline)
        try:
            try:
                yield handle
            except OSError as error:  # the body's own errors (reading its source) keep their message
                if is_write_error(error) and not isinstance(error, OutputPathError):
                    raise _write_error(error, path, what, tmp) from None
                raise
            try:
                handle.flush()
                os.fsync(handle.fileno())
                handle.close()
            except OSError as error:
                raise _write_error(error, path, what, tmp) from None
        finally:
            with contextlib.suppress(OSError):  # after a failure the buffered rest fails again: known
                handle.close()
        refuse_special(path, what or "output file")  # made meanwhile? os.replace would swap it out
        try:
            os.replace(tmp, target)
        except OSError as error:
            raise _write_error(error, path, what, tmp) from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_folder(_folder_of(target))


def check_writable(path: str | os.PathLike, what: str = "output file", *, folder: bool = False) -> Path:
    """Check, before any work, that `path` can be written; return it as a Path.

    For a file (the default): its folder exists and accepts new files, and `path` is not a folder or
    a device. With ``folder=True``, `path` is a folder that will be created if needed: it is not a
    file, and it (or its nearest existing parent) accepts new entries. Raises OutputPathError (an
    OSError and a ValueError) with a one-line message naming `what` and the fix.
    """
    path = Path(path)
    if str(path) == "":
        raise OutputPathError(f"{what}: the path is empty; give a file name")
    if folder:
        if _special_kind(path) not in (None, "a folder"):
            refuse_special(path, what)  # a device, FIFO or socket: the one message for those
        if path.exists() and not path.is_dir():
            raise OutputPathError(f"{what} {path} exists and is not a folder; give a folder name")
        target = path
        while not target.exists():
            parent = _folder_of(target)
            if parent == target:
                break
            target = parent
        if not target.is_dir():
            raise OutputPathError(f"{what} {path}: {target} is not a folder")
        _probe(target, path, what)
        return path
    refuse_special(path, what)
    parent = _folder_of(path)
    if not parent.exists():
        raise OutputPathError(f"{what} {path}: the folder {parent} does not exist; create it first")
    if not parent.is_dir():
        raise OutputPathError(f"{what} {path}: {parent} is not a folder")
    _probe(parent, path, what)
    return path


def _probe(folder: Path, path: Path, what: str) -> None:
    """Create and remove a temporary file in `folder`: the one test that covers permissions, ACLs
    and read-only file systems alike."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".probe.mlp-{os.getpid()}-", suffix=".tmp", dir=folder)
    except OSError as error:
        reason = error.strerror or errno.errorcode.get(error.errno or 0, str(error))
        raise OutputPathError(f"{what} {path}: cannot create files in {folder} ({reason})") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)


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


def open_regular_file(
    path: str | os.PathLike, what: str = "file", error: Callable[[str], Exception] = ValueError
) -> io.BufferedReader:
    """Open `path` for binary reading without ever blocking: opened with O_NONBLOCK (a FIFO with no
    writer then opens at once instead of waiting forever), refused unless it is a regular file, and
    only then switched back to blocking reads. Every reader of a path the user gives (model files,
    data files, images) opens it here.

    Raises FileNotFoundError ("PATH: no such WHAT") for a missing path, `error` with one line naming
    the path and `what` for a folder, a device, a FIFO or a socket; other OSErrors (permissions) as
    they are.
    """
    import stat  # here, so this function needs nothing else from the module

    article = "an" if what[:1] in ("a", "e", "i", "o", "u") else "a"
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise error(f"{path} is a folder, not {article} {what}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise error(f"{path} is a folder, not {article} {what}")
        if not stat.S_ISREG(mode):
            raise error(f"{path} is not a regular file (a device, pipe or socket); give {article} {what}")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
