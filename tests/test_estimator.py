"""mlp.estimator.MLPClassifier: scikit-learn's own estimator checks, labels of every kind, partial_fit
and warm_start continuing the optimizer state, meta-estimators, pickling, the array API, and the
message when scikit-learn is missing."""
import copy
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is the optional extra mlp-from-scratch[sklearn]")

from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import mlp  # noqa: E402
from mlp._array_api import to_numpy  # noqa: E402
from mlp.estimator import MLPClassifier  # noqa: E402
from tests.helpers import REPO_ROOT, assert_lives_on, blobs, put, tolerance  # noqa: E402


def assert_same_params(a, b, rtol=tolerance("float64")):
    for (W, bias), (W_ref, bias_ref) in zip(a.model_.params, b.model_.params):
        np.testing.assert_allclose(to_numpy(W), to_numpy(W_ref), rtol=rtol, atol=rtol)
        np.testing.assert_allclose(to_numpy(bias), to_numpy(bias_ref), rtol=rtol, atol=rtol)


SMALL = dict(hidden_sizes=(8,), batch_size=32, random_state=0)


# ---- scikit-learn's own checks, with no expected failures ------------------------------------------
@parametrize_with_checks(
    [
        MLPClassifier(),
        MLPClassifier(hidden_sizes=(16, 8), early_stopping=True, dropout=0.1, clip_norm=1.0, batch_size=32),
    ]
)
def test_sklearn_estimator_checks(estimator, check, monkeypatch):
    # The array API checks run (instead of skipping) only with SciPy's array API flag set.
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    check(estimator)


def test_defaults_and_params_round_trip():
    model = MLPClassifier()
    params = model.get_params()
    assert params["hidden_sizes"] == (100,) and params["optimizer"] == "adam" and params["epochs"] == 200
    assert params["dtype"] is None and params["random_state"] is None and params["schedule"] == "constant"
    model.set_params(hidden_sizes=(4, 3), learning_rate=0.01)
    copy = clone(model)
    assert copy.get_params() == model.get_params() and copy is not model
    assert "hidden_sizes=(4, 3)" in repr(model)


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(activation="swish"), "unknown activation"),
        (dict(hidden_sizes=(4, 0)), "hidden_sizes"),
        (dict(epochs=0), "epochs"),
        (dict(batch_size=0), "batch_size"),
        (dict(learning_rate=-1.0), "learning_rate"),
        (dict(dropout=1.0), "dropout"),
        (dict(validation_fraction=1.0), "validation_fraction"),
        (dict(n_iter_no_change=0), "n_iter_no_change"),
        (dict(dtype="float16"), "dtype"),
        (dict(optimizer="lbfgs"), "unknown optimizer"),
        (dict(schedule="linear"), "unknown schedule"),
    ],
)
def test_bad_hyper_parameters_raise_at_fit_not_in_init(params, message):
    X, y = blobs(n=20)
    model = MLPClassifier(**params)  # the constructor only stores
    with pytest.raises(ValueError, match=message):
        model.fit(X, y)


