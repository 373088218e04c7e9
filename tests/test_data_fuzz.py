"""Mutation tests of the data readers (Hypothesis): only the documented errors escape, memory stays bounded.

Small valid files of every format (IDX raw and .gz, Keras npz, CSV, .mlpd, a downloaded .gz, PNG
and JPEG digits) are
mutated: bit flips, truncations, inserted and duplicated bytes, and 32-bit fields overwritten with
huge or edge values (sizes, counts, lengths), with positions biased towards the headers. The reader
must either return arrays or raise DatasetFormatError (the download check returns a problem string
or None; the image reader raises ValueError); the peak of Python-tracked memory (tracemalloc; NumPy reports to it) during one read must
stay under 64 MiB, whatever the mutated headers declare.

About 2,550 cases in all (FAMILY_EXAMPLES per family, twice for .mlpd, half for images), 20-40 s on one core;
``MLP_FUZZ_EXAMPLES=20000`` runs a longer campaign.
"""

import gzip
import io
import os
import struct
import tempfile
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="the mutation tests need hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mlp import datasets  # noqa: E402
from mlp.datasets import DatasetFormatError, load_mnist, read_binary, read_idx  # noqa: E402

FAMILY_EXAMPLES = int(os.environ.get("MLP_FUZZ_EXAMPLES", "300"))  # raise it for a longer campaign
MEMORY_BOUND = 64 << 20
RUNS: dict[str, int] = {}  # family -> cases run (printed at the end with pytest -s)

