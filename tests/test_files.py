"""mlp._files: atomic writes (nothing half-written, nothing left behind) and SHA-256 of bytes or files."""

import hashlib
import os
import stat

import pytest

from mlp._files import atomic_write, sha256_of
from tests.datasets.helpers import (
    _hidden_files,
)


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
