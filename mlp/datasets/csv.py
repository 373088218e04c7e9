"""Kaggle-style MNIST CSVs: ``mnist_train.csv`` and ``mnist_test.csv``.

An optional header row, then one row per image: the label and 784 pixels 0..255. Before parsing,
one streaming pass checks every line against ``limits.max_csv_line_bytes`` and the row count
against ``limits.max_array_bytes``, so a file of one endless line or of millions of rows fails with
a clear message instead of exhausting memory.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from mlp._files import atomic_write

from ._common import (
    COLS,
    PIXELS,
    ROWS,
    as_images,
    check_declared,
    check_split,
    limits,
    open_regular,
    pixels_to_uint8,
)
from .errors import bad

__all__ = ["save_csv"]


def _csv_header() -> str:
    return "label," + ",".join(f"{r}x{c}" for r in range(1, ROWS + 1) for c in range(1, COLS + 1))


def _scan(path: Path) -> tuple[bool, int]:
    """(has a header row, number of data rows), checking line lengths on the way."""
    longest = limits.max_csv_line_bytes
    handle, _ = open_regular(path)
    rows = 0
    has_header = False
    with handle:
        for number, line in enumerate(iter(lambda: handle.readline(longest + 1), b""), start=1):
            if len(line) > longest and not line.endswith(b"\n"):
                raise bad(
                    path,
                    f"line {number} is longer than {longest:,} bytes (an MNIST row is at most "
                    f"about 4 KB; mlp.datasets.limits.max_csv_line_bytes); not an MNIST CSV?",
                )
            if number == 1:
                first_field = line.removeprefix(b"\xef\xbb\xbf").split(b",", 1)[0].strip().lstrip(b"+-")
                has_header = bool(line.strip()) and not first_field.isdigit()
                if has_header:
                    continue
            if line.strip():
                rows += 1
    return has_header, rows


def load_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(X uint8 (N, 28, 28), y uint8 (N,)) of one Kaggle-style CSV file."""
    has_header, rows = _scan(path)
    if rows == 0:
        raise bad(path, "no data rows")
    check_declared(path, rows * (PIXELS + 1) * 4, f"{rows:,} rows of {PIXELS + 1} numbers")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            table = np.loadtxt(
                path, delimiter=",", dtype=np.int32, skiprows=int(has_header), ndmin=2, encoding="utf-8-sig"
            )
    except UnicodeDecodeError as exc:
        raise bad(path, f"not a UTF-8 text CSV ({exc})") from None
    except (ValueError, OverflowError) as exc:
        message = str(exc).split("; use `usecols`")[0]
        raise bad(
            path,
            f"bad CSV: {message} (counting data rows from 0{', after the header' if has_header else ''})",
        ) from None
    if table.size == 0:
        raise bad(path, "no data rows")
    if table.shape[1] != PIXELS + 1:
        raise bad(path, f"{table.shape[1]} columns; expected {PIXELS + 1} (label, then {PIXELS} pixels)")
    X = pixels_to_uint8(table[:, 1:], path).reshape(-1, ROWS, COLS)
    y = table[:, 0]
    check_split(X, y, path)
    return X, y.astype(np.uint8)


def save_csv(
    folder: str | os.PathLike,
    train: tuple[ArrayLike, ArrayLike],
    test: tuple[ArrayLike, ArrayLike],
    *,
    prefix: str = "mnist",
) -> tuple[Path, Path]:
    """Write Kaggle-style ``<prefix>_train.csv`` and ``<prefix>_test.csv`` into ``folder`` (atomic).

    A header row ``label,1x1,1x2,...,28x28``, then per image its label and 784 pixels 0..255.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for (X, y), split in ((train, "train"), (test, "test")):
        X, y = as_images(X, y, f"X_{split}")
        table = np.concatenate([y[:, None], X.reshape(len(X), -1)], axis=1)
        path = folder / f"{prefix}_{split}.csv"
        with atomic_write(path, "w", newline="\n") as handle:
            handle.write(_csv_header() + "\n")
            for row in table.tolist():
                handle.write(",".join(map(str, row)))
                handle.write("\n")
        written.append(path)
    return written[0], written[1]
