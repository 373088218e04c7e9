"""The Python package and the C++ port accept and reject the same model files.

Each crafted file (cpp/fuzz/make_corpus.py: valid files of format versions 1 to 3, batch
normalisation's arrays and their hostile variants, NaN/null history, duplicates, bombs, bad .npy headers, absurd sizes, tampered metadata, ...) plus the cases
below goes to `mlp.load` and to `mlp-cpp evaluate` on a tiny data set of matching width: both must
accept it, or both must refuse it (Python with ModelFileError or FileNotFoundError, the port with
exit status 1 and one line on stderr).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import mlp
from mlp.model_file import ModelFileError
from tests.test_fuzz_cpp import assert_clean_error, build_cli, corpus, run_cli

SIZES = (4, 3, 2)


def _extra_cases():
    """name -> bytes: cases beyond the fuzz corpus, each probing one rule both readers apply."""
    m = corpus.model_metadata
    good = corpus.model_arrays(SIZES)
    npz = corpus.model_npz
    history_nested = {"epoch": [1], "loss": [None], "grad_norm": [[0.5, None]]}
    cases = {
        "classes_duplicate.npz": npz(meta=m(SIZES, classes=[1, 1])),
        "classes_float_integral.npz": npz(meta=m(SIZES, classes=[0.0, 1.0])),
        "classes_fraction.npz": npz(meta=m(SIZES, classes=[0.5, 1])),
        "classes_strings.npz": npz(meta=m(SIZES, classes=["cat", "dog"])),
        "classes_2_63.npz": npz(meta=m(SIZES, classes=[0, 2**63])),
        "classes_negative_big.npz": npz(meta=m(SIZES, classes=[-(2**63), 5])),
        "n_features_float_integral.npz": npz(meta=m(SIZES, n_features=4.0)),
        "n_features_zero.npz": npz(meta=m(SIZES, n_features=0)),
        "n_features_string.npz": npz(meta=m(SIZES, n_features="4")),
        "dtype_missing.npz": npz(meta=m(SIZES, dtype=corpus.ABSENT)),
        "dtype_float16.npz": npz(meta=m(SIZES, dtype="float16")),
        "activation_linear.npz": npz(meta=m(SIZES, activation="linear")),
        "activation_identity.npz": npz(meta=m(SIZES, activation="identity")),
        "loss_unknown.npz": npz(meta=m(SIZES, loss="hinge")),
        "l2_negative.npz": npz(meta=m(SIZES, l2=-1.0)),
        "l2_string.npz": npz(meta=m(SIZES, l2="0")),
        "l2_absent.npz": npz(meta=m(SIZES, l2=corpus.ABSENT)),
        "config_list.npz": npz(meta=m(SIZES, config=[1])),
        "config_null.npz": npz(meta=m(SIZES, config=None)),
        "config_optimizer_string.npz": npz(meta=m(SIZES, config={"optimizer": "adam"})),
        "preprocessing_string.npz": npz(meta=m(SIZES, preprocessing="pixels / 255")),
        "library_version_number.npz": npz(meta=m(SIZES, library_version=1)),
        "history_null.npz": npz(meta=m(SIZES, history=None)),
        "history_list.npz": npz(meta=m(SIZES, history=[1, 2])),
        "history_string_item.npz": npz(meta=m(SIZES, history={"loss": ["x"]})),
        "history_bool_item.npz": npz(meta=m(SIZES, history={"loss": [True]})),
        "history_per_layer.npz": npz(meta=m(SIZES, history=history_nested)),
        "history_scalar_key_nested.npz": npz(meta=m(SIZES, history={"loss": [[0.5]]})),
        "version_0.npz": npz(meta=m(SIZES, version=0)),
        "version_2_float.npz": npz(meta=m(SIZES, format_version=2.0)),
        "version_bool.npz": npz(meta=m(SIZES, format_version=True)),
        "format_checkpoint.npz": npz(meta=m(SIZES, format="mlp-checkpoint")),
        "json_duplicate_key.npz": npz(meta=json.dumps(m(SIZES))[:-1] + ', "loss": "mse"}'),
        "json_nan_token_v2_history.npz": npz(
            meta=m(SIZES, history={"val_loss": [float("nan")]}), allow_nan=True
        ),
        "json_infinity_token_v2_history.npz": npz(
            meta=m(SIZES, history={"loss": [float("inf")]}), allow_nan=True
        ),
        "json_minus_infinity_token_v2_config.npz": npz(
            meta=m(SIZES, config={"clip_norm": float("-inf")}), allow_nan=True
        ),
        "valid_v1_infinity_token_history.npz": npz(
            meta=m(SIZES, version=1, history={"loss": [float("inf")]}), allow_nan=True
        ),
        "json_trailing_garbage.npz": npz(meta=json.dumps(m(SIZES)) + " x"),
        "json_bom.npz": npz(meta=b"\xef\xbb\xbf" + json.dumps(m(SIZES)).encode()),
        "metadata_float_array.npz": corpus.zip_archive(
            [(f"{k}.npy", corpus.npy_bytes(v)) for k, v in good.items()]
            + [
                (
                    "metadata.npy",
                    corpus.npy_bytes(np.frombuffer(json.dumps(m(SIZES)).encode(), np.uint8).astype(np.int64)),
                )
            ]
        ),
        "metadata_without_npy_suffix.npz": corpus.zip_archive(
            [(f"{k}.npy", corpus.npy_bytes(v)) for k, v in good.items()]
            + [("metadata", corpus.metadata_bytes(m(SIZES)))]
        ),
        "W0_without_npy_suffix.npz": corpus.zip_archive(
            [(f"{k}.npy" if k != "W0" else k, corpus.npy_bytes(v)) for k, v in good.items()]
            + [("metadata.npy", corpus.metadata_bytes(m(SIZES)))]
        ),
        "extra_layer_entry.npz": npz(extra=[("W2.npy", corpus.npy_bytes(np.zeros((2, 2), np.float32)))]),
        "extra_unknown_entry.npz": npz(extra=[("notes.txt", b"hello")]),
        "extra_entry_bad_local_name.npz": npz(
            extra=[{"name": "junk.npy", "data": b"x" * 10, "local_name": "other.npy"}]
        ),
        "extra_entry_unknown_method.npz": npz(
            extra=[{"name": "junk.npy", "data": b"x" * 10, "method": 12, "compressed": b"x" * 10}]
        ),
        "entry_unknown_method.npz": corpus.zip_archive(
            [
                {
                    "name": f"{k}.npy",
                    "data": corpus.npy_bytes(v),
                    "method": 12 if k == "b0" else 0,
                    "compressed": corpus.npy_bytes(v),
                }
                for k, v in good.items()
            ]
            + [("metadata.npy", corpus.metadata_bytes(m(SIZES)))]
        ),
        "npy_version_3.npz": _with_w0(
            corpus.npy_bytes(
                good["W0"],
                header="{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }\n",
                version=(3, 0),
            )
        ),
        "npy_fortran.npz": _with_w0(
            corpus.npy_bytes(
                good["W0"].T.copy(), header="{'descr': '<f4', 'fortran_order': True, 'shape': (4, 3), }\n"
            )
        ),
        "npy_extra_key.npz": _with_w0(
            corpus.npy_bytes(
                good["W0"], header="{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), 'x': 1}\n"
            )
        ),
        "npy_big_endian.npz": _with_w0(corpus.npy_bytes(good["W0"].astype(">f4"))),
        "npy_data_too_long.npz": _with_w0(corpus.npy_bytes(good["W0"]) + b"\0\0\0\0"),
        "npy_header_4097.npz": _with_w0(
            corpus.npy_bytes(
                good["W0"],
                header="{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }" + " " * 4060 + "\n",
            )
        ),
        "inf_weights.npz": npz(arrays={**good, "W1": np.full((3, 2), np.inf, np.float32)}),
        "valid_numpy_savez.npz": _numpy_savez(np.savez),
        "valid_numpy_savez_compressed.npz": _numpy_savez(np.savez_compressed),
        "prepended_bytes.npz": b"#!/bin/sh\necho not a zip\n" + npz(),
        "zip_comment.npz": corpus.zip_archive(
            [(f"{k}.npy", corpus.npy_bytes(v)) for k, v in good.items()]
            + [("metadata.npy", corpus.metadata_bytes(m(SIZES)))],
            comment=b"hi",
        ),
        # Models trained on a target matrix (squared_error, poisson: regression; binary_cross_entropy:
        # multilabel): classes null, n_outputs the output width. And n_outputs in a classifier's file.
        "valid_v2_regression.npz": npz(meta=value_model()),
        "valid_v2_multilabel.npz": npz(meta=value_model(loss="binary_cross_entropy", activation="tanh")),
        "valid_v2_poisson.npz": npz(meta=value_model(loss="poisson")),  # exp outputs, counts
        "valid_v1_regression.npz": npz(meta=value_model(version=1), allow_nan=True),
        "regression_classes_absent.npz": npz(meta=value_model(classes=corpus.ABSENT)),
        "regression_classes_listed.npz": npz(meta=value_model(classes=[0, 1])),
        "regression_classes_empty.npz": npz(meta=value_model(classes=[])),
        "regression_n_outputs_absent.npz": npz(meta=value_model(n_outputs=corpus.ABSENT)),
        "regression_n_outputs_null.npz": npz(meta=value_model(n_outputs=None)),
        "regression_n_outputs_float_integral.npz": npz(meta=value_model(n_outputs=2.0)),
        "regression_n_outputs_bool.npz": npz(meta=value_model(n_outputs=True)),
        "regression_n_outputs_zero.npz": npz(meta=value_model(n_outputs=0)),
        "regression_n_outputs_string.npz": npz(meta=value_model(n_outputs="2")),
        "regression_n_outputs_wider_than_W1.npz": npz(meta=value_model(n_outputs=3)),
        "classes_null_cross_entropy.npz": npz(meta=m(SIZES, classes=None, n_outputs=2)),
        "classes_with_n_outputs.npz": npz(meta=m(SIZES, n_outputs=2)),
        "classes_with_n_outputs_float.npz": npz(meta=m(SIZES, n_outputs=2.0)),
        "classes_n_outputs_mismatch.npz": npz(meta=m(SIZES, n_outputs=3)),
        "classes_n_outputs_null.npz": npz(meta=m(SIZES, n_outputs=None)),
        "classes_n_outputs_string.npz": npz(meta=m(SIZES, n_outputs="2")),
    }
    return cases


def value_model(*, loss="squared_error", version=2, **changes):
    """Metadata of a (4, 3, 2) model without classes, as mlp and mlp-cpp write a regressor's."""
    fields = {
        "loss": loss,
        "classes": None,
        "n_outputs": SIZES[-1],
        "preprocessing": None,
        "history": {"epoch": [1], "loss": [0.5]},
        **changes,
    }
    return corpus.model_metadata(SIZES, version=version, **fields)


