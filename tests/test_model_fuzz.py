"""Mutation tests for the model-file and checkpoint readers: hostile files raise ModelFileError only.

Each family starts from a valid small model file or checkpoint, mutates it (bit flips, truncation,
overwritten bytes, duplicated/dropped/extra zip entries, edited .npy headers, metadata fields set to odd
JSON values, huge declared sizes, tampered training state) and loads the result. The only outcomes
allowed: a ModelFileError, or a successful load whose arrays match the metadata and are finite. Every
load is traced (tracemalloc, which sees NumPy's and zlib's buffers) and must stay under a few MiB.

The runs are derandomized, so CI is repeatable; MLP_FUZZ_EXAMPLES=N runs N examples per family.
MLP_FUZZ_CORPUS=DIR also writes every file tried into DIR/{model,checkpoint}/{accepted,rejected} (named by its
SHA-256), so another reader (the C++ port) can be checked against the same verdicts.
"""

import io
import itertools
import json
import math
import os
import struct
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="the mutation tests need hypothesis (the test extra)")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import mlp  # noqa: E402
from mlp.engines.checkpoints import load_checkpoint, save_checkpoint  # noqa: E402
from mlp.model_file import ModelFileError  # noqa: E402

EXAMPLES = int(os.environ.get("MLP_FUZZ_EXAMPLES", "150"))
PEAK_LIMIT = 32 << 20  # bytes a load of a file of at most ~2 MB may allocate at its peak
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# ---- the valid starting points ----------------------------------------------------------------------
def _model():
    rng = np.random.default_rng(0)
    sizes = [5, 4, 3]
    params = [
        (rng.normal(size=(a, b)).astype(np.float32), rng.normal(size=b).astype(np.float32))
        for a, b in itertools.pairwise(sizes)
    ]
    history = {"epoch": [1, 2], "loss": [0.9, 0.5], "val_loss": [math.nan, 0.6]}
    return mlp.MLP(
        params,
        activation="tanh",
        loss="cross_entropy",
        classes=np.array([0, 2, 7]),
        l2=0.01,
        history=history,
        config={"epochs": 2, "optimizer": {"name": "adam"}},
    )


def _snapshot(model):
    flat = [p for pair in model.get_weights() for p in pair]
    rng = np.random.default_rng(1)
    return {
        "state": [np.full_like(p, 0.5) for p in flat] * 2,
        "step_count": 6,
        "epoch": 2,
        "rng_state": rng.bit_generator.state,
        "schedule_state": {
            "base_lr": 1e-3,
            "epochs": 5,
            "steps_per_epoch": 3,
            "current": 1e-3,
            "best": math.inf,
            "waited": 0,
            "factor": 0.1,
            "patience": 3,
        },
    }


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    folder = tmp_path_factory.mktemp("originals")
    model = _model()
    model_path = model.save(folder / "model.npz")
    checkpoint_path = folder / "checkpoint.npz"
    save_checkpoint(
        checkpoint_path,
        model,
        _snapshot(model),
        history=model.history,
        fit_options={"epochs": 5, "seed": 0},
        best=(0.4, model.get_weights(), 1),
        finished=False,
    )
    return _Originals(model=model_path.read_bytes(), checkpoint=checkpoint_path.read_bytes())


class _Originals(dict):
    """The valid files by kind; a short repr keeps failure reports readable."""

    def __repr__(self):
        return "<valid model and checkpoint files>"


# ---- loading under watch ----------------------------------------------------------------------------
def _load(kind, data, tmp_path):
    """Load `data` as a model or checkpoint; return the result or None after a ModelFileError."""
    path = tmp_path / f"fuzzed-{kind}.npz"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        result = mlp.load(path) if kind == "model" else load_checkpoint(path)
    except ModelFileError as error:
        message = str(error)
        assert message and "\n" not in message.strip()  # one line, never empty
        result = None
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < PEAK_LIMIT, f"loading a {len(data)}-byte file allocated {peak:,} bytes at its peak"
    if result is not None:
        _assert_consistent(kind, result)
    _record(kind, data, accepted=result is not None)
    return result


def _record(kind, data, *, accepted):
    corpus = os.environ.get("MLP_FUZZ_CORPUS")
    if corpus:
        import hashlib
        from pathlib import Path

        folder = Path(corpus) / kind / ("accepted" if accepted else "rejected")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{hashlib.sha256(data).hexdigest()[:16]}.npz").write_bytes(data)


