"""`mlp download --mirror URL --deadline SECONDS`, and downloads that are not the real data set.

Against the local HTTP server of tests/datasets/helpers.py only (127.0.0.1; the public mirrors are
emptied and urlopen refuses any other host), in-process so that nothing can reach the internet.
"""

import gzip
import socket
import time

import numpy as np
import pytest

from mlp import datasets
from mlp._files import OutputPathError, sha256_of
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


def _write_samples(folder):
    """The four files as well-formed IDX sets of SAMPLE items (the right shape, too few): {name: bytes}."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in FILE_NAMES:
        shape = (SAMPLE, 28, 28) if "images" in name else (SAMPLE,)
        (folder / name).write_bytes(idx_bytes(np.zeros(shape, np.uint8)))
    return {name: (folder / name).read_bytes() for name in FILE_NAMES}


def _unreachable_mirror():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"  # nothing listens there once the socket is closed


def _contents(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_a_cached_sample_is_replaced_by_the_real_files(tmp_path, mirrors, raw_dir):  # noqa: F811
    cache = datasets.default_cache_dir()
    _write_samples(cache)
    with pytest.warns(datasets.CacheWarning, match="corrupt cached file .*holds 100"):
        datasets.download_mnist(mirrors=mirrors("good"))
    _assert_cache_complete(cache)


def test_the_users_folder_keeps_its_files_when_the_mirror_is_unreachable(capsys, tmp_path, mirrors):  # noqa: F811
    folder = tmp_path / "mine"
    before = _write_samples(folder)
    code, out, err = _download(capsys, "--to", str(folder), "--mirror", _unreachable_mirror())
    assert code == 1 and out == ""
    (line,) = err.splitlines()
    assert line.startswith(
        f"mlp download: error: {folder / FILE_NAMES[0]} exists and is not the real MNIST file"
    )
    assert "holds 100 images, not the 60,000 of the real file" in line
    assert f"move it out of {folder} (or delete it)" in line and "nothing was downloaded" in line
    assert _contents(folder) == before  # not one file deleted, replaced or added


def test_the_users_folder_is_never_replaced_even_when_the_mirror_works(capsys, tmp_path, mirrors):  # noqa: F811
    folder = tmp_path / "mine"
    before = _write_samples(folder)
    code, _, err = _download(capsys, "--to", str(folder), "--mirror", mirrors("good")[0])
    assert code == 1 and "exists and is not the real MNIST file" in err
    with pytest.raises(OutputPathError, match="exists and is not the real MNIST file"):
        datasets.download_mnist(folder, mirrors=mirrors("good"))
    assert mirrors.requests == []  # refused before anything was fetched
    assert _contents(folder) == before


def test_the_cache_keeps_its_file_until_a_verified_one_replaces_it(tmp_path, sample_mirror, mirrors):  # noqa: F811
    cache = datasets.default_cache_dir()
    before = _write_samples(cache)
    for mirror in (_unreachable_mirror(), sample_mirror):  # nothing, then a file that fails the check
        with pytest.warns(datasets.CacheWarning), pytest.raises(datasets.DownloadError) as info:
            datasets.download_mnist(mirrors=[mirror], split="train")
        assert "Nothing was written" in str(info.value)
        assert _contents(cache) == before  # the old files, still there and unchanged; no temporary file
    with pytest.warns(datasets.CacheWarning):
        datasets.download_mnist(mirrors=mirrors("good"), split="train")
    after = _contents(cache)
    assert sorted(after) == sorted(FILE_NAMES)
    for name in FILE_NAMES[:2]:  # replaced, by files that pass the check
        assert sha256_of(cache / name) == datasets.MNIST_SHA256[name]
    assert {name: after[name] for name in FILE_NAMES[2:]} == {n: before[n] for n in FILE_NAMES[2:]}


def test_the_cache_replaces_other_spellings_only_once_the_verified_file_is_in(tmp_path, mirrors):  # noqa: F811
    cache = datasets.default_cache_dir()
    _write_samples(cache)
    for name in FILE_NAMES:  # the same samples, gzipped, under a name the lookup takes too
        (cache / (name + ".gz")).write_bytes(gzip.compress((cache / name).read_bytes()))
        (cache / name).unlink()
    with pytest.warns(datasets.CacheWarning), pytest.raises(datasets.DownloadError):
        datasets.download_mnist(mirrors=[_unreachable_mirror()])
    assert sorted(_contents(cache)) == sorted(name + ".gz" for name in FILE_NAMES)
    with pytest.warns(datasets.CacheWarning):
        datasets.download_mnist(mirrors=mirrors("good"))
    _assert_cache_complete(cache)  # the .gz samples went once the verified files were in place


def test_the_command_line_shows_a_cache_note_as_one_line(capsys, tmp_path, mirrors):  # noqa: F811
    cache = datasets.default_cache_dir()
    _write_samples(cache)
    code, _, err = _download(capsys, "--mirror", mirrors("good")[0])
    assert code == 0, err
    lines = err.splitlines()
    assert len(lines) == 4, err
    for line, name in zip(lines, FILE_NAMES, strict=True):
        assert line.startswith(f"mlp download: warning: corrupt cached file {cache / name} (holds 100 ")
        assert line.endswith("downloading a verified replacement")
    assert "UserWarning" not in err and "Warning" not in err
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
