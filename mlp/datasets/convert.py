"""``convert``: read a data set in any layout and write it in another (IDX, npz, CSV, .mlpd)."""

from __future__ import annotations

import os
from pathlib import Path

from ._common import SPLITS, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, normalize_dataset
from .csv import save_csv
from .discovery import CSV_PREFIXES, NPZ_NAMES
from .download import DEFAULT_DEADLINE, DEFAULT_TIMEOUT, check_time_limits
from .idx import write_idx
from .keras_npz import save_npz
from .load import load_uint8
from .mlpd import write_binary

__all__ = ["convert"]

FORMATS = ("idx", "npz", "csv", "binary")


def convert(
    src: str | os.PathLike | None,
    dst: str | os.PathLike,
    fmt: str,
    *,
    dataset: str = "mnist",
    compress: bool = True,
    **load_options,
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
    """
    dataset = normalize_dataset(dataset)
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be 'idx', 'npz', 'csv' or 'binary', got {fmt!r}")
    options = dict(
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
    train, test = load_uint8(src, dataset=dataset, splits=SPLITS, **options)
    dst = Path(dst)
    if fmt == "npz":
        if dst.suffix != ".npz":
            dst = dst / NPZ_NAMES[dataset][0]
        return [save_npz(dst, train, test, compress=compress)]
    dst.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        return list(save_csv(dst, train, test, prefix=CSV_PREFIXES[dataset][0]))
    if fmt == "binary":
        return [write_binary(dst / "train.mlpd", *train), write_binary(dst / "test.mlpd", *test)]
    suffix = ".gz" if compress else ""
    written = []
    for (X, y), (images, labels) in (
        (train, (TRAIN_IMAGES, TRAIN_LABELS)),
        (test, (TEST_IMAGES, TEST_LABELS)),
    ):
        written.append(write_idx(dst / (images + suffix), X))
        written.append(write_idx(dst / (labels + suffix), y))
    return written
