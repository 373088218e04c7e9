"""``convert``: read a data set in any layout and write it in another (IDX, npz, CSV, .mlpd)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from .._files import make_folder, refuse_foreign, starts_with
from .._npz import NpzError, NpzReader
from ._common import SPLITS, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, normalize_dataset
from .csv import save_csv
from .discovery import CSV_PREFIXES, NPZ_NAMES
from .download import DEFAULT_DEADLINE, DEFAULT_TIMEOUT, check_time_limits
from .idx import write_idx
from .keras_npz import save_npz
from .load import load_uint8
from .mlpd import BINARY_MAGIC, write_binary

__all__ = ["convert"]

FORMATS = ("idx", "npz", "csv", "binary")


def convert(
    src: str | os.PathLike | None,
    dst: str | os.PathLike,
    fmt: str,
    *,
    dataset: str = "mnist",
    compress: bool = True,
    **load_options: Any,
) -> list[Path]:
    """Read a data set from ``src`` (any layout, or None for the default lookup) and write it to ``dst``.

    fmt:
      "idx": the four IDX files in folder ``dst`` (gzip-compressed when ``compress``);
      "npz": ``dst`` if it ends in .npz, else ``dst/mnist.npz`` (Keras layout; zip-deflated
      when ``compress``);
      "csv": ``dst/mnist_train.csv`` and ``dst/mnist_test.csv`` (Kaggle layout);
      "binary": ``dst/train.mlpd`` and ``dst/test.mlpd``.

    ``load_options`` (download, cache_dir, mirrors, timeout, deadline, ...) go to the lookup when
    ``src`` is None. Returns the paths written.

    Every destination is checked before anything is read: a folder, device, FIFO or socket where a
    file goes (or a file where the folder goes) is refused, and an existing file is replaced
    (atomically) only when it is of the format being written, as a rerun leaves it; anything else
    there (notes, a trained model, another format's file) raises OutputPathError, never overwritten.
    """
    dataset = normalize_dataset(dataset)
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be 'idx', 'npz', 'csv' or 'binary', got {fmt!r}")
    options: dict[str, Any] = dict(
        download=True,
        cache_dir=None,
        mirrors=None,
        use_default_mirrors=True,
        timeout=DEFAULT_TIMEOUT,
        deadline=DEFAULT_DEADLINE,
    )
    unknown = set(load_options) - set(options)
    if unknown:
        raise TypeError(f"convert() got unexpected keyword arguments {sorted(unknown)}")
    options.update(load_options)
    check_time_limits(options["timeout"], options["deadline"])
    dst = Path(dst)
    if fmt == "npz" and dst.suffix != ".npz":
        dst = dst / NPZ_NAMES[dataset][0]
    folder = dst.parent if fmt == "npz" else dst
    targets = _targets(dst, fmt, dataset, compress)
    if folder.exists() and not folder.is_dir():
        make_folder(folder, "destination folder")  # refused: a file, device or FIFO where a folder goes
    for path in targets:  # before anything is read, and nothing but this format's own files replaced
        refuse_foreign(path, "destination", _KINDS[fmt][0], _KINDS[fmt][1])
    train, test = load_uint8(src, dataset=dataset, splits=SPLITS, **options)
    make_folder(folder, "destination folder")
    if fmt == "npz":
        return [save_npz(dst, train, test, compress=compress)]
    if fmt == "csv":
        return list(save_csv(dst, train, test, prefix=CSV_PREFIXES[dataset][0]))
    if fmt == "binary":
        return [write_binary(targets[0], *train), write_binary(targets[1], *test)]
    for (X, y), (images, labels) in zip(
        (train, test), zip(targets[0::2], targets[1::2], strict=True), strict=True
    ):
        write_idx(images, X)
        write_idx(labels, y)
    return targets


def _targets(dst: Path, fmt: str, dataset: str, compress: bool) -> list[Path]:
    """The files `convert` writes, in its return order."""
    if fmt == "npz":
        return [dst]
    if fmt == "csv":
        prefix = CSV_PREFIXES[dataset][0]
        return [dst / f"{prefix}_train.csv", dst / f"{prefix}_test.csv"]
    if fmt == "binary":
        return [dst / "train.mlpd", dst / "test.mlpd"]
    suffix = ".gz" if compress else ""
    return [dst / (name + suffix) for name in (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)]


def _keras_npz(path: Path) -> bool:
    """A Keras-style data .npz (x_train in it), not a trained model or another archive."""
    try:
        with NpzReader.open(path, "data file") as archive:  # only the zip directory is read
            return "x_train" in archive and "metadata" not in archive
    except NpzError:
        return False


def _mnist_csv(path: Path) -> bool:
    with open(path, "rb") as handle:
        return re.match(rb"(label,|[0-9]+,)", handle.read(16)) is not None


# What an existing destination file must be for convert to replace it (its own format, as a rerun
# leaves it); anything else there (a model, notes, another format's file) is refused.
_KINDS = {
    "idx": ("an IDX file", starts_with(b"\x1f\x8b", b"\0\0\x08")),
    "npz": ("a Keras-style MNIST .npz", _keras_npz),
    "csv": ("an MNIST CSV file", _mnist_csv),
    "binary": ("an .mlpd file", starts_with(BINARY_MAGIC)),
}
