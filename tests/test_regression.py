"""Regression (identity outputs, squared error) and target matrices in the core: mlp.fit on both
engines, the model's predict/score (R^2), model files; then mlp.MLPRegressor: scikit-learn's checks,
the same computation as mlp.fit, several outputs, early stopping on R^2, partial_fit, lbfgs, the array API."""

import json
import pickle
import warnings
import zipfile

import numpy as np
import pytest

import mlp
from mlp._array_api import to_numpy
from tests.helpers import assert_lives_on, put, tolerance


def friedman(n=300, d=5, outputs=1, seed=0):
    """A smooth nonlinear regression problem: (X (n, d), y (n,) or (n, outputs))."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, d))
    base = np.sin(np.pi * X[:, 0] * X[:, 1]) + 2 * (X[:, 2] - 0.5) ** 2 + X[:, 3]
    columns = [base + 0.5 * k * X[:, 4] for k in range(outputs)]
    y = np.stack(columns, axis=1) + rng.normal(0, 0.05, size=(n, outputs))
    return X, (y[:, 0] if outputs == 1 else y)


def counts(n=300, d=5, outputs=1, seed=0):
    """A Poisson regression problem: (X (n, d), y (n,) or (n, outputs) counts, their means mu)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, d))
    log_mu = 0.8 * X[:, 0] - 0.6 * X[:, 1] ** 2 + 0.5 * np.sin(3 * X[:, 2])
    mu = np.exp(np.stack([log_mu + 0.3 * k * X[:, 3] for k in range(outputs)], axis=1))
    y = rng.poisson(mu).astype(np.float64)
    return X, (y[:, 0] if outputs == 1 else y), (mu[:, 0] if outputs == 1 else mu)


# ---- the core ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("outputs", [1, 3])
def test_fit_learns_a_regression_and_scores_r2(outputs):
    X, y = friedman(outputs=outputs)
    model = mlp.fit(
        X,
        y,
        loss="squared_error",
        hidden_sizes=[32],
        epochs=150,
        dropout=0.0,
        learning_rate=0.01,
        seed=0,
        dtype="float64",
    )
    assert "accuracy" not in model.history and "val_accuracy" not in model.history
    assert model.history["loss"][-1] < model.history["loss"][0] / 5
    predicted = model.predict(X)
    assert predicted.shape == y.shape and model.n_outputs == outputs and model.classes_ is None
    assert model.score(X, y) > 0.9
    assert "identity" in repr(model) and "loss=squared_error" in repr(model)
    with pytest.raises(ValueError, match="predicts values: use predict"):
        model.predict_proba(X)


def test_r2_is_scikit_learns():
    metrics = pytest.importorskip("sklearn.metrics", reason="compared with scikit-learn's r2_score")
    rng = np.random.default_rng(1)
    Y = rng.normal(size=(50, 3))
    Y[:, 2] = 4.0  # a constant target: 1 when predicted exactly, else 0 (scikit-learn's convention)
    predicted = Y + rng.normal(0, 0.3, size=Y.shape)
    predicted[:, 2] = 4.0
    xp = pytest.importorskip("array_api_compat.numpy")
    assert mlp.metrics.r2_score(Y, predicted, xp=xp) == pytest.approx(metrics.r2_score(Y, predicted))
    predicted[0, 2] = 5.0
    assert mlp.metrics.r2_score(Y, predicted, xp=xp) == pytest.approx(metrics.r2_score(Y, predicted))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", ["squared_error", "binary_cross_entropy", "poisson"])
