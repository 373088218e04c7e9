"""The same training code on every namespace x device x dtype: outputs stay where the input was, and
results agree with NumPy for the same seed."""

import dataclasses
import warnings

import numpy as np
import pytest

import mlp
from mlp import engines, layers, optimizers, schedules
from mlp._array_api import array_device, dtype_name, index_dtype, to_numpy
from mlp._validation import check_labels
from tests.helpers import assert_lives_on, blobs, jax_backend, put, tolerance

OPTIONS = dict(hidden_sizes=[8, 5], epochs=3, batch_size=32, seed=0)


def train_both(xp, device, float_name, **options):
    X, y = blobs()
    kwargs = {**OPTIONS, **options, "dtype": float_name}
    model = mlp.fit(put(X, xp, device), put(y, xp, device), **kwargs)
    reference = mlp.fit(X, y, **kwargs)
    return model, reference, X, y


def test_training_stays_on_the_input_device_and_agrees_with_numpy(backend, float_name):
    """Also on JAX in its default setup (no 64-bit types): no int64 request truncated with a warning."""
    xp, device = backend
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model, reference, X, y = train_both(xp, device, float_name)
        X_dev = put(X, xp, device)
        proba, labels = model.predict_proba(X_dev), model.predict(X_dev)
        score = model.score(X_dev, put(y, xp, device))
    rtol = tolerance(float_name)
    for (W, b), (W_ref, b_ref) in zip(model.params, reference.params, strict=True):
        for p, p_ref in ((W, W_ref), (b, b_ref)):
            assert_lives_on(p, xp, device)
            assert str(p.dtype).endswith(float_name)
            np.testing.assert_allclose(to_numpy(p), p_ref, rtol=rtol, atol=rtol)
    assert_lives_on(proba, xp, device)
    assert proba.shape == (X.shape[0], 3)
    np.testing.assert_allclose(to_numpy(xp.sum(proba, axis=1)), 1.0, rtol=rtol)
    assert_lives_on(labels, xp, device)
    np.testing.assert_array_equal(to_numpy(labels), reference.predict(X))
    assert isinstance(score, float) and score == pytest.approx(reference.score(X, y))
    assert model.history["loss"] == pytest.approx(reference.history["loss"], rel=rtol)