# ---- the same computation as the core ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fit_is_mlp_fit_with_the_same_seed(dtype):
    X, y = blobs()
    options = dict(hidden_sizes=(8, 5), epochs=4, batch_size=32, schedule="constant", dropout=0.1)
    reference = mlp.fit(X, y, seed=3, dtype=dtype, **options)
    model = MLPClassifier(random_state=3, dtype=dtype, n_iter_no_change=None, **options).fit(X, y)
    # Same numbers, same order of operations; only BLAS may round differently (array alignment).
    rtol = tolerance(dtype)
    for (W, b), (W_ref, b_ref) in zip(model.model_.params, reference.params):
        np.testing.assert_allclose(W, W_ref, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(b, b_ref, rtol=rtol, atol=rtol)
    assert model.loss_curve_ == pytest.approx(reference.history["loss"], rel=rtol)
    assert model.n_iter_ == 4 and model.model_.dtype == dtype
    assert [W.shape for W in model.coefs_] == [(6, 8), (8, 5), (5, 3)]
    assert [b.shape for b in model.intercepts_] == [(8,), (5,), (3,)]


def test_dtype_follows_X_by_default():
    X, y = blobs(n=40)
    assert MLPClassifier(epochs=1, **SMALL).fit(X.astype(np.float32), y).predict_proba(X).dtype == np.float32
    assert MLPClassifier(epochs=1, **SMALL).fit(X, y).predict_proba(X).dtype == np.float64
    assert MLPClassifier(epochs=1, **SMALL).fit(X.astype(np.int64), y).model_.dtype == "float64"
    assert MLPClassifier(epochs=1, dtype="float32", **SMALL).fit(X, y).predict_proba(X).dtype == np.float32


# ---- labels ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "names",
    [
        np.array(["cat", "dog", "emu"]),
        np.array([3, 7, 11]),
        np.array([-5, -1, 0]),
        np.array([1.0, 2.0, 4.0]),
        np.array(["one", "two", "three"], dtype=object),
    ],
    ids=["strings", "sparse-ints", "negative-ints", "floats", "objects"],
)
def test_any_label_values_come_back_as_given(names):
    X, y = blobs()
    labels = names[y]
    model = MLPClassifier(epochs=60, **SMALL).fit(X, labels)
    np.testing.assert_array_equal(model.classes_, np.unique(names))
    predicted = model.predict(X)
    assert predicted.dtype == labels.dtype and set(predicted) <= set(names)
    assert model.score(X, labels) > 0.9
    proba = model.predict_proba(X)
    assert proba.shape == (120, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=tolerance("float64"))
    np.testing.assert_array_equal(np.unique(names)[proba.argmax(axis=1)], predicted)
    np.testing.assert_allclose(model.predict_log_proba(X), np.log(proba), rtol=1e-6, atol=1e-12)


def test_boolean_labels_and_lists():
    X, y = blobs(k=2)
    model = MLPClassifier(epochs=30, **SMALL).fit(X.tolist(), (y == 1).tolist())
    assert model.classes_.dtype == bool and model.predict(X).dtype == bool


def test_one_class_predicts_that_class():
    X, _ = blobs(n=15)
    model = MLPClassifier(epochs=3, **SMALL).fit(X, ["only"] * 15)
    np.testing.assert_array_equal(model.predict(X), ["only"] * 15)
    np.testing.assert_array_equal(model.predict_proba(X), np.ones((15, 1)))


def test_one_sample_and_one_feature():
    model = MLPClassifier(epochs=3, **SMALL).fit([[0.5, 2.0]], [7])
    assert model.predict([[1.0, 1.0]]).tolist() == [7]
    X, y = blobs(n=40, d=1, k=2)
    model = MLPClassifier(epochs=50, **SMALL).fit(X, y)
    assert model.n_features_in_ == 1 and model.predict_proba(X).shape == (40, 2)


def test_unknown_labels_and_shapes_are_named():
    X, y = blobs()
    model = MLPClassifier(epochs=2, **SMALL).fit(X, y)
    with pytest.raises(ValueError, match="X has 5 features, but MLPClassifier is expecting 6"):
        model.predict(X[:, :5])
    with pytest.raises(ValueError, match="not trained on, such as 9"):
        model.set_params(warm_start=True).fit(X, np.where(y == 2, 9, y))
    with pytest.raises(ValueError, match="Unknown label type"):
        MLPClassifier().fit(X, np.linspace(0, 1, 120))


# ---- partial_fit and warm_start continue the optimizer state ------------------------------------------
def test_partial_fit_epochs_are_fit_epochs():
    X, y = blobs()
    labels = np.array(["x", "y", "z"])[y]
    options = dict(SMALL, n_iter_no_change=None)
    reference = MLPClassifier(epochs=3, **options).fit(X, labels)
    model = MLPClassifier(**options)
    for _ in range(3):
        model.partial_fit(X, labels, classes=["z", "y", "x"])
    assert_same_params(model, reference)
    assert model.loss_curve_ == reference.loss_curve_ and model.n_iter_ == 3
    # later calls may see a subset of the classes
    model.partial_fit(X[y == 0], labels[y == 0])
    assert model.n_iter_ == 4


def test_partial_fit_errors():
    X, y = blobs()
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        MLPClassifier().partial_fit(X, y)
    model = MLPClassifier(**SMALL).partial_fit(X, y, classes=[0, 1, 2, 3])
    assert model.predict_proba(X).shape == (120, 4)
    with pytest.raises(ValueError, match="differs from the classes"):
        model.partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="not trained on, such as 5"):
        model.partial_fit(X, np.full(120, 5))
    with pytest.raises(ValueError, match="X has 5 features"):
        model.partial_fit(X[:, :5], y)