def _numpy_savez(save):
    """A model file as NumPy itself writes it (zip64 extra fields in the local headers)."""
    import io

    buffer = io.BytesIO()
    meta = np.frombuffer(json.dumps(corpus.model_metadata(SIZES)).encode(), np.uint8)
    save(buffer, **corpus.model_arrays(SIZES), metadata=meta)
    return buffer.getvalue()


def _with_w0(w0_bytes):
    good = corpus.model_arrays(SIZES)
    entries = [(f"{k}.npy", corpus.npy_bytes(v) if k != "W0" else w0_bytes) for k, v in good.items()]
    return corpus.zip_archive(
        [*entries, ("metadata.npy", corpus.metadata_bytes(corpus.model_metadata(SIZES)))]
    )


CASES = {**corpus.hostile_models(), **_extra_cases()}


@pytest.fixture(scope="module")
def mlp_cpp(request, tmp_path_factory):
    return build_cli(request.config, tmp_path_factory)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """A test split of 2x2 images: 4 features, the width of every crafted model; beside it,
    values.npz, the same rows with 2 real targets in [0, 1] each, for models without classes."""
    import struct

    folder = tmp_path_factory.mktemp("agreement_data")
    n = 6
    pixels = bytes((i * 41) % 256 for i in range(n * 4))
    (folder / "test.mlpd").write_bytes(
        b"MLPD" + struct.pack("<IIII", 1, n, 2, 2) + pixels + bytes([0, 1] * 3)
    )
    X = np.frombuffer(pixels, np.uint8).reshape(n, 4) / 255.0
    np.savez(folder / "values.npz", X_test=X, y_test=np.stack([X[:, 0], 1.0 - X[:, 1]], axis=1))
    return folder


