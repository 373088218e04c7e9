"""Download MNIST / Fashion-MNIST into the cache folder, verified, bounded in time and size.

Downloads use urllib only. Each file is streamed to a hidden temporary file beside its final
place, decompressed, checked (IDX magic number, dimensions, and the real file's counts: 60000 training
and 10000 test images of 28x28 and as many labels, so a sample or a small set of the same shape is
refused; for MNIST also the SHA-256 of the *uncompressed* content, so any faithful mirror passes
whether it serves .gz or not), and only then renamed into place: a failed, truncated, corrupt,
oversized or undersized download never lands at the final path. A file in the cache folder that
fails the check is fetched again and stays until its verified replacement is renamed over it (a
failed download leaves it as it was); a file that fails the check in a folder the caller names is
never deleted or replaced: the call is refused, naming it and what is wrong with it.

Bounds: ``timeout`` seconds for any one network read; ``deadline`` seconds for the whole call (a
server that drips bytes is abandoned once it passes, at most ``timeout`` later); no mirror may send
more than the compressed file can take (``Content-Length`` is checked first); decompression into
the cache stops at the size the IDX header declares, which may not exceed the real file's.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import io
import math
import os
import struct
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

from mlp._files import (
    OutputPathError,
    atomic_write,
    is_write_error,
    make_folder,
    temporary_path,
    write_error,
)
from mlp._progress import progress_bar

from ._common import (
    CHUNK,
    COLS,
    FILE_NAMES,
    PRETTY,
    ROWS,
    SPLIT_FILES,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    BinaryStream,
    normalize_dataset,
    normalize_split,
    read_up_to,
)
from .discovery import default_cache_dir
from .errors import DownloadError, describe_start
from .idx import IMAGES_MAGIC, LABELS_MAGIC, idx_candidates

__all__ = ["DEFAULT_MIRRORS", "MNIST_SHA256", "CacheWarning", "check_mirror", "download_mnist"]

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
KNOWN_SHA256: dict[str, dict[str, str] | None] = {"mnist": MNIST_SHA256, "fashion-mnist": None}

#: Uncompressed size of each file, the same for MNIST and Fashion-MNIST (60000 + 10000 images of
#: 28x28): the most a header may declare and the base of the cap on what a mirror may send.
CANONICAL_BYTES = {
    TRAIN_IMAGES: 16 + 60000 * 784,
    TRAIN_LABELS: 8 + 60000,
    TEST_IMAGES: 16 + 10000 * 784,
    TEST_LABELS: 8 + 10000,
}

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

DEFAULT_TIMEOUT = 30.0
DEFAULT_DEADLINE = 600.0


class _MirrorFailure(Exception):
    """Internal: one mirror could not deliver one good file (the message is the reason)."""


class _DeadlinePassed(_MirrorFailure):
    """Internal: the whole call ran out of time; no further mirror is tried."""


def _download_cap(base: str) -> int:
    """The most bytes a mirror may send for ``base``: the raw size plus gzip's worst-case overhead."""
    return CANONICAL_BYTES[base] + CANONICAL_BYTES[base] // 100 + (64 << 10)


def manual_help(dataset: str, cache: Path | None = None) -> str:
    names = ", ".join(b + ".gz" for b in FILE_NAMES)
    where = f", or copy them into the cache folder {cache}" if cache is not None else ""
    return (
        f"To supply the files by hand: put the four {PRETTY[dataset]} files ({names}; "
        f"gzip-compressed or not) in one folder and pass it, load_mnist('/that/folder'), "
        f"or set MLP_DATA_DIR=/that/folder{where}. A Keras mnist.npz or Kaggle "
        f"mnist_train.csv/mnist_test.csv can be passed the same way."
    )


# --------------------------------------------------------------------------------------------
# Verifying a stream of IDX content
# --------------------------------------------------------------------------------------------


