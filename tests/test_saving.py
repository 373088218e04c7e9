"""Model files, checkpoints and resume, gradient logging."""

import json
import zipfile

import numpy as np
import pytest

import mlp
from mlp._array_api import to_numpy
from mlp.model_file import ModelFileError
from tests.helpers import blobs


@pytest.fixture(scope="module")
def trained():
    X, y = blobs()
    y = np.where(y == 1, 7, y)  # labels {0, 2, 7}
    return mlp.fit(X, y, hidden_sizes=[5, 4], activation="tanh", epochs=3, seed=0), X, y


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_and_load_round_trip(tmp_path, dtype):
    X, y = blobs()
    model = mlp.fit(X, y, hidden_sizes=[5], epochs=2, dtype=dtype, seed=0, weight_decay=0.01)
    path = model.save(tmp_path / "model.npz")
    loaded = mlp.load(path)
    assert repr(loaded) == repr(model)
    for (W, b), (W2, b2) in zip(model.params, loaded.params, strict=True):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)
        assert W2.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.l2 == model.l2 and loaded.history["loss"] == model.history["loss"]
    with np.load(path, allow_pickle=False) as archive:  # plain arrays, no pickle needed
        assert sorted(archive.files) == ["W0", "W1", "b0", "b1", "metadata"]
        metadata = json.loads(archive["metadata"].tobytes())
    assert metadata["format"] == "mlp-model" and metadata["format_version"] == 3
    assert metadata["hidden_sizes"] == [5] and metadata["n_features"] == 6


def test_label_values_survive_a_round_trip(tmp_path, trained):
    model, X, _ = trained
    loaded = mlp.load(model.save(tmp_path / "m.npz"))
    assert loaded.classes_.tolist() == [0, 2, 7]
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_load_onto_another_namespace_and_device(tmp_path, trained):
    xs = pytest.importorskip("array_api_strict")
    model, X, _ = trained
    device = xs.Device("device1")
    loaded = mlp.load(model.save(tmp_path / "m.npz"), xp=xs, device=device)
    X_dev = xs.asarray(X, device=device)
    proba = loaded.predict_proba(X_dev)
    assert proba.device == device
    np.testing.assert_allclose(to_numpy(proba), model.predict_proba(X), rtol=1e-6)


def test_saving_is_atomic_and_keeps_the_old_file_on_failure(tmp_path, trained, monkeypatch):
    model, _, _ = trained
    path = tmp_path / "model.npz"
    model.save(path)
    before = path.read_bytes()

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary file left behind


def test_loading_refuses_bad_files(tmp_path, trained):
    model, _, _ = trained
    good = model.save(tmp_path / "good.npz")
    data = good.read_bytes()

    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated"):
        mlp.load(truncated)

    with np.load(good, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}

    objects = tmp_path / "objects.npz"  # a pickled object array is never unpickled
    np.savez(objects, **dict(arrays, W0=np.array([object()], dtype=object)))
    with pytest.raises(ModelFileError, match=r"W0 has dtype object \('\|O'\), expected float32"):
        mlp.load(objects)
    wrong_shape = dict(arrays, W1=np.zeros((3, 3), np.float32))
    np.savez(tmp_path / "shape.npz", **wrong_shape)
    with pytest.raises(ModelFileError, match="W1 has shape"):
        mlp.load(tmp_path / "shape.npz")

    wrong_dtype = dict(arrays, b0=arrays["b0"].astype(np.int32))
    np.savez(tmp_path / "dtype.npz", **wrong_dtype)
    with pytest.raises(ModelFileError, match="b0 has dtype int32"):
        mlp.load(tmp_path / "dtype.npz")

    missing = {k: v for k, v in arrays.items() if k != "b1"}
    np.savez(tmp_path / "missing.npz", **missing)
    with pytest.raises(ModelFileError, match="lacks the array 'b1'"):
        mlp.load(tmp_path / "missing.npz")

    metadata = json.loads(arrays["metadata"].tobytes())
    newer = dict(
        arrays, metadata=np.frombuffer(json.dumps({**metadata, "format_version": 99}).encode(), np.uint8)
    )
    np.savez(tmp_path / "newer.npz", **newer)
    with pytest.raises(ModelFileError, match="upgrade mlp"):
        mlp.load(tmp_path / "newer.npz")

    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ModelFileError):
        mlp.load(tmp_path / "text.npz")
    with pytest.raises(FileNotFoundError):
        mlp.load(tmp_path / "absent.npz")
    with zipfile.ZipFile(tmp_path / "empty.npz", "w"):
        pass
    with pytest.raises(ModelFileError, match="metadata"):
        mlp.load(tmp_path / "empty.npz")