FUZZ = settings(
    max_examples=FAMILY_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --------------------------------------------------------------------------------------------
# Valid seeds
# --------------------------------------------------------------------------------------------

_rng = np.random.default_rng(0)
X_SEED = _rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
Y_SEED = np.array([1, 7, 3], dtype=np.uint8)


def _idx(array) -> bytes:
    return bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def _npz_bytes(compress: bool) -> bytes:
    buffer = io.BytesIO()
    arrays = dict(x_train=X_SEED, y_train=Y_SEED, x_test=X_SEED[:2], y_test=Y_SEED[:2])
    (np.savez_compressed if compress else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def _npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _csv_bytes() -> bytes:
    header = "label," + ",".join(f"{r}x{c}" for r in range(1, 29) for c in range(1, 29))
    rows = [
        ",".join(map(str, [int(y), *x.reshape(-1).tolist()])) for x, y in zip(X_SEED, Y_SEED, strict=True)
    ]
    return ("\n".join([header, *rows]) + "\n").encode()


def _mlpd_bytes() -> bytes:
    return struct.pack("<4sIIII", b"MLPD", 1, 3, 28, 28) + X_SEED.tobytes() + Y_SEED.tobytes()


def _image_bytes(fmt: str) -> bytes:
    Image = pytest.importorskip("PIL.Image")
    digit = np.zeros((40, 40), dtype=np.uint8)
    digit[5:35, 18:22] = 255
    buffer = io.BytesIO()
    Image.fromarray(digit).save(buffer, fmt)
    return buffer.getvalue()


IDX_IMAGES = _idx(X_SEED)
IDX_LABELS = _idx(Y_SEED)
GZ_IMAGES = gzip.compress(IDX_IMAGES, mtime=0)
GZ_LABELS = gzip.compress(IDX_LABELS, mtime=0)
NPZ_DEFLATED = _npz_bytes(True)
NPZ_STORED = _npz_bytes(False)
CSV = _csv_bytes()
MLPD = _mlpd_bytes()

# --------------------------------------------------------------------------------------------
# Mutations
# --------------------------------------------------------------------------------------------

_EDGE_U32 = [0, 1, 3, 28, 255, 256, 2**16, 2**24, 2**31 - 1, 2**31, 2**32 - 1, 10**9, 47040016]
_position = st.one_of(st.integers(0, 80), st.integers(0, 1 << 20))  # headers first, anywhere next
_operation = st.one_of(
    st.tuples(st.just("flip"), _position, st.integers(0, 7)),
    st.tuples(st.just("cut"), _position),
    st.tuples(st.just("u32"), _position, st.sampled_from(_EDGE_U32), st.sampled_from([">", "<"])),
    st.tuples(st.just("insert"), _position, st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("dup"), _position, st.integers(1, 4096)),
)
mutations = st.lists(_operation, min_size=1, max_size=4)


def mutate(data: bytes, operations) -> bytes:
    data = bytearray(data)
    for operation in operations:
        kind, position = operation[0], operation[1] % (len(data) + 1)
        if kind == "flip" and position < len(data):
            data[position] ^= 1 << operation[2]
        elif kind == "cut":
            del data[position:]
        elif kind == "u32":
            data[position : position + 4] = struct.pack(operation[3] + "I", operation[2])
        elif kind == "insert":
            data[position:position] = operation[2]
        elif kind == "dup":
            data[position:position] = data[position : position + operation[2]]
    return bytes(data)


# --------------------------------------------------------------------------------------------
# The check: documented errors only, bounded memory
# --------------------------------------------------------------------------------------------

_WORK = Path(tempfile.mkdtemp(prefix="mlp-fuzz-"))


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    print(
        "\nmutation cases run: "
        + ", ".join(f"{k} {v}" for k, v in RUNS.items())
        + f"; total {sum(RUNS.values())}"
    )


def _write(name: str, data: bytes) -> Path:
    path = _WORK / name
    path.write_bytes(data)
    return path


def _traced(read, *args, **kwargs):
    """(result or DatasetFormatError, peak bytes): tracing only during the read keeps Hypothesis fast."""
    tracemalloc.start()
    try:
        try:
            result = read(*args, **kwargs)
        except DatasetFormatError as error:
            assert str(error).startswith(str(error.path)), error
            result = error
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _check(family: str, read, *args, **kwargs):
    """Run one reader: it returns or raises DatasetFormatError, under MEMORY_BOUND bytes at peak."""
    RUNS[family] = RUNS.get(family, 0) + 1
    result, peak = _traced(read, *args, **kwargs)
    assert peak < MEMORY_BOUND, f"{family}: {peak:,} bytes at peak"
    return result


# --------------------------------------------------------------------------------------------
# One test per family
# --------------------------------------------------------------------------------------------


@FUZZ
@given(operations=mutations, seed=st.sampled_from([IDX_IMAGES, IDX_LABELS]))
def test_idx_raw(operations, seed):
    result = _check("idx", read_idx, _write("a-idx", mutate(seed, operations)))
    assert isinstance(result, (np.ndarray, DatasetFormatError))


@FUZZ
@given(operations=mutations, seed=st.sampled_from([GZ_IMAGES, GZ_LABELS]), inside=st.booleans())
def test_idx_gzip(operations, seed, inside):
    # inside: mutate the IDX content and compress it again (header lies reach the reader intact);
    # else mutate the compressed stream itself
    data = gzip.compress(mutate(gzip.decompress(seed), operations)) if inside else mutate(seed, operations)
    result = _check("idx.gz", read_idx, _write("b-idx.gz", data))
    assert isinstance(result, (np.ndarray, DatasetFormatError))


@FUZZ
@given(operations=mutations, seed=st.sampled_from([NPZ_DEFLATED, NPZ_STORED]))
def test_npz_archive_bytes(operations, seed):
    _check("npz (zip bytes)", load_mnist, _write("c-mnist.npz", mutate(seed, operations)), split="train")


@FUZZ
@given(operations=mutations, key=st.sampled_from(["x_train", "y_train"]), compress=st.booleans())
def test_npz_npy_headers(operations, key, compress):
    # a well-formed zip whose .npy entry (header and data) is mutated, CRCs right
    entries = dict(x_train=_npy_bytes(X_SEED), y_train=_npy_bytes(Y_SEED))
    entries[key] = mutate(entries[key], operations)
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in entries.items():
            archive.writestr(name + ".npy", data)
    _check("npz (npy entries)", load_mnist, _write("d-mnist.npz", buffer.getvalue()), split="train")


@FUZZ
@given(operations=mutations)
def test_csv(operations):
    _check("csv", load_mnist, _write("mnist_train.csv", mutate(CSV, operations)), split="train")


@FUZZ
@given(operations=mutations)
def test_mlpd(operations):
    path = _write("train.mlpd", mutate(MLPD, operations))
    _check("mlpd", read_binary, path)
    _check("mlpd", load_mnist, path, split="train")


@FUZZ
@given(operations=mutations, inside=st.booleans())
def test_downloaded_file_check(operations, inside):
    data = gzip.compress(mutate(IDX_LABELS, operations)) if inside else mutate(GZ_LABELS, operations)
    path = _write("train-labels-idx1-ubyte", data)
    problem = _check("download check", datasets.download.check_file, path, datasets.TRAIN_LABELS, None)
    assert problem is None or isinstance(problem, str)  # a problem is returned, never raised


@settings(FUZZ, max_examples=FAMILY_EXAMPLES // 2)  # Pillow and the preprocessing: slower per case
@given(operations=mutations, fmt=st.sampled_from(["png", "jpeg"]))
def test_images(operations, fmt):
    pytest.importorskip("PIL")
    from mlp.images import load_digit

    path = _write(f"digit.{fmt}", mutate(_image_bytes(fmt), operations))
    RUNS["images"] = RUNS.get("images", 0) + 1
    tracemalloc.start()
    try:
        try:
            result = load_digit(path)
            assert result.shape == (784,)
        except ValueError as error:  # the one documented error of a bad image file
            assert str(path) in str(error), error
        assert tracemalloc.get_traced_memory()[1] < MEMORY_BOUND
    finally:
        tracemalloc.stop()
