"""mlp.datasets.csv: Kaggle-style CSVs with or without a header (or a byte-order mark), and bad ones."""

import re

import pytest

from mlp.datasets import (
    DatasetFormatError,
    DatasetNotFoundError,
    convert,
    load_mnist,
    save_csv,
    write_binary,
)
from tests.datasets.helpers import (
    RAW,
    _assert_equal_splits,
    _subset,
)


def test_csv_subset_roundtrip(tmp_path, real):
    sub = _subset(real, 500, 500)
    train_csv, test_csv = save_csv(tmp_path / "csv", *sub)
    assert (train_csv.name, test_csv.name) == ("mnist_train.csv", "mnist_test.csv")
    header = train_csv.read_text().splitlines()[0].split(",")
    assert header[0] == "label" and header[1] == "1x1" and header[-1] == "28x28" and len(header) == 785
    _assert_equal_splits(load_mnist(tmp_path / "csv", **RAW), sub)
    _assert_equal_splits(load_mnist(train_csv, **RAW), sub)
    _assert_equal_splits(load_mnist(test_csv, **RAW), sub)


def test_csv_without_header_and_convert(tmp_path, real):
    sub = _subset(real, 20, 10)
    train_csv, test_csv = save_csv(tmp_path, *sub)
    for path in (train_csv, test_csv):
        path.write_text("".join(path.read_text().splitlines(keepends=True)[1:]))
    _assert_equal_splits(load_mnist(tmp_path, **RAW), sub)
    convert(tmp_path, tmp_path / "bin", "binary")
    _assert_equal_splits(load_mnist(tmp_path / "bin", **RAW), sub)


@pytest.fixture
def small_csv(tmp_path, real):
    return save_csv(tmp_path / "csv", *_subset(real, 20, 10))


def _edit_row(path, row, edit):
    lines = path.read_text().splitlines()
    fields = lines[row].split(",")
    lines[row] = ",".join(edit(fields))
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda f: f[:-1], "number of columns changed"),
        (lambda f: [*f, "0"], "number of columns changed"),
        (lambda f: [*f[:5], "1.5", *f[6:]], "could not convert string '1.5'"),
        (lambda f: [*f[:5], "x", *f[6:]], "could not convert string 'x'"),
        (lambda f: [*f[:5], "300", *f[6:]], r"pixels must be in 0..255"),
        (lambda f: ["10", *f[1:]], "label 10 at index 2"),
    ],
)
def test_bad_csv(small_csv, edit, message):
    train_csv, _ = small_csv
    _edit_row(train_csv, 3, edit)
    with pytest.raises(DatasetFormatError, match=message) as info:
        load_mnist(train_csv.parent)
    assert str(train_csv) in str(info.value)


def test_csv_wrong_width_everywhere_and_missing_partner(tmp_path):
    path = tmp_path / "mnist_train.csv"
    path.write_text("label,a,b\n1,2,3\n")
    (tmp_path / "mnist_test.csv").write_text("label,a,b\n1,2,3\n")
    with pytest.raises(DatasetFormatError, match="3 columns; expected 785"):
        load_mnist(path)
    (tmp_path / "mnist_test.csv").unlink()
    with pytest.raises(DatasetNotFoundError, match=re.escape("mnist_test.csv not found")):
        load_mnist(path)


def test_csv_with_bom_and_split_names(tmp_path, real):
    sub = _subset(real, 7, 4)
    train_csv, test_csv = save_csv(tmp_path / "csv", *sub, prefix="digits")
    for path in (train_csv, test_csv):  # no header, but a UTF-8 byte-order mark (Excel)
        path.write_bytes(b"\xef\xbb\xbf" + b"".join(path.read_bytes().splitlines(keepends=True)[1:]))
    _assert_equal_splits(load_mnist(test_csv, **RAW), sub)
    write_binary(tmp_path / "mnist-train.mlpd", *sub[0])
    write_binary(tmp_path / "mnist-test.mlpd", *sub[1])
    _assert_equal_splits(load_mnist(tmp_path / "mnist-test.mlpd", **RAW), sub)
    write_binary(tmp_path / "digits.mlpd", *sub[1])
    with pytest.raises(DatasetNotFoundError, match="train or the test split"):
        load_mnist(tmp_path / "digits.mlpd")
