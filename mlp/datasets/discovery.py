"""Where the data is: the layouts recognised in a folder or file, ``$MLP_DATA_DIR``, the cache folder.

With a path, the first layout found there is used: the four IDX files (also in ``raw/`` or the
torchvision ``MNIST/raw`` layout), a Keras ``mnist.npz``, Kaggle ``mnist_train.csv`` /
``mnist_test.csv``, or ``train.mlpd`` / ``test.mlpd``. Only the files of the wanted splits are read.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import numpy as np

from ._common import FILE_NAMES, PRETTY, normalize_dataset
from .csv import load_csv
from .errors import DatasetNotFoundError
from .idx import find_idx_file, idx_candidates, load_idx_folder
from .keras_npz import load_npz
from .mlpd import load_binary

__all__ = ["data_dir_from_environment", "default_cache_dir"]

TORCHVISION_FOLDER = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
NPZ_NAMES = {"mnist": ("mnist.npz",), "fashion-mnist": ("fashion-mnist.npz", "fashion_mnist.npz")}
CSV_PREFIXES = {"mnist": ("mnist",), "fashion-mnist": ("fashion-mnist", "fashion_mnist")}

Splits = list[tuple[np.ndarray, np.ndarray]]
Where = Path | tuple[Path, Path]  # a folder or file, or the (train, test) pair of files


DATA_DIR_VARIABLE = "MLP_DATA_DIR"


def default_cache_dir(dataset: str = "mnist") -> Path:
    """``$XDG_CACHE_HOME/mlp/<dataset>`` if XDG_CACHE_HOME is an absolute path, else ``~/.cache/mlp/<dataset>``.

    A ValueError saying what to set when neither names a folder (no HOME and no entry for this user
    in the password database, as in a container running under a random UID)."""
    dataset = normalize_dataset(dataset)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "mlp" / dataset
    try:
        home = Path.home()
    except (RuntimeError, KeyError, OSError):
        raise ValueError(
            "no cache folder for the data: HOME is not set and XDG_CACHE_HOME is not an absolute path; "
            "set XDG_CACHE_HOME=/a/writable/folder, or MLP_DATA_DIR to the data's folder, or pass a folder"
        ) from None
    return home / ".cache" / "mlp" / dataset


def data_dir_from_environment(dataset: str = "mnist") -> Path | None:
    """``$MLP_DATA_DIR`` as a Path, None when it is unset or empty.

    A ValueError naming the variable when it names a file that is not one of the data files
    :func:`find_source` recognises (a folder is what it should name). A folder that does not exist
    is not an error: the lookup goes on to the cache.
    """
    value = os.environ.get(DATA_DIR_VARIABLE)
    if not value:
        return None
    accepted = (
        "point it at the folder that holds the data (the four IDX files, or mnist/ and fashion-mnist/), "
        "or unset it"
    )
    path = Path(value)
    try:
        if not path.exists() or path.is_dir():
            return path
        source = find_source(path, normalize_dataset(dataset))
    except DatasetNotFoundError:
        source = None
    except (OSError, ValueError) as error:  # a name too long for the file system, and the like
        raise ValueError(f"{DATA_DIR_VARIABLE}={value!r} cannot be used ({error}); {accepted}") from None
    if source is None:
        raise ValueError(f"{DATA_DIR_VARIABLE}={value!r} is a file, not a folder; {accepted}")
    return path


def env_candidates(root: Path, dataset: str) -> list[Path]:
    """The folders under ``$MLP_DATA_DIR`` searched for ``dataset``, in order."""
    if dataset == "mnist":
        return [root / "mnist", root]
    return [root / dataset, root / TORCHVISION_FOLDER[dataset] / "raw"]


def _split_pair(path: Path) -> tuple[Path, Path] | None:
    """The (train, test) pair of files given one of them (``train`` <-> ``test`` in the name)."""
    head, train, tail = path.name.rpartition("train")
    if train:
        return path, path.with_name(head + "test" + tail)
    head, test, tail = path.name.rpartition("test")
    if test:
        return path.with_name(head + "train" + tail), path
    return None


def _looked_for(path: Path, dataset: str) -> str:
    tv = TORCHVISION_FOLDER[dataset]
    prefix = CSV_PREFIXES[dataset][0]
    return (
        f"the four IDX files ({FILE_NAMES[0]}[.gz] and the others, also in raw/ or {tv}/raw/), "
        f"{' or '.join(NPZ_NAMES[dataset])}, {prefix}_train.csv + {prefix}_test.csv, "
        f"train.mlpd + test.mlpd"
    )


def _find_file_source(path: Path) -> tuple[str, Where] | None:
    name = path.name.lower()
    if name.endswith(".npz"):
        return "npz", path
    kind = "csv" if name.endswith(".csv") else "binary" if name.endswith(".mlpd") else None
    if kind is not None:
        pair = _split_pair(path)
        if pair is None:
            raise DatasetNotFoundError(
                f"{path}: cannot tell whether this is the train or the test split; put 'train' "
                f"or 'test' in the file names (e.g. mnist_train.csv, train.mlpd) or pass their folder"
            )
        return kind, pair
    if any(path in idx_candidates(path.parent, base) for base in FILE_NAMES):
        return "idx", path.parent
    return None


def find_source(path: Path, dataset: str) -> tuple[str, Where] | None:
    """(kind, where) of the first layout found at ``path``, or None."""
    if path.is_file():
        return _find_file_source(path)
    if not path.is_dir():
        return None
    tv = TORCHVISION_FOLDER[dataset]
    for folder in (path, path / "raw", path / tv / "raw"):
        if any(find_idx_file(folder, base) for base in FILE_NAMES):
            return "idx", folder
    for name in NPZ_NAMES[dataset]:
        if (path / name).is_file():
            return "npz", path / name
    for prefix in CSV_PREFIXES[dataset]:
        if (path / f"{prefix}_train.csv").is_file() or (path / f"{prefix}_test.csv").is_file():
            return "csv", (path / f"{prefix}_train.csv", path / f"{prefix}_test.csv")
    if (path / "train.mlpd").is_file() or (path / "test.mlpd").is_file():
        return "binary", (path / "train.mlpd", path / "test.mlpd")
    return None


def load_source(kind: str, where: Where, splits: Sequence[str] = ("train", "test")) -> Splits:
    """[(X uint8 (N, 28, 28), y uint8 (N,)) for each of ``splits``] from what find_source found."""
    if kind == "idx":
        return load_idx_folder(cast(Path, where), splits)
    if kind == "npz":
        return load_npz(cast(Path, where), splits)
    pair = cast("tuple[Path, Path]", where)  # csv, binary: the two files
    files = dict(zip(("train", "test"), pair, strict=True))
    for split in splits:
        if not files[split].is_file():
            other = next(p for p in pair if p != files[split])
            raise DatasetNotFoundError(f"{files[split]} not found (needed beside {other})")
    loader = load_csv if kind == "csv" else load_binary
    return [loader(files[split]) for split in splits]


def load_path(path: Path, dataset: str, splits: Sequence[str] = ("train", "test")) -> Splits:
    """The splits from a folder or file given by the caller (any layout)."""
    if not path.exists():
        raise DatasetNotFoundError(f"{path} does not exist", dataset=dataset, looked_in=[str(path)])
    source = find_source(path, dataset)
    if source is None:
        raise DatasetNotFoundError(
            f"no {PRETTY[dataset]} data found at {path}; looked for {_looked_for(path, dataset)}",
            dataset=dataset,
            looked_in=[str(path)],
        )
    return load_source(*source, splits)
