"""mlp.datasets and mlp._files: real MNIST, every format, corrupt inputs, downloads, lookup order.

Downloads run against a local HTTP server on 127.0.0.1 only: the default public mirrors are
replaced by empty lists and urlopen refuses any other host, so no test can reach the internet.
"""

import contextlib
import gzip
import hashlib
import http.server
import io
import os
import re
import shutil
import socket
import stat
import struct
import threading
import time
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pytest

from mlp import datasets
from mlp._files import atomic_write, sha256_of
from mlp.datasets import (
    FILE_NAMES,
    MNIST_SHA256,
    DatasetFormatError,
    DatasetNotFoundError,
    DownloadError,
    convert,
    load_mnist,
    read_binary,
    read_idx,
    save_csv,
    save_npz,
    write_binary,
    write_idx,
)
from tests.test_datasets_hostile import MiB, deflate_then_zeros, idx_bytes

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
RAW = dict(normalize=False, dtype="uint8", flatten=False)  # cheapest load: the stored uint8 arrays

# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------

_real_urlopen = urllib.request.urlopen


def _local_only_urlopen(request, *args, **kwargs):
    url = request.full_url if isinstance(request, urllib.request.Request) else request
    host = urllib.parse.urlsplit(url).hostname
    assert host == "127.0.0.1", f"a test tried to reach {url}"
    return _real_urlopen(request, *args, **kwargs)


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No MLP_DATA_DIR, a private XDG cache, no public mirrors, no proxies, localhost only."""
    monkeypatch.delenv("MLP_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setattr(datasets.download, "DEFAULT_MIRRORS", {"mnist": [], "fashion-mnist": []})
    monkeypatch.setattr(urllib.request, "urlopen", _local_only_urlopen)


@pytest.fixture(scope="module")
def real(mnist_dir):
    """The real MNIST as stored: ((X uint8 (60000, 28, 28), y int64), (X, y) test)."""
    return load_mnist(mnist_dir, **RAW)


@pytest.fixture(scope="module")
def raw_dir(real, tmp_path_factory):
    """The real MNIST as four uncompressed IDX files (fast to read)."""
    folder = tmp_path_factory.mktemp("raw")
    (X, y), (Xt, yt) = real
    write_idx(folder / FILE_NAMES[0], X)
    write_idx(folder / FILE_NAMES[1], y.astype(np.uint8))
    write_idx(folder / FILE_NAMES[2], Xt)
    write_idx(folder / FILE_NAMES[3], yt.astype(np.uint8))
    return folder


def _subset(real, n_train=100, n_test=50):
    (X, y), (Xt, yt) = real
    return (X[:n_train], y[:n_train]), (Xt[:n_test], yt[:n_test])


def _write_idx_folder(folder, train, test, suffix=""):
    folder.mkdir(parents=True, exist_ok=True)
    (X, y), (Xt, yt) = train, test
    for name, array in zip(FILE_NAMES, (X, y, Xt, yt), strict=True):
        write_idx(folder / (name + suffix), np.asarray(array).astype(np.uint8))
    return folder


def _assert_equal_splits(got, want):
    for (X, y), (Xw, yw) in zip(got, want, strict=True):
        np.testing.assert_array_equal(X.reshape(Xw.shape), Xw)
        np.testing.assert_array_equal(y, yw)


def _copy_cache(raw_dir, folder):
    folder.mkdir(parents=True, exist_ok=True)
    for name in FILE_NAMES:
        shutil.copyfile(raw_dir / name, folder / name)
    return folder


def _hidden_files(folder):
    return (
        sorted(p.name for p in Path(folder).iterdir() if p.name.startswith("."))
        if Path(folder).exists()
        else []
    )


# --------------------------------------------------------------------------------------------
# Local HTTP mirrors
# --------------------------------------------------------------------------------------------

HTML_PAGE = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Please log in</body></html>"


class _Handler(http.server.BaseHTTPRequestHandler):
    """GET /<mode>/<file>.gz where mode picks the behaviour of this mirror."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        mode, _, name = self.path.strip("/").partition("/")
        self.server.requests.append((mode, name))
        base = name[:-3] if name.endswith(".gz") else name
        gz, raw = self.server.files.get(base, (None, None))
        if mode == "forbidden":
            return self.send_error(403)
        if mode == "missing" or gz is None:
            return self.send_error(404)
        if mode == "slow":
            time.sleep(1.0)
            return self._send(gz)
        if mode == "html":
            return self._send(HTML_PAGE, content_type="text/html")
        if mode == "good":
            return self._send(gz)
        if mode == "raw":  # a mirror that serves the uncompressed bytes
            return self._send(raw)
        if mode == "truncated":  # promises the whole file, sends half, hangs up
            self.send_response(200)
            self.send_header("Content-Length", str(len(gz)))
            self.end_headers()
            self.wfile.write(gz[: len(gz) // 2])
            self.wfile.flush()
            self.close_connection = True
            return None
        if mode == "truncgz":  # a consistent HTTP response carrying a cut-off .gz file
            return self._send(gz[: len(gz) // 2])
        if mode == "corrupt":  # right structure, one pixel/label changed: only the hash can tell
            body = bytearray(raw)
            body[-1] ^= 0x01
            return self._send(bytes(body))
        if mode in self.server.hostile:
            return self.server.hostile[mode](self, base)
        return self.send_error(500)

    def _send(self, body, content_type="application/octet-stream"):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that timed out and left is expected in one test


@pytest.fixture(scope="module")
def http_server(mnist_dir, raw_dir):
    server = _Server(("127.0.0.1", 0), _Handler)
    server.files = {
        name: (
            (Path(mnist_dir) / (name + ".gz")).read_bytes()
            if (Path(mnist_dir) / (name + ".gz")).exists()
            else gzip.compress((raw_dir / name).read_bytes(), compresslevel=1),
            (raw_dir / name).read_bytes(),
        )
        for name in FILE_NAMES
    }
    server.requests = []
    server.hostile = HOSTILE_MODES
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


class Mirrors:
    def __init__(self, server):
        self.server = server
        self.base = f"http://127.0.0.1:{server.server_address[1]}/"

    def __call__(self, *modes):
        return [f"{self.base}{mode}/" for mode in modes]

    @property
    def requests(self):
        return self.server.requests


@pytest.fixture
def mirrors(http_server):
    http_server.requests.clear()
    return Mirrors(http_server)


def _download(cache, urls, **kwargs):
    return load_mnist(cache_dir=cache, mirrors=urls, use_default_mirrors=False, **RAW, **kwargs)


# --------------------------------------------------------------------------------------------
# mlp._files
# --------------------------------------------------------------------------------------------


def test_atomic_write_replaces_on_success(tmp_path):
    target = tmp_path / "model.bin"
    target.write_bytes(b"old")
    with atomic_write(target) as handle:
        handle.write(b"new contents")
        assert target.read_bytes() == b"old"  # not visible until the block ends
    assert target.read_bytes() == b"new contents"
    assert _hidden_files(tmp_path) == []
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask  # not mkstemp's 0600


def test_atomic_write_leaves_target_untouched_on_error(tmp_path):
    target = tmp_path / "model.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"), atomic_write(target) as handle:
        handle.write(b"partial")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert _hidden_files(tmp_path) == []
    with pytest.raises(RuntimeError), atomic_write(tmp_path / "fresh.txt", "w") as handle:
        handle.write("x")
        raise RuntimeError
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_write_text_and_bad_mode(tmp_path):
    with atomic_write(tmp_path / "a.txt", "w") as handle:
        handle.write("héllo\n")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo\n"
    with pytest.raises(ValueError, match="write modes"), atomic_write(tmp_path / "a.txt", "rb"):
        pass


def test_sha256_of_bytes_and_file(tmp_path):
    data = b"abc" * 1000
    (tmp_path / "f").write_bytes(data)
    assert sha256_of(data) == sha256_of(tmp_path / "f") == hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------
# Real MNIST
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------------


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


def test_convert_idx_writes_canonical_bytes(tmp_path, raw_dir):
    written = convert(raw_dir, tmp_path / "out", "idx", compress=False)
    assert [p.name for p in written] == list(FILE_NAMES)
    for path in written:
        assert sha256_of(path) == MNIST_SHA256[path.name]


def test_torchvision_layout(tmp_path, raw_dir, real):
    folder = tmp_path / "torch" / "MNIST" / "raw"
    folder.mkdir(parents=True)
    for name in FILE_NAMES:
        os.symlink(raw_dir / name, folder / name)
    _assert_equal_splits(load_mnist(tmp_path / "torch", **RAW), real)
    _assert_equal_splits(load_mnist(tmp_path / "torch" / "MNIST", **RAW), _subset(real, 60000, 10000))


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


# --------------------------------------------------------------------------------------------
# Corrupt inputs
# --------------------------------------------------------------------------------------------


@pytest.fixture
def small_idx(tmp_path, real):
    return _write_idx_folder(tmp_path / "idx", *_subset(real))


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


# --------------------------------------------------------------------------------------------
# Downloads (local server only)
# --------------------------------------------------------------------------------------------


def _assert_cache_complete(cache):
    assert sorted(p.name for p in cache.iterdir()) == sorted(FILE_NAMES)  # no .part, no temp files
    for name in FILE_NAMES:
        assert sha256_of(cache / name) == MNIST_SHA256[name]


def test_download_skips_403_and_404(tmp_path, mirrors, real):
    cache = tmp_path / "cache"
    got = _download(cache, mirrors("forbidden", "missing", "good"))
    _assert_equal_splits(got, real)
    _assert_cache_complete(cache)
    for name in FILE_NAMES:
        tried = [mode for mode, file in mirrors.requests if file == name + ".gz"]
        assert tried == ["forbidden", "missing", "good"]
    mirrors.requests.clear()
    _assert_equal_splits(_download(cache, mirrors("good")), real)  # cached: no request
    assert mirrors.requests == []


def test_download_rejects_html_with_status_200(tmp_path, mirrors, real):
    cache = tmp_path / "cache"
    _assert_equal_splits(_download(cache, mirrors("html", "good")), real)
    _assert_cache_complete(cache)
    assert [m for m, _ in mirrors.requests] == ["html", "good"] * 4


@pytest.mark.parametrize("mode", ["truncated", "truncgz", "corrupt"])
def test_download_rejects_bad_body_then_uses_next(tmp_path, mirrors, real, mode):
    cache = tmp_path / "cache"
    _assert_equal_splits(_download(cache, mirrors(mode, "good")), real)
    _assert_cache_complete(cache)


def test_download_accepts_mirror_serving_uncompressed(tmp_path, mirrors, real):
    cache = tmp_path / "cache"
    _assert_equal_splits(_download(cache, mirrors("raw")), real)
    _assert_cache_complete(cache)


def test_corrupt_cached_file_is_deleted_and_fetched_again(tmp_path, mirrors, raw_dir, real):
    cache = _copy_cache(raw_dir, tmp_path / "cache")
    label_file = cache / FILE_NAMES[1]
    data = bytearray(label_file.read_bytes())
    data[-1] ^= 1  # still a valid IDX file: only the hash catches it
    label_file.write_bytes(bytes(data))
    (cache / FILE_NAMES[2]).write_bytes((cache / FILE_NAMES[2]).read_bytes()[:1000])  # truncated
    with pytest.warns(UserWarning, match="deleting corrupt cached file"):
        got = _download(cache, mirrors("good"))
    _assert_equal_splits(got, real)
    _assert_cache_complete(cache)
    assert sorted(file for _, file in mirrors.requests) == sorted(
        [FILE_NAMES[1] + ".gz", FILE_NAMES[2] + ".gz"]
    )


def test_corrupt_cache_without_download_says_so(tmp_path, mirrors, raw_dir):
    cache = _copy_cache(raw_dir, tmp_path / "cache")
    (cache / FILE_NAMES[0]).write_bytes(HTML_PAGE)
    with pytest.warns(UserWarning), pytest.raises(DatasetNotFoundError) as info:
        load_mnist(cache_dir=cache, download=False, mirrors=mirrors("good"))
    message = str(info.value)
    assert "deleted 1 corrupt cached file" in message and "download=False" in message
    assert "deleted corrupt train-images-idx3-ubyte" in info.value.looked_in[-1]
    assert not (cache / FILE_NAMES[0]).exists()
    assert mirrors.requests == []


def _closed_port_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_all_mirrors_down(tmp_path, mirrors):
    cache = tmp_path / "cache"
    refused = _closed_port_url()
    urls = [*mirrors("forbidden", "missing", "html", "truncated", "corrupt"), refused]
    with pytest.raises(DownloadError) as info:
        _download(cache, urls)
    error = info.value
    message = str(error)
    assert isinstance(error, RuntimeError)
    assert [url for url, _ in error.failures] == [u + FILE_NAMES[0] + ".gz" for u in urls]
    for url in urls:
        assert url in message
    reasons = [reason for _, reason in error.failures]
    assert "HTTP 403" in reasons[0] and "HTTP 404" in reasons[1]
    assert "HTML" in reasons[2] and "truncated" in reasons[3] and "SHA-256" in reasons[4]
    assert "cannot connect" in reasons[5]
    assert "by hand" in message and "MLP_DATA_DIR" in message and "train-labels-idx1-ubyte.gz" in message
    assert not (cache / FILE_NAMES[0]).exists()
    assert _hidden_files(cache) == []


def test_timeout_is_a_mirror_failure(tmp_path, mirrors):
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match="timed out"):
        _download(cache, mirrors("slow"), timeout=0.2)
    assert list(cache.iterdir()) == []


def test_no_mirrors_at_all(tmp_path):
    with pytest.raises(DownloadError, match=r"(?s)no mirrors to try.*MLP_DATA_DIR"):
        _download(tmp_path / "cache", None)


def test_given_mirrors_come_before_default_ones(tmp_path, mirrors, monkeypatch, real):
    monkeypatch.setattr(datasets.download, "DEFAULT_MIRRORS", {"mnist": mirrors("good"), "fashion-mnist": []})
    got = load_mnist(cache_dir=tmp_path / "cache", mirrors=mirrors("missing"), **RAW)
    _assert_equal_splits(got, real)
    assert [m for m, _ in mirrors.requests] == ["missing", "good"] * 4


def test_download_mnist_into_default_cache(tmp_path, mirrors, real):
    folder = datasets.download_mnist(mirrors=mirrors("good"), use_default_mirrors=False)
    assert folder == tmp_path / "xdg" / "mlp" / "mnist"
    _assert_cache_complete(folder)
    _assert_equal_splits(load_mnist(download=False, **RAW), real)  # found in the cache


def test_fashion_download_is_checked_by_structure(tmp_path, mirrors):
    # No known hashes for Fashion-MNIST: a structurally valid file passes, an HTML page does not.
    cache = tmp_path / "fashion"
    (X, _y), _ = _download(cache, mirrors("html", "corrupt"), dataset="fashion-mnist")
    assert X.shape == (60000, 28, 28)
    assert sorted(p.name for p in cache.iterdir()) == sorted(FILE_NAMES)


# --------------------------------------------------------------------------------------------
# Hostile mirrors: drips, lies about sizes, endless bodies, bombs
# --------------------------------------------------------------------------------------------


def _drip(handler, base):
    """Promise a whole file, then send one byte every 50 ms for up to 10 s."""
    handler.send_response(200)
    handler.send_header("Content-Length", "60008")
    handler.end_headers()
    try:
        for _ in range(200):
            handler.wfile.write(b"\0")
            handler.wfile.flush()
            time.sleep(0.05)
    except (BrokenPipeError, ConnectionResetError):
        pass


def _huge(handler, base):
    """Announce a terabyte."""
    handler.send_response(200)
    handler.send_header("Content-Length", str(10**12))
    handler.end_headers()
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        handler.wfile.write(bytes(1000))


def _endless(handler, base):
    """No Content-Length, bytes until the client hangs up (at most 128 MiB)."""
    handler.send_response(200)
    handler.end_headers()
    handler.close_connection = True
    try:
        for _ in range(2048):
            handler.wfile.write(bytes(1 << 16))
    except (BrokenPipeError, ConnectionResetError):
        pass


def _bomb(handler, base):
    """A .gz whose IDX header declares 100 blank images (or labels), then 64 MiB more zeros."""
    shape = (100, 28, 28) if "images" in base else (100,)
    prefix = idx_bytes(np.zeros(shape, np.uint8))
    body = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + b"".join(deflate_then_zeros(prefix, 64))
    handler._send(body + struct.pack("<II", zlib.crc32(prefix), 0))


def _overdeclared(handler, base):
    """A .gz of an IDX header alone that declares 70000 images or labels."""
    dims = (70000, 28, 28) if "images" in base else (70000,)
    magic = b"\x00\x00\x08\x03" if "images" in base else b"\x00\x00\x08\x01"
    handler._send(gzip.compress(magic + struct.pack(f">{len(dims)}I", *dims)))


HOSTILE_MODES = {
    "drip": _drip,
    "huge": _huge,
    "endless": _endless,
    "bomb": _bomb,
    "overdeclared": _overdeclared,
}


@pytest.fixture
def small_canonical(monkeypatch):
    """The real files shrink to 100 images/labels, so that caps are small and tests fast."""
    for base in FILE_NAMES:
        size = 16 + 100 * 784 if "images" in base else 8 + 100
        monkeypatch.setitem(datasets.download.CANONICAL_BYTES, base, size)


def test_a_dripping_mirror_is_abandoned_at_the_deadline(tmp_path, mirrors):
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match=r"within deadline=0.5 s") as info:
        _download(cache, mirrors("drip", "good"), deadline=0.5, timeout=5)
    error = info.value
    assert len(error.failures) == 1 and "deadline passed" in error.failures[0][1]
    assert [m for m, _ in mirrors.requests] == ["drip"]  # no mirror tried after the deadline
    assert not any(cache.iterdir())


def test_a_mirror_announcing_too_much_is_not_read(tmp_path, mirrors):
    with pytest.raises(DownloadError) as info:
        _download(tmp_path / "cache", mirrors("huge"), split="test")
    assert "announces 1,000,000,000,000 bytes" in info.value.failures[0][1]


def test_an_endless_body_stops_at_the_cap(tmp_path, mirrors, small_canonical):
    with pytest.raises(DownloadError) as info:
        _download(tmp_path / "cache", mirrors("endless"))
    reason = info.value.failures[0][1]
    assert "sent more than the 144,736 bytes this file can take" in reason, reason
    assert not any((tmp_path / "cache").iterdir())


def test_a_bomb_from_a_mirror_never_fills_the_cache(tmp_path, mirrors, small_canonical):
    with pytest.raises(DownloadError) as info:
        _download(tmp_path / "cache", mirrors("bomb"))
    assert "more data than the 78416 bytes the header declares" in info.value.failures[0][1]
    assert not any((tmp_path / "cache").iterdir())


def test_a_header_declaring_more_than_the_real_file_is_refused(tmp_path, mirrors):
    with pytest.raises(DownloadError) as info:
        _download(tmp_path / "cache", mirrors("overdeclared"))
    assert "more than the 47,040,016 of the real file" in info.value.failures[0][1]


def test_verified_copy_never_writes_past_the_declared_size(small_canonical):
    content = idx_bytes(np.arange(100, dtype=np.uint8) % 10)  # the real file's count (here 100)
    sink = io.BytesIO()
    source = io.BytesIO(content + bytes(10 * MiB))
    problem = datasets.download.verify_stream(source, FILE_NAMES[1], None, sink)
    assert "more data than the 108 bytes" in problem
    assert sink.getvalue() == content
    assert source.tell() == len(content) + 1  # one byte past the declared end, no more


def test_time_limits_must_be_positive(tmp_path):
    for bad in (0, -1, float("nan"), "10"):
        with pytest.raises(ValueError, match="must be a positive number of seconds"):
            load_mnist(cache_dir=tmp_path, deadline=bad)
    with pytest.raises(ValueError, match="timeout"):
        datasets.download_mnist(tmp_path, timeout=0)


def test_split_downloads_only_its_files(tmp_path, mirrors, real):
    X, _y = _download(tmp_path / "cache", mirrors("good"), split="test")
    np.testing.assert_array_equal(X, real[1][0])
    assert sorted(name for _, name in mirrors.requests) == sorted(n + ".gz" for n in FILE_NAMES[2:])
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(FILE_NAMES[2:])
    folder = datasets.download_mnist(
        tmp_path / "other", mirrors=mirrors("good"), use_default_mirrors=False, split="train"
    )
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILE_NAMES[:2])


# --------------------------------------------------------------------------------------------
# Lookup order without a path
# --------------------------------------------------------------------------------------------


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


class _FakeTerminal:
    def __init__(self):
        self.text = []

    def isatty(self):
        return True

    def write(self, text):
        self.text.append(text)

    def flush(self):
        pass


def test_progress_bar_only_on_a_terminal(tmp_path, mirrors, monkeypatch):
    pytest.importorskip("tqdm")
    terminal = _FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)
    datasets.download_mnist(tmp_path / "cache", mirrors=mirrors("good"), use_default_mirrors=False)
    assert "train-images-idx3-ubyte" in "".join(terminal.text)