def test_both_engines_train_the_same_target_model(dtype, loss):
    pytest.importorskip("numba", reason="the Numba engine")
    X, y = friedman(n=200, outputs=2)
    if loss == "binary_cross_entropy":
        y = (y > np.median(y, axis=0)).astype(np.float64)
    if loss == "poisson":
        X, y, _ = counts(n=200, outputs=2)
    options = dict(
        loss=loss,
        hidden_sizes=[16, 8],
        epochs=3,
        batch_size=32,
        dropout=0.2,
        seed=4,
        dtype=dtype,
        weight_decay=0.01,
        clip_norm=5.0,
    )
    numba_model = mlp.fit(X, y, engine="numba", **options)
    xp_model = mlp.fit(X, y, engine="xp", **options)
    rtol = tolerance(dtype)
    for (W, b), (W_ref, b_ref) in zip(numba_model.params, xp_model.params, strict=True):
        np.testing.assert_allclose(W, W_ref, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(b, b_ref, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(numba_model.history["loss"], xp_model.history["loss"], rtol=rtol)


def test_validation_data_and_early_stopping_on_targets():
    X, y = friedman(outputs=2)
    model = mlp.fit(
        X[:250],
        y[:250],
        loss="squared_error",
        validation_data=(X[250:], y[250:]),
        epochs=5,
        hidden_sizes=[8],
        seed=0,
    )
    assert len(model.history["val_loss"]) == 5 and "val_accuracy" not in model.history
    model = mlp.fit(
        X,
        y,
        loss="squared_error",
        validation_split=0.2,
        early_stopping=True,
        patience=2,
        epochs=300,
        hidden_sizes=[8],
        seed=0,
        learning_rate=0.05,
    )
    assert len(model.history["loss"]) < 300
    with pytest.raises(ValueError, match="y_val has 1 outputs but the model was trained on 2"):
        mlp.fit(X, y, loss="squared_error", validation_data=(X, y[:, 0]), epochs=1)


@pytest.mark.parametrize(
    "y, error, message",
    [
        (np.full(300, np.nan), ValueError, "y contains NaN or infinity"),
        (np.array(["a"] * 300), TypeError, "real numbers"),
        (np.zeros(299), ValueError, "300 samples but 299 targets"),
        (np.zeros((300, 2, 2)), ValueError, "1-D .* or 2-D"),
        (np.zeros((300, 0)), ValueError, "0 columns"),
    ],
)
def test_bad_targets_are_named(y, error, message):
    X, _ = friedman()
    with pytest.raises(error, match=message):
        mlp.fit(X, y, loss="squared_error", epochs=1)


def test_binary_cross_entropy_takes_indicator_rows():
    X, y = friedman(outputs=2)
    Y = (y > np.median(y, axis=0)).astype(np.int64)
    model = mlp.fit(
        X, Y, loss="binary_cross_entropy", hidden_sizes=[32], epochs=100, learning_rate=0.01, seed=0
    )
    predicted = model.predict(X)
    assert predicted.shape == (300, 2) and set(np.unique(predicted)) <= {0, 1}
    proba = model.predict_proba(X)
    np.testing.assert_array_equal(predicted, (proba > 0.5).astype(np.int64))
    assert model.score(X, Y) == pytest.approx(np.mean(np.all(predicted == Y, axis=1)))
    assert model.score(X, Y) > 0.8
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        mlp.fit(X, Y * 2, loss="binary_cross_entropy", epochs=1)


@pytest.mark.parametrize(
    "loss, outputs",
    [("squared_error", 1), ("squared_error", 3), ("binary_cross_entropy", 2), ("poisson", 2)],
)
def test_model_files_keep_target_models(tmp_path, loss, outputs):
    X, y = friedman(outputs=outputs)
    if loss == "binary_cross_entropy":
        y = (y > 1).astype(np.float64)
    if loss == "poisson":
        X, y, _ = counts(outputs=outputs)
    model = mlp.fit(X, y, loss=loss, hidden_sizes=[8], epochs=2, seed=0)
    path = model.save(tmp_path / "model.npz")
    loaded = mlp.load(path)
    assert loaded.loss == loss and loaded.classes_ is None and loaded.n_outputs == outputs
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.score(X, y) == pytest.approx(model.score(X, y))
    with zipfile.ZipFile(path) as archive:
        metadata = json.loads(np.load(archive.open("metadata.npy")).tobytes())
    assert metadata["classes"] is None and metadata["n_outputs"] == outputs


def _rewrite_metadata(path, change):
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    metadata = json.loads(arrays["metadata"].tobytes())
    change(metadata)
    arrays["metadata"] = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m.update(classes=[0, 1]), "has no classes"),
        (lambda m: m.pop("n_outputs"), "'n_outputs' must be an integer"),
        (lambda m: m.update(n_outputs=3), "W1 has shape"),
        (lambda m: m.update(loss="cross_entropy"), "'classes' must be a list"),
    ],
)
def test_inconsistent_target_model_files_are_refused(tmp_path, change, message):
    X, y = friedman(outputs=2)
    path = mlp.fit(X, y, loss="squared_error", hidden_sizes=[4], epochs=1, seed=0).save(
        tmp_path / "model.npz"
    )
    _rewrite_metadata(path, change)
    with pytest.raises(mlp.ModelFileError, match=message):
        mlp.load(path)