def test_gpu_device_without_cupy_says_how_to_install(tmp_path, trained, monkeypatch):
    import sys

    model, _, _ = trained
    path = model.save(tmp_path / "m.npz")
    monkeypatch.setitem(sys.modules, "cupy", None)
    with pytest.raises(ImportError, match=r'pip install "mlp-from-scratch\[gpu\]"'):
        mlp.load(path, device="gpu")
    with pytest.raises(ValueError, match="device must be"):
        mlp.load(path, device="tpu")


# ---- checkpoints ------------------------------------------------------------------------------------
RESUME_OPTIONS = dict(
    hidden_sizes=[8, 6],
    epochs=5,
    batch_size=16,
    dropout=0.2,
    optimizer="adam",
    schedule="cosine",
    validation_split=0.2,
    seed=3,
    log_gradients=True,
)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"schedule": "plateau", "early_stopping": True, "patience": 10},
        {"optimizer": "nesterov", "clip_norm": 0.5},
    ],
)
def test_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(tmp_path, options):
    X, y = blobs(n=200)
    kwargs = {**RESUME_OPTIONS, **options}
    uninterrupted = mlp.fit(X, y, **kwargs)
    path = tmp_path / "ckpt.npz"

    def interrupt_after_two(epoch, logs, model):
        return epoch == 2

    first = mlp.fit(X, y, checkpoint=path, callbacks=[interrupt_after_two], **kwargs)
    assert len(first.history["loss"]) == 2 and path.exists()
    resumed = mlp.fit(X, y, checkpoint=path, resume=True, **kwargs)
    for (W, b), (W2, b2) in zip(uninterrupted.params, resumed.params, strict=True):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)
    assert resumed.history["loss"] == uninterrupted.history["loss"]
    assert resumed.history["epoch"] == [1, 2, 3, 4, 5]


def test_resume_refuses_a_checkpoint_made_with_other_options(tmp_path):
    X, y = blobs()
    path = tmp_path / "ckpt.npz"
    mlp.fit(X, y, hidden_sizes=[4], epochs=1, checkpoint=path, seed=0)
    with pytest.raises(ValueError, match="hidden_sizes: checkpoint \\[4\\], now \\[5\\]"):
        mlp.fit(X, y, hidden_sizes=[5], epochs=1, checkpoint=path, resume=True, seed=0)


def test_resume_says_the_epochs_cannot_be_raised(tmp_path):
    X, y = blobs()
    path = tmp_path / "ckpt.npz"
    mlp.fit(X, y, hidden_sizes=[4], epochs=1, checkpoint=path, seed=0)
    with pytest.raises(ValueError) as info:
        mlp.fit(X, y, hidden_sizes=[4], epochs=3, checkpoint=path, resume=True, seed=0)
    assert str(info.value).endswith(
        "(epochs: checkpoint 1, now 3); the number of epochs cannot be changed on resume, not even raised "
        "to train longer: resume with epochs=1, or train for epochs=3 from the start with another "
        "checkpoint path"
    )


