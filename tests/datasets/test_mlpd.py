"""mlp.datasets.mlpd: the binary .mlpd format, its layout, and malformed files."""

import struct

import numpy as np
import pytest

from mlp.datasets import (
    DatasetFormatError,
    convert,
    load_mnist,
    read_binary,
    write_binary,
)
from tests.datasets.helpers import (
    RAW,
    _assert_equal_splits,
)


def test_binary_full_roundtrip_and_layout(tmp_path, raw_dir, real):
    train_path, test_path = convert(raw_dir, tmp_path, "binary")
    assert (train_path.name, test_path.name) == ("train.mlpd", "test.mlpd")
    data = test_path.read_bytes()
    assert struct.unpack_from("<4sIIII", data) == (b"MLPD", 1, 10000, 28, 28)
    assert len(data) == 20 + 10000 * 784 + 10000
    (_X, _y), (Xt, yt) = real
    assert data[20 : 20 + 784] == Xt[0].tobytes()
    assert data[-10000:] == yt.astype(np.uint8).tobytes()
    Xr, yr = read_binary(test_path)
    assert Xr.dtype == np.uint8 and Xr.shape == (10000, 28, 28) and yr.dtype == np.uint8
    _assert_equal_splits(load_mnist(tmp_path, **RAW), real)
    _assert_equal_splits(load_mnist(train_path, **RAW), real)


def test_write_binary_shapes(tmp_path):
    write_binary(tmp_path / "a.mlpd", np.arange(6, dtype=np.uint8).reshape(2, 3), np.array([1, 2]))
    X, y = read_binary(tmp_path / "a.mlpd")
    assert X.shape == (2, 1, 3) and y.tolist() == [1, 2]
    write_binary(tmp_path / "b.mlpd", np.full((3, 16), 0.5, np.float32), np.zeros(3, np.int64))
    X, _ = read_binary(tmp_path / "b.mlpd")
    assert X.shape == (3, 4, 4) and (X == 128).all()
    with pytest.raises(ValueError, match="shape"):
        write_binary(tmp_path / "c.mlpd", np.zeros((3, 4), np.uint8), np.zeros(2, np.uint8))
    assert not (tmp_path / "c.mlpd").exists()


def test_bad_binary(tmp_path):
    path = write_binary(tmp_path / "train.mlpd", np.zeros((4, 28, 28), np.uint8), np.arange(4))
    data = path.read_bytes()
    path.write_bytes(b"MLPX" + data[4:])
    with pytest.raises(DatasetFormatError, match=r"train\.mlpd: not an MLPD file"):
        read_binary(path)
    path.write_bytes(data[:4] + struct.pack("<I", 2) + data[8:])
    with pytest.raises(DatasetFormatError, match=r"version 2.*regenerate"):
        read_binary(path)
    path.write_bytes(data[:-1])
    with pytest.raises(DatasetFormatError, match="truncated"):
        read_binary(path)
    path.write_bytes(data[:10])
    with pytest.raises(DatasetFormatError, match="too short"):
        read_binary(path)
    path.write_bytes(data)
    write_binary(tmp_path / "test.mlpd", np.zeros((2, 28, 28), np.uint8), np.array([3, 11]))
    with pytest.raises(DatasetFormatError, match=r"test\.mlpd: label 11 at index 1"):
        load_mnist(tmp_path)
