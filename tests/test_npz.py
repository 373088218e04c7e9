"""mlp._npz is the one .npz reader: model files, checkpoints and Keras-style data sets meet the same
checks, and each caller turns the reader's NpzError into its own documented error."""

import io
import re
import struct
import warnings
import zipfile

import numpy as np
import pytest

import mlp
from mlp import _npz
from mlp.datasets import DatasetFormatError
from mlp.datasets.keras_npz import read_npz_arrays
from mlp.engines.checkpoints import load_checkpoint
from mlp.model_file import ModelFileError


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _archive(entries, compression=zipfile.ZIP_STORED):
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        warnings.simplefilter("ignore")  # "Duplicate name": that is the point
        for name, payload in entries:
            archive.writestr(name, payload)
    return buffer.getvalue()


def _claim(data, size):
    """`data` with every entry's uncompressed size in the central directory set to `size`."""
    data = bytearray(data)
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        data[at + 24 : at + 28] = struct.pack("<I", size)
        at = data.find(b"PK\x01\x02", at + 4)
    return bytes(data)


def _long_header(array, length):
    """A .npy (version 1) whose header text is padded to `length` bytes."""
    text = f"{{'descr': '{array.dtype.str}', 'fortran_order': False, 'shape': {array.shape}, }}"
    text = text.ljust(length - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", length) + text.encode("latin-1") + array.tobytes()


METADATA = np.frombuffer(b'{"format": "mlp-model"}'.ljust(1000), np.uint8)
IMAGES = np.zeros((2, 28, 28), np.uint8)
HOSTILE = {  # name -> (archive bytes, what the one check says)
    "bomb": (
        _claim(_archive([("metadata.npy", _npy(METADATA)), ("x_train.npy", _npy(IMAGES))], 8), 3 << 30),
        "more than deflate can produce",
    ),
    "duplicate": (
        _archive([("metadata.npy", _npy(METADATA)), ("x_train.npy", _npy(IMAGES))] * 2),
        "twice (more than one entry named",
    ),
    "long header": (
        _archive(
            [("metadata.npy", _long_header(METADATA, 5000)), ("x_train.npy", _long_header(IMAGES, 5000))]
        ),
        f"over the {_npz.MAX_NPY_HEADER}-byte limit",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_model_files_checkpoints_and_data_meet_the_same_check(tmp_path, monkeypatch, case):
    """One hostile archive: mlp.load and load_checkpoint raise ModelFileError, the Keras reader
    DatasetFormatError, each with the reader's own sentence, and all through mlp._npz."""
    data, fragment = HOSTILE[case]
    path = tmp_path / "hostile.npz"
    path.write_bytes(data)
    opened = []
    real_init = _npz.NpzReader.__init__

    def spy(self, handle, where):
        opened.append(where)
        real_init(self, handle, where)

    monkeypatch.setattr(_npz.NpzReader, "__init__", spy)
    with pytest.raises(ModelFileError) as model_error:
        mlp.load(path)
    with pytest.raises(ModelFileError) as checkpoint_error:
        load_checkpoint(path)
    with pytest.raises(DatasetFormatError) as data_error:
        read_npz_arrays(path, ["x_train"])
    assert opened == [str(path)] * 3
    assert not isinstance(model_error.value, DatasetFormatError)
    assert data_error.value.path == path
    messages = [str(e.value) for e in (model_error, checkpoint_error, data_error)]
    assert all(m.startswith(str(path)) and fragment in m for m in messages), messages
    # the same sentence, but for the array each reader asked for first (and its sizes)
    same = [re.sub(r"\d[\d,]*", "N", m.replace("x_train", "metadata")) for m in messages]
    assert same[0] == same[1] == same[2], messages


def test_the_reader_error_is_a_value_error_naming_the_file(tmp_path):
    path = tmp_path / "x.npz"
    path.write_bytes(_archive([("a.npy", _npy(np.array([object()], dtype=object)))]))
    with _npz.NpzReader.open(path) as archive, pytest.raises(_npz.NpzError, match="object array") as info:
        archive.read("a")
    assert isinstance(info.value, ValueError) and str(info.value).startswith(str(path))


def test_the_reader_reads_what_numpy_wrote(tmp_path):
    arrays = {
        "a": np.arange(12, dtype="<f8").reshape(3, 4),
        "b": np.asfortranarray(np.eye(3, dtype=np.int16)),
    }
    path = tmp_path / "x.npz"
    np.savez_compressed(path, **arrays)
    with _npz.NpzReader.open(path) as archive:
        assert set(archive.keys) == {"a", "b"}
        for key, array in arrays.items():
            np.testing.assert_array_equal(archive.read(key), array)
        with pytest.raises(
            _npz.NpzError, match=r"x\.npz: a declares 96 bytes of data, more than the limit of 95"
        ):
            archive.read("a", max_bytes=95)