def _verify_header(source: BinaryStream, base: str) -> tuple[bytes, int] | str:
    """(header bytes, declared total size) of an IDX stream for ``base``, or the problem."""
    head = read_up_to(source, 4)
    expected_magic = IMAGES_MAGIC if "images" in base else LABELS_MAGIC
    magic = int.from_bytes(head, "big") if len(head) == 4 else None
    if magic != expected_magic:
        head += read_up_to(source, 12)
        return f"not the expected IDX data (magic {magic}, expected {expected_magic}): {describe_start(head)}"
    offset = 4 + 4 * head[3]
    head += read_up_to(source, offset - 4)
    if len(head) < offset:
        return f"truncated: {len(head)} bytes, shorter than the IDX header"
    dims = struct.unpack(f">{head[3]}I", head[4:offset])
    if len(dims) == 3 and dims[1:] != (ROWS, COLS):
        return f"images are {dims[1]}x{dims[2]}, expected {ROWS}x{COLS}"
    declared = offset + math.prod(dims)
    if declared > CANONICAL_BYTES[base]:
        return (
            f"the header declares {declared:,} bytes, more than the {CANONICAL_BYTES[base]:,} of "
            f"the real file; nothing past the header was read"
        )
    real = (CANONICAL_BYTES[base] - offset) // max(math.prod(dims[1:]), 1)
    if dims[0] != real:  # a sample or another data set of the same shape: not the real files
        what = "images" if len(dims) == 3 else "labels"
        return (
            f"holds {dims[0]:,} {what}, not the {real:,} of the real file; nothing past the header was read"
        )
    return head, declared


def verify_stream(
    source: BinaryStream, base: str, expected_sha256: str | None, sink: IO[bytes] | None = None
) -> str | None:
    """Read an uncompressed IDX stream, copying it to ``sink``; return a problem or None.

    Checks the magic number for ``base``, the dimensions, that the size matches the header (reading
    at most one byte past it), and the SHA-256.
    """
    header = _verify_header(source, base)
    if isinstance(header, str):
        return header
    head, declared = header
    digest = hashlib.sha256(head)
    if sink is not None:
        sink.write(head)
    size = len(head)
    while size < declared:
        chunk = source.read(min(CHUNK, declared - size))
        if not chunk:
            break
        digest.update(chunk)
        size += len(chunk)
        if sink is not None:
            sink.write(chunk)
    if size < declared:
        return f"truncated or padded: the header declares {declared} bytes, got {size}"
    if source.read(1):
        return f"truncated or padded: more data than the {declared} bytes the header declares"
    if expected_sha256 is not None and digest.hexdigest() != expected_sha256:
        return f"SHA-256 of the content is {digest.hexdigest()}, expected {expected_sha256}"
    return None


def _open_content(path: Path) -> gzip.GzipFile | io.BufferedReader:
    """Open a downloaded/cached file for reading its uncompressed content."""
    with open(path, "rb") as handle:
        start = handle.read(2)
    return gzip.open(path, "rb") if start == b"\x1f\x8b" else open(path, "rb")


def check_file(path: Path, base: str, expected_sha256: str | None) -> str | None:
    """The problem with a cached file, or None when it is good."""
    try:
        with _open_content(path) as source:
            return verify_stream(source, base, expected_sha256)
    except (OSError, EOFError, zlib.error) as exc:
        return f"corrupt or truncated gzip data ({exc})"


# --------------------------------------------------------------------------------------------
# Fetching
# --------------------------------------------------------------------------------------------


