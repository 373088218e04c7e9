"""The Numba engine against the generic array-API path: same seed, same data, same network."""

import numpy as np
import pytest

import mlp
from mlp import engines, optimizers
from mlp.engines import numba_trainer as numba_engine

pytestmark = pytest.mark.skipif(not numba_engine.NUMBA_AVAILABLE, reason="Numba is not installed")


@pytest.fixture(scope="module")
def mnist_subset(mnist_dir):
    (X, y), _ = mlp.datasets.load_mnist(mnist_dir)
    return X[:3000], y[:3000]


CASES = [
    dict(),
    dict(dropout=0.2),
    dict(optimizer="nesterov", weight_decay=1e-3, clip_norm=0.5),
    dict(optimizer="momentum", batch_size=1, epochs=1),
    dict(optimizer="adamw", clip_value=0.01, activation="tanh"),
    dict(optimizer="rmsprop", loss="mse", activation="sigmoid"),
    dict(optimizer="adam", activation="leaky_relu", weight_decay=1e-2, schedule="step"),
    dict(batch_size="full", optimizer="sgd", activation="identity"),
]


@pytest.mark.parametrize(
    "options", CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "defaults"
)
def test_engines_agree_in_float64_after_several_epochs(mnist_subset, options):
    X, y = mnist_subset
    if options.get("batch_size") == 1:
        X, y = X[:300], y[:300]
    kwargs = {"hidden_sizes": [48, 24], "epochs": 3, "seed": 0, "dtype": "float64", **options}
    generic = mlp.fit(X, y, engine="xp", **kwargs)
    fused = mlp.fit(X, y, engine="numba", **kwargs)
    for (W, b), (W2, b2) in zip(generic.params, fused.params):
        np.testing.assert_allclose(W2, W, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(b2, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fused.history["loss"], generic.history["loss"], rtol=1e-10)
    assert fused.history["accuracy"] == generic.history["accuracy"]


def test_engines_agree_in_float32(mnist_subset):
    X, y = mnist_subset
    kwargs = dict(hidden_sizes=[64, 32], epochs=1, seed=1)
    generic = mlp.fit(X, y, engine="xp", **kwargs)
    fused = mlp.fit(X, y, engine="numba", **kwargs)
    for (W, _), (W2, _) in zip(generic.params, fused.params):
        assert np.linalg.norm(W2 - W) / np.linalg.norm(W) < 1e-4
    assert fused.history["loss"][0] == pytest.approx(generic.history["loss"][0], rel=1e-5)


def test_auto_picks_the_kernels_for_numpy_and_the_generic_path_otherwise():
    _choose_engine = engines.choose_engine

    X = np.zeros((4, 3), np.float32)
    assert _choose_engine("auto", X, optimizers.Adam(), "cross_entropy") is numba_engine.NumbaTrainer
    assert _choose_engine("xp", X, optimizers.Adam(), "cross_entropy") is engines.Trainer
    xs = pytest.importorskip("array_api_strict")
    assert _choose_engine("auto", xs.asarray(X), optimizers.Adam(), "cross_entropy") is engines.Trainer


def test_engine_numba_says_what_it_cannot_do():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), rng.integers(0, 2, 20)
    xs = pytest.importorskip("array_api_strict")
    with pytest.raises(ValueError, match="NumPy arrays only"):
        mlp.fit(xs.asarray(X), xs.asarray(y), epochs=1, engine="numba")

    class CustomSGD(optimizers.SGD):
        def step(self, params, grads, state, **kw):
            return super().step(params, grads, state, **kw)

    with pytest.raises(ValueError, match="built-in optimizers"):
        mlp.fit(X, y, epochs=1, engine="numba", optimizer=CustomSGD())
    with pytest.raises(ValueError, match="unknown engine .fast.; choose one of"):
        mlp.fit(X, y, epochs=1, engine="fast")
    model = mlp.fit(X, y, epochs=1, optimizer=CustomSGD())  # auto falls back to the generic path
    assert model.history["loss"]


def test_numba_missing_gives_the_install_hint(monkeypatch):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), rng.integers(0, 2, 20)
    monkeypatch.setattr(numba_engine, "NUMBA_AVAILABLE", False)
    monkeypatch.setattr(numba_engine, "_IMPORT_ERROR", ImportError("No module named 'numba'", name="numba"))
    with pytest.raises(ImportError, match=r"mlp-from-scratch\[numba\]"):
        mlp.fit(X, y, epochs=1, engine="numba")
    assert mlp.fit(X, y, epochs=1).history["loss"]  # auto: generic path


def test_a_broken_kernels_import_reports_the_real_error(monkeypatch):
    """Numba installed but the kernels failing to import (a shadowing folder, a bad build) must not
    be reported as "needs Numba"."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), rng.integers(0, 2, 20)
    real = ImportError(
        "cannot import name 'gather_rows' from 'mlp_kernels._layers'", name="mlp_kernels._layers"
    )
    monkeypatch.setattr(numba_engine, "NUMBA_AVAILABLE", False)
    monkeypatch.setattr(numba_engine, "_IMPORT_ERROR", real)
    with pytest.raises(ImportError, match="could not import its kernels.*gather_rows") as caught:
        mlp.fit(X, y, epochs=1, engine="numba")
    assert caught.value.__cause__ is real
    assert "needs Numba" not in str(caught.value)


def test_engine_checkpoints_resume_across_engines(tmp_path, mnist_subset):
    X, y = mnist_subset
    kwargs = dict(hidden_sizes=[32], epochs=3, seed=0, dtype="float64", dropout=0.1)
    path = tmp_path / "ckpt.npz"
    mlp.fit(X, y, engine="numba", checkpoint=path, callbacks=[lambda e, logs, m: e == 1], **kwargs)
    resumed = mlp.fit(X, y, engine="xp", checkpoint=path, resume=True, **kwargs)
    straight = mlp.fit(X, y, engine="numba", **kwargs)
    np.testing.assert_allclose(resumed.params[0][0], straight.params[0][0], rtol=1e-9, atol=1e-12)


def test_fortran_ordered_input_is_made_contiguous_once_not_every_epoch(monkeypatch):
    rng = np.random.default_rng(0)
    X, y = np.asfortranarray(rng.normal(size=(64, 5))), rng.integers(0, 3, 64)
    copies = []
    real = np.ascontiguousarray

    def counting(array, *args, **kwargs):
        out = real(array, *args, **kwargs)
        if out is not array and getattr(array, "ndim", 0) == 2:
            copies.append(array.shape)
        return out

    monkeypatch.setattr(numba_engine.np, "ascontiguousarray", counting)
    fortran = mlp.fit(X, y, hidden_sizes=[4], epochs=5, batch_size=16, seed=0, engine="numba")
    assert len(copies) == 1
    monkeypatch.setattr(numba_engine.np, "ascontiguousarray", real)
    contiguous = mlp.fit(
        np.ascontiguousarray(X), y, hidden_sizes=[4], epochs=5, batch_size=16, seed=0, engine="numba"
    )
    np.testing.assert_array_equal(fortran.params[0][0], contiguous.params[0][0])
