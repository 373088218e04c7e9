"""mlp.datasets.discovery: the layouts found in a folder, and the lookup order without a path
($MLP_DATA_DIR, the cache folder, $XDG_CACHE_HOME, ~/.cache)."""

import os

import pytest

from mlp import datasets
from mlp.datasets import (
    FILE_NAMES,
    DatasetNotFoundError,
    load_mnist,
    save_csv,
    save_npz,
)
from tests.datasets.helpers import (
    RAW,
    _assert_equal_splits,
    _copy_cache,
    _subset,
    _write_idx_folder,
)


def test_torchvision_layout(tmp_path, raw_dir, real):
    folder = tmp_path / "torch" / "MNIST" / "raw"
    folder.mkdir(parents=True)
    for name in FILE_NAMES:
        os.symlink(raw_dir / name, folder / name)
    _assert_equal_splits(load_mnist(tmp_path / "torch", **RAW), real)
    _assert_equal_splits(load_mnist(tmp_path / "torch" / "MNIST", **RAW), _subset(real, 60000, 10000))


def test_incomplete_folder_and_nothing_found(small_idx, tmp_path):
    (small_idx / FILE_NAMES[3]).unlink()
    with pytest.raises(DatasetNotFoundError, match="missing t10k-labels-idx1-ubyte"):
        load_mnist(small_idx)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetNotFoundError, match=r"looked for.*mnist.npz.*mnist_train.csv"):
        load_mnist(empty)
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        load_mnist(tmp_path / "nowhere")


def test_mlp_data_dir_comes_before_the_cache(tmp_path, monkeypatch, raw_dir, real):
    cache = _copy_cache(raw_dir, tmp_path / "cache")
    env = _write_idx_folder(tmp_path / "env", *_subset(real, 30, 20))
    monkeypatch.setenv("MLP_DATA_DIR", str(env))
    (X, _), (Xt, _) = load_mnist(cache_dir=cache, download=False, **RAW)
    assert len(X) == 30 and len(Xt) == 20
    _write_idx_folder(env / "mnist", *_subset(real, 40, 20))  # $MLP_DATA_DIR/mnist wins
    assert len(load_mnist(cache_dir=cache, download=False, **RAW)[0][0]) == 40
    monkeypatch.setenv("MLP_DATA_DIR", str(tmp_path / "nothing-here"))
    assert len(load_mnist(cache_dir=cache, download=False, **RAW)[0][0]) == 60000


def test_mlp_data_dir_other_layouts_and_fashion(tmp_path, monkeypatch, real):
    env = tmp_path / "env"
    save_npz(env / "mnist.npz", *_subset(real, 12, 8), compress=False)
    save_csv(env / "fashion-mnist", *_subset(real, 5, 3), prefix="fashion-mnist")
    monkeypatch.setenv("MLP_DATA_DIR", str(env))
    assert len(load_mnist(download=False, **RAW)[0][0]) == 12
    # Fashion-MNIST never takes MNIST files from $MLP_DATA_DIR itself, only from its subfolder.
    assert len(load_mnist(dataset="fashion-mnist", download=False, **RAW)[0][0]) == 5


def test_cache_dir_then_xdg_then_home(tmp_path, monkeypatch, raw_dir, real):
    custom = _copy_cache(raw_dir, tmp_path / "custom")
    _assert_equal_splits(load_mnist(cache_dir=custom, download=False, **RAW), real)
    assert datasets.default_cache_dir() == tmp_path / "xdg" / "mlp" / "mnist"
    assert datasets.default_cache_dir("fashion-mnist") == tmp_path / "xdg" / "mlp" / "fashion-mnist"
    _copy_cache(raw_dir, tmp_path / "xdg" / "mlp" / "mnist")
    _assert_equal_splits(load_mnist(download=False, **RAW), real)
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert datasets.default_cache_dir() == tmp_path / "home" / ".cache" / "mlp" / "mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # ignored, as the XDG spec says
    assert datasets.default_cache_dir() == tmp_path / "home" / ".cache" / "mlp" / "mnist"


def test_nothing_anywhere_without_download(tmp_path, monkeypatch):
    monkeypatch.setenv("MLP_DATA_DIR", str(tmp_path / "env"))
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist(download=False)
    error = info.value
    message = str(error)
    assert f"MLP_DATA_DIR={tmp_path / 'env'}" in message
    assert str(tmp_path / "xdg" / "mlp" / "mnist") in message
    assert "mlp.datasets.download_mnist()" in message and "\n" not in message
    assert len(message) <= 300, len(message)
    assert isinstance(error, FileNotFoundError) and error.dataset == "mnist"
    assert error.looked_in[0].startswith(f"MLP_DATA_DIR={tmp_path / 'env'}: no MNIST files")
    assert error.looked_in[1].startswith(f"cache folder {tmp_path / 'xdg' / 'mlp' / 'mnist'}: missing")