def test_resume_without_a_checkpoint_starts_fresh(tmp_path):
    X, y = blobs()
    path = tmp_path / "new.npz"
    model = mlp.fit(X, y, hidden_sizes=[4], epochs=2, checkpoint=path, resume=True, seed=0)
    fresh = mlp.fit(X, y, hidden_sizes=[4], epochs=2, seed=0)
    np.testing.assert_array_equal(model.params[0][0], fresh.params[0][0])
    assert path.exists()


def test_log_gradients_records_per_layer_norms():
    X, y = blobs()
    model = mlp.fit(X, y, hidden_sizes=[8, 6], epochs=3, log_gradients=True, seed=0)
    for key in ("grad_norm", "update_norm", "weight_norm"):
        assert len(model.history[key]) == 3
        assert all(len(per_layer) == 3 for per_layer in model.history[key])
        assert all(value > 0 for per_layer in model.history[key] for value in per_layer)
    last = model.history["weight_norm"][-1]
    assert last[0] == pytest.approx(float(np.linalg.norm(model.params[0][0])), rel=1e-5)
    plain = mlp.fit(X, y, hidden_sizes=[8, 6], epochs=3, seed=0)
    assert "grad_norm" not in plain.history
    np.testing.assert_array_equal(plain.params[0][0], model.params[0][0])  # logging changes nothing


# ---- format version 2: strict JSON, preprocessing only when known; version 1 still loads --------------
def _metadata_text(path):
    with zipfile.ZipFile(path) as archive:
        return np.load(archive.open("metadata.npy"), allow_pickle=False).tobytes().decode("utf-8")


def _strict_json(text):
    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_metadata_is_strict_json_with_null_for_missing_values(tmp_path):
    X, y = blobs()
    model = mlp.fit(X, y, hidden_sizes=[4], epochs=2, seed=0)  # no validation: val_loss is NaN in memory
    assert all(np.isnan(model.history["val_loss"]))
    metadata = _strict_json(_metadata_text(model.save(tmp_path / "m.npz")))
    assert metadata["history"]["val_loss"] == [None, None]
    loaded = mlp.load(tmp_path / "m.npz")
    assert len(loaded.history["val_loss"]) == 2 and all(np.isnan(loaded.history["val_loss"]))
    assert loaded.history["loss"] == model.history["loss"]


def test_preprocessing_is_recorded_only_when_known(tmp_path, trained):
    model, _X, _ = trained
    assert _strict_json(_metadata_text(model.save(tmp_path / "plain.npz")))["preprocessing"] is None
    assert "preprocessing" not in mlp.load(tmp_path / "plain.npz").config
    mnist = {"input": "pixels / 255", "range": [0.0, 1.0], "image_shape": [28, 28]}
    model.config["preprocessing"] = mnist
    try:
        path = model.save(tmp_path / "mnist.npz")
    finally:
        del model.config["preprocessing"]
    assert _strict_json(_metadata_text(path))["preprocessing"] == mnist
    assert mlp.load(path).config["preprocessing"] == mnist


def _rewrite_metadata(path, out, change):
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    metadata = change(json.loads(arrays["metadata"].tobytes()))
    text = metadata if isinstance(metadata, str) else json.dumps(metadata)
    arrays["metadata"] = np.frombuffer(text.encode("utf-8"), np.uint8)
    np.savez(out, **arrays)
    return out


