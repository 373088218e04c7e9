"""mlp.datasets.convert: converting to IDX writes the canonical bytes."""

from mlp._files import sha256_of
from mlp.datasets import (
    FILE_NAMES,
    MNIST_SHA256,
    convert,
)


def test_convert_idx_writes_canonical_bytes(tmp_path, raw_dir):
    written = convert(raw_dir, tmp_path / "out", "idx", compress=False)
    assert [p.name for p in written] == list(FILE_NAMES)
    for path in written:
        assert sha256_of(path) == MNIST_SHA256[path.name]