def _assert_consistent(kind, result):
    if kind == "model":
        sizes = result.layer_sizes
        params = result.params
        assert result.classes_ is None or len(result.classes_) == sizes[-1]
        assert result.decision_function(np.ones((2, sizes[0]), dtype=result.dtype)).shape == (2, sizes[-1])
        result.predict(np.ones((2, sizes[0]), dtype=result.dtype))  # a loaded model works
        repr(result)
    else:
        params, state, _best, metadata = result
        sizes = metadata["layer_sizes"]
        flat = [p for pair in params for p in pair]
        assert len(state) % len(flat) == 0
        for index, array in enumerate(state):
            assert array.shape == flat[index % len(flat)].shape
        assert metadata["epoch"] >= 0 and metadata["step_count"] >= 0
        np.random.default_rng().bit_generator.state = metadata["rng_state"]
    for index, (W, b) in enumerate(params):
        assert W.shape == (sizes[index], sizes[index + 1]) and b.shape == (sizes[index + 1],)
        assert np.all(np.isfinite(W)) and np.all(np.isfinite(b))


# ---- zip-level helpers --------------------------------------------------------------------------------
def _entries(data):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def _archive(entries, compression=zipfile.ZIP_STORED):
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": that is the point
        with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
            for name, payload in entries:
                archive.writestr(name, payload)
    return buffer.getvalue()


def _npy(header_text, body=b"", *, version=1, length=None):
    text = header_text.encode("latin-1")
    size = len(text) if length is None else length
    prefix = (
        b"\x93NUMPY"
        + bytes([version, 0])
        + struct.pack("<H" if version == 1 else "<I", size % (1 << (16 * version)))
    )
    return prefix + text + body


def _metadata_of(entries):
    payload = dict(entries)["metadata.npy"]
    return json.loads(np.load(io.BytesIO(payload), allow_pickle=False).tobytes())


def _with_metadata(entries, metadata_text):
    raw = metadata_text if isinstance(metadata_text, bytes) else metadata_text.encode("utf-8")
    array = np.frombuffer(raw, dtype=np.uint8)
    buffer = io.BytesIO()
    np.save(buffer, array)
    return [(name, buffer.getvalue() if name == "metadata.npy" else payload) for name, payload in entries]