def test_format_version_1_files_still_load(tmp_path, trained):
    """Version 1 wrote NaN tokens and always claimed MNIST preprocessing."""
    model, X, _ = trained
    mnist = {"input": "pixels / 255", "range": [0.0, 1.0], "image_shape": [28, 28]}

    def as_version_1(metadata):
        metadata.update(format_version=1, preprocessing=mnist)
        metadata["history"]["val_loss"] = [float("nan")] * len(metadata["history"]["loss"])
        return json.dumps(metadata, allow_nan=True)

    path = _rewrite_metadata(model.save(tmp_path / "v2.npz"), tmp_path / "v1.npz", as_version_1)
    assert "NaN" in _metadata_text(path)
    loaded = mlp.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert all(np.isnan(loaded.history["val_loss"])) and loaded.config["preprocessing"] == mnist
    resaved = _strict_json(_metadata_text(loaded.save(tmp_path / "again.npz")))
    assert resaved["format_version"] == 3 and resaved["preprocessing"] == mnist


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_format_version_2_refuses_nan_and_infinity_tokens(tmp_path, trained, token):
    """Version 2 is strict JSON: a NaN or Infinity token (which only version 1 wrote) is refused,
    the message naming it; the same metadata as version 1 loads."""
    model, _, _ = trained

    def with_token(version):
        def change(metadata):
            metadata["format_version"] = version
            metadata["history"]["val_loss"] = [float(token.lower().replace("infinity", "inf"))]
            return json.dumps(metadata, allow_nan=True)

        return change

    saved = model.save(tmp_path / "m.npz")
    path = _rewrite_metadata(saved, tmp_path / "v2.npz", with_token(2))
    assert token in _metadata_text(path)
    with pytest.raises(
        ModelFileError, match=rf"holds the token {token}, which format version 2 \(strict JSON\)"
    ):
        mlp.load(path)
    mlp.load(_rewrite_metadata(saved, tmp_path / "v1.npz", with_token(1)))


def test_an_unknown_format_version_says_what_to_do(tmp_path, trained):
    model, _, _ = trained
    path = _rewrite_metadata(
        model.save(tmp_path / "m.npz"),
        tmp_path / "v4.npz",
        lambda metadata: {**metadata, "format_version": 4},
    )
    with pytest.raises(
        ModelFileError,
        match=r"mlp-model format version 4; this mlp reads format versions 1 to 3: "
        r"upgrade mlp \(pip install -U mlp-from-scratch\)",
    ):
        mlp.load(path)


def test_a_checkpoint_is_not_a_model_and_says_so(tmp_path):
    X, y = blobs()
    path = tmp_path / "ckpt.npz"
    mlp.fit(X, y, hidden_sizes=[4], epochs=1, checkpoint=path, seed=0)
    with pytest.raises(ModelFileError, match=r"not an mlp-model file .*resume it with fit"):
        mlp.load(path)


def test_checkpoint_metadata_is_strict_and_version_1_checkpoints_resume(tmp_path):
    X, y = blobs()
    options = dict(hidden_sizes=[4], epochs=3, seed=0, schedule="plateau", early_stopping=True, patience=5)
    path = tmp_path / "ckpt.npz"
    mlp.fit(X, y, checkpoint=path, callbacks=[lambda epoch, logs, model: epoch == 1], **options)
    metadata = _strict_json(_metadata_text(path))
    assert metadata["format"] == "mlp-checkpoint" and metadata["format_version"] == 3
    assert metadata["epoch"] == 1 and metadata["history"]["val_loss"] == [None]
    uninterrupted = mlp.fit(X, y, **options)

    def as_version_1(metadata):  # version 1 wrote NaN and Infinity tokens
        metadata["format_version"] = 1
        metadata["history"]["val_loss"] = [float("nan")]
        return json.dumps(metadata, allow_nan=True)

    old = _rewrite_metadata(path, tmp_path / "v1.npz", as_version_1)
    resumed = mlp.fit(X, y, checkpoint=old, resume=True, **options)
    for (W, b), (W2, b2) in zip(uninterrupted.params, resumed.params, strict=True):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)


