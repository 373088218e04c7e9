"""mlp.datasets.load: load_mnist on the real MNIST, its hashes, and the dtype, flatten and normalize options."""

import gzip
from pathlib import Path

import numpy as np
import pytest

from mlp._files import sha256_of
from mlp.datasets import (
    FILE_NAMES,
    MNIST_SHA256,
    load_mnist,
)
from tests.datasets.helpers import (
    TEST_COUNTS,
    TRAIN_COUNTS,
)


def test_real_mnist_default_load(mnist_dir):
    (X, y), (Xt, yt) = load_mnist(mnist_dir)
    assert X.shape == (60000, 784) and Xt.shape == (10000, 784)
    assert X.dtype == np.float32 and Xt.dtype == np.float32
    assert y.shape == (60000,) and yt.shape == (10000,)
    assert y.dtype == np.int64 and yt.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0 and Xt.max() == 1.0
    assert X.flags.c_contiguous
    assert np.bincount(y, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(yt, minlength=10).tolist() == TEST_COUNTS


def test_real_mnist_raw_values(real):
    (X, y), (Xt, yt) = real
    assert X.shape == (60000, 28, 28) and X.dtype == np.uint8
    assert Xt.shape == (10000, 28, 28)
    assert int(X.max()) == 255 and int(X.min()) == 0
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert yt[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_sha256_constants_match_real_data(mnist_dir, raw_dir):
    for name in FILE_NAMES:
        assert sha256_of(raw_dir / name) == MNIST_SHA256[name]
        gz = Path(mnist_dir) / (name + ".gz")
        if gz.exists():
            assert sha256_of(gzip.decompress(gz.read_bytes())) == MNIST_SHA256[name]
    listed = Path(mnist_dir) / "SHA256SUMS.uncompressed"
    if listed.exists():
        table = dict(reversed(line.split()) for line in listed.read_text().splitlines() if line.strip())
        assert {name: table[name] for name in FILE_NAMES} == MNIST_SHA256


def test_dtype_flatten_and_normalize_options(raw_dir, real):
    (X, _), (Xt, _yt) = load_mnist(raw_dir, dtype="float64", flatten=False)
    assert X.dtype == np.float64 and X.shape == (60000, 28, 28)
    np.testing.assert_array_equal(Xt, real[1][0] / 255.0)
    (_, _), (Xt, _) = load_mnist(raw_dir, normalize=False, dtype="float32")
    assert Xt.dtype == np.float32 and Xt.shape == (10000, 784) and Xt.max() == 255.0
    (_, _), (Xt, yt2) = load_mnist(raw_dir, normalize=False, dtype="uint8")
    assert Xt.dtype == np.uint8 and yt2.dtype == np.int64
    with pytest.raises(ValueError, match="normalize=False"):
        load_mnist(raw_dir, dtype="uint8")
    with pytest.raises(ValueError, match="dtype must be one of"):
        load_mnist(raw_dir, dtype="int16")
    with pytest.raises(ValueError, match="unknown dataset"):
        load_mnist(raw_dir, dataset="cifar10")