def _python_accepts(path):
    try:
        mlp.load(path)
    except (ModelFileError, FileNotFoundError) as error:
        return False, f"{type(error).__name__}: {error}"
    return True, ""


def _cpp_accepts(exe, path, data):
    result = run_cli(exe, "evaluate", path, "--data", data, memory_mb=1024, timeout=60)
    if result.returncode != 0 and "give --data FILE.npz" in result.stderr:
        # The port read the file and found a model without classes: it is evaluated on real targets.
        result = run_cli(exe, "evaluate", path, "--data", data / "values.npz", memory_mb=1024, timeout=60)
    if result.returncode == 0:
        return True, ""
    assert_clean_error(result)
    return False, result.stderr.strip()


@pytest.mark.parametrize("name", sorted(CASES))
def test_python_and_cpp_agree(name, mlp_cpp, tiny_data, tmp_path):
    path = tmp_path / name
    path.write_bytes(CASES[name])
    python_ok, python_why = _python_accepts(path)
    cpp_ok, cpp_why = _cpp_accepts(mlp_cpp, path, tiny_data)
    assert python_ok == cpp_ok, (
        f"{name}: Python {'accepts' if python_ok else 'refuses'} it, C++ {'accepts' if cpp_ok else 'refuses'} it\n"
        f"  Python: {python_why or 'loaded'}\n  C++: {cpp_why or 'evaluated'}"
    )
    expected = name.startswith("valid_") or name in {
        "bomb_extra_entry.npz",
        "classes_float_integral.npz",
        "n_features_float_integral.npz",
        "activation_identity.npz",
        "l2_absent.npz",
        "config_null.npz",
        "history_null.npz",
        "history_per_layer.npz",
        "version_2_float.npz",
        "extra_layer_entry.npz",
        "extra_unknown_entry.npz",
        "extra_entry_bad_local_name.npz",
        "extra_entry_unknown_method.npz",
        "npy_fortran.npz",
        "zip_comment.npz",
        "classes_negative_big.npz",
        "hidden_float.npz",
        "version_float.npz",
        "bomb_understated_W0.npz",
        "regression_classes_absent.npz",
        "regression_n_outputs_float_integral.npz",
        "classes_with_n_outputs.npz",
        "classes_with_n_outputs_float.npz",
        "batch_norm_null_with_norm_arrays.npz",
    }
    assert python_ok == expected, (
        f"{name}: expected to be {'accepted' if expected else 'refused'}: {python_why}"
    )


