"""``load_mnist``: the one entry point that finds, downloads if allowed, reads and prepares a data set."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ._common import PRETTY, SPLIT_FILES, normalize_dataset, normalize_split
from .discovery import (
    data_dir_from_environment,
    default_cache_dir,
    env_candidates,
    find_source,
    load_path,
    load_source,
)
from .download import DEFAULT_DEADLINE, DEFAULT_TIMEOUT, check_time_limits, ensure_cache
from .errors import DatasetNotFoundError
from .idx import load_idx_folder

__all__ = ["load_mnist"]

_DTYPES: dict[str, type[np.generic]] = {"float32": np.float32, "float64": np.float64, "uint8": np.uint8}
Split = tuple[np.ndarray, np.ndarray]  # (X, y) of one split


def _not_found(
    dataset: str, looked_in: list[str], places: list[str], download: bool, corrupt: int = 0
) -> DatasetNotFoundError:
    why = " (download=False)" if not download else ""
    if corrupt:
        why += (
            f"; {corrupt} corrupt cached file{'s' if corrupt > 1 else ''} left in place "
            f"(a download replaces {'them' if corrupt > 1 else 'it'})"
        )
    return DatasetNotFoundError(
        f"{PRETTY[dataset]} not found in {' or '.join(places)}{why}. Pass its folder, "
        f"load_mnist('/path/to/{dataset}'), or download it once: mlp.datasets.download_mnist().",
        dataset=dataset,
        looked_in=looked_in,
    )


def load_uint8(
    path: str | os.PathLike | None,
    *,
    dataset: str,
    splits: Sequence[str],
    download: bool,
    cache_dir: str | os.PathLike | None,
    mirrors: Iterable[str] | None,
    use_default_mirrors: bool,
    timeout: float,
    deadline: float,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(X uint8 (N, 28, 28), y uint8 (N,)) for each of ``splits``] from the lookup order."""
    if path is not None:
        return load_path(Path(path), dataset, splits)
    looked_in, places = [], []
    root = data_dir_from_environment(dataset)
    env = str(root) if root is not None else None
    if root is not None:
        candidates = env_candidates(root, dataset)
        for candidate in candidates:
            if candidate.exists():
                source = find_source(candidate, dataset)
                if source is not None:
                    return load_source(*source, splits)
        looked_in.append(
            f"MLP_DATA_DIR={env}: no {PRETTY[dataset]} files in {' or '.join(map(str, candidates))}"
        )
        places.append(f"MLP_DATA_DIR={env}")
    else:
        looked_in.append("MLP_DATA_DIR: not set")
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir(dataset)
    bases = [base for split in splits for base in SPLIT_FILES[split]]
    notes = ensure_cache(
        folder,
        dataset,
        bases,
        download=download,
        mirrors=mirrors,
        use_default_mirrors=use_default_mirrors,
        timeout=timeout,
        deadline=deadline,
    )
    if not notes:
        return load_idx_folder(folder, splits)
    looked_in.append(f"cache folder {folder}: {'; '.join(notes)}")
    places.append(str(folder))
    corrupt = sum(note.startswith("corrupt ") for note in notes)
    raise _not_found(dataset, looked_in, places, download, corrupt)


def _finish(
    X: np.ndarray, y: np.ndarray, *, normalize: bool, flatten: bool, dtype: type[np.generic]
) -> tuple[np.ndarray, np.ndarray]:
    if flatten:
        X = X.reshape(len(X), -1)
    if normalize:
        X = X.astype(dtype)
        X /= dtype(255)
    else:
        X = X.astype(dtype, copy=False)
    return np.ascontiguousarray(X), y.astype(np.int64)


def load_mnist(
    path: str | os.PathLike | None = None,
    *,
    dataset: str = "mnist",
    split: str = "both",
    normalize: bool = True,
    flatten: bool = True,
    dtype: str = "float32",
    download: bool = True,
    cache_dir: str | os.PathLike | None = None,
    mirrors: Iterable[str] | None = None,
    use_default_mirrors: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    deadline: float = DEFAULT_DEADLINE,
) -> Split | tuple[Split, ...]:
    """Load MNIST or Fashion-MNIST as ``(X_train, y_train), (X_test, y_test)``.

    Parameters
    ----------
    path : folder or file in any layout of the package docstring; None looks in ``$MLP_DATA_DIR``,
        then the cache folder, then downloads.
    dataset : "mnist" or "fashion-mnist".
    split : "both" (the default) returns ``(train, test)``; "train" or "test" returns just that
        ``(X, y)`` pair, and reads (or downloads) only that split's files.
    normalize : divide pixels by 255 into [0, 1]; False keeps 0..255.
    flatten : X of shape (N, 784) if True, else (N, 28, 28).
    dtype : "float32", "float64", or "uint8" (only with ``normalize=False``).
    download, cache_dir, mirrors, use_default_mirrors, timeout, deadline : see :func:`download_mnist`.

    Returns
    -------
    (X_train, y_train), (X_test, y_test) for ``split="both"``, else (X, y): X of ``dtype``,
    y int64 (N,) with labels 0..9.
    """
    dataset = normalize_dataset(dataset)
    splits = normalize_split(split)
    key = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if key not in _DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
    np_dtype = _DTYPES[key]
    if normalize and np_dtype is np.uint8:
        raise ValueError("dtype='uint8' keeps pixels 0..255: pass normalize=False with it")
    check_time_limits(timeout, deadline)
    parts = load_uint8(
        path,
        dataset=dataset,
        splits=splits,
        download=download,
        cache_dir=cache_dir,
        mirrors=mirrors,
        use_default_mirrors=use_default_mirrors,
        timeout=timeout,
        deadline=deadline,
    )
    finished = [_finish(X, y, normalize=normalize, flatten=flatten, dtype=np_dtype) for X, y in parts]
    return finished[0] if split != "both" else tuple(finished)
