"""`mlp download --mirror URL --deadline SECONDS`, and downloads that are not the real data set.

Against the local HTTP server of tests/datasets/helpers.py only (127.0.0.1; the public mirrors are
emptied and urlopen refuses any other host), in-process so that nothing can reach the internet.
"""

import gzip
import time

import numpy as np
import pytest

from mlp import datasets
from mlp.cli import main
from mlp.datasets import FILE_NAMES, DownloadError
from tests.datasets.helpers import (  # noqa: F401 - fixtures: the local mirrors, isolated from the network
    _assert_cache_complete,
    http_server,
    isolated,
    mirrors,
    raw_dir,
    real,
)
from tests.test_datasets_hostile import idx_bytes

SAMPLE = 100  # what a sample of Fashion-MNIST (or any small set of 28x28 images) holds


def _sample(handler, base):
    """A well-formed .gz of SAMPLE images (or labels): right magic, right shape, too few."""
    shape = (SAMPLE, 28, 28) if "images" in base else (SAMPLE,)
    handler._send(gzip.compress(idx_bytes(np.arange(np.prod(shape)).reshape(shape) % 10)))


@pytest.fixture
def sample_mirror(http_server, mirrors):  # noqa: F811
    http_server.hostile["sample"] = _sample
    yield mirrors("sample")[0]
    del http_server.hostile["sample"]


def _download(capsys, *args):
    code = main(["download", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("dataset", ["fashion-mnist", "mnist"])
def test_a_small_set_of_the_right_shape_is_not_taken_for_the_real_one(
    capsys, tmp_path, sample_mirror, dataset
):
    folder = tmp_path / "data"
    code, out, err = _download(capsys, "--dataset", dataset, "--to", str(folder), "--mirror", sample_mirror)
    assert code == 1 and out == ""
    (line,) = err.splitlines()
    assert line.startswith("mlp download: error: could not download")
    assert f"holds {SAMPLE} images, not the 60,000 of the real file" in line
    assert _files(folder) == []  # no partial or temporary file left behind


def test_the_api_refuses_a_sample_and_keeps_nothing(tmp_path, sample_mirror):
    with pytest.raises(DownloadError) as info:
        datasets.download_mnist(tmp_path, dataset="fashion-mnist", mirrors=[sample_mirror], split="test")
    assert "holds 100 images, not the 10,000 of the real file" in info.value.failures[0][1]
    assert _files(tmp_path) == []


def test_a_cached_sample_is_replaced_by_the_real_files(tmp_path, sample_mirror, mirrors, raw_dir):  # noqa: F811
    cache = tmp_path / "cache"
    cache.mkdir()
    for name in FILE_NAMES:
        shape = (SAMPLE, 28, 28) if "images" in name else (SAMPLE,)
        (cache / name).write_bytes(idx_bytes(np.zeros(shape, np.uint8)))
    with pytest.warns(UserWarning, match="deleting corrupt cached file .*holds 100"):
        datasets.download_mnist(cache, mirrors=mirrors("good"))
    _assert_cache_complete(cache)


def test_download_from_the_mirror_given(capsys, tmp_path, mirrors):  # noqa: F811
    folder = tmp_path / "data"
    code, out, err = _download(
        capsys, "--to", str(folder), "--mirror", mirrors("missing")[0], "--mirror", mirrors("good")[0]
    )
    assert code == 0, err
    assert out.startswith(f"mnist is in {folder}")
    _assert_cache_complete(folder)
    assert [mode for mode, _ in mirrors.requests] == ["missing", "good"] * 4


def test_the_deadline_bounds_the_whole_download(capsys, tmp_path, mirrors):  # noqa: F811
    started = time.monotonic()
    code, _, err = _download(
        capsys, "--to", str(tmp_path / "data"), "--mirror", mirrors("drip")[0], "--deadline", "0.5"
    )
    assert time.monotonic() - started < 8
    assert code == 1
    (line,) = err.splitlines()
    assert "within deadline=0.5 s" in line
    assert _files(tmp_path / "data") == []


@pytest.mark.parametrize(
    "flag, value, says",
    [
        ("--deadline", "0", "takes a positive number of seconds"),
        ("--deadline", "-3", "takes a positive number of seconds"),
        ("--deadline", "nan", "takes a positive number of seconds"),
        ("--deadline", "inf", "takes a positive number of seconds"),
        ("--deadline", "soon", "takes a positive number of seconds"),
        ("--mirror", "example.org/mnist", "a mirror must be the URL of a folder"),
        ("--mirror", "gopher://example.org/", "a mirror must be the URL of a folder"),
        ("--mirror", "https:///mnist/", "a mirror must be the URL of a folder"),
    ],
)
def test_bad_mirror_or_deadline_is_a_usage_error(capsys, tmp_path, mirrors, flag, value, says):  # noqa: F811
    with pytest.raises(SystemExit) as info:
        main(["download", "--to", str(tmp_path), flag, value])
    assert info.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"mlp download: error: argument {flag}: {says}"), line
    assert mirrors.requests == []


def test_the_api_checks_mirrors_too(tmp_path):
    with pytest.raises(ValueError, match=r"a mirror must be the URL of a folder holding the \.gz files"):
        datasets.download_mnist(tmp_path, mirrors=["not a url"])