def test_classifier_files_check_n_outputs(tmp_path):
    X, y = friedman()
    path = mlp.fit(X, (y > 1).astype(int), hidden_sizes=[4], epochs=1, seed=0).save(tmp_path / "model.npz")
    assert mlp.load(path).n_outputs == 2
    _rewrite_metadata(path, lambda m: m.update(n_outputs=5))
    with pytest.raises(mlp.ModelFileError, match="'n_outputs' is 5 but the model lists 2 classes"):
        mlp.load(path)


def test_poisson_loss_is_scikit_learns_and_finite_where_exp_underflows():
    sklearn_base = pytest.importorskip("sklearn.neural_network._base", reason="scikit-learn's poisson_loss")
    xp = pytest.importorskip("array_api_compat.numpy")
    rng = np.random.default_rng(2)
    Z = rng.normal(0, 2, size=(40, 3))
    Y = rng.poisson(np.exp(Z) * rng.uniform(0.5, 2, size=Z.shape)).astype(np.float64)
    Y[:5] = 0.0  # zero counts: xlogy(0, 0 / mu) = 0
    value, dZ = mlp.losses.exp_poisson(Z, Y, xp=xp)
    # scikit-learn's loss: mean over the rows of xlogy(y, y / mu) - y + mu, summed over the outputs
    assert float(value) == pytest.approx(sklearn_base.poisson_loss(Y, np.exp(Z)), rel=1e-12)
    np.testing.assert_allclose(dZ, (np.exp(Z) - Y) / 40, rtol=1e-12)
    # where exp(z) underflows to 0 scikit-learn's y log(y / mu) is infinite; log mu = z keeps it finite
    value, dZ = mlp.losses.exp_poisson(np.array([[-1000.0]]), np.array([[2.0]]), xp=xp)
    assert float(value) == pytest.approx(2 * np.log(2) - 2 + 2000) and float(dZ[0, 0]) == -2.0


def test_poisson_fit_predicts_means_and_refuses_negative_counts():
    X, y, mu = counts(n=1000)
    model = mlp.fit(X, y, loss="poisson", hidden_sizes=[16], epochs=60, learning_rate=0.01, seed=0)
    assert "exp" in repr(model) and "loss=poisson" in repr(model) and model.is_regressor
    predicted = model.predict(X)
    np.testing.assert_allclose(predicted, np.exp(model.decision_function(X)[:, 0]), rtol=1e-6)
    # the means are learned: closer to the true mu than the overall mean is
    assert np.mean((predicted - mu) ** 2) < 0.25 * np.mean((y.mean() - mu) ** 2)
    assert model.score(X, y) == pytest.approx(
        float(mlp.metrics.r2_score(y[:, None], predicted[:, None], xp=np))
    )
    with pytest.raises(ValueError, match="predicts values: use predict"):
        model.predict_proba(X)
    with pytest.raises(
        ValueError, match=r"y must hold non-negative values .* poisson loss; its smallest is -1"
    ):
        mlp.fit(X, y - 1.0, loss="poisson", epochs=1)
    with pytest.raises(ValueError, match="y_val must hold non-negative values"):
        mlp.fit(X, y, loss="poisson", epochs=1, validation_data=(X, -y - 1))


def test_loss_and_gradients_of_a_regression_model():
    X, y = friedman(n=20, outputs=2)
    model = mlp.fit(X, y, loss="squared_error", hidden_sizes=[4], epochs=0, dtype="float64", seed=0)
    value, grads = model.loss_and_gradients(X, y)
    expected = 0.5 * np.mean(np.sum((model.predict(X) - y) ** 2, axis=1))
    assert value == pytest.approx(expected)
    assert [g.shape for g, _ in grads] == [(5, 4), (4, 2)]


def test_the_command_line_describes_target_models_and_refuses_to_classify_with_them(tmp_path, capsys):
    from mlp.cli import main

    X, y = friedman(outputs=2)
    path = mlp.fit(X, y, loss="squared_error", hidden_sizes=[4], epochs=1, seed=0).save(
        tmp_path / "model.npz"
    )
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "outputs: 2" in out and "loss squared_error" in out
    assert main(["evaluate", str(path), "--data", str(tmp_path)]) != 0
    assert "squared_error model with 2 outputs, not a classifier" in capsys.readouterr().err


# ---- MLPRegressor --------------------------------------------------------------------------------
sklearn = pytest.importorskip(
    "sklearn", reason="scikit-learn is the optional extra mlp-from-scratch[sklearn]"
)
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from mlp.estimators import MLPRegressor  # noqa: E402

SMALL = dict(hidden_layer_sizes=(16,), batch_size=32, random_state=0)


