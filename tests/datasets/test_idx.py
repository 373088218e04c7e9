"""mlp.datasets.idx: IDX files raw and gzip-compressed, every element type, and corrupt ones."""

import gzip
import re
import shutil

import numpy as np
import pytest

from mlp.datasets import (
    FILE_NAMES,
    DatasetFormatError,
    load_mnist,
    read_idx,
    write_idx,
)
from tests.datasets.helpers import (
    HTML_PAGE,
    RAW,
    _assert_equal_splits,
    _subset,
    _write_idx_folder,
)


def test_raw_idx_folder_full_roundtrip(raw_dir, real):
    _assert_equal_splits(load_mnist(raw_dir, **RAW), real)
    np.testing.assert_array_equal(read_idx(raw_dir / FILE_NAMES[0]), real[0][0])


def test_gz_idx_roundtrip_and_alternative_spelling(tmp_path, real):
    sub = _subset(real)
    folder = _write_idx_folder(tmp_path / "gz", *sub, suffix=".gz")
    assert (folder / "train-images-idx3-ubyte.gz").read_bytes()[:2] == b"\x1f\x8b"
    _assert_equal_splits(load_mnist(folder, **RAW), sub)
    dotted = tmp_path / "dotted"
    dotted.mkdir()
    for name in FILE_NAMES:  # train-images.idx3-ubyte, as some downloads name them
        shutil.copyfile(folder / (name + ".gz"), dotted / (name.replace("-idx", ".idx") + ".gz"))
    _assert_equal_splits(load_mnist(dotted, **RAW), sub)
    # The path of one IDX file selects its folder.
    _assert_equal_splits(load_mnist(folder / "t10k-labels-idx1-ubyte.gz", **RAW), sub)


@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", "<i2", "i4", "f4", ">f8"])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_read_write_idx_every_type(tmp_path, dtype, suffix):
    array = (np.arange(2 * 3 * 5) - 7).reshape(2, 3, 5)
    array = (array % 100 if dtype == "u1" else array).astype(dtype)
    path = write_idx(tmp_path / ("a.idx" + suffix), array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype).newbyteorder("=") and back.shape == (2, 3, 5)
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable


def test_write_idx_rejects_int64(tmp_path):
    with pytest.raises(TypeError, match="astype"):
        write_idx(tmp_path / "labels", np.zeros(3, np.int64))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("compressed", [False, True])
def test_truncated_idx(small_idx, compressed):
    path = small_idx / FILE_NAMES[0]
    data = path.read_bytes()[:-100]
    if compressed:
        path.unlink()
        path = small_idx / (FILE_NAMES[0] + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    with pytest.raises(DatasetFormatError, match="truncated") as info:
        load_mnist(small_idx)
    assert FILE_NAMES[0] in str(info.value) and info.value.path == path


def test_truncated_gzip_stream(small_idx):
    path = small_idx / FILE_NAMES[2]
    gz = gzip.compress(path.read_bytes())
    path.unlink()
    (small_idx / (FILE_NAMES[2] + ".gz")).write_bytes(gz[: len(gz) // 2])
    with pytest.raises(DatasetFormatError, match=r"t10k-images-idx3-ubyte\.gz.*gzip"):
        load_mnist(small_idx)


def test_trailing_bytes_and_truncated_header(small_idx, tmp_path):
    path = small_idx / FILE_NAMES[1]
    path.write_bytes(path.read_bytes() + b"\0\0")
    with pytest.raises(DatasetFormatError, match="trailing"):
        load_mnist(small_idx)
    (tmp_path / "short").write_bytes(b"\x00\x00\x08\x03\x00\x00")
    with pytest.raises(DatasetFormatError, match="truncated IDX header"):
        read_idx(tmp_path / "short")


def test_wrong_magic(small_idx):
    images, labels = small_idx / FILE_NAMES[0], small_idx / FILE_NAMES[1]
    original = images.read_bytes()
    images.write_bytes(labels.read_bytes())  # a labels file where the images belong
    with pytest.raises(
        DatasetFormatError, match=r"train-images-idx3-ubyte: magic number 2049, expected 2051"
    ):
        load_mnist(small_idx)
    images.write_bytes(HTML_PAGE)
    with pytest.raises(DatasetFormatError, match=r"not an IDX file.*HTML"):
        load_mnist(small_idx)
    images.write_bytes(original)
    labels.write_bytes(b"\x00\x00\x08\x02" + labels.read_bytes()[4:])
    with pytest.raises(DatasetFormatError, match="train-labels-idx1-ubyte"):
        load_mnist(small_idx)


def test_wrong_image_size(small_idx):
    write_idx(small_idx / FILE_NAMES[2], np.zeros((50, 32, 32), np.uint8))
    with pytest.raises(DatasetFormatError, match="32x32, expected 28x28"):
        load_mnist(small_idx)


def test_count_mismatch_and_label_range(small_idx, real):
    write_idx(small_idx / FILE_NAMES[1], real[0][1][:99].astype(np.uint8))
    with pytest.raises(DatasetFormatError, match=r"train-labels-idx1-ubyte: 99 labels but .*100 images"):
        load_mnist(small_idx)
    labels = real[0][1][:100].astype(np.uint8)
    labels[7] = 10
    write_idx(small_idx / FILE_NAMES[1], labels)
    with pytest.raises(DatasetFormatError, match=re.escape("label 10 at index 7 is outside 0..9")):
        load_mnist(small_idx)
