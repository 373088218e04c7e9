"""mlp.datasets.download: downloads against a local HTTP server on 127.0.0.1 only.

The default public mirrors are replaced by empty lists and urlopen refuses any other host (the
autouse fixture `isolated` of tests/datasets/helpers.py), so no test can reach the internet.
Hostile mirrors drip, lie about sizes, send endless bodies and bombs.
"""

import io
import socket

import numpy as np
import pytest

from mlp import datasets
from mlp.datasets import (
    FILE_NAMES,
    DatasetNotFoundError,
    DownloadError,
    load_mnist,
)
from tests.datasets.helpers import (
    HTML_PAGE,
    RAW,
    _assert_cache_complete,
    _assert_equal_splits,
    _copy_cache,
    _download,
    _hidden_files,
)
from tests.test_datasets_hostile import MiB, idx_bytes


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


def test_corrupt_cached_file_is_fetched_again_and_replaced(tmp_path, mirrors, raw_dir, real):
    cache = _copy_cache(raw_dir, tmp_path / "cache")
    label_file = cache / FILE_NAMES[1]
    data = bytearray(label_file.read_bytes())
    data[-1] ^= 1  # still a valid IDX file: only the hash catches it
    label_file.write_bytes(bytes(data))
    (cache / FILE_NAMES[2]).write_bytes((cache / FILE_NAMES[2]).read_bytes()[:1000])  # truncated
    with pytest.warns(
        datasets.CacheWarning, match="corrupt cached file .*: downloading a verified replacement"
    ):
        got = _download(cache, mirrors("good"))
    _assert_equal_splits(got, real)
    _assert_cache_complete(cache)
    assert sorted(file for _, file in mirrors.requests) == sorted(
        [FILE_NAMES[1] + ".gz", FILE_NAMES[2] + ".gz"]
    )


def test_corrupt_cache_without_download_says_so(tmp_path, mirrors, raw_dir):
    cache = _copy_cache(raw_dir, tmp_path / "cache")
    (cache / FILE_NAMES[0]).write_bytes(HTML_PAGE)
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist(cache_dir=cache, download=False, mirrors=mirrors("good"))
    message = str(info.value)
    assert "1 corrupt cached file left in place (a download replaces it)" in message
    assert "download=False" in message
    assert "corrupt train-images-idx3-ubyte (not the expected IDX data" in info.value.looked_in[-1]
    assert "missing" not in info.value.looked_in[-1]
    assert (cache / FILE_NAMES[0]).read_bytes() == HTML_PAGE  # nothing to replace it with: kept
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