def fit_quietly(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


@parametrize_with_checks(
    [
        MLPRegressor(),
        MLPRegressor(
            hidden_layer_sizes=(16, 8),
            solver="sgd",
            learning_rate="adaptive",
            learning_rate_init=0.01,
            clip_norm=1.0,
            batch_size=32,
        ),
        MLPRegressor(solver="lbfgs", max_iter=50),
    ]
)
# scikit-learn's checks fit a few dozen rows for a few epochs: a run that does not converge, and a
# batch_size clipped to the number of rows, are what they ask for (the warnings are tested on their own)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore:Got `batch_size` less than 1 or larger than sample size:UserWarning")
def test_sklearn_estimator_checks(estimator, check, monkeypatch):
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    check(estimator)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fit_is_mlp_fit_with_the_same_seed(dtype):
    X, y = friedman(outputs=2)
    reference = mlp.fit(
        X,
        y,
        loss="squared_error",
        seed=3,
        dtype=dtype,
        hidden_sizes=(8, 5),
        epochs=4,
        batch_size=32,
        schedule="constant",
        dropout=0.1,
        learning_rate=0.001,
        weight_decay=0.0,
        init="he_normal",
    )
    model = fit_quietly(
        MLPRegressor(
            random_state=3,
            dtype=dtype,
            hidden_layer_sizes=(8, 5),
            max_iter=4,
            batch_size=32,
            dropout=0.1,
            alpha=0.0,
            init="he_normal",
        ),
        X,
        y,
    )
    rtol = tolerance(dtype)
    for (W, b), (W_ref, b_ref) in zip(model.model_.params, reference.params, strict=True):
        np.testing.assert_allclose(W, W_ref, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(b, b_ref, rtol=rtol, atol=rtol)
    assert model.loss_curve_ == pytest.approx(reference.history["loss"], rel=rtol)
    assert model.n_outputs_ == 2 and model.out_activation_ == "identity" and model.n_layers_ == 4
    np.testing.assert_allclose(model.predict(X), reference.predict(X), rtol=rtol, atol=rtol)


def test_poisson_regressor_passes_scikit_learns_checks(monkeypatch):
    """scikit-learn's checks with the positive_only tag (they draw y >= 0), except the multi-output
    check, which draws negative targets that the Poisson loss refuses (scikit-learn's own regressor
    then trains on NaN losses)."""
    from sklearn.utils.estimator_checks import check_estimator

    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", "Got `batch_size` less than 1 or larger than sample size")
        check_estimator(
            MLPRegressor(loss="poisson", learning_rate_init=0.01),
            expected_failed_checks={
                "check_regressor_multioutput": "negative targets, refused by the Poisson loss"
            },
        )


def test_poisson_regressor_is_mlp_fit_with_the_same_seed():
    X, y, _ = counts(outputs=2)
    options = dict(
        hidden_sizes=(8,),
        epochs=4,
        batch_size=32,
        schedule="constant",
        dropout=0.0,
        learning_rate=0.001,
        init="he_normal",
    )
    reference = mlp.fit(X, y, loss="poisson", seed=3, dtype="float64", weight_decay=0.0, **options)
    model = fit_quietly(
        MLPRegressor(
            loss="poisson",
            random_state=3,
            dtype="float64",
            hidden_layer_sizes=(8,),
            max_iter=4,
            batch_size=32,
            alpha=0.0,
            init="he_normal",
        ),
        X,
        y,
    )
    assert model.out_activation_ == "exp" and model.model_.loss == "poisson"
    assert model.loss_curve_ == pytest.approx(reference.history["loss"], rel=1e-10)
    np.testing.assert_allclose(model.predict(X), reference.predict(X), rtol=1e-10)
    assert model.score(X, y) == pytest.approx(reference.score(X, y))


def test_poisson_regressor_scores_like_scikit_learns():
    """Side by side with scikit-learn's MLPRegressor(loss="poisson"), the same settings, on held-out
    Poisson counts. The networks start from different random weights, so the results are compared
    with the spread between seeds: over seeds 0-3 scikit-learn's mean Poisson deviance ranges over
    0.0075 (1.104-1.111) and this library's over 0.007, between the oracle's 1.071 (the true means)
    and the constant mean's 1.420. A tolerance of 0.03 (4x that spread, under a tenth of what the
    network has to learn) catches a wrong loss, gradient or output activation, which land far off."""
    from sklearn.metrics import mean_poisson_deviance
    from sklearn.neural_network import MLPRegressor as ScikitLearnRegressor

    X, y, _ = counts(n=2000)
    X_test, y_test, mu_test = counts(n=2000, seed=1)
    settings = dict(
        hidden_layer_sizes=(16,), max_iter=100, learning_rate_init=0.01, batch_size=64, random_state=0
    )
    theirs = fit_quietly(ScikitLearnRegressor(loss="poisson", **settings), X, y)
    ours = fit_quietly(MLPRegressor(loss="poisson", **settings), X, y)
    assert ours.out_activation_ == theirs.out_activation_ == "exp"
    deviance_ours = mean_poisson_deviance(y_test, ours.predict(X_test))
    deviance_theirs = mean_poisson_deviance(y_test, theirs.predict(X_test))
    oracle = mean_poisson_deviance(y_test, mu_test)
    assert abs(deviance_ours - deviance_theirs) < 0.03
    assert deviance_ours < oracle + 0.06  # both near the best possible
    assert abs(ours.score(X_test, y_test) - theirs.score(X_test, y_test)) < 0.03
    assert ours.loss_ == pytest.approx(theirs.loss_, abs=0.03)  # the same loss, half the deviance


def test_one_output_predicts_a_vector_and_a_column_y_is_the_same():
    X, y = friedman()
    vector = fit_quietly(MLPRegressor(max_iter=5, **SMALL), X, y)
    column = fit_quietly(MLPRegressor(max_iter=5, **SMALL), X, y[:, None])
    assert vector.predict(X).shape == (300,) and vector.n_outputs_ == 1
    np.testing.assert_array_equal(column.predict(X), vector.predict(X))


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_every_solver_fits_a_smooth_function(solver):
    X, y = friedman(outputs=2)
    model = fit_quietly(MLPRegressor(solver=solver, max_iter=300, learning_rate_init=0.01, **SMALL), X, y)
    assert model.score(X, y) > 0.9 and model.predict(X).shape == (300, 2)
    assert model.loss_ == pytest.approx(model.loss_curve_[-1])


def test_early_stopping_watches_the_validation_r2():
    X, y = friedman()
    model = MLPRegressor(early_stopping=True, max_iter=500, learning_rate_init=0.01, **SMALL).fit(X, y)
    assert model.best_loss_ is None and len(model.validation_scores_) == model.n_iter_ < 500
    assert model.best_validation_score_ == max(model.validation_scores_) > 0.8


def test_partial_fit_continues_and_pickles():
    X, y = friedman()
    model = MLPRegressor(**SMALL)
    for _ in range(3):
        model.partial_fit(X, y)
    reference = fit_quietly(MLPRegressor(max_iter=3, n_iter_no_change=100, **SMALL), X, y)
    np.testing.assert_array_equal(model.predict(X), reference.predict(X))
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.partial_fit(X, y).predict(X), model.partial_fit(X, y).predict(X))
    with pytest.raises(ValueError, match="y has 2 outputs but the model was fitted on 1"):
        model.partial_fit(X, np.c_[y, y])
    assert clone(model).get_params() == model.get_params()


def test_regressor_errors():
    X, y = friedman()
    with pytest.raises(ValueError, match="unknown loss 'huber'; choose one of 'squared_error' or 'poisson'"):
        MLPRegressor(loss="huber").fit(X, y)
    with pytest.raises(ValueError, match="loss='poisson' needs non-negative targets"):
        MLPRegressor(loss="poisson").fit(X, y - 10)
    with pytest.raises(ValueError, match="Input y contains NaN"):
        MLPRegressor().fit(X, np.full(300, np.nan))
    with pytest.raises(ValueError, match="X has 4 features, but MLPRegressor is expecting 5"):
        fit_quietly(MLPRegressor(max_iter=1), X, y).predict(X[:, :4])


def test_array_api_input_stays_in_its_namespace(backend, monkeypatch):
    xp, device = backend
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    X, y = friedman(outputs=2)
    reference = fit_quietly(MLPRegressor(max_iter=5, **SMALL), X, y)
    with sklearn.config_context(array_api_dispatch=True):
        model = fit_quietly(MLPRegressor(max_iter=5, **SMALL), put(X, xp, device), put(y, xp, device))
        predicted = model.predict(put(X, xp, device))
        assert_lives_on(predicted, xp, device)
        assert_lives_on(model.coefs_[0], xp, device)
        rtol = tolerance("float64")
        np.testing.assert_allclose(to_numpy(predicted), reference.predict(X), rtol=rtol, atol=rtol)
        if xp.__name__ == "jax.numpy":  # scikit-learn's r2_score (score) writes into an array: not on JAX
            return
        assert model.score(put(X, xp, device), put(y, xp, device)) == pytest.approx(reference.score(X, y))