def _copy_response(
    response: http.client.HTTPResponse, out: IO[bytes], *, cap: int, deadline_at: float, desc: str
) -> None:
    length = response.headers.get("Content-Length") if response.headers else None
    total = int(length) if length and length.strip().isdigit() else None
    if total is not None and total > cap:
        raise _MirrorFailure(
            f"the server announces {total:,} bytes, more than the {cap:,} this file can "
            f"take; nothing was read"
        )
    read = getattr(response, "read1", response.read)
    received = 0
    with progress_bar(total, desc, unit="B") as bar:
        for chunk in iter(lambda: read(CHUNK), b""):
            received += len(chunk)
            if received > cap:
                raise _MirrorFailure(f"sent more than the {cap:,} bytes this file can take; stopped there")
            out.write(chunk)
            bar.update(len(chunk))
            if time.monotonic() > deadline_at:
                raise _DeadlinePassed(f"the deadline passed after {received:,} bytes")
    if total is not None and received != total:
        raise _MirrorFailure(f"truncated: received {received} of {total} bytes")


def _fetch(url: str, part: Path, *, timeout: float, deadline_at: float, cap: int, desc: str) -> None:
    """Stream ``url`` into ``part``; raise _MirrorFailure with the reason on any failure."""
    remaining = deadline_at - time.monotonic()
    if remaining <= 0:
        raise _DeadlinePassed("the deadline passed before this mirror was tried")
    request = urllib.request.Request(url, headers={"User-Agent": "mlp-datasets/1 (python urllib)"})
    try:
        with (
            urllib.request.urlopen(request, timeout=min(timeout, remaining)) as response,
            open(part, "wb") as out,
        ):
            _copy_response(response, out, cap=cap, deadline_at=deadline_at, desc=desc)
    except urllib.error.HTTPError as exc:
        raise _MirrorFailure(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise _MirrorFailure(f"cannot connect: {exc.reason}") from None
    except http.client.IncompleteRead as exc:
        raise _MirrorFailure(
            f"truncated: connection closed after {len(exc.partial)} bytes ({exc.expected} more expected)"
        ) from None
    except (http.client.HTTPException, OSError, ValueError) as exc:
        if is_write_error(exc):  # the disk, not the mirror: no other mirror can help
            raise
        raise _MirrorFailure(f"{type(exc).__name__}: {exc}") from None


def _fetch_verified(
    url: str, base: str, target: Path, expected_sha256: str | None, *, timeout: float, deadline_at: float
) -> None:
    """Download ``url`` and put its verified, uncompressed content at ``target``."""
    with temporary_path(target, suffix=".part") as part:
        try:
            _fetch(url, part, timeout=timeout, deadline_at=deadline_at, cap=_download_cap(base), desc=base)
        except OSError as exc:  # only a failed write gets here: name the file, not the temporary one
            raise write_error(exc, target) from None
        try:
            with _open_content(part) as source, atomic_write(target) as sink:
                problem = verify_stream(source, base, expected_sha256, sink)
                if problem is not None:
                    raise _MirrorFailure(problem)  # inside atomic_write: nothing lands at target
        except (OSError, EOFError, zlib.error) as exc:
            if is_write_error(exc):  # named by atomic_write; a full disk is no mirror's fault
                raise
            raise _MirrorFailure(f"corrupt or truncated gzip data ({exc})") from None


MIRROR_SCHEMES = ("http", "https", "ftp", "file")


def check_mirror(url: object) -> str:
    """``url`` when it can be a mirror (an http, https, ftp or file URL of the folder holding the
    ``.gz`` files), else a ValueError saying what is accepted."""
    parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    if (
        not isinstance(url, str)
        or parts is None
        or parts.scheme not in MIRROR_SCHEMES
        or not (parts.netloc or parts.scheme == "file")
    ):
        raise ValueError(
            f"a mirror must be the URL of a folder holding the .gz files, such as "
            f"https://example.org/mnist/ ({', '.join(MIRROR_SCHEMES)}), got {url!r}"
        )
    return url


def _mirror_list(dataset: str, mirrors: Iterable[str] | None, use_default_mirrors: bool) -> list[str]:
    if isinstance(mirrors, (str, bytes)):
        mirrors = [mirrors]
    found = [check_mirror(mirror) for mirror in mirrors or []]
    if use_default_mirrors:
        found += [m for m in DEFAULT_MIRRORS.get(dataset, []) if m not in found]
    return [m if m.endswith("/") else m + "/" for m in found]


class CacheWarning(UserWarning):
    """A file in the cache folder failed the check and is being replaced by a verified download."""


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):
        return False


