"""The NumPy prediction path (mlp/_predict.py) gives the generic forward pass's results bit for bit,
with and without the Numba kernels, and every input check keeps its message."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import mlp
from mlp import _predict, layers
from mlp import model as model_module
from tests.helpers import REPO_ROOT, blobs

ACTIVATIONS = ["relu", "leaky_relu", "identity", "tanh", "sigmoid"]


@pytest.fixture(params=["kernels", "numpy"])
def kernels(request, monkeypatch):
    """Both ways of the path: with the Numba kernels (when installed) and with NumPy's in-place steps."""
    if request.param == "numpy":
        monkeypatch.setattr(_predict, "_kernels", None)
    elif _predict._kernels is None:
        pytest.skip("Numba is not installed")
    else:
        _predict._kernels.all_finite(np.zeros((1, 1)))  # loaded, as after a fit with the Numba engine
        assert _predict._ready_kernels() is _predict._kernels
    return request.param


def generic_logits(model, X):
    """The forward pass of mlp.layers on the same chunks as the model's."""
    X = model._check_X(X)
    rows = model_module.row_chunks(X.shape[0], model._chunk_rows())
    options = {"batch_norm": model.batch_norm, "norms": model.norms}
    parts = [
        layers.forward(model.params, X[r, ...], model.activation, xp=model._xp, **options)[0] for r in rows
    ]
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def trained(
    activation="relu", loss="cross_entropy", dtype="float32", n_outputs=None, seed=0, batch_norm=None
):
    X, y = blobs(n=150, d=7, k=4, seed=seed)
    if n_outputs is not None:  # a target matrix: regression, multilabel or counts
        rng = np.random.default_rng(seed)
        y = rng.random((X.shape[0], n_outputs))
        if loss == "binary_cross_entropy":
            y = (y > 0.5).astype(np.int64)
    return mlp.fit(
        X,
        y,
        hidden_sizes=[9, 5],
        activation=activation,
        loss=loss,
        dtype=dtype,
        epochs=3,
        seed=seed,
        batch_norm=batch_norm,
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_the_numpy_path_gives_the_generic_bits(kernels, activation, dtype):
    model = trained(activation, dtype=dtype)
    rng = np.random.default_rng(1)
    for rows in (1, 2, 17, 300):
        X = rng.standard_normal((rows, 7)).astype(dtype)
        X[0, :2] = 0.0  # exact zeros: relu's +0 for -0 must match NumPy's
        expected = generic_logits(model, X)
        assert model.decision_function(X).tobytes() == expected.tobytes()
        probabilities = mlp.losses.output_probabilities(expected, model.loss, xp=model._xp)
        assert model.predict_proba(X).tobytes() == probabilities.tobytes()
        labels = model.classes_[np.argmax(expected, axis=1)]
        assert np.array_equal(model.predict(X), labels)
        assert model.predict(X).dtype == labels.dtype


def test_passes_of_the_memory_budget(kernels, monkeypatch):
    """The NumPy path's passes hold as many rows as PREDICT_BUDGET allows (no cap of 8192 rows), each
    with the generic pass's bits on the same rows."""
    model = trained()
    assert _predict.chunk_rows((784, 128, 64, 10), "float32") > 50_000
    assert _predict.chunk_rows((10, 10**8, 10), "float64") == 1
    monkeypatch.setattr(model_module, "prediction_chunk_rows", lambda sizes, dtype: 7)
    monkeypatch.setattr(_predict, "chunk_rows", lambda sizes, dtype: 7)
    X = np.random.default_rng(2).standard_normal((50, 7)).astype(np.float32)
    assert model.decision_function(X).tobytes() == generic_logits(model, X).tobytes()
    assert np.array_equal(model.predict(X), model.classes_[np.argmax(generic_logits(model, X), axis=1)])


@pytest.mark.parametrize(
    "loss, n_outputs",
    [("squared_error", 1), ("squared_error", 3), ("binary_cross_entropy", 3), ("poisson", 2)],
)
def test_models_of_a_target_matrix(kernels, loss, n_outputs):
    model = trained(loss=loss, n_outputs=n_outputs)
    X = np.random.default_rng(3).standard_normal((40, 7)).astype(np.float32)
    logits = generic_logits(model, X)
    assert model.decision_function(X).tobytes() == logits.tobytes()
    predicted = model.predict(X)
    if loss == "binary_cross_entropy":
        assert np.array_equal(predicted, (logits > 0).astype(np.int64))
    elif loss == "poisson":
        assert predicted.tobytes() == np.exp(logits).tobytes()
    else:
        assert predicted.tobytes() == (logits[:, 0] if n_outputs == 1 else logits).tobytes()


@pytest.mark.parametrize(
    "make",
    [
        lambda X: np.asfortranarray(X),  # not C-contiguous: NumPy's check, the same products
        lambda X: np.repeat(X, 2, axis=1)[:, ::2],  # a strided view
        lambda X: X.astype(np.float64),  # converted to the model's float32 first
        lambda X: np.round(X * 3).astype(np.int64),  # integers: converted
        lambda X: X.tolist(),  # a list
    ],
)
def test_other_inputs_give_what_they_gave(kernels, make):
    model = trained()
    X = np.random.default_rng(4).standard_normal((30, 7)).astype(np.float32)
    given = make(X)
    expected = generic_logits(model, given)
    assert model.decision_function(given).tobytes() == expected.tobytes()
    assert np.array_equal(model.predict(given), model.classes_[np.argmax(expected, axis=1)])


def test_a_memmap_is_predicted_as_before(tmp_path, kernels):
    model = trained()
    X = np.random.default_rng(5).standard_normal((30, 7)).astype(np.float32)
    mapped = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float32, shape=X.shape)
    mapped[:] = X
    assert not _predict.takes(model.params, mapped)
    assert model.decision_function(mapped).tobytes() == generic_logits(model, X).tobytes()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("row", [0, 12, 29])
