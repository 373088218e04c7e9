"""Hostile files and hostile sizes for every data reader: bombs, lying headers, devices, endless lines.

Each reader must fail with its one documented error (DatasetFormatError, a ValueError) in bounded
memory: the bombs here are built small on disk (deflate of zeros, repeated after full flushes), and
the peak of Python-tracked allocations (tracemalloc, which NumPy reports to) is asserted; one test
measures the peak RSS of a subprocess.

The helpers that build bombs are imported by tests/test_data_fuzz.py too.
"""

import gzip
import os
import re
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from mlp import datasets
from mlp.datasets import (
    FILE_NAMES,
    DatasetFormatError,
    DatasetNotFoundError,
    load_mnist,
    read_binary,
    read_idx,
    save_npz,
    write_binary,
    write_idx,
)

MiB = 1 << 20
REPO = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------------------------
# Builders (small files that declare or inflate to huge sizes)
# --------------------------------------------------------------------------------------------


def idx_bytes(array) -> bytes:
    array = np.asarray(array, dtype=np.uint8)
    return bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def deflate_then_zeros(prefix: bytes, zeros_mib: int, *, wbits: int = -15):
    """Chunks of one deflate stream: ``prefix`` then ``zeros_mib`` MiB of zeros (~1 KB per MiB).

    After a full flush the compressor forgets its history, so every MiB of zeros compresses to
    the same bytes: the block is computed once and repeated, and a 4 GiB bomb takes milliseconds.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    yield compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(bytes(MiB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    for _ in range(zeros_mib):
        yield block
    yield compressor.flush()


def write_gzip_bomb(path, prefix: bytes, zeros_mib: int) -> Path:
    """A gzip file of ``prefix`` followed by ``zeros_mib`` MiB of zeros, written streaming.

    The trailer's CRC covers only the prefix: a reader that checks it has already read too far.
    """
    with open(path, "wb") as out:
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")
        for chunk in deflate_then_zeros(prefix, zeros_mib):
            out.write(chunk)
        out.write(struct.pack("<II", zlib.crc32(prefix), (len(prefix) + zeros_mib * MiB) & 0xFFFFFFFF))
    return Path(path)


def npy_header(shape, descr="|u1") -> bytes:
    text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {tuple(shape)!r}, }}"
    text += " " * ((64 - (10 + len(text) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def forge_zip(path, entries) -> Path:
    """A zip whose directory says what we want: entries of (name, payload, method, crc, file_size).

    ``payload`` is stored as is (already deflated for method 8); sizes may lie.
    """
    local, central = bytearray(), bytearray()
    for name, payload, method, crc, file_size in entries:
        raw = name.encode()
        offset = len(local)
        local += (
            struct.pack(
                "<4sHHHHHIIIHH",
                b"PK\x03\x04",
                20,
                0,
                method,
                0,
                0x21,
                crc,
                len(payload),
                file_size,
                len(raw),
                0,
            )
            + raw
            + payload
        )
        central += (
            struct.pack(
                "<4sHHHHHHIIIHHHHHII",
                b"PK\x01\x02",
                20,
                20,
                0,
                method,
                0,
                0x21,
                crc,
                len(payload),
                file_size,
                len(raw),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + raw
        )
    end = struct.pack(
        "<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), len(local), 0
    )
    Path(path).write_bytes(bytes(local + central + end))
    return Path(path)


def deflated(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def small_split(n=3):
    rng = np.random.default_rng(n)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), np.arange(n, dtype=np.uint8) % 10


def peak_bytes(function, *args, **kwargs):
    """(peak Python-tracked bytes while ``function`` ran, its exception or None)."""
    tracemalloc.start()
    try:
        try:
            function(*args, **kwargs)
            error = None
        except Exception as exc:
            error = exc
        return tracemalloc.get_traced_memory()[1], error
    finally:
        tracemalloc.stop()


@pytest.fixture
def idx_folder(tmp_path):
    """A valid folder of the four IDX files (3 train, 2 test images)."""
    folder = tmp_path / "idx"
    folder.mkdir()
    (X, y), (Xt, yt) = small_split(3), small_split(2)
    for name, array in zip(FILE_NAMES, (X, y, Xt, yt), strict=True):
        write_idx(folder / name, array)
    return folder


# --------------------------------------------------------------------------------------------
# IDX
# --------------------------------------------------------------------------------------------


def test_idx_gzip_bomb_after_300_images_fails_fast_in_bounded_memory(tmp_path):
    X = np.zeros((300, 28, 28), np.uint8)
    path = write_gzip_bomb(tmp_path / "train-images-idx3-ubyte.gz", idx_bytes(X), zeros_mib=4096)
    assert path.stat().st_size < 5 * MiB  # 4 GiB of zeros inside
    peak, error = peak_bytes(read_idx, path)
    assert isinstance(error, DatasetFormatError), error
    assert "more than 1 MiB of unexpected trailing bytes" in str(error) and error.path == path
    assert peak < 8 * MiB, peak  # 235 KB of images, one 1 MiB look past them, buffers


def test_idx_gzip_header_declaring_more_than_the_file_can_hold(tmp_path):
    path = tmp_path / "big.gz"
    path.write_bytes(gzip.compress(struct.pack(">4sIII", b"\x00\x00\x08\x03", 100_000, 28, 28)))
    peak, error = peak_bytes(read_idx, path)
    assert isinstance(error, DatasetFormatError)
    assert "compressed bytes can hold" in str(error)
    assert peak < MiB


def test_idx_declared_size_over_the_limit(tmp_path, monkeypatch):
    path = write_idx(tmp_path / "x.gz", np.zeros((50, 28, 28), np.uint8))
    monkeypatch.setattr(datasets.limits, "max_array_bytes", 10_000)
    with pytest.raises(DatasetFormatError, match=r"more than the limit of 10,000.*max_array_bytes"):
        read_idx(path)
    raw = write_idx(tmp_path / "x", np.zeros((50, 28, 28), np.uint8))
    with pytest.raises(DatasetFormatError, match="limit"):
        read_idx(raw)


def test_idx_raw_header_lying_about_size_reads_nothing(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(struct.pack(">4sIII", b"\x00\x00\x08\x03", 2**32 - 1, 2**16, 2**16) + bytes(100))
    peak, error = peak_bytes(read_idx, path)
    assert isinstance(error, DatasetFormatError) and "truncated" in str(error)
    assert peak < MiB


@pytest.mark.parametrize("reader", [read_idx, read_binary, datasets.mlpd.load_binary])
def test_devices_and_folders_are_refused(reader, tmp_path):
    if os.path.exists("/dev/zero"):
        with pytest.raises(DatasetFormatError, match="not a regular file"):
            reader("/dev/zero")
    with pytest.raises(DatasetFormatError, match="is a folder"):
        reader(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        reader(tmp_path / "missing")


def test_idx_trailing_gzip_data_is_counted_up_to_a_bound(tmp_path):
    path = tmp_path / "y.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.arange(5)) + b"\0\0\0"))
    with pytest.raises(DatasetFormatError, match="3 unexpected trailing bytes"):
        read_idx(path)


# --------------------------------------------------------------------------------------------
# Keras npz
# --------------------------------------------------------------------------------------------


def _keras_entries(X, y, Xt, yt):
    entries = []
    for name, array in (("x_train", X), ("y_train", y), ("x_test", Xt), ("y_test", yt)):
        data = npy_header(array.shape) + np.ascontiguousarray(array, np.uint8).tobytes()
        entries.append((f"{name}.npy", deflated(data), 8, zlib.crc32(data), len(data)))
    return entries


def test_npz_forged_entries_read_like_np_savez(tmp_path):
    (X, y), (Xt, yt) = small_split(4), small_split(2)
    path = forge_zip(tmp_path / "mnist.npz", _keras_entries(X, y, Xt, yt))
    (Xr, _yr), (_Xtr, ytr) = load_mnist(path, normalize=False, dtype="uint8", flatten=False)
    np.testing.assert_array_equal(Xr, X)
    np.testing.assert_array_equal(ytr, yt)


def test_npz_bomb_in_x_train_is_refused_before_inflating(tmp_path):
    (X, y), (Xt, yt) = small_split(4), small_split(2)
    entries = _keras_entries(X, y, Xt, yt)
    # x_train: its header declares 300 images, the zip directory claims 3 GiB, the deflated data
    # really inflates to 4 GiB of zeros.
    header = npy_header((300, 28, 28))
    bomb = b"".join(deflate_then_zeros(header, 4096))
    entries[0] = ("x_train.npy", bomb, 8, 0, 3 << 30)
    path = forge_zip(tmp_path / "mnist.npz", entries)
    peak, error = peak_bytes(load_mnist, path)
    assert isinstance(error, DatasetFormatError), error
    assert "x_train: the .npy header declares shape (300, 28, 28)" in str(error)
    assert peak < 16 * MiB, peak
    # the directory agrees with a 3 GiB header: over the limit, still nothing inflated
    header = npy_header((4108477, 28, 28))  # 3 GiB
    entries[0] = ("x_train.npy", b"".join(deflate_then_zeros(header, 4)), 8, 0, len(header) + 4108477 * 784)
    path = forge_zip(tmp_path / "mnist2.npz", entries)
    peak, error = peak_bytes(load_mnist, path)
    assert isinstance(error, DatasetFormatError) and "x_train declares" in str(error)
    assert peak < 4 * MiB, peak


def test_npz_entry_inflating_past_its_declared_size_stops_there(tmp_path):
    (X, y), (Xt, yt) = small_split(4), small_split(2)
    entries = _keras_entries(X, y, Xt, yt)
    data = npy_header(X.shape) + X.tobytes()
    bomb = b"".join(deflate_then_zeros(data, 1024))  # 1 GiB more than the directory says
    entries[0] = ("x_train.npy", bomb, 8, zlib.crc32(data), len(data))
    path = forge_zip(tmp_path / "mnist.npz", entries)
    peak, error = peak_bytes(load_mnist, path, normalize=False, dtype="uint8", flatten=False)
    assert peak < 8 * MiB, peak
    assert error is None  # the entry is what its directory declares; the rest is never inflated


def test_npz_unknown_entries_are_never_inflated(tmp_path):
    (X, y), (Xt, yt) = small_split(4), small_split(2)
    garbage = b"\xff" * 64  # not even valid deflate data
    entries = [
        *_keras_entries(X, y, Xt, yt),
        ("extra.npy", garbage, 8, 0, 3 << 30),
        ("README", garbage, 12, 0, 10),
    ]
    path = forge_zip(tmp_path / "mnist.npz", entries)
    (Xr, _), _ = load_mnist(path, normalize=False, dtype="uint8", flatten=False)
    np.testing.assert_array_equal(Xr, X)


def test_npz_duplicate_entry_names_are_refused(tmp_path):
    (X, y), (Xt, yt) = small_split(4), small_split(2)
    entries = _keras_entries(X, y, Xt, yt)
    path = forge_zip(tmp_path / "mnist.npz", [*entries, entries[1]])
    with pytest.raises(DatasetFormatError, match=re.escape("more than one entry named 'y_train.npy'")):
        load_mnist(path)
    renamed = ("y_train", *entries[1][1:])
    path = forge_zip(tmp_path / "mnist2.npz", [*entries, renamed])
    with pytest.raises(DatasetFormatError, match=re.escape("both 'y_train' and 'y_train.npy'")):
        load_mnist(path)


def test_npz_odd_entries(tmp_path):
    (X, y), (Xt, yt) = small_split(4), small_split(2)
    entries = _keras_entries(X, y, Xt, yt)
    data = npy_header(y.shape) + y.tobytes()

    def stored(payload, size=None):  # an uncompressed entry with the right CRC
        return ("y_train.npy", payload, 0, zlib.crc32(payload), len(payload) if size is None else size)

    cases = {
        "uses zip compression method 14": ("y_train.npy", data, 14, zlib.crc32(data), len(data)),
        "sizes disagree": stored(data, len(data) + 5),
        "impossible shape": stored(npy_header((-4,)) + y.tobytes()),
        "not a valid .npy": stored(b"\x93NUMPY\x01\x00\xff\x00{"),
        "is corrupt": ("y_train.npy", data[:-1] + b"\x07", 0, zlib.crc32(data), len(data)),  # bad CRC
        "object array": stored(npy_header((4,), "|O") + bytes(32)),
        "dtype <U1": stored(npy_header((4,), "<U1") + bytes(16)),
        "declares shape \\(5,\\)": stored(npy_header((5,)) + y.tobytes()),
    }
    for i, (message, entry) in enumerate(cases.items()):
        path = forge_zip(tmp_path / f"m{i}.npz", [entries[0], entry, *entries[2:]])
        with pytest.raises(DatasetFormatError, match=message):
            load_mnist(path)


def test_npz_split_reads_only_its_entries(tmp_path):
    (X, y), (Xt, yt) = small_split(4), small_split(2)
    entries = _keras_entries(X, y, Xt, yt)
    entries[0] = ("x_train.npy", b"\xff" * 64, 8, 0, 3 << 30)  # broken train images
    path = forge_zip(tmp_path / "mnist.npz", entries)
    Xr, _yr = load_mnist(path, split="test", normalize=False, dtype="uint8", flatten=False)
    np.testing.assert_array_equal(Xr, Xt)
    with pytest.raises(DatasetFormatError, match="x_train"):
        load_mnist(path, split="train")


# --------------------------------------------------------------------------------------------
# CSV and .mlpd
# --------------------------------------------------------------------------------------------


def test_csv_endless_line_is_refused_early(tmp_path):
    path = tmp_path / "mnist_train.csv"
    with open(path, "wb") as out:
        out.write(b"5" + b",0" * 4_000_000 + b"\n")  # 8 MB, one line
    (tmp_path / "mnist_test.csv").write_bytes(b"1" + b",0" * 784 + b"\n")
    peak, error = peak_bytes(load_mnist, path)
    assert isinstance(error, DatasetFormatError), error
    assert "line 1 is longer than 65,536 bytes" in str(error)
    assert peak < MiB, peak


def test_csv_row_count_checked_against_the_limit(tmp_path, monkeypatch):
    row = b"1" + b",0" * 784 + b"\n"
    (tmp_path / "mnist_train.csv").write_bytes(row * 50)
    (tmp_path / "mnist_test.csv").write_bytes(row * 5)
    monkeypatch.setattr(datasets.limits, "max_array_bytes", 20 * 785 * 4)
    with pytest.raises(DatasetFormatError, match=r"50 rows of 785 numbers declares .* limit"):
        load_mnist(tmp_path)
    X, _y = load_mnist(tmp_path, split="test")
    assert X.shape == (5, 784)


def test_csv_not_utf8(tmp_path):
    (tmp_path / "mnist_train.csv").write_bytes(b"\xff\xfe" + b"1" + b",0" * 784 + b"\n")
    with pytest.raises(DatasetFormatError, match=re.escape("mnist_train.csv")):
        load_mnist(tmp_path, split="train")


def test_mlpd_header_declaring_terabytes_reads_nothing(tmp_path):
    path = tmp_path / "train.mlpd"
    path.write_bytes(struct.pack("<4sIIII", b"MLPD", 1, 2**32 - 1, 2**16, 2**16) + bytes(64))
    peak, error = peak_bytes(read_binary, path)
    assert isinstance(error, DatasetFormatError) and "truncated" in str(error)
    assert peak < MiB


def test_mlpd_over_the_limit(tmp_path, monkeypatch):
    path = write_binary(tmp_path / "train.mlpd", *small_split(5))
    monkeypatch.setattr(datasets.limits, "max_array_bytes", 1000)
    with pytest.raises(DatasetFormatError, match=r"MLPD header declares 3,925 bytes.*limit"):
        read_binary(path)


# --------------------------------------------------------------------------------------------
# split=
# --------------------------------------------------------------------------------------------


def test_split_reads_only_its_files(idx_folder, tmp_path):
    for name in FILE_NAMES[2:]:
        (idx_folder / name).write_bytes(b"garbage")
    X, y = load_mnist(idx_folder, split="train")
    assert X.shape == (3, 784) and y.dtype == np.int64
    with pytest.raises(DatasetFormatError, match="t10k-images"):
        load_mnist(idx_folder, split="test")
    with pytest.raises(DatasetFormatError, match="t10k-images"):
        load_mnist(idx_folder)
    (idx_folder / FILE_NAMES[2]).unlink()
    (idx_folder / FILE_NAMES[3]).unlink()
    assert load_mnist(idx_folder, split="train")[0].shape == (3, 784)
    with pytest.raises(DatasetNotFoundError, match="missing t10k-images-idx3-ubyte"):
        load_mnist(idx_folder, split="test")


def test_split_for_single_file_layouts(tmp_path):
    train, test = small_split(3), small_split(2)
    write_binary(tmp_path / "test.mlpd", *test)  # no train.mlpd at all
    X, _y = load_mnist(tmp_path, split="test", normalize=False, dtype="uint8", flatten=False)
    np.testing.assert_array_equal(X, test[0])
    with pytest.raises(DatasetNotFoundError, match=re.escape("train.mlpd not found")):
        load_mnist(tmp_path, split="train")
    save_npz(tmp_path / "npz" / "mnist.npz", train, test)
    assert load_mnist(tmp_path / "npz", split="train")[0].shape == (3, 784)


def test_split_must_be_known(idx_folder):
    with pytest.raises(ValueError, match="split must be 'both', 'train' or 'test'"):
        load_mnist(idx_folder, split="validation")


# --------------------------------------------------------------------------------------------
# Peak memory of the IDX bomb in a fresh process (RSS, not only Python-tracked bytes)
# --------------------------------------------------------------------------------------------


def test_idx_gzip_bomb_peak_rss_in_a_subprocess(tmp_path):
    X = np.zeros((300, 28, 28), np.uint8)
    path = write_gzip_bomb(tmp_path / "bomb.gz", idx_bytes(X), zeros_mib=4096)
    script = textwrap.dedent(f"""
        import resource, sys
        import importlib.util, types
        # import mlp.datasets without the rest of the package: only the reader is measured
        package = types.ModuleType("mlp"); package.__path__ = [{str(REPO / "mlp")!r}]
        sys.modules["mlp"] = package
        from mlp.datasets import DatasetFormatError, read_idx
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            read_idx({str(path)!r})
        except DatasetFormatError as error:
            outcome = "DatasetFormatError"
        else:
            outcome = "no error"
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(outcome, before, after)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    outcome, before, after = result.stdout.split()
    assert outcome == "DatasetFormatError"
    growth_kib = int(after) - int(before)  # ru_maxrss is in KiB on Linux
    print(
        f"reading a 4 GiB IDX gzip bomb: peak RSS {int(after) // 1024} MiB, {growth_kib} KiB over the "
        f"peak after the imports"
    )
    assert growth_kib < 32 * 1024, growth_kib