# ---- strategies ---------------------------------------------------------------------------------------
KINDS = st.sampled_from(["model", "checkpoint"])
ODD_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, -5, 1, 10**8, 10**8 + 1, 10**9, 2**31, 2**63, 10**30, 0.5, -0.0, 1e308, 2.0]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["relu", "gelu", "float16", "float64", "", "PCG64", "MT19937"]),
)
ODD_JSON = st.recursive(
    ODD_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
MODEL_FIELDS = [
    "format",
    "format_version",
    "hidden_sizes",
    "activation",
    "loss",
    "n_features",
    "classes",
    "dtype",
    "l2",
    "batch_norm",
    "preprocessing",
    "config",
    "history",
    "library_version",
    "unknown_field",
]
CHECKPOINT_FIELDS = [
    *MODEL_FIELDS,
    "epoch",
    "step_count",
    "rng_state",
    "schedule_state",
    "fit_options",
    "best",
    "finished",
]


@st.composite
def byte_mutations(draw, data):
    """Bit flips, overwritten runs and truncation anywhere in the file."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "overwrite", "truncate"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "overwrite":
            run = draw(st.binary(min_size=1, max_size=16))
            data[at : at + len(run)] = run
        else:
            del data[at:]
    return bytes(data)


# ---- the families -------------------------------------------------------------------------------------
@FUZZ
@given(kind=KINDS, data=st.data())
def test_byte_level_mutations(originals, tmp_path, kind, data):
    _load(kind, data.draw(byte_mutations(originals[kind])), tmp_path)


@FUZZ
@given(kind=KINDS, data=st.data(), compression=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
def test_entry_level_mutations(originals, tmp_path, kind, data, compression):
    """Entries duplicated (the same or other bytes), dropped, renamed, reordered or added."""
    entries = _entries(originals[kind])
    names = [name for name, _ in entries]
    for _ in range(data.draw(st.integers(1, 3))):
        action = data.draw(st.sampled_from(["duplicate", "drop", "rename", "swap", "add"]))
        index = data.draw(st.integers(0, len(entries) - 1)) if entries else 0
        if action == "duplicate" and entries:
            name, payload = entries[index]
            other = data.draw(st.sampled_from([payload, entries[-1][1], b"junk"]))
            entries.insert(data.draw(st.integers(0, len(entries))), (name, other))
        elif action == "drop" and entries:
            del entries[index]
        elif action == "rename" and entries:
            entries[index] = (
                data.draw(st.sampled_from([*names, "W9.npy", "metadata", "x/../W0.npy"])),
                entries[index][1],
            )
        elif action == "swap" and len(entries) > 1:
            other = data.draw(st.integers(0, len(entries) - 1))
            entries[index], entries[other] = (
                (entries[index][0], entries[other][1]),
                (entries[other][0], entries[index][1]),
            )
        else:
            entries.append(
                (
                    data.draw(st.sampled_from(["extra.npy", "notes.txt", "state9.npy", "best_W0.npy"])),
                    data.draw(st.binary(max_size=64)),
                )
            )
    _load(kind, _archive(entries, compression), tmp_path)


DESCRS = ["<f4", "<f8", ">f4", "|u1", "<i8", "|O", "<c16", "V8", "<U3", "S3", "", "f4", "<f2"]
SHAPES = st.one_of(
    st.tuples(),
    st.tuples(st.integers(0, 10)),
    st.tuples(st.integers(0, 10), st.integers(0, 10)),
    st.tuples(st.integers(0, 2**62), st.integers(0, 2**62)),
    st.lists(st.integers(-3, 6), max_size=40).map(tuple),
)


@FUZZ
@given(kind=KINDS, data=st.data())
def test_npy_header_mutations(originals, tmp_path, kind, data):
    """One entry's .npy header rewritten: odd dtype, shape, order, length field, version or magic."""
    entries = _entries(originals[kind])
    index = data.draw(st.integers(0, len(entries) - 1))
    name, payload = entries[index]
    body = payload[payload.index(b"\n") + 1 :]
    choice = data.draw(st.sampled_from(["fields", "garbage", "length", "version", "magic"]))
    if choice == "fields":
        header = (
            "{" + f"'descr': {data.draw(st.sampled_from(DESCRS))!r}, "
            f"'fortran_order': {data.draw(st.sampled_from(['False', 'True', '0', 'None']))}, "
            f"'shape': {data.draw(SHAPES)!r}, " + "}\n"
        )
        new = _npy(header, body)
    elif choice == "garbage":
        new = _npy(
            data.draw(
                st.sampled_from(
                    [
                        "",
                        "{",
                        "(" * 300,
                        "{'descr': '<f4'}",
                        "[1, 2]",
                        "1+" * 500 + "1",
                        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'x': 1}",
                    ]
                )
            )
            + data.draw(st.text(st.characters(max_codepoint=255), max_size=20)),
            body,
        )
    elif choice == "length":
        text = payload[10 : payload.index(b"\n") + 1].decode("latin-1")
        new = _npy(
            text,
            body,
            version=data.draw(st.sampled_from([1, 2])),
            length=data.draw(st.sampled_from([0, 1, 5000, 65535, 2**31, 2**32 - 1])),
        )
    elif choice == "version":
        new = payload[:6] + bytes([data.draw(st.sampled_from([0, 2, 3, 255]))]) + payload[7:]
    else:
        new = b"\x93NUMPZ" + payload[6:]
    entries[index] = (name, new)
    _load(kind, _archive(entries), tmp_path)


@FUZZ
@given(data=st.data())
def test_model_metadata_mutations(originals, tmp_path, data):
    """Model metadata fields set to odd JSON values, or the whole metadata replaced."""
    _metadata_family("model", originals, tmp_path, data, MODEL_FIELDS)


@FUZZ
@given(data=st.data())
def test_checkpoint_metadata_mutations(originals, tmp_path, data):
    """Checkpoint fields (epoch, step_count, rng_state, schedule_state, best, ...) set to odd values."""
    _metadata_family("checkpoint", originals, tmp_path, data, CHECKPOINT_FIELDS)


