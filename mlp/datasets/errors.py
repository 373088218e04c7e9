"""The three errors of the data layer; every reader raises one of them and nothing else.

- :class:`DatasetFormatError` (a ``ValueError``): a file is there but malformed, truncated, too
  large for its own header, or holds values outside the data set's range.
- :class:`DatasetNotFoundError` (a ``FileNotFoundError``): no data where it was looked for.
- :class:`DownloadError` (a ``RuntimeError``): every mirror failed for a file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

__all__ = ["DatasetFormatError", "DatasetNotFoundError", "DownloadError"]


class DatasetFormatError(ValueError):
    """A data file is malformed: wrong magic number, truncated, wrong shape, bad values, too large.

    ``path`` is the offending file (also at the start of the message).
    """

    def __init__(self, message: str, *, path: str | os.PathLike | None = None):
        super().__init__(message)
        self.path = path


class DatasetNotFoundError(FileNotFoundError):
    """No data set files where they were looked for.

    ``dataset`` is "mnist" or "fashion-mnist" (None when unknown), ``looked_in`` lists one line per
    place searched and what was missing there, for a caller that prints its own advice.
    """

    def __init__(self, message: str, *, dataset: str | None = None, looked_in: Sequence[str] = ()):
        super().__init__(message)
        self.dataset = dataset
        self.looked_in = list(looked_in)


class DownloadError(RuntimeError):
    """Every mirror failed. ``failures`` lists ``(url, reason)`` for each attempt."""

    def __init__(self, message: str, failures: Sequence[tuple[str, str]] = ()):
        super().__init__(message)
        self.failures = list(failures)


def bad(path: str | os.PathLike, problem: str) -> DatasetFormatError:
    """A DatasetFormatError whose message starts with the file."""
    return DatasetFormatError(f"{path}: {problem}", path=path)


def describe_start(head: bytes) -> str:
    """A short description of what a wrong file starts with (for error messages)."""
    stripped = head.lstrip().lower()
    if stripped.startswith((b"<!doctype", b"<html", b"<?xml", b"<")):
        return f"an HTML/XML page, not data (starts with {head[:15]!r})"
    if not head:
        return "an empty file"
    return f"it starts with {head[:8]!r}"