def test_nan_and_infinity_keep_their_message(kernels, bad, row):
    model = trained()
    X = np.random.default_rng(6).standard_normal((30, 7)).astype(np.float32)
    X[row, 3] = bad
    for method in (model.predict, model.predict_proba, model.decision_function):
        with pytest.raises(ValueError, match="X contains NaN or infinity; clean or impute"):
            method(X)
        with pytest.raises(ValueError, match="X contains NaN or infinity"):
            method(np.asfortranarray(X))


def test_shape_errors_keep_their_messages(kernels):
    model = trained()
    cases = [
        (np.zeros((3, 6), np.float32), ValueError, "X has 6 features but the model was trained on 7"),
        (np.zeros(7, np.float32), ValueError, r"must be 2-D .*reshape\(1, -1\)"),
        (np.zeros((0, 7), np.float32), ValueError, "X is empty"),
        (np.zeros((2, 7), bool), TypeError, "must hold real numbers"),
        (None, TypeError, "X is None"),
    ]
    for X, error, message in cases:
        with pytest.raises(error, match=message):
            model.predict(X)


def test_all_finite_reads_every_row_and_column(kernels):
    X = np.zeros((5, 33), np.float32)
    assert _predict.all_finite(X)
    for value in (np.nan, np.inf, -np.inf):
        for i, j in [(0, 0), (4, 32), (2, 17)]:
            Y = X.copy()
            Y[i, j] = value
            assert not _predict.all_finite(Y)
    big = np.full((2, 3), np.finfo(np.float32).max, np.float32)
    assert _predict.all_finite(big) and _predict.all_finite(-big)


def test_takes_only_plain_arrays_of_the_models_dtype_and_width():
    model = trained()
    X = np.zeros((2, 7), np.float32)
    assert _predict.takes(model.params, X)
    assert not _predict.takes(model.params, X.astype(np.float64))
    assert not _predict.takes(model.params, X[:, :6])
    assert not _predict.takes(model.params, X[:0])
    assert not _predict.takes(model.params, X[0])
    assert not _predict.takes(model.params, X.view(np.matrix))
    assert not _predict.takes(model.params, X.tolist())


def test_the_kernel_refuses_what_it_does_not_round_as_numpy():
    kernels = pytest.importorskip("mlp_kernels")
    Z, b = np.zeros((2, 3), np.float32), np.zeros(3, np.float32)
    for code in (kernels.SIGMOID, kernels.TANH, True, 7):
        with pytest.raises(ValueError, match="IDENTITY, RELU or LEAKY_RELU"):
            kernels.add_bias_activate(Z, b, code)
    with pytest.raises(TypeError, match="one dtype per call"):
        kernels.add_bias_activate(Z, b.astype(np.float64), kernels.RELU)
    with pytest.raises(ValueError, match="C-contiguous"):
        kernels.all_finite(np.zeros((3, 4), np.float32).T)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_kernel_rounds_and_signs_zeros_as_numpy(dtype):
    kernels = pytest.importorskip("mlp_kernels")
    Z = np.array([[-0.0, 0.0, np.nan, -np.inf, np.inf, -1.5, 2.5, 1e-45]], dtype=dtype)
    b = np.array([-0.0, -0.0, 1.0, 0.0, 0.0, 1.5, -2.5, 0.0], dtype=dtype)  # -0 + -0: a -0 to activate
    expected = {
        kernels.RELU: np.maximum(Z + b, 0.0),
        kernels.LEAKY_RELU: np.where(Z + b > 0, Z + b, mlp.activations.LEAKY_SLOPE * (Z + b)),
        kernels.IDENTITY: Z + b,
    }
    for code, want in expected.items():
        got = Z.copy()
        kernels.add_bias_activate(got, b, code)
        assert got.tobytes() == want.astype(dtype).tobytes(), code