def _metadata_family(kind, originals, tmp_path, data, fields):
    entries = _entries(originals[kind])
    metadata = _metadata_of(entries)
    if data.draw(st.integers(0, 9)) == 0:
        text = data.draw(
            st.sampled_from(
                [
                    b"[]",
                    b'"model"',
                    b"null",
                    b"42",
                    b"{",
                    b"",
                    b"[" * 100000,
                    b'{"a": 1, "a": 2}',
                    b"NaN",
                    b"\xff\xfe{}",
                    b'{"format": "mlp-\xc3"}',
                ]
            )
        )
    else:
        for _ in range(data.draw(st.integers(1, 3))):
            field = data.draw(st.sampled_from(fields))
            value = data.draw(ODD_JSON)
            target = metadata
            if isinstance(metadata.get(field), dict) and data.draw(st.booleans()) and metadata[field]:
                target, field = metadata[field], data.draw(st.sampled_from(sorted(metadata[field])))
            target[field] = value
        text = json.dumps(metadata, allow_nan=data.draw(st.booleans()))
    _load(kind, _archive(_with_metadata(entries, text)), tmp_path)


@settings(FUZZ, max_examples=max(EXAMPLES // 3, 10))  # a small space: 6 sizes x 4 fields x 4 layouts
@given(data=st.data())
def test_big_declared_sizes(originals, tmp_path, data):
    """Metadata and headers that agree on absurd sizes, with little or no data behind them."""
    entries = _entries(originals["model"])
    metadata = _metadata_of(entries)
    width = data.draw(st.sampled_from([10**5, 10**7, 10**8, 10**8 + 1, 2**31, 10**12]))
    field = data.draw(st.sampled_from(["n_features", "hidden_sizes", "classes", "layers"]))
    if field == "n_features":
        metadata["n_features"] = width
    elif field == "hidden_sizes":
        metadata["hidden_sizes"] = [width]
    elif field == "classes":
        metadata["classes"] = list(range(min(width, 20_000)))
    else:
        metadata["hidden_sizes"] = [1] * data.draw(st.sampled_from([999, 1000, 1001, 5000]))
    entries = _with_metadata(entries, json.dumps(metadata))
    if data.draw(st.booleans()):  # headers that agree with the metadata, and no data
        sizes = [metadata["n_features"], *metadata["hidden_sizes"], len(metadata["classes"])][:3]
        for index, (name, _) in enumerate(entries):
            if name == "W0.npy":
                header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({sizes[0]}, {sizes[1]}), }}\n"
                entries[index] = (name, _npy(header))
    _load(
        "model",
        _archive(entries, data.draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))),
        tmp_path,
    )


@FUZZ
@given(data=st.data())
def test_tampered_training_state(originals, tmp_path, data):
    """Optimizer-state arrays of the wrong shape, count or dtype; odd epoch and step counts."""
    entries = _entries(originals["checkpoint"])
    metadata = _metadata_of(entries)
    names = [name for name, _ in entries if name.startswith("state")]
    action = data.draw(st.sampled_from(["shape", "count", "dtype", "nan", "counters"]))
    if action == "counters":
        metadata[data.draw(st.sampled_from(["epoch", "step_count"]))] = data.draw(
            st.sampled_from([-5, -1, 0.5, 2.0, 2**53 + 1, 10**10, None, "3", True, []])
        )
        entries = _with_metadata(entries, json.dumps(metadata))
    else:
        name = data.draw(st.sampled_from(names))
        buffer = io.BytesIO()
        if action == "shape":
            original_shape = np.load(io.BytesIO(dict(entries)[name])).shape
            shape = data.draw(
                st.sampled_from([(1,), (), (1, 1), (3, 4), (4, 3), (12,)]).filter(
                    lambda s: s != original_shape
                )
            )
            np.save(buffer, np.ones(shape, np.float32))
        elif action == "dtype":
            np.save(buffer, np.ones((3,), data.draw(st.sampled_from([np.float64, np.int32, np.float16]))))
        elif action == "nan":
            original = np.load(io.BytesIO(dict(entries)[name]))
            np.save(buffer, np.full_like(original, np.nan))
        if action == "count":
            entries = [(n, p) for n, p in entries if n != name]
        else:
            entries = [(n, buffer.getvalue() if n == name else p) for n, p in entries]
    result = _load("checkpoint", _archive(entries), tmp_path)
    if action in ("shape", "nan", "count", "dtype") or metadata.get("epoch") == -5:
        assert result is None