def test_non_finite_schedule_state_survives_a_checkpoint(tmp_path, trained):
    from mlp.engines.checkpoints import load_checkpoint, save_checkpoint

    model, _, _ = trained
    snapshot = {
        "state": [],
        "step_count": 0,
        "epoch": 0,
        "rng_state": np.random.default_rng(0).bit_generator.state,
        "schedule_state": {"base_lr": 0.1, "best": float("inf"), "current": 0.1, "waited": 0},
    }
    path = save_checkpoint(
        tmp_path / "c.npz", model, snapshot, history={}, fit_options={}, best=(float("inf"), None, -1)
    )
    _strict_json(_metadata_text(path))
    _, state, best_params, metadata = load_checkpoint(path)
    assert state == [] and best_params is None
    assert metadata["schedule_state"]["best"] == float("inf") and metadata["best"]["monitored"] == float(
        "inf"
    )
    assert metadata["best"]["epoch"] == -1


# ---- safe writes: stale temporary files, output paths checked before training -----------------------
def test_a_save_killed_mid_way_leaves_a_temporary_file_that_the_next_save_removes(tmp_path, trained):
    import os
    import signal
    import subprocess
    import sys

    from tests.helpers import REPO_ROOT

    model, _, _ = trained
    script = (
        "import sys, time\n"
        "from mlp._files import atomic_write\n"
        "with atomic_write(sys.argv[1]) as handle:\n"
        "    handle.write(b'half a model')\n"
        "    handle.flush()\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
    )
    target = tmp_path / "model.npz"
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(target)], stdout=subprocess.PIPE, cwd=REPO_ROOT
    )
    try:
        assert child.stdout.readline().strip() == b"writing"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(f".model.npz.mlp-{child.pid}-")
    assert not target.exists()
    model.save(target)
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]
    assert mlp.load(target).layer_sizes == model.layer_sizes


def test_only_abandoned_temporary_files_of_ours_are_removed(tmp_path):
    import os
    import time

    from mlp._files import STALE_AFTER_SECONDS, remove_stale_temporaries

    live = tmp_path / f".a.npz.mlp-{os.getpid()}-abcdefgh.tmp"  # this process, fresh: someone is writing it
    old = tmp_path / f".b.npz.mlp-{os.getpid()}-abcdefgh.tmp"  # untouched for too long
    other = tmp_path / ".c.npz.tmp"  # not our pattern
    for path in (live, old, other):
        path.write_bytes(b"x")
    past = time.time() - STALE_AFTER_SECONDS - 60
    os.utime(old, (past, past))
    os.utime(other, (past, past))
    (tmp_path / ".d.npz.mlp-1-abcdefgh.tmp").symlink_to(other)  # links are never followed or removed
    removed = remove_stale_temporaries(tmp_path)
    assert [p.name for p in removed] == [old.name]
    assert live.exists() and other.exists() and (tmp_path / ".d.npz.mlp-1-abcdefgh.tmp").is_symlink()


def test_check_writable_refuses_bad_output_paths_with_one_line(tmp_path):
    from mlp._files import OutputPathError, check_writable

    assert check_writable(tmp_path / "model.npz", "--out") == tmp_path / "model.npz"
    assert [p.name for p in tmp_path.iterdir()] == []  # the probe leaves nothing behind
    cases = [
        (
            tmp_path / "missing" / "m.npz",
            {},
            "--out .*missing/m.npz: the folder .*missing does not exist; create it",
        ),
        (tmp_path, {}, "is a folder; give a file name inside it"),
        (tmp_path / "file.txt" / "m.npz", {}, "file.txt is not a folder"),
        (tmp_path / "file.txt", {"folder": True}, "exists and is not a folder"),
        ("/dev/null", {}, "is not a regular file"),
    ]
    (tmp_path / "file.txt").write_text("x")
    for path, kwargs, fragment in cases:
        with pytest.raises(OutputPathError, match=fragment) as info:
            check_writable(path, "--out", **kwargs)
        assert isinstance(info.value, ValueError) and isinstance(info.value, OSError)
        assert "\n" not in str(info.value)
    assert (
        check_writable(tmp_path / "new" / "pictures", "--plot", folder=True) == tmp_path / "new" / "pictures"
    )
    assert not (tmp_path / "new").exists()


