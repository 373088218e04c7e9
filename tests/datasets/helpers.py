"""What the tests of mlp.datasets share: the real MNIST as arrays and as IDX files, small
subsets, and a local HTTP server of mirrors (good and hostile) on 127.0.0.1 only.

The fixtures are defined here and made visible to tests/datasets/ by its conftest.py (a module
elsewhere, such as tests/test_download_cli.py, imports the ones it uses). The autouse fixture
`isolated` empties the public mirror lists and makes urlopen refuse any other host, so no test can
reach the internet. The real data, its IDX copy and the server are made once per session.
"""

import contextlib
import gzip
import http.server
import shutil
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
from mlp._files import sha256_of
from mlp.datasets import (
    FILE_NAMES,
    MNIST_SHA256,
    load_mnist,
    write_idx,
)
from tests.test_datasets_hostile import deflate_then_zeros, idx_bytes

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
RAW = dict(normalize=False, dtype="uint8", flatten=False)  # cheapest load: the stored uint8 arrays


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


@pytest.fixture(scope="session")
def real(mnist_dir):
    """The real MNIST as stored: ((X uint8 (60000, 28, 28), y int64), (X, y) test)."""
    return load_mnist(mnist_dir, **RAW)


@pytest.fixture(scope="session")
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


@pytest.fixture
def small_idx(tmp_path, real):
    return _write_idx_folder(tmp_path / "idx", *_subset(real))


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


@pytest.fixture(scope="session")
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


def _assert_cache_complete(cache):
    assert sorted(p.name for p in cache.iterdir()) == sorted(FILE_NAMES)  # no .part, no temp files
    for name in FILE_NAMES:
        assert sha256_of(cache / name) == MNIST_SHA256[name]


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