def _mutants(count, seed):
    """`count` damaged copies of valid files (stored, deflated, version 1, version 3 with batch
    normalisation): bytes overwritten anywhere
    or in the zip directory at the end, the file cut short, bytes inserted."""
    import random

    rng = random.Random(seed)
    bases = [
        corpus.model_npz(),
        corpus.model_npz(method=8),
        corpus.model_npz(meta=corpus.model_metadata(SIZES, version=1), allow_nan=True),
        corpus.model_npz(
            meta=corpus.model_metadata(SIZES, version=3, batch_norm="after"),
            arrays=corpus.model_arrays(SIZES, batch_norm=True),
        ),
    ]
    for _ in range(count):
        data = bytearray(rng.choice(bases))
        kind = rng.randrange(4)
        if kind == 0:
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == 1:
            for _ in range(rng.randint(1, 3)):
                data[len(data) - rng.randrange(1, 400)] = rng.randrange(256)
        elif kind == 2:
            del data[rng.randrange(len(data)) :]
        else:
            at = rng.randrange(len(data))
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        yield bytes(data)


def test_mutated_files_agree(mlp_cpp, tiny_data, tmp_path):
    """400 damaged model files (seeded): Python and C++ give the same verdict on every one (3,600 such
    files agreed when this test was written; most are refused, the rest load in both)."""
    disagreements, verdicts = [], {True: 0, False: 0}
    for index, data in enumerate(_mutants(400, seed=11)):
        path = tmp_path / f"mutant{index}.npz"
        path.write_bytes(data)
        python_ok, python_why = _python_accepts(path)
        result = run_cli(mlp_cpp, "evaluate", path, "--data", tiny_data, memory_mb=1024, timeout=60)
        cpp_ok = result.returncode == 0
        if not cpp_ok:
            assert_clean_error(result)
        verdicts[python_ok] += 1
        if python_ok != cpp_ok:
            disagreements.append(
                f"{path.name}: Python {python_why or 'loads it'}; C++ {result.stderr.strip() or 'loads it'}"
            )
            path.rename(tmp_path / f"disagree-{index}.npz")
    assert not disagreements, "\n".join(disagreements[:10])
    assert verdicts[True] > 0 and verdicts[False] > 0, verdicts


def test_the_set_covers_every_family():
    """The crafted set keeps at least one case of each family the README's reliability table names."""
    families = (
        "valid_v1",
        "valid_v2",
        "valid_v3_batch_norm",
        "batch_norm",
        "zip64",
        "duplicate",
        "bomb",
        "absurd",
        "npy",
        "metadata",
        "history",
        "version",
        "classes",
        "extra",
        "nan",
    )
    for family in families:
        assert any(family in name for name in CASES), family