# ---- specific hostile files (one each, named in the README's reliability table) --------------------------
def test_an_unknown_deflated_entry_is_never_inflated(originals, tmp_path):
    """An extra deflated entry of 512 MiB of zeros (2.3 MB on disk) is not inflated."""
    path = tmp_path / "bomb.npz"
    path.write_bytes(originals["model"])
    with (
        zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("padding.npy", "w", force_zip64=True) as sink,
    ):
        zeros = bytes(1 << 24)
        for _ in range(32):
            sink.write(zeros)
    assert path.stat().st_size < 4 << 20
    tracemalloc.start()
    try:
        model = mlp.load(path)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert model.layer_sizes == [5, 4, 3] and peak < PEAK_LIMIT


def test_a_deflated_parameter_that_claims_more_than_deflate_can_make_is_refused(originals, tmp_path):
    data = bytearray(_archive(_entries(originals["model"]), zipfile.ZIP_DEFLATED))
    at = data.index(b"PK\x01\x02")  # central directory records: the name starts at byte 46
    while data[at + 46 : at + 52] != b"W0.npy":
        at = data.index(b"PK\x01\x02", at + 4)
    data[at + 24 : at + 28] = struct.pack("<I", 3 << 30)  # uncompressed size: 3 GiB
    with pytest.raises(ModelFileError, match="more than deflate can produce"):
        _load_or_raise("model", bytes(data), tmp_path)


def _load_or_raise(kind, data, tmp_path):
    path = tmp_path / "x.npz"
    path.write_bytes(data)
    return mlp.load(path) if kind == "model" else load_checkpoint(path)


def test_duplicate_entries_are_refused_whichever_comes_first(originals, tmp_path):
    entries = _entries(originals["model"])
    W0 = dict(entries)["W0.npy"]
    for position in (0, len(entries)):
        doubled = list(entries)
        doubled.insert(position, ("W0.npy", W0))
        with pytest.raises(ModelFileError, match="'W0' twice"):
            _load_or_raise("model", _archive(doubled), tmp_path)


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("[]", "JSON list"),
        ('"model"', "JSON str"),
        ("null", "JSON NoneType"),
        ('{"a": 1, "a": 2}', "twice"),
        ("[" * 100000, "not valid JSON"),
    ],
)
def test_metadata_that_is_not_an_object(originals, tmp_path, text, fragment):
    entries = _with_metadata(_entries(originals["model"]), text)
    with pytest.raises(ModelFileError, match=fragment):
        _load_or_raise("model", _archive(entries), tmp_path)


@pytest.mark.parametrize(
    "field,value,fragment",
    [
        ("activation", "gelu", "unknown activation 'gelu'"),
        ("loss", "hinge", "unknown loss 'hinge'"),
        ("n_features", 10**12, "'n_features' must be an integer from 1 to 100,000,000"),
        ("hidden_sizes", [0], "'hidden_sizes' must be an integer"),
        ("classes", [1, 1, 2], "lists a class twice"),
        ("classes", ["a", "b", "c"], "'classes' must be an integer"),
        ("history", {"loss": "abc"}, "history\\['loss'\\] must be a list"),
        ("config", [1, 2], "'config' must be an object or null"),
        ("format_version", 4, "format version 4; this mlp reads format versions 1 to 3: upgrade mlp"),
        ("format_version", "2", "'format_version' must be a positive integer"),
    ],
)
def test_odd_metadata_values_are_named(originals, tmp_path, field, value, fragment):
    entries = _entries(originals["model"])
    metadata = {**_metadata_of(entries), field: value}
    with pytest.raises(ModelFileError, match=fragment):
        _load_or_raise("model", _archive(_with_metadata(entries, json.dumps(metadata))), tmp_path)


@pytest.mark.parametrize(
    "field,value,fragment",
    [
        ("epoch", -5, "'epoch' must be an integer from 0"),
        ("step_count", 2.5, "'step_count' must be an integer"),
        ("rng_state", {"bit_generator": "PCG64"}, "rng_state"),
        ("schedule_state", {"steps_per_epoch": 0}, "'steps_per_epoch' must be an integer from 1"),
        ("schedule_state", {"current": "fast"}, "schedule_state\\['current'\\] must be a number"),
        ("schedule_state", {"lr": 0.1}, "schedule_state has an invalid key 'lr'"),
        ("best", {"monitored": 1.0}, "'best' must be null or"),
    ],
)
def test_tampered_checkpoint_fields_are_named(originals, tmp_path, field, value, fragment):
    entries = _entries(originals["checkpoint"])
    metadata = {**_metadata_of(entries), field: value}
    with pytest.raises(ModelFileError, match=fragment):
        _load_or_raise("checkpoint", _archive(_with_metadata(entries, json.dumps(metadata))), tmp_path)