def _refuse_foreign_file(path: Path, problem: str, dataset: str) -> OutputPathError:
    """A file in a folder the caller named (not the cache) fails the check: it is the user's, and
    is never deleted or replaced; one line says what is wrong with it and how to go on."""
    return OutputPathError(
        f"{path} exists and is not the real {PRETTY[dataset]} file ({problem}); it was left as it is "
        f"and nothing was downloaded: move it out of {path.parent} (or delete it) and try again, or "
        f"download into another folder or the cache"
    )


def _verify_cached(
    folder: Path,
    bases: Sequence[str],
    known: dict[str, str] | None,
    force: bool,
    *,
    cache: bool = True,
    dataset: str = "mnist",
) -> tuple[list[str], list[tuple[Path, str]], dict[str, list[Path]]]:
    """(files still to fetch, [(corrupt cached file, its problem)], {base: cached files to remove
    once a verified one is in place}).

    In a folder that is not the cache, a file that fails the check is refused (OutputPathError)
    before anything is fetched; ``force`` re-fetches without that check. Nothing is deleted here but
    corrupt cached files in front of a good one (another spelling), which they would hide.
    """
    todo: list[str] = []
    corrupt: list[tuple[Path, str]] = []
    stale: dict[str, list[Path]] = {}
    for base in bases:
        good = False
        bad: list[Path] = []
        problems: list[tuple[Path, str]] = []
        for path in [p for p in idx_candidates(folder, base) if p.is_file()]:
            if force:
                if cache:
                    bad.append(path)
                continue
            problem = check_file(path, base, known[base] if known else None)
            if problem is None:
                good = True  # later spellings are never read: find_idx_file stops at this one
                break
            if not cache:
                raise _refuse_foreign_file(path, problem, dataset)
            bad.append(path)
            problems.append((path, problem))
        if good:  # a good file comes after bad ones: it is their verified replacement, already there
            _remove_replaced(bad, keep=None)
            continue
        todo.append(base)
        corrupt += problems
        if bad:
            stale[base] = bad
    return todo, corrupt, stale


def _remove_replaced(paths: Sequence[Path], keep: Path | None) -> None:
    """Remove cached files that a verified file now replaces (all but ``keep``, which was renamed over)."""
    for path in paths:
        if path != keep:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _fetch_one(
    base: str,
    urls: list[str],
    folder: Path,
    dataset: str,
    known: dict[str, str] | None,
    *,
    timeout: float,
    deadline: float,
    deadline_at: float,
) -> None:
    failures = []
    for mirror in urls:
        url = f"{mirror}{base}.gz"
        try:
            _fetch_verified(
                url,
                base,
                folder / base,
                known[base] if known else None,
                timeout=timeout,
                deadline_at=deadline_at,
            )
            return
        except _DeadlinePassed as exc:
            failures.append((url, str(exc)))
            raise DownloadError(
                f"could not download {PRETTY[dataset]} file {base}.gz within deadline={deadline:g} s "
                f"(the whole download); the last mirror tried was {url} ({exc}). Nothing was written "
                f"to {folder / base}. Retry on a faster connection or pass a larger deadline=.",
                failures,
            ) from None
        except _MirrorFailure as exc:
            failures.append((url, str(exc)))
    lines = "\n".join(f"  - {url}: {reason}" for url, reason in failures)
    raise DownloadError(
        f"could not download {PRETTY[dataset]} file {base}.gz; every mirror failed:\n{lines}\n"
        f"Nothing was written to {folder / base}.\n{manual_help(dataset, folder)}",
        failures,
    )


