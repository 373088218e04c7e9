"""mlp.datasets.keras_npz: Keras-style mnist.npz files, written and read, and malformed ones."""

import os
import re

import numpy as np
import pytest

from mlp.datasets import (
    DatasetFormatError,
    convert,
    load_mnist,
    save_npz,
)
from tests.datasets.helpers import (
    RAW,
    _assert_equal_splits,
    _subset,
)


def test_npz_full_roundtrip(tmp_path, raw_dir, real):
    (path,) = convert(raw_dir, tmp_path, "npz", compress=False)
    assert path == tmp_path / "mnist.npz"
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["x_test", "x_train", "y_test", "y_train"]
        assert npz["x_train"].dtype == np.uint8 and npz["x_train"].shape == (60000, 28, 28)
        assert npz["y_test"].dtype == np.uint8
    _assert_equal_splits(load_mnist(path, **RAW), real)  # the file
    _assert_equal_splits(load_mnist(tmp_path, **RAW), real)  # its folder


def test_npz_accepts_normalized_float_input(tmp_path, real):
    sub = _subset(real)
    floats = tuple((X.reshape(len(X), -1) / np.float32(255), y) for X, y in sub)
    save_npz(tmp_path / "mnist.npz", *floats)
    _assert_equal_splits(load_mnist(tmp_path / "mnist.npz", **RAW), sub)
    with pytest.raises(ValueError, match=r"normalized to \[0, 1\]"):
        save_npz(tmp_path / "bad.npz", (sub[0][0].astype(np.float32), sub[0][1]), sub[1])
    assert not (tmp_path / "bad.npz").exists()


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_bad_npz(tmp_path, real):
    (X, y), (Xt, yt) = _subset(real)
    good = dict(x_train=X, y_train=y, x_test=Xt, y_test=yt)
    path = _npz(tmp_path / "a.npz", **{k: v for k, v in good.items() if k != "y_test"})
    with pytest.raises(DatasetFormatError, match=r"a\.npz: missing key\(s\) y_test"):
        load_mnist(path)
    path = _npz(tmp_path / "b.npz", **{**good, "x_test": np.array([None, 1], dtype=object)})
    with pytest.raises(DatasetFormatError, match=r"b\.npz: x_test is an object array"):
        load_mnist(path)
    path = _npz(tmp_path / "c.npz", **{**good, "x_train": X[:, :27]})
    with pytest.raises(DatasetFormatError, match=r"x_train has shape \(100, 27, 28\)"):
        load_mnist(path)
    path = _npz(tmp_path / "d.npz", **{**good, "x_train": X / 255.0})
    with pytest.raises(DatasetFormatError, match="x_train have dtype float64"):
        load_mnist(path)
    path = _npz(tmp_path / "e.npz", **{**good, "y_train": y[:-1]})
    with pytest.raises(DatasetFormatError, match="100 images but 99 labels"):
        load_mnist(path)
    (tmp_path / "f.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DatasetFormatError, match=r"f\.npz"):
        load_mnist(tmp_path / "f.npz")
    np.save(tmp_path / "g.npy", X)
    os.replace(tmp_path / "g.npy", tmp_path / "g.npz")
    with pytest.raises(DatasetFormatError, match=re.escape("single .npy array")):
        load_mnist(tmp_path / "g.npz")