def test_a_one_element_optimizer_state_is_not_broadcast(originals, tmp_path):
    buffer = io.BytesIO()
    np.save(buffer, np.ones((1,), np.float32))
    entries = [
        (n, buffer.getvalue() if n == "state0.npy" else p) for n, p in _entries(originals["checkpoint"])
    ]
    with pytest.raises(ModelFileError, match=r"state0 has shape \(1,\), expected \(5, 4\)"):
        _load_or_raise("checkpoint", _archive(entries), tmp_path)


def test_devices_and_pipes_are_not_read(tmp_path):
    with pytest.raises(ModelFileError, match="not a regular file"):
        mlp.load("/dev/zero")
    with pytest.raises(ModelFileError, match="folder"):
        mlp.load(tmp_path)
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.npz")
        with pytest.raises(ModelFileError, match="not a regular file"):
            mlp.load(tmp_path / "pipe.npz")
    with pytest.raises(FileNotFoundError):
        mlp.load(tmp_path / "absent.npz")


def test_an_end_record_declaring_a_huge_directory_is_refused_before_parsing(originals, tmp_path):
    data = bytearray(originals["model"])
    at = data.rindex(b"PK\x05\x06")
    data[at + 8 : at + 16] = struct.pack("<HHI", 60000, 60000, 9 << 20)  # entries, entries, directory bytes
    with pytest.raises(ModelFileError, match="declares 60,000 entries"):
        _load_or_raise("model", bytes(data), tmp_path)


# ---- resuming from a tampered checkpoint, end to end ---------------------------------------------------
RESUME = dict(
    hidden_sizes=[4],
    epochs=3,
    batch_size=16,
    schedule="plateau",
    early_stopping=True,
    patience=5,
    validation_split=0.25,
    seed=0,
    engine="xp",
)


# Values a checkpoint could almost hold, so that many tampered files get as far as the trainer.
PLAUSIBLE = st.one_of(st.integers(-2, 6), st.floats(-1.0, 10.0), st.booleans(), st.none(), ODD_JSON)


@pytest.fixture(scope="module")
def real_checkpoint(tmp_path_factory):
    from tests.helpers import blobs

    X, y = blobs(n=64)
    path = tmp_path_factory.mktemp("resume") / "ckpt.npz"
    mlp.fit(X, y, checkpoint=path, callbacks=[lambda epoch, logs, model: epoch == 1], **RESUME)
    return X, y, path.read_bytes()


@settings(FUZZ, max_examples=max(EXAMPLES // 3, 10))
@given(data=st.data())
def test_resuming_from_tampered_checkpoints(real_checkpoint, tmp_path, data):
    """fit(resume=True) from a checkpoint with odd training fields: it resumes, or refuses with
    ModelFileError or the ValueError that names the differing options (or, when a tampered learning
    rate diverges, TrainingError); never another exception."""
    X, y, original = real_checkpoint
    entries = _entries(original)
    metadata = _metadata_of(entries)
    for _ in range(data.draw(st.integers(1, 2))):
        field = data.draw(
            st.sampled_from(
                [
                    "epoch",
                    "step_count",
                    "rng_state",
                    "schedule_state",
                    "best",
                    "finished",
                    "history",
                    "fit_options",
                ]
            )
        )
        current = metadata.get(field)
        if isinstance(current, dict) and current and data.draw(st.booleans()):
            current[data.draw(st.sampled_from(sorted(current)))] = data.draw(PLAUSIBLE)
        else:
            metadata[field] = data.draw(PLAUSIBLE)
    path = tmp_path / "tampered.npz"
    path.write_bytes(_archive(_with_metadata(entries, json.dumps(metadata))))
    try:
        model = mlp.fit(X, y, checkpoint=path, resume=True, **RESUME)
    except (
        ModelFileError,
        ValueError,
        mlp.TrainingError,
    ) as error:  # TrainingError: a tampered rate diverged
        assert (
            type(error) in (ModelFileError, ValueError, mlp.TrainingError) and "\n" not in str(error).strip()
        )
    else:
        assert np.all(np.isfinite(model.params[0][0]))