def test_warm_start_continues_weights_and_optimizer_state():
    X, y = blobs()
    options = dict(SMALL, n_iter_no_change=None)
    reference = MLPClassifier(epochs=5, **options).fit(X, y)
    model = MLPClassifier(epochs=3, **options).fit(X, y)
    model.set_params(warm_start=True, epochs=2).fit(X, y)
    assert_same_params(model, reference)
    assert model.n_iter_ == 5 and model.loss_curve_ == reference.loss_curve_
    # without warm_start, fit starts over
    model.set_params(warm_start=False, epochs=5).fit(X, y)
    assert_same_params(model, reference)
    assert model.n_iter_ == 5


def test_fit_stops_when_the_training_loss_stops_improving():
    X, y = blobs()
    model = MLPClassifier(epochs=500, tol=0.5, n_iter_no_change=2, **SMALL).fit(X, y)
    assert model.n_iter_ < 500 and len(model.loss_curve_) == model.n_iter_
    assert model.validation_scores_ is None


def test_early_stopping_keeps_the_best_epoch():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 10)), rng.integers(0, 2, size=200)  # noise: validation loss soon rises
    options = dict(hidden_sizes=(64,), early_stopping=True, validation_fraction=0.3, tol=0.0,
                   learning_rate=0.01, random_state=0)
    model = MLPClassifier(epochs=300, n_iter_no_change=5, **options).fit(X, y)
    curve = model.validation_loss_curve_
    best = int(np.argmin(curve)) + 1
    assert model.n_iter_ == best + 5 < 300
    assert len(model.validation_scores_) == len(curve) == model.n_iter_
    assert model.best_loss_ == min(curve) and model.best_validation_score_ == model.validation_scores_[best - 1]
    # the kept weights are those of the best epoch: the same as training exactly that long
    stopped_there = MLPClassifier(epochs=best, n_iter_no_change=None, **options).fit(X, y)
    assert_same_params(model, stopped_there)


def test_early_stopping_needs_a_training_sample():
    with pytest.raises(ValueError, match="n_samples=1"):
        MLPClassifier(early_stopping=True).fit([[1.0, 2.0]], [0])


def test_verbose_prints_epochs(capsys):
    X, y = blobs(n=30)
    MLPClassifier(epochs=4, verbose=2, n_iter_no_change=None, early_stopping=True, **SMALL).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[-1].startswith("epoch 4/4  loss") and "val_acc" in lines[-1]


# ---- pickling, clone, meta-estimators ---------------------------------------------------------------
def test_pickle_keeps_predictions_and_optimizer_state():
    X, y = blobs()
    labels = np.array(["x", "y", "z"])[y]
    model = MLPClassifier(epochs=5, **SMALL).fit(X, labels)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(copy.deepcopy(model).predict(X), model.predict(X))
    assert clone(model).get_params() == model.get_params() and not hasattr(clone(model), "model_")
    # the optimizer state, step count and random stream survive: training goes on identically
    model.partial_fit(X, labels)
    restored.partial_fit(X, labels)
    assert_same_params(restored, model)


def test_pipeline_grid_search_and_cross_validation():
    X, y = blobs(n=150)
    X = X * 50 + 200  # badly scaled on purpose: the scaler in front matters
    pipe = make_pipeline(StandardScaler(), MLPClassifier(epochs=50, learning_rate=0.01, **SMALL))
    assert pipe.fit(X, y).score(X, y) > 0.9
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.8
    search = GridSearchCV(pipe, {"mlpclassifier__hidden_sizes": [(4,), (16, 8)],
                                 "mlpclassifier__learning_rate": [1e-3, 1e-2]}, cv=3)
    search.fit(X, y)
    assert search.best_score_ > 0.8
    assert search.best_estimator_[-1].hidden_sizes in [(4,), (16, 8)]
    assert search.predict(X).shape == (150,)


# ---- the array API: inputs keep their namespace and device --------------------------------------------
@pytest.fixture
def dispatch(monkeypatch):
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    with sklearn.config_context(array_api_dispatch=True):
        yield