def ensure_cache(
    folder: Path,
    dataset: str,
    bases: Sequence[str] = FILE_NAMES,
    *,
    download: bool,
    mirrors: Iterable[str] | None,
    use_default_mirrors: bool,
    timeout: float,
    deadline: float,
    force: bool = False,
    cache: bool = True,
) -> list[str]:
    """Verify the files ``bases`` in ``folder`` and fetch what is missing or corrupt if allowed.

    ``cache``: ``folder`` is the library's cache, where a corrupt file is replaced (only once its
    verified replacement is in place); anywhere else a corrupt file is refused, never touched.
    Returns notes about what is missing or corrupt (empty when every file asked for is there and good).
    """
    deadline_at = time.monotonic() + deadline
    known = KNOWN_SHA256[dataset]
    todo, corrupt, stale = _verify_cached(folder, bases, known, force, cache=cache, dataset=dataset)
    if not todo:
        return []
    if not download:
        missing = [base for base in todo if base not in stale]
        notes = [f"corrupt {path.name} ({problem})" for path, problem in corrupt]
        return [*notes, *([f"missing {', '.join(missing)}"] if missing else [])]
    make_folder(folder, "download folder")  # a file, device or FIFO there is refused in one line
    urls = _mirror_list(dataset, mirrors, use_default_mirrors)
    if not urls:
        raise DownloadError(
            f"cannot download {PRETTY[dataset]}: no mirrors to try (mirrors= is empty and "
            f"use_default_mirrors=False); missing {', '.join(todo)} in {folder}.\n"
            f"{manual_help(dataset, folder)}"
        )
    for path, problem in corrupt:  # cached files only; each stays until its verified replacement lands
        warnings.warn(
            CacheWarning(f"corrupt cached file {path} ({problem}): downloading a verified replacement"),
            stacklevel=3,
        )
    for base in todo:
        _fetch_one(
            base, urls, folder, dataset, known, timeout=timeout, deadline=deadline, deadline_at=deadline_at
        )
        _remove_replaced(stale.get(base, ()), keep=folder / base)
    return []


def check_time_limits(timeout: float, deadline: float) -> None:
    for name, value in (("timeout", timeout), ("deadline", deadline)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
            raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")


def download_mnist(
    folder: str | os.PathLike | None = None,
    *,
    dataset: str = "mnist",
    mirrors: Iterable[str] | None = None,
    use_default_mirrors: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    deadline: float = DEFAULT_DEADLINE,
    force: bool = False,
    split: str = "both",
) -> Path:
    """Make sure ``folder`` (default: the cache folder) holds the verified IDX files of ``split``.

    Files already there are verified; missing ones (and, in the cache folder only, corrupt ones,
    each kept until its verified replacement is renamed over it) are downloaded from
    ``mirrors`` then, if ``use_default_mirrors``, from :data:`DEFAULT_MIRRORS`. Stored
    uncompressed. ``timeout``: seconds for any one network read; ``deadline``: seconds for the
    whole call. ``split``: "both", "train" or "test" (only that split's two files). Raises
    :class:`DownloadError` when every mirror fails for a file or the deadline passes. A file in a
    ``folder`` other than the cache that is not the real one is never deleted or replaced: an
    ``OSError`` (and ``ValueError``) names it before anything is fetched (``force=True`` replaces
    ``folder``'s files with verified downloads).
    """
    dataset = normalize_dataset(dataset)
    bases = [base for s in normalize_split(split) for base in SPLIT_FILES[s]]
    check_time_limits(timeout, deadline)
    cache = default_cache_dir(dataset)
    folder = Path(folder) if folder is not None else cache
    ensure_cache(
        folder,
        dataset,
        bases,
        cache=_same_folder(folder, cache),
        download=True,
        mirrors=mirrors,
        use_default_mirrors=use_default_mirrors,
        timeout=timeout,
        deadline=deadline,
        force=force,
    )
    return folder