FRESH_PROCESS = textwrap.dedent(
    """
    import numpy as np
    import mlp
    from mlp import _predict

    X = np.random.default_rng(0).standard_normal((40, 5)).astype(np.float32)
    model = mlp.fit(X, X[:, 0] > 0, hidden_sizes=[4], epochs=1, seed=0, engine="xp")
    model.predict(X)
    print(_predict._ready_kernels() is None)  # a one-off prediction pays no Numba start-up
    import mlp_kernels
    mlp_kernels.warmup(np.float32)  # as every fit with the Numba engine does
    print(_predict._ready_kernels() is _predict._kernels)
    """
)


@pytest.mark.skipif(_predict._kernels is None, reason="Numba is not installed")
def test_the_kernels_are_used_once_numba_has_loaded_them():
    env = {**os.environ}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["True", "True"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("placement", ["before", "after"])
def test_batch_normalised_models_give_the_generic_bits(kernels, placement, activation, dtype):
    """Normalisation with the running statistics, before or after the activation, on the NumPy path."""
    model = trained(activation, dtype=dtype, batch_norm=placement)
    for gamma, beta, mean, var in model.norms:  # away from the initial 1, 0, 0, 1 everywhere
        assert not (np.all(gamma == 1) or np.all(beta == 0) or np.all(mean == 0) or np.all(var == 1))
    rng = np.random.default_rng(7)
    for rows in (1, 2, 17, 300):
        X = rng.standard_normal((rows, 7)).astype(dtype)
        assert model._checked_input(X)[1]  # the NumPy path takes it
        expected = generic_logits(model, X)
        assert model.decision_function(X).tobytes() == expected.tobytes()
        probabilities = mlp.losses.output_probabilities(expected, model.loss, xp=model._xp)
        assert model.predict_proba(X).tobytes() == probabilities.tobytes()
        assert np.array_equal(model.predict(X), model.classes_[np.argmax(expected, axis=1)])


@pytest.mark.parametrize("placement", [None, "before", "after"])
def test_a_wider_bias_or_norm_gives_what_the_generic_path_gives(kernels, placement):
    """float32 weights with a float64 bias or norm: the generic path promotes to float64, so the
    NumPy path, whose in-place steps keep float32, must not take the model."""
    model = trained(batch_norm=placement)
    params = [(W, b.astype(np.float64) if i == 0 else b) for i, (W, b) in enumerate(model.params)]
    norms = [tuple(a.astype(np.float64) for a in norm) for norm in model.norms]
    for wider_params, wider_norms in ((params, model.norms), (model.params, norms)):
        if placement is None and wider_norms is norms:
            continue
        wide = mlp.MLP(
            wider_params,
            activation=model.activation,
            loss=model.loss,
            classes=model.classes_,
            batch_norm=placement,
            norms=wider_norms if placement else None,
        )
        X = np.random.default_rng(8).standard_normal((20, 7)).astype(np.float32)
        assert not wide._checked_input(X)[1]
        expected = generic_logits(wide, X)
        assert expected.dtype == np.float64
        assert wide.decision_function(X).tobytes() == expected.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("code", ["RELU", "LEAKY_RELU", "IDENTITY"])
def test_the_vectorised_loop_signs_zeros_as_numpy(dtype, code):
    """Rows long enough for the compiled loop's vector body, not only its scalar remainder."""
    kernels = pytest.importorskip("mlp_kernels")
    rng = np.random.default_rng(9)
    Z = rng.standard_normal((3, 517)).astype(dtype)
    b = np.where(rng.random(517) < 0.5, -0.0, 0.0).astype(dtype)
    Z[:, ::3] = -0.0
    Z[:, 1::7] = np.nan
    Z[:, 2::11] = -np.nan
    expected = mlp.activations.get_activation(code.lower())[0](Z + b, xp=np)
    got = Z.copy()
    kernels.add_bias_activate(got, b, getattr(kernels, code))
    assert got.tobytes() == expected.astype(dtype).tobytes()
