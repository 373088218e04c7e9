"""The same training code on every namespace x device x dtype: outputs stay where the input was, and
results agree with NumPy for the same seed."""

import numpy as np
import pytest

import mlp
from mlp._array_api import array_device, to_numpy
from tests.helpers import assert_lives_on, blobs, put, tolerance

OPTIONS = dict(hidden_sizes=[8, 5], epochs=3, batch_size=32, seed=0)


def train_both(xp, device, float_name, **options):
    X, y = blobs()
    kwargs = {**OPTIONS, **options, "dtype": float_name}
    model = mlp.fit(put(X, xp, device), put(y, xp, device), **kwargs)
    reference = mlp.fit(X, y, **kwargs)
    return model, reference, X, y


def test_training_stays_on_the_input_device_and_agrees_with_numpy(backend, float_name):
    xp, device = backend
    model, reference, X, y = train_both(xp, device, float_name)
    rtol = tolerance(float_name)
    for (W, b), (W_ref, b_ref) in zip(model.params, reference.params, strict=True):
        for p, p_ref in ((W, W_ref), (b, b_ref)):
            assert_lives_on(p, xp, device)
            assert str(p.dtype).endswith(float_name)
            np.testing.assert_allclose(to_numpy(p), p_ref, rtol=rtol, atol=rtol)
    X_dev = put(X, xp, device)
    proba = model.predict_proba(X_dev)
    assert_lives_on(proba, xp, device)
    assert proba.shape == (X.shape[0], 3)
    np.testing.assert_allclose(to_numpy(xp.sum(proba, axis=1)), 1.0, rtol=rtol)
    labels = model.predict(X_dev)
    assert_lives_on(labels, xp, device)
    np.testing.assert_array_equal(to_numpy(labels), reference.predict(X))
    score = model.score(X_dev, put(y, xp, device))
    assert isinstance(score, float) and score == pytest.approx(reference.score(X, y))
    assert model.history["loss"] == pytest.approx(reference.history["loss"], rel=rtol)


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