def test_array_api_input_stays_in_its_namespace_and_device(backend, dispatch):
    xp, device = backend
    X, y = blobs()
    labels = np.array([-3, 7, 10])[y]
    options = dict(epochs=20, random_state=0)
    reference = MLPClassifier(**options).fit(X, labels)
    X_dev = put(X, xp, device)
    for y_given in (put(labels, xp, device), labels):  # y in X's namespace, or a NumPy y that follows X
        model = MLPClassifier(**options).fit(X_dev, y_given)
        proba = model.predict_proba(X_dev)
        assert_lives_on(proba, xp, device)
        assert proba.shape == (120, 3) and str(proba.dtype).endswith("float64")
        rtol = tolerance("float64")
        np.testing.assert_allclose(to_numpy(proba), reference.predict_proba(X), rtol=rtol, atol=rtol)
        for output in (model.predict(X_dev), model.predict_log_proba(X_dev), model.classes_, model.coefs_[0]):
            assert_lives_on(output, xp, device)
        np.testing.assert_array_equal(to_numpy(model.predict(X_dev)), reference.predict(X))
        assert model.score(X_dev, y_given) == pytest.approx(reference.score(X, labels))
        model.partial_fit(X_dev, y_given)
        assert_lives_on(model.coefs_[0], xp, device)


def test_array_api_float32_and_string_labels(backend, dispatch):
    xp, device = backend
    X, y = blobs()
    names = np.array(["a", "b", "c"])[y]
    model = MLPClassifier(epochs=20, random_state=0).fit(put(X.astype(np.float32), xp, device), names)
    X_dev = put(X.astype(np.float32), xp, device)
    proba = model.predict_proba(X_dev)
    assert_lives_on(proba, xp, device)
    assert str(proba.dtype).endswith("float32") and model.model_.dtype == "float32"
    predicted = model.predict(X_dev)  # strings cannot leave the host
    assert isinstance(predicted, np.ndarray) and set(predicted) <= {"a", "b", "c"}


def test_array_api_labels_on_another_device_follow_X(dispatch):
    xps = pytest.importorskip("array_api_strict")
    X, y = blobs()
    X_dev = xps.asarray(X, device=xps.Device("device1"))
    y_cpu = xps.asarray(y, device=xps.Device("CPU_DEVICE"))
    model = MLPClassifier(epochs=3, **SMALL).fit(X_dev, y_cpu)
    assert model.classes_.device == xps.Device("device1")
    assert model.predict(X_dev).device == xps.Device("device1")


def test_array_api_predict_needs_the_fit_namespace(dispatch):
    xps = pytest.importorskip("array_api_strict")
    X, y = blobs()
    model = MLPClassifier(epochs=2, **SMALL).fit(xps.asarray(X), y)
    with pytest.raises(ValueError, match=r"MLPClassifier.predict_proba\(\) must use the same namespace"):
        model.predict_proba(X)
    with pytest.raises(ValueError, match="must use the same namespace and the same device"):
        model.predict(xps.asarray(X, device=xps.Device("device1")))


def test_pickle_array_api_model(dispatch):
    xps = pytest.importorskip("array_api_strict")
    X, y = blobs()
    X_dev = xps.asarray(X, device=xps.Device("device1"))
    model = MLPClassifier(epochs=3, **SMALL).fit(X_dev, y)
    restored = pickle.loads(pickle.dumps(model))
    assert restored.predict_proba(X_dev).device == xps.Device("device1")
    np.testing.assert_array_equal(to_numpy(restored.predict_proba(X_dev)), to_numpy(model.predict_proba(X_dev)))


# ---- scikit-learn stays optional ------------------------------------------------------------------
def run_python(code):
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_importing_mlp_does_not_import_sklearn():
    assert run_python("import sys, mlp; print('sklearn' in sys.modules)").strip() == "False"


def test_missing_sklearn_says_how_to_install_it():
    out = run_python(
        """
        import sys
        sys.modules["sklearn"] = None  # as if scikit-learn were not installed
        import mlp
        mlp.fit([[0.0], [1.0]], [0, 1], hidden_sizes=[2], epochs=1)  # the core works without it
        try:
            import mlp.estimator
        except ImportError as error:
            print(error)
        if "__getattr__" in vars(mlp):  # the lazy mlp.MLPClassifier export
            try:
                mlp.MLPClassifier
            except ImportError as error:
                print(error)
        """
    )
    lines = out.strip().splitlines()
    assert lines and all('pip install "mlp-from-scratch[sklearn]"' in line and "scikit-learn" in line for line in lines)


def test_lazy_export_from_the_package():
    if "__getattr__" not in vars(mlp):
        pytest.skip("mlp/__init__.py has no lazy __getattr__ for MLPClassifier yet")
    assert mlp.MLPClassifier is MLPClassifier
    with pytest.raises(AttributeError):
        mlp.NoSuchThing
