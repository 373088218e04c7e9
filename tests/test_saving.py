"""Model files, checkpoints and resume, gradient logging."""
import json
import zipfile

import numpy as np
import pytest

import mlp
from tests.helpers import blobs
from mlp._array_api import to_numpy
from mlp.model_file import ModelFileError




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
    for (W, b), (W2, b2) in zip(model.params, loaded.params):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)
        assert W2.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.l2 == model.l2 and loaded.history["loss"] == model.history["loss"]
    with np.load(path, allow_pickle=False) as archive:  # plain arrays, no pickle needed
        assert sorted(archive.files) == ["W0", "W1", "b0", "b1", "metadata"]
        metadata = json.loads(archive["metadata"].tobytes())
    assert metadata["format"] == "mlp-model" and metadata["format_version"] == 2
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
    newer = dict(arrays, metadata=np.frombuffer(json.dumps({**metadata, "format_version": 99}).encode(), np.uint8))
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
RESUME_OPTIONS = dict(hidden_sizes=[8, 6], epochs=5, batch_size=16, dropout=0.2, optimizer="adam",
                      schedule="cosine", validation_split=0.2, seed=3, log_gradients=True)


@pytest.mark.parametrize("options", [{}, {"schedule": "plateau", "early_stopping": True, "patience": 10},
                                     {"optimizer": "nesterov", "clip_norm": 0.5}])
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
    for (W, b), (W2, b2) in zip(uninterrupted.params, resumed.params):
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