def test_fit_checks_the_checkpoint_path_before_training(tmp_path):
    X, y = blobs()
    calls = []
    with pytest.raises(ValueError, match=r"checkpoint .*does not exist"):
        mlp.fit(
            X,
            y,
            hidden_sizes=[4],
            epochs=1,
            checkpoint=tmp_path / "no" / "c.npz",
            callbacks=[lambda *args: calls.append(args)],
        )
    assert calls == []


def test_fortran_ordered_and_compressed_archives_load(tmp_path, trained):
    model, X, _ = trained
    with np.load(model.save(tmp_path / "m.npz"), allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    np.savez_compressed(tmp_path / "f.npz", **{k: np.asfortranarray(v) for k, v in arrays.items()})
    loaded = mlp.load(tmp_path / "f.npz")
    assert loaded.params[0][0].flags.c_contiguous
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_a_model_too_large_for_the_memory_left_is_refused_before_reading(tmp_path, trained, monkeypatch):
    model, _, _ = trained
    path = model.save(tmp_path / "m.npz")
    monkeypatch.setenv("MLP_MEMORY_LIMIT", "100")
    with pytest.raises(ModelFileError, match=r"loading the model's parameters from .* needs about"):
        mlp.load(path)


def test_resuming_from_a_tampered_checkpoint_fails_at_load_with_one_error_type(tmp_path):
    """epoch -5 used to reach the schedule (a division by zero); a (1,) optimizer state used to be broadcast."""
    X, y = blobs()
    options = dict(hidden_sizes=[4], epochs=3, seed=0)
    path = tmp_path / "ckpt.npz"
    mlp.fit(X, y, checkpoint=path, callbacks=[lambda epoch, logs, model: epoch == 1], **options)
    negative = _rewrite_metadata(path, tmp_path / "negative.npz", lambda metadata: {**metadata, "epoch": -5})
    with pytest.raises(ModelFileError, match="'epoch' must be an integer from 0"):
        mlp.fit(X, y, checkpoint=negative, resume=True, **options)
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    np.savez(tmp_path / "broadcast.npz", **dict(arrays, state0=np.zeros((1,), np.float32)))
    with pytest.raises(ModelFileError, match=r"state0 has shape \(1,\), expected \(6, 4\)"):
        mlp.fit(X, y, checkpoint=tmp_path / "broadcast.npz", resume=True, **options)


def test_saving_into_a_missing_folder_names_the_file_asked_for(tmp_path, trained):
    model, _, _ = trained
    with pytest.raises(FileNotFoundError, match=r"cannot write .*missing/m\.npz: the folder does not exist"):
        model.save(tmp_path / "missing" / "m.npz")


def test_a_big_endian_array_is_named_as_such(tmp_path, trained):
    """Once "W0 has dtype float32 ('>f4'), expected float32": the byte order was the difference."""
    model, _, _ = trained
    with np.load(model.save(tmp_path / "m.npz"), allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    np.savez(tmp_path / "big.npz", **dict(arrays, W1=arrays["W1"].astype(">f4")))
    message = r"W1 is big-endian float32 \('>f4'\); the format stores little-endian \('<f4'\)"
    with pytest.raises(ModelFileError, match=message):
        mlp.load(tmp_path / "big.npz")


def test_big_endian_parameters_are_written_little_endian(tmp_path, trained):
    """The format stores '<f4' / '<f8' whatever the byte order of the arrays handed to the writer."""
    from mlp.model_file import save_model_file

    model, X, _ = trained
    params = [(W.astype(">f4"), b.astype(">f4")) for W, b in model.get_weights()]
    loaded = mlp.load(save_model_file(tmp_path / "m.npz", params, model.metadata()))
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:
        assert {archive[key].dtype.str for key in archive.files if key != "metadata"} == {"<f4"}
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