def test_index_arrays_take_the_namespace_default_integer(backend, float_name):
    """Labels as class indices and predicted 0/1 rows: int64, but int32 on JAX without 64-bit types
    (asking it for int64 would truncate with a warning)."""
    xp, device = backend
    expected = "int32" if xp.__name__ == "jax.numpy" and xp.asarray(0).dtype == xp.int32 else "int64"
    assert dtype_name(index_dtype(xp, device)) == expected
    X, y = blobs(k=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        indices, _ = check_labels(put(y == 1, xp, device), X.shape[0], xp=xp, device=device)
        onehot = put(np.eye(2)[y].astype(np.int32), xp, device)
        model = mlp.fit(put(X, xp, device), onehot, loss="binary_cross_entropy", hidden_sizes=[4], epochs=1)
        predicted = model.predict(put(X, xp, device))
    assert dtype_name(indices.dtype) == expected and dtype_name(predicted.dtype) == expected


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw"])
def test_every_optimizer_runs_on_every_backend(backend, optimizer):
    xp, device = backend
    model, reference, _, _ = train_both(
        xp,
        device,
        "float64",
        optimizer=optimizer,
        weight_decay=1e-3,
        clip_value=5.0,
        clip_norm=10.0,
        schedule="cosine",
    )
    for (W, _), (W_ref, _) in zip(model.params, reference.params, strict=True):
        assert_lives_on(W, xp, device)
        np.testing.assert_allclose(to_numpy(W), W_ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "sigmoid", "tanh", "identity"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_every_activation_and_loss_runs_on_every_backend(backend, activation, loss):
    xp, device = backend
    model, reference, X, y = train_both(xp, device, "float64", activation=activation, loss=loss, dropout=0.2)
    np.testing.assert_allclose(model.history["loss"], reference.history["loss"], rtol=1e-9)
    value, grads = model.loss_and_gradients(put(X, xp, device), put(y, xp, device))
    assert np.isfinite(value)
    for (dW, db), (W, b) in zip(grads, model.params, strict=True):
        assert_lives_on(dW, xp, device)
        assert dW.shape == W.shape and db.shape == b.shape


def test_validation_early_stopping_and_full_batch_on_every_backend(backend):
    xp, device = backend
    X, y = blobs(n=150)
    model = mlp.fit(
        put(X, xp, device),
        put(y, xp, device),
        hidden_sizes=[6],
        epochs=6,
        batch_size="full",
        validation_split=0.2,
        early_stopping=True,
        patience=2,
        seed=3,
        schedule="plateau",
    )
    assert len(model.history["val_loss"]) >= 1
    assert all(np.isfinite(model.history["val_loss"]))
    assert_lives_on(model.params[0][0], xp, device)


def test_label_values_are_kept_in_the_namespace(backend):
    xp, device = backend
    X, y = blobs(k=2)
    y = np.where(y == 0, 3, 7)
    model = mlp.fit(put(X, xp, device), put(y, xp, device), hidden_sizes=[4], epochs=2, seed=0)
    assert_lives_on(model.classes_, xp, device)
    assert to_numpy(model.classes_).tolist() == [3, 7]
    predicted = to_numpy(model.predict(put(X, xp, device)))
    assert set(predicted.tolist()) <= {3, 7}


def test_integer_input_is_converted_explicitly(backend):
    xp, device = backend
    X, y = blobs()
    X_int = np.round(X * 10).astype(np.int64)
    model = mlp.fit(put(X_int, xp, device), put(y, xp, device), hidden_sizes=[4], epochs=1, seed=0)
    assert str(model.params[0][0].dtype).endswith("float32")


def test_model_rejects_data_from_another_device():
    xs = pytest.importorskip("array_api_strict")
    X, y = blobs()
    model = mlp.fit(
        put(X, xs, xs.Device("device1")), put(y, xs, xs.Device("device1")), hidden_sizes=[4], epochs=1
    )
    with pytest.raises(ValueError, match="device"):
        model.predict(put(X, xs, xs.Device("CPU_DEVICE")))
    with pytest.raises(TypeError, match="namespace"):
        model.predict(X)
    assert array_device(model.predict(put(X, xs, xs.Device("device1")))) == xs.Device("device1")


# ---- immutable arrays: the generic path writes into no array -----------------------------------------
def test_save_and_load_agree_with_numpy_on_every_backend(backend, float_name, tmp_path):
    xp, device = backend
    model, reference, X, y = train_both(xp, device, float_name)
    loaded = mlp.load(model.save(tmp_path / "model.npz"), xp=xp, device=device)
    X_dev = put(X, xp, device)
    assert_lives_on(loaded.params[0][0], xp, device)
    labels = loaded.predict(X_dev)
    assert_lives_on(labels, xp, device)
    np.testing.assert_array_equal(to_numpy(labels), reference.predict(X))
    rtol = tolerance(float_name)
    np.testing.assert_allclose(
        to_numpy(loaded.predict_proba(X_dev)), reference.predict_proba(X), rtol=rtol, atol=rtol
    )
    assert loaded.score(X_dev, put(y, xp, device)) == pytest.approx(reference.score(X, y))


def test_every_step_option_agrees_with_numpy_on_every_backend(backend, tmp_path):
    """Max-norm, dropout, clipping, gradient logs, label smoothing, early stopping with the best
    weights restored, and a checkpoint resumed: the paths that used to write into arrays."""
    xp, device = backend
    X, y = blobs(n=150)
    options = dict(
        hidden_sizes=[8, 5],
        epochs=5,
        batch_size=32,
        seed=0,
        dtype="float64",
        optimizer="momentum",
        max_norm=1.0,
        dropout=0.2,
        clip_norm=2.0,
        log_gradients=True,
        label_smoothing=0.1,
        validation_split=0.2,
        early_stopping=True,
        patience=2,
    )
    reference = mlp.fit(X, y, **options)
    checkpoint = tmp_path / "run.npz"
    X_dev, y_dev = put(X, xp, device), put(y, xp, device)
    mlp.fit(X_dev, y_dev, **options, checkpoint=checkpoint, callbacks=[lambda epoch, logs, m: epoch == 2])
    model = mlp.fit(X_dev, y_dev, **options, checkpoint=checkpoint, resume=True)
    for (W, b), (W_ref, b_ref) in zip(model.params, reference.params, strict=True):
        assert_lives_on(W, xp, device)
        np.testing.assert_allclose(to_numpy(W), W_ref, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(to_numpy(b), b_ref, rtol=1e-9, atol=1e-12)
    assert model.history["val_loss"] == pytest.approx(reference.history["val_loss"], rel=1e-9)
    for W, _ in model.params[:-1]:
        assert float(xp.max(xp.sqrt(xp.sum(W * W, axis=0)))) <= 1.0 + 1e-12


@dataclasses.dataclass
class HalvedSGD(optimizers.Optimizer):
    """A user's optimizer in the functional form: p = p - (lr/2) g, with a step counter as state."""

    name = "halved_sgd"

    def init_state(self, params, *, xp):
        return [xp.zeros_like(params[0])]

    def update(self, params, grads, state, *, lr, t, xp, is_weight=None):
        return [p - (lr / 2) * g for p, g in zip(params, grads, strict=True)], [state[0] + 1.0]


def test_a_custom_optimizer_with_update_trains_on_every_backend(backend):
    xp, device = backend
    X, y = blobs()
    model = mlp.fit(
        put(X, xp, device),
        put(y, xp, device),
        optimizer=HalvedSGD(),
        learning_rate=0.01,
        **OPTIONS,
        dtype="float64",
    )
    reference = mlp.fit(X, y, optimizer="sgd", learning_rate=0.005, **OPTIONS, dtype="float64")
    for (W, _), (W_ref, _) in zip(model.params, reference.params, strict=True):
        assert_lives_on(W, xp, device)
        np.testing.assert_allclose(to_numpy(W), W_ref, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="built-in optimizers"):  # its own math: no Numba kernel
        mlp.fit(X, y, optimizer=HalvedSGD(), engine="numba", **OPTIONS)


class InPlaceSGD(optimizers.Optimizer):
    """A user's optimizer in the in-place form (the interface before `update`)."""

    def step(self, params, grads, state, *, lr, t, xp, is_weight=None):
        for p, g in zip(params, grads, strict=True):
            p -= lr * g


def test_an_in_place_optimizer_trains_on_writeable_arrays_and_is_refused_on_immutable_ones():
    X, y = blobs()
    model = mlp.fit(X, y, optimizer=InPlaceSGD(), learning_rate=0.01, **OPTIONS)
    reference = mlp.fit(X, y, optimizer="sgd", learning_rate=0.01, engine="xp", **OPTIONS)
    np.testing.assert_array_equal(model.params[0][0], reference.params[0][0])
    pytest.importorskip("jax", reason='JAX is not installed (pip install "jax[cpu]")')
    jnp, device = jax_backend()
    with pytest.raises(TypeError, match=r"InPlaceSGD.step updates the parameters in place.*implement update"):
        mlp.fit(put(X, jnp, device), put(y, jnp, device), optimizer=InPlaceSGD(), **OPTIONS)
    params = [put(np.ones(3), jnp, device)]
    with pytest.raises(TypeError, match="implement update"):  # the built-ins' in-place form alike
        optimizers.SGD().step(params, params, [], lr=0.1, t=1, xp=jnp)


def read_only(array):
    array = np.array(array, copy=True)
    array.flags.writeable = False
    return array


def test_the_generic_engine_writes_into_no_array():
    """Read-only NumPy arrays stand in for immutable ones where JAX is not installed: training,
    max-norm, a restored snapshot, set_weights and prediction never write into an array."""
    X, y = blobs()
    model = mlp.fit(X, y, hidden_sizes=[6, 4], epochs=0, seed=0, dtype="float64")
    model.params = [(read_only(W), read_only(b)) for W, b in model.params]
    before = [np.array(W) for W, _ in model.params]
    trainer = engines.Trainer(
        model,
        optimizer=optimizers.Adam(),
        learning_rate=1e-2,
        schedule=schedules.Schedule(),
        epochs=2,
        batch_size=32,
        dropout=0.2,
        clip_value=1.0,
        clip_norm=1.0,
        max_norm=1.5,
        rng=np.random.default_rng(0),
    )
    trainer.state = [read_only(s) for s in trainer.state]
    X_fixed = read_only(X)
    trainer.run_epoch(X_fixed, read_only(y))
    snapshot, params = trainer.snapshot(), model.copy_params()
    trainer.run_epoch(X_fixed, read_only(y))
    model.params = [(read_only(W), read_only(b)) for W, b in model.params]
    trainer.state = [read_only(s) for s in trainer.state]
    trainer.restore(snapshot)
    model.set_weights(params)
    for (W, _), W_saved in zip(model.params, params, strict=True):
        np.testing.assert_array_equal(W, W_saved[0])
    assert not any(np.array_equal(W, W0) for (W, _), W0 in zip(model.params, before, strict=True))
    assert model.predict(X_fixed).shape == (X.shape[0],)
    constrained = layers.max_norm(model.params, 0.5, xp=model._xp)
    assert float(np.max(np.linalg.norm(constrained[0][0], axis=0))) <= 0.5 + 1e-12
