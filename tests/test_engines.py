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
    dict(batch_norm="after", dropout=0.2),
    dict(batch_norm="before", optimizer="momentum", activation="tanh"),
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
    for (W, b), (W2, b2) in zip(generic.params, fused.params, strict=True):
        np.testing.assert_allclose(W2, W, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(b2, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fused.history["loss"], generic.history["loss"], rtol=1e-10)
    assert fused.history["accuracy"] == generic.history["accuracy"]


# The work the base trainer owns; an engine that defines one of these has copied the skeleton.
SKELETON = (
    "run_epoch",
    "step",
    "_spans",
    "_begin_epoch",
    "draw_dropout_uniforms",
    "augment_key",
    "mask_rng",
    "snapshot",
    "restore",
    "end_epoch",
)
# Every option combination the golden cases use, plus what the golden step does not cover.
SKELETON_CASES = [
    dict(optimizer="adam"),
    dict(optimizer="sgd", activation="leaky_relu"),
    dict(optimizer="momentum", activation="sigmoid", loss="mse"),
    dict(optimizer="nesterov", activation="tanh", weight_decay=0.1),
    dict(optimizer="rmsprop", activation="identity", loss="mse", clip_norm=0.1),
    dict(optimizer="adamw", weight_decay=0.05, loss="mse"),
    dict(optimizer="adam", activation="sigmoid", clip_value=0.05),
    dict(optimizer="momentum", weight_decay=0.01, clip_value=0.5, clip_norm=0.2),
    dict(optimizer="adam", dropout=0.3, batch_size=1),
    dict(optimizer="momentum", activation="tanh", loss="mse", dropout=0.25, weight_decay=0.01, clip_norm=0.5),
    dict(optimizer="adam", max_norm=0.5, label_smoothing=0.1, log_gradients=True),
    dict(optimizer="adam", augment="default", dropout=0.2),
    dict(optimizer="adam", batch_norm="before", dropout=0.2, max_norm=0.5),
    dict(optimizer="momentum", batch_norm="after", log_gradients=True, clip_norm=0.5, batch_size=23),
]


def test_no_engine_reimplements_the_skeleton():
    for engine in (engines.Trainer, numba_engine.NumbaTrainer):
        copied = [name for name in SKELETON if name in vars(engine)]
        assert copied == [], f"{engine.__name__} defines {copied}: that work belongs to BaseTrainer"


@pytest.mark.parametrize("options", SKELETON_CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_both_engines_draw_the_same_numbers_and_log_the_same_epoch(options):
    """One epoch from one seed on each engine: the same logs (keys and values) and the generator left
    in the same state, so both drew the same permutation, augmentation key and dropout uniforms."""
    rng = np.random.default_rng(7)
    X, y = rng.random((70, 16)), rng.integers(0, 4, 70)
    kwargs = {"hidden_sizes": [9, 5], "epochs": 1, "batch_size": 16, "seed": 3, "dtype": "float64", **options}
    if "augment" in kwargs:
        X = rng.random((70, 784))
    results = []
    for engine in ("xp", "numba"):
        model = mlp.fit(X, y, engine=engine, **kwargs)
        results.append((model.history, [np.asarray(W) for W, _ in model.params]))
    (generic, generic_W), (fused, fused_W) = results
    assert sorted(generic) == sorted(fused)
    for key in set(generic) - {"seconds"}:  # every log but the wall time
        np.testing.assert_allclose(
            np.asarray(fused[key], dtype=float),
            np.asarray(generic[key], dtype=float),
            rtol=1e-10,
            atol=1e-12,
            err_msg=key,
        )
    for W, W2 in zip(generic_W, fused_W, strict=True):
        np.testing.assert_allclose(W2, W, rtol=1e-10, atol=1e-12)


def test_both_engines_leave_the_generator_in_the_same_state():
    rng = np.random.default_rng(8)
    X, y = rng.random((50, 784)), rng.integers(0, 3, 50)
    states = []
    for cls in (engines.Trainer, numba_engine.NumbaTrainer):
        net = mlp.fit(
            X, y, hidden_sizes=[6], epochs=1, seed=0, dtype="float64", engine="xp"
        )  # a model to train on
        trainer = cls(
            net,
            optimizer=optimizers.Adam(),
            learning_rate=1e-3,
            schedule=mlp.schedules.make_schedule(None),
            epochs=2,
            batch_size=8,
            dropout=0.3,
            rng=np.random.default_rng(11),
            augment=mlp.augment.check_augment("default"),
        )
        for _ in range(2):
            trainer.run_epoch(X, y)
        states.append(trainer.rng.bit_generator.state)
    assert states[0] == states[1]


def test_engines_agree_in_float32(mnist_subset):
    X, y = mnist_subset
    kwargs = dict(hidden_sizes=[64, 32], epochs=1, seed=1)
    generic = mlp.fit(X, y, engine="xp", **kwargs)
    fused = mlp.fit(X, y, engine="numba", **kwargs)
    for (W, _), (W2, _) in zip(generic.params, fused.params, strict=True):
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
    with pytest.raises(ValueError, match=r"unknown engine .fast.; choose one of"):
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
    with pytest.raises(ImportError, match=r"could not import its kernels.*gather_rows") as caught:
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
