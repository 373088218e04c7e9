"""mlp.MLPClassifier: scikit-learn's own estimator checks, labels of every kind, partial_fit
and warm_start continuing the optimizer state, meta-estimators, pickling, the array API, and the
message when scikit-learn is missing."""

import copy
import math
import pickle
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip(
    "sklearn", reason="scikit-learn is the optional extra mlp-from-scratch[sklearn]"
)

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import mlp  # noqa: E402
from mlp._array_api import to_numpy  # noqa: E402
from mlp.estimators import MLPClassifier  # noqa: E402
from tests.helpers import REPO_ROOT, assert_lives_on, blobs, put, tolerance  # noqa: E402

# Short runs on purpose: the ConvergenceWarning they earn is tested once, below.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


F64_RTOL = tolerance("float64")


def assert_same_params(a, b, rtol=F64_RTOL):
    for (W, bias), (W_ref, bias_ref) in zip(a.model_.params, b.model_.params, strict=True):
        np.testing.assert_allclose(to_numpy(W), to_numpy(W_ref), rtol=rtol, atol=rtol)
        np.testing.assert_allclose(to_numpy(bias), to_numpy(bias_ref), rtol=rtol, atol=rtol)


SMALL = dict(hidden_layer_sizes=(8,), batch_size=32, random_state=0)
LONG = dict(SMALL, n_iter_no_change=10_000)  # trains every max_iter epoch (then warns of it)


def fit_quietly(model, *args, **kwargs):
    """fit, with the ConvergenceWarning of a run told to use every epoch silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(*args, **kwargs)


# ---- scikit-learn's own checks, with no expected failures ------------------------------------------
@parametrize_with_checks(
    [
        MLPClassifier(),
        MLPClassifier(
            hidden_layer_sizes=(16, 8),
            solver="sgd",
            learning_rate="adaptive",
            dropout=0.1,
            clip_norm=1.0,
            batch_size=32,
        ),
        MLPClassifier(solver="lbfgs", max_iter=50),
    ],
    # dropout draws a mask per row: a repeated row gets masks of its own, a weighted row one
    expected_failed_checks=lambda estimator: dict.fromkeys(
        ("check_sample_weight_equivalence_on_dense_data", "check_sample_weight_equivalence_on_sparse_data")
        if estimator.dropout
        else (),
        "dropout's masks differ when rows are repeated instead of weighted",
    ),
)
# scikit-learn's checks fit a few dozen rows for a few epochs: a run that does not converge, and a
# batch_size clipped to the number of rows, are what they ask for (the warnings are tested on their own)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore:Got `batch_size` less than 1 or larger than sample size:UserWarning")
def test_sklearn_estimator_checks(estimator, check, monkeypatch):
    # The array API checks run (instead of skipping) only with SciPy's array API flag set.
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    check(estimator)


def test_defaults_and_params_round_trip():
    model = MLPClassifier()
    params = model.get_params()
    assert params["hidden_layer_sizes"] == (100,) and params["solver"] == "adam" and params["max_iter"] == 200
    assert (
        params["batch_size"] == "auto" and params["alpha"] == 0.0001 and params["learning_rate"] == "constant"
    )
    assert params["dtype"] is None and params["random_state"] is None and params["verbose"] is False
    model.set_params(hidden_layer_sizes=(4, 3), learning_rate_init=0.01)
    copy = clone(model)
    assert copy.get_params() == model.get_params() and copy is not model
    assert "hidden_layer_sizes=(4, 3)" in repr(model)


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(activation="swish"), "unknown activation 'swish'; choose one of 'identity', 'logistic'"),
        (dict(hidden_layer_sizes=(4, 0)), "hidden_layer_sizes"),
        (dict(max_iter=0), "max_iter"),
        (dict(batch_size=0), "batch_size"),
        (dict(learning_rate_init=-1.0), "learning_rate_init"),
        (dict(alpha=-1.0), "alpha"),
        (dict(momentum=1.5), "momentum"),
        (dict(beta_1=1.0), "beta_1"),
        (dict(epsilon=0.0), "epsilon"),
        (dict(power_t=-1.0), "power_t"),
        (dict(max_fun=0), "max_fun"),
        (dict(dropout=1.0), "dropout"),
        (dict(validation_fraction=1.0), "validation_fraction"),
        (dict(n_iter_no_change=0), "n_iter_no_change"),
        (dict(dtype="float16"), "dtype"),
        (dict(solver="newton"), "unknown solver 'newton'; choose one of 'lbfgs', 'sgd', 'adam'"),
        (
            dict(learning_rate="linear"),
            "unknown learning_rate 'linear'; choose one of 'constant', 'invscaling'",
        ),
        (dict(loss="hinge"), "unknown loss 'hinge'"),
        (dict(shuffle="yes"), "shuffle must be True or False"),
    ],
)
def test_bad_hyper_parameters_raise_at_fit_not_in_init(params, message):
    X, y = blobs(n=20)
    model = MLPClassifier(**params)  # the constructor only stores
    with pytest.raises(ValueError, match=re.escape(message) if "(" not in message else message):
        model.fit(X, y)


# ---- the same computation as the core ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fit_is_mlp_fit_with_the_same_seed(dtype):
    X, y = blobs()
    reference = mlp.fit(
        X,
        y,
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
        MLPClassifier(
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
    # Same numbers, same order of operations; only BLAS may round differently (array alignment).
    rtol = tolerance(dtype)
    for (W, b), (W_ref, b_ref) in zip(model.model_.params, reference.params, strict=True):
        np.testing.assert_allclose(W, W_ref, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(b, b_ref, rtol=rtol, atol=rtol)
    assert model.loss_curve_ == pytest.approx(reference.history["loss"], rel=rtol)
    assert model.n_iter_ == 4 and model.t_ == 4 * 120 and model.model_.dtype == dtype
    assert [W.shape for W in model.coefs_] == [(6, 8), (8, 5), (5, 3)]
    assert [b.shape for b in model.intercepts_] == [(8,), (5,), (3,)]
    assert model.n_layers_ == 4 and model.n_outputs_ == 3 and model.out_activation_ == "softmax"
    assert model.loss_ == model.loss_curve_[-1] and model.best_loss_ == min(model.loss_curve_)


def test_alpha_is_scaled_by_the_batch_as_scikit_learn_does():
    X, y = blobs()
    model = fit_quietly(MLPClassifier(alpha=0.64, max_iter=1, **SMALL), X, y)
    assert model.model_.l2 == pytest.approx(0.64 / 32)
    assert fit_quietly(
        MLPClassifier(alpha=0.64, max_iter=1, solver="lbfgs"), X, y
    ).model_.l2 == pytest.approx(0.64 / 120)


def test_dtype_follows_X_by_default():
    X, y = blobs(n=40)
    options = dict(max_iter=1, **SMALL)
    assert fit_quietly(MLPClassifier(**options), X.astype(np.float32), y).predict_proba(X).dtype == np.float32
    assert fit_quietly(MLPClassifier(**options), X, y).predict_proba(X).dtype == np.float64
    assert fit_quietly(MLPClassifier(**options), X.astype(np.int64), y).model_.dtype == "float64"
    assert fit_quietly(MLPClassifier(dtype="float32", **options), X, y).predict_proba(X).dtype == np.float32


# ---- labels and output layers ---------------------------------------------------------------------------
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
    model = fit_quietly(MLPClassifier(max_iter=60, **SMALL), X, labels)
    np.testing.assert_array_equal(model.classes_, np.unique(names))
    predicted = model.predict(X)
    assert predicted.dtype == labels.dtype and set(predicted) <= set(names)
    assert model.score(X, labels) > 0.9
    proba = model.predict_proba(X)
    assert proba.shape == (120, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=tolerance("float64"))
    np.testing.assert_array_equal(np.unique(names)[proba.argmax(axis=1)], predicted)
    np.testing.assert_allclose(model.predict_log_proba(X), np.log(proba), rtol=1e-12)


def test_two_classes_have_one_logistic_output_as_in_scikit_learn():
    X, y = blobs(k=2)
    labels = np.array(["no", "yes"])[y]
    model = fit_quietly(MLPClassifier(max_iter=50, **SMALL), X, labels)
    assert model.n_outputs_ == 1 and model.out_activation_ == "logistic" and model.coefs_[-1].shape == (8, 1)
    proba = model.predict_proba(X)
    assert proba.shape == (120, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.predict(X), np.array(["no", "yes"])[proba.argmax(axis=1)])
    assert model.score(X, labels) > 0.9
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(model.predict_log_proba(X), np.log(proba))


def test_multilabel_indicator_targets_get_logistic_outputs():
    X, y = blobs(n=200, k=4)
    Y = np.stack([y == 0, y == 1, (y == 1) | (y == 2), y >= 2], axis=1).astype(np.int64)
    model = fit_quietly(MLPClassifier(max_iter=200, **SMALL), X, Y)
    assert model.n_outputs_ == 4 and model.out_activation_ == "logistic"
    np.testing.assert_array_equal(model.classes_, [0, 1, 2, 3])
    predicted = model.predict(X)
    assert predicted.shape == (200, 4) and set(np.unique(predicted)) <= {0, 1}
    proba = model.predict_proba(X)
    assert proba.shape == (200, 4) and np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_array_equal(predicted, (proba > 0.5).astype(int))
    assert model.score(X, Y) > 0.9  # subset accuracy: every label of a row right
    with pytest.raises(ValueError, match="indicator matrix with 4 columns"):
        model.partial_fit(X, Y[:, :3])


def test_one_class_predicts_that_class():
    X, _ = blobs(n=15)
    model = fit_quietly(MLPClassifier(max_iter=3, **SMALL), X, ["only"] * 15)
    np.testing.assert_array_equal(model.predict(X), ["only"] * 15)
    np.testing.assert_array_equal(model.predict_proba(X), np.ones((15, 1)))


def test_one_sample_and_one_feature():
    model = fit_quietly(MLPClassifier(max_iter=3, **SMALL), [[0.5, 2.0]], [7])
    assert model.predict([[1.0, 1.0]]).tolist() == [7]
    X, y = blobs(n=40, d=1, k=2)
    model = fit_quietly(MLPClassifier(max_iter=50, **SMALL), X, y)
    assert model.n_features_in_ == 1 and model.predict_proba(X).shape == (40, 2)


def test_unknown_labels_and_shapes_are_named():
    X, y = blobs()
    model = fit_quietly(MLPClassifier(max_iter=2, **SMALL), X, y)
    with pytest.raises(ValueError, match="X has 5 features, but MLPClassifier is expecting 6"):
        model.predict(X[:, :5])
    with pytest.raises(
        ValueError, match=r"warm_start can only be used where `y` has the same classes.*\[0 1 9\]"
    ):
        model.set_params(warm_start=True).fit(X, np.where(y == 2, 9, y))
    with pytest.raises(ValueError, match="warm_start can only be used"):
        model.fit(X[y < 2], y[y < 2])  # a subset of the classes, too
    with pytest.raises(ValueError, match=r"`y` has classes not in `self.classes_`.*'y' has \[0 1 9\]"):
        model.partial_fit(X, np.where(y == 2, 9, y))
    with pytest.raises(ValueError, match="Unknown label type"):
        MLPClassifier().fit(X, np.linspace(0, 1, 120))


def test_sparse_input_trains_like_the_dense_array():
    scipy_sparse = pytest.importorskip("scipy.sparse")
    X, y = blobs()
    X[np.abs(X) < 1.0] = 0.0
    dense = fit_quietly(MLPClassifier(max_iter=5, **SMALL), X, y)
    for sparse in (scipy_sparse.csr_matrix(X), scipy_sparse.csc_matrix(X)):
        model = fit_quietly(MLPClassifier(max_iter=5, **SMALL), sparse, y)
        assert_same_params(model, dense)
        np.testing.assert_array_equal(model.predict_proba(sparse), dense.predict_proba(X))


# ---- stopping, warnings, partial_fit and warm_start ----------------------------------------------------
def test_max_iter_without_convergence_warns():
    X, y = blobs()
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\) reached"):
        MLPClassifier(max_iter=3, **SMALL).fit(X, y)
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        MLPClassifier(solver="lbfgs", max_iter=2, random_state=0).fit(X, y)


def test_fit_stops_by_scikit_learns_rule():
    X, y = blobs()
    model = MLPClassifier(max_iter=500, tol=0.5, n_iter_no_change=2, **SMALL).fit(X, y)
    # tol=0.5 cannot be met after the first epoch: the count passes n_iter_no_change=2 at epoch 4
    assert model.n_iter_ == 4 and len(model.loss_curve_) == 4
    assert model.validation_scores_ is None and model.best_loss_ == min(model.loss_curve_)


def test_partial_fit_epochs_are_fit_epochs():
    X, y = blobs()
    labels = np.array(["x", "y", "z"])[y]
    reference = fit_quietly(MLPClassifier(max_iter=3, **LONG), X, labels)
    model = MLPClassifier(**LONG)
    for _ in range(3):
        model.partial_fit(X, labels, classes=["z", "y", "x"])
    assert_same_params(model, reference)
    assert model.loss_curve_ == reference.loss_curve_ and model.n_iter_ == 1 and model.t_ == 360
    # later calls may see a subset of the classes
    model.partial_fit(X[y == 0], labels[y == 0])
    assert len(model.loss_curve_) == 4


def test_partial_fit_errors():
    X, y = blobs()
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        MLPClassifier().partial_fit(X, y)
    model = MLPClassifier(**SMALL).partial_fit(X, y, classes=[0, 1, 2, 3])
    assert model.predict_proba(X).shape == (120, 4)
    with pytest.raises(ValueError, match=r"`classes=\[0, 1, 2\]` is not the same as on last call"):
        model.partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match=r"`y` has classes not in `self\.classes_`"):
        model.partial_fit(X, np.full(120, 5))
    with pytest.raises(ValueError, match="X has 5 features"):
        model.partial_fit(X[:, :5], y)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    with pytest.raises(AttributeError, match=r"has no attribute .partial_fit."):
        MLPClassifier(solver="lbfgs").partial_fit(X, y)


@pytest.mark.parametrize("kind", ["MLPClassifier", "MLPRegressor"])
def test_lbfgs_has_no_partial_fit_by_the_one_check_of_the_base(kind):
    from mlp import estimators

    estimator_class = getattr(estimators, kind)
    assert "_check_solver" not in vars(estimator_class)  # the base's check, not a copy of it
    estimator = estimator_class(solver="lbfgs")
    assert not hasattr(estimator, "partial_fit")
    X, y = blobs()
    says = "partial_fit is only available for stochastic optimizers. lbfgs is not stochastic."
    with pytest.raises(AttributeError, match=re.escape(says)):
        estimator._fit(X, y, incremental=True)  # what partial_fit runs: the same check


def test_warm_start_continues_from_the_weights():
    X, y = blobs()
    # Plain SGD keeps no optimizer state, so 3 + 2 warm-started epochs are exactly 5 epochs.
    options = dict(LONG, solver="sgd", momentum=0.0, learning_rate_init=0.01)
    reference = fit_quietly(MLPClassifier(max_iter=5, **options), X, y)
    model = fit_quietly(MLPClassifier(max_iter=3, **options), X, y)
    fit_quietly(model.set_params(warm_start=True, max_iter=2), X, y)
    assert_same_params(model, reference)
    assert model.n_iter_ == 2 and model.t_ == 600 and model.loss_curve_ == reference.loss_curve_
    # without warm_start, fit starts over
    fit_quietly(model.set_params(warm_start=False, max_iter=5), X, y)
    assert_same_params(model, reference)
    assert model.n_iter_ == 5 and len(model.loss_curve_) == 5


def test_early_stopping_keeps_the_best_validation_score():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 10)), rng.integers(0, 2, size=200)  # noise: the validation score soon stalls
    options = dict(
        hidden_layer_sizes=(64,),
        early_stopping=True,
        validation_fraction=0.3,
        learning_rate_init=0.01,
        random_state=0,
    )
    model = MLPClassifier(max_iter=300, n_iter_no_change=5, **options).fit(X, y)
    scores = model.validation_scores_
    best = int(np.argmax(scores)) + 1  # the first epoch with the highest score
    assert model.best_loss_ is None and model.best_validation_score_ == max(scores)
    assert len(scores) == len(model.loss_curve_) == model.n_iter_ < 300
    # the kept weights are those of the best epoch: the same as training exactly that long
    stopped_there = fit_quietly(MLPClassifier(max_iter=best, n_iter_no_change=1000, **options), X, y)
    assert_same_params(model, stopped_there)


def test_the_early_stopping_split_keeps_the_class_proportions():
    X, _ = blobs(n=100)
    y = np.array([0] * 90 + [1] * 10)
    model = fit_quietly(
        MLPClassifier(early_stopping=True, validation_fraction=0.2, max_iter=1, **SMALL), X, y
    )
    order = model._holdout_order(y, 20)
    assert sorted(order.tolist()) == list(range(100))
    assert np.bincount(y[order[:20]]).tolist() == [
        18,
        2,
    ]  # 90 % and 10 %, as in scikit-learn's stratified split
    with pytest.raises(ValueError, match="least populated class"):
        MLPClassifier(early_stopping=True).fit(X[:30], np.r_[np.zeros(29), 1])


def test_early_stopping_needs_a_validation_set():
    with pytest.raises(ValueError, match=r"With n_samples=1, test_size=0\.1 and train_size=None"):
        MLPClassifier(early_stopping=True).fit([[1.0, 2.0]], [0])


def test_invscaling_and_adaptive_follow_scikit_learn():
    X, y = blobs()
    model = fit_quietly(
        MLPClassifier(
            solver="sgd", learning_rate="invscaling", power_t=0.5, max_iter=3, learning_rate_init=0.1, **SMALL
        ),
        X,
        y,
    )
    assert model._trainer.schedule.lr(0, 0) == pytest.approx(0.1 / math.sqrt(3 * 120 + 1))
    # "adaptive" divides the rate by 5 instead of stopping, until it falls below 1e-6
    model = MLPClassifier(
        solver="sgd", learning_rate="adaptive", tol=10.0, n_iter_no_change=1, max_iter=500, **SMALL
    ).fit(X, y)
    assert model._trainer.schedule.current <= 1e-6 and model.n_iter_ < 500
    # the other solvers keep the rate constant, as in scikit-learn
    model = fit_quietly(MLPClassifier(learning_rate="invscaling", max_iter=2, **SMALL), X, y)
    assert model._trainer.schedule.lr(1, 0) == 0.001


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs", "adamw", "rmsprop", "nesterov"])
def test_every_solver_learns(solver):
    X, y = blobs()
    model = fit_quietly(MLPClassifier(solver=solver, max_iter=100, learning_rate_init=0.01, **SMALL), X, y)
    assert model.score(X, y) > 0.9


def test_verbose_prints_epochs(capsys):
    X, y = blobs(n=30)
    fit_quietly(MLPClassifier(max_iter=4, verbose=2, **LONG), X, y)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[-1].startswith("Iteration 4, loss = ")  # scikit-learn's lines


# ---- pickling, clone, meta-estimators ---------------------------------------------------------------
def test_pickle_keeps_predictions_and_optimizer_state():
    X, y = blobs()
    labels = np.array(["x", "y", "z"])[y]
    model = fit_quietly(MLPClassifier(max_iter=5, **SMALL), X, labels)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(copy.deepcopy(model).predict(X), model.predict(X))
    assert clone(model).get_params() == model.get_params() and not hasattr(clone(model), "model_")
    # the optimizer state, step count and random stream survive: training goes on identically
    model.partial_fit(X, labels)
    restored.partial_fit(X, labels)
    assert_same_params(restored, model)


class _Communicator:
    """Stands for an mpi4py communicator made by Dup or Split, which cannot be copied or pickled."""

    def __deepcopy__(self, memo):
        raise ValueError("cannot serialize 'mpi4py.MPI.Intracomm' instance")

    def __reduce__(self):
        raise ValueError("cannot serialize 'mpi4py.MPI.Intracomm' instance")


def test_comm_is_a_parameter_that_clone_shares_and_pickles_leave_out():
    comm = _Communicator()
    estimator = MLPClassifier(max_iter=2, comm=comm, **SMALL)
    assert estimator.get_params()["comm"] is comm  # stored as given, checked by fit
    twin = clone(estimator)
    assert twin.comm is comm and estimator.comm is comm and twin is not estimator
    assert {k: v for k, v in twin.get_params().items() if k != "comm"} == {
        k: v for k, v in estimator.get_params().items() if k != "comm"
    }
    assert pickle.loads(pickle.dumps(estimator)).comm is None and estimator.comm is comm
    X, y = blobs()
    with pytest.raises(
        TypeError, match=re.escape("comm must be an mpi4py communicator such as MPI.COMM_WORLD, got str")
    ):
        MLPClassifier(comm="world").fit(X, y)


def test_pipeline_grid_search_and_cross_validation():
    X, y = blobs(n=150)
    X = X * 50 + 200  # badly scaled on purpose: the scaler in front matters
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=50, learning_rate_init=0.01, **SMALL))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert pipe.fit(X, y).score(X, y) > 0.9
        scores = cross_val_score(pipe, X, y, cv=3)
        assert scores.shape == (3,) and scores.min() > 0.8
        search = GridSearchCV(
            pipe,
            {"mlpclassifier__hidden_layer_sizes": [(4,), (16, 8)], "mlpclassifier__alpha": [1e-4, 1e-2]},
            cv=3,
        )
        search.fit(X, y)
    assert search.best_score_ > 0.8
    assert search.best_estimator_[-1].hidden_layer_sizes in [(4,), (16, 8)]
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
    options = dict(max_iter=20, random_state=0)
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
    model = MLPClassifier(max_iter=20, random_state=0).fit(put(X.astype(np.float32), xp, device), names)
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
    model = MLPClassifier(max_iter=3, **SMALL).fit(X_dev, y_cpu)
    assert model.classes_.device == xps.Device("device1")
    assert model.predict(X_dev).device == xps.Device("device1")


def test_array_api_predict_needs_the_fit_namespace(dispatch):
    xps = pytest.importorskip("array_api_strict")
    X, y = blobs()
    model = MLPClassifier(max_iter=2, **SMALL).fit(xps.asarray(X), y)
    with pytest.raises(ValueError, match=r"MLPClassifier.predict_proba\(\) must use the same namespace"):
        model.predict_proba(X)
    with pytest.raises(ValueError, match="must use the same namespace and the same device"):
        model.predict(xps.asarray(X, device=xps.Device("device1")))


def test_pickle_array_api_model(dispatch):
    xps = pytest.importorskip("array_api_strict")
    X, y = blobs()
    X_dev = xps.asarray(X, device=xps.Device("device1"))
    model = MLPClassifier(max_iter=3, **SMALL).fit(X_dev, y)
    restored = pickle.loads(pickle.dumps(model))
    assert restored.predict_proba(X_dev).device == xps.Device("device1")
    np.testing.assert_array_equal(
        to_numpy(restored.predict_proba(X_dev)), to_numpy(model.predict_proba(X_dev))
    )


# ---- scikit-learn stays optional ------------------------------------------------------------------
def run_python(code):
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
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
            import mlp.estimators
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
    assert lines and all(
        'pip install "mlp-from-scratch[sklearn]"' in line and "scikit-learn" in line for line in lines
    )


def test_lazy_export_from_the_package():
    if "__getattr__" not in vars(mlp):
        pytest.skip("mlp/__init__.py has no lazy __getattr__ for MLPClassifier yet")
    assert mlp.MLPClassifier is MLPClassifier
    with pytest.raises(AttributeError):
        _ = mlp.NoSuchThing


def test_predict_log_proba_of_an_mse_classifier_is_the_log_of_its_probabilities():
    """It once passed the logits where X was expected (a wrong answer, or a shape error)."""
    X, y = blobs(n=90, k=3)
    model = fit_quietly(MLPClassifier(loss="mse", max_iter=30, **SMALL), X, y)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(model.predict_log_proba(X), np.log(proba), rtol=1e-10)


# ---- the model file of a fitted estimator; warm_start's network; the memory check -----------------------
@pytest.mark.parametrize(
    "labels", [np.array([3, 7]), np.array([3, 7, 11]), np.array([3.0, 7.0]), np.array([False, True])]
)
def test_the_saved_model_predicts_the_estimators_labels(tmp_path, labels):
    """A binary classifier (one logistic output) once saved `classes: null`: mlp.load(p).predict gave
    [[1]] where the estimator gave 7. The file holds the labels; two classes as the equivalent softmax."""
    X, y = blobs(n=90, k=len(labels))
    model = fit_quietly(MLPClassifier(max_iter=30, **SMALL), X, labels[y])
    loaded = mlp.load(model.model_.save(tmp_path / "m.npz"))
    assert loaded.predict(X).tolist() == model.predict(X).tolist()
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), rtol=1e-12, atol=1e-12)
    assert loaded.score(X, labels[y]) == model.score(X, labels[y])


@pytest.mark.parametrize(
    "labels, stores",
    [
        (np.array(["cat", "dog"]), "integer class labels only"),
        (np.array(["a", "b", "c"]), "integer class labels only"),
        (
            np.array([0, 2**63], np.uint64),
            r"class labels as int64, from -2\*\*63 to 2\*\*63 - 1, and these are",
        ),
    ],
)
def test_labels_a_model_file_cannot_hold_are_refused_at_save(tmp_path, labels, stores):
    X, y = blobs(n=90, k=len(labels))
    model = fit_quietly(MLPClassifier(max_iter=5, **SMALL), X, labels[y])
    with pytest.raises(
        ValueError, match=rf"cannot be saved: an mlp model file stores {stores}.*LabelEncoder"
    ):
        model.model_.save(tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()
    assert pickle.loads(pickle.dumps(model)).predict(X).tolist() == model.predict(X).tolist()


def test_a_multilabel_model_file_predicts_the_indicator_matrix(tmp_path):
    X, y = blobs(n=90, k=3)
    Y = np.stack([y == 0, y != 1], axis=1).astype(np.int64)
    model = fit_quietly(MLPClassifier(max_iter=30, **SMALL), X, Y)
    loaded = mlp.load(model.model_.save(tmp_path / "m.npz"))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize(
    "name, value, old",
    [
        ("hidden_layer_sizes", (9,), "(8,)"),
        ("hidden_layer_sizes", (8, 8), "(8,)"),
        ("activation", "tanh", "'relu'"),
        ("loss", "mse", "'cross_entropy'"),
        ("dtype", "float32", "'float64'"),
    ],
)
def test_warm_start_refuses_a_changed_network(name, value, old):
    """scikit-learn 1.9 keeps the old network silently (and trains it with the new activation)."""
    X, y = blobs()
    model = fit_quietly(MLPClassifier(max_iter=2, warm_start=True, **SMALL), X, y)
    before = [to_numpy(W).copy() for W in model.coefs_]
    model.set_params(**{name: value})
    message = rf"{name} changed since the network was fitted \({re.escape(old)} then, {re.escape(repr(value))} now\)"
    with pytest.raises(ValueError, match=message + ".*set warm_start=False"):
        model.fit(X, y)
    for W, W_before in zip(model.coefs_, before, strict=True):
        np.testing.assert_array_equal(W, W_before)  # refused before training
    with pytest.raises(ValueError, match=message + r".*call fit\(\)"):
        model.partial_fit(X, y)
    fit_quietly(model.set_params(warm_start=False), X, y)  # a new network
    fit_quietly(model.set_params(warm_start=True), X, y)  # which warm_start then continues


def test_warm_start_takes_the_same_network_under_another_name():
    X, y = blobs()
    model = fit_quietly(MLPClassifier(activation="logistic", max_iter=2, warm_start=True, **SMALL), X, y)
    fit_quietly(model.set_params(activation="sigmoid", hidden_layer_sizes=[8], dtype="float64"), X, y)
    assert model.n_iter_ == 2


def test_the_regressor_refuses_a_changed_network():
    from mlp.estimators import MLPRegressor

    X, y = blobs()
    model = fit_quietly(MLPRegressor(max_iter=2, warm_start=True, **SMALL), X, y.astype(float))
    with pytest.raises(ValueError, match=r"activation changed since the network was fitted"):
        model.set_params(activation="tanh").fit(X, y.astype(float))


def test_the_estimators_share_fits_memory_check(monkeypatch):
    """Once a raw numpy MemoryError (or the OOM killer) for a network that cannot fit, and
    MLP_MEMORY_LIMIT ignored: now mlp.fit's check, with its message, before anything is allocated."""
    from mlp._memory import MemoryLimitError
    from mlp.estimators import MLPRegressor

    X, y = blobs(n=40)
    with pytest.raises(MemoryLimitError, match=r"training a 6-100000-100000-3 network .*hidden_layer_sizes"):
        MLPClassifier(hidden_layer_sizes=(10**5, 10**5)).fit(X, y)
    monkeypatch.setenv("MLP_MEMORY_LIMIT", "20000")
    with pytest.raises(MemoryLimitError) as from_fit:
        mlp.fit(X, y, hidden_sizes=[100], batch_size=32, optimizer="adam", epochs=1, verbose=0)
    with pytest.raises(MemoryLimitError) as from_estimator:
        MLPClassifier(hidden_layer_sizes=(100,), batch_size=32, dtype="float32").fit(X, y)
    # the same estimate and words; only the way out names the estimator's parameters
    assert str(from_estimator.value).split("; ")[0] == str(from_fit.value).split("; ")[0]
    assert "use smaller hidden_layer_sizes or a smaller batch_size" in str(from_estimator.value)
    with pytest.raises(ValueError, match=r"training a 6-100-1 network .* only 0.0 GiB is available"):
        MLPRegressor(hidden_layer_sizes=(100,)).fit(X, y)
    with pytest.raises(MemoryLimitError, match="MLP_MEMORY_LIMIT"):
        MLPClassifier(hidden_layer_sizes=(100,), solver="lbfgs").fit(X, y)
    monkeypatch.setenv("MLP_MEMORY_LIMIT", str(1 << 30))
    model = fit_quietly(MLPClassifier(hidden_layer_sizes=(100,), batch_size=32, max_iter=1), X, y)
    # a warm-started fit makes a new optimizer: checked again
    monkeypatch.setenv("MLP_MEMORY_LIMIT", "20000")
    with pytest.raises(MemoryLimitError):
        model.set_params(warm_start=True).fit(X, y)


# ---- sample and class weights ------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_class_weight_composes_with_sample_weight_as_scikit_learns_classifiers(solver):
    from sklearn.utils.class_weight import compute_sample_weight

    X, y = blobs()
    w = np.linspace(0.5, 2.0, len(y))
    settings = dict(SMALL, solver=solver, max_iter=20)
    for class_weight in ("balanced", {0: 1.0, 1: 3.0, 2: 0.5}):
        by_class = fit_quietly(MLPClassifier(class_weight=class_weight, **settings), X, y, sample_weight=w)
        by_row = fit_quietly(
            MLPClassifier(**settings), X, y, sample_weight=w * compute_sample_weight(class_weight, y)
        )
        np.testing.assert_allclose(by_class.predict_proba(X), by_row.predict_proba(X), rtol=1e-12)
        unweighted = fit_quietly(MLPClassifier(**settings), X, y)
        assert not np.allclose(by_class.predict_proba(X), unweighted.predict_proba(X))


def test_equal_weights_train_as_none():
    X, y = blobs()
    plain = fit_quietly(MLPClassifier(max_iter=5, **SMALL), X, y)
    weighted = fit_quietly(MLPClassifier(max_iter=5, **SMALL), X, y, sample_weight=np.full(len(y), 3.0))
    assert np.array_equal(plain.predict_proba(X), weighted.predict_proba(X))


def test_class_weight_is_checked_and_balanced_is_refused_by_partial_fit():
    from sklearn.linear_model import SGDClassifier

    X, y = blobs()
    with pytest.raises(ValueError, match="The 'class_weight' parameter of MLPClassifier must be"):
        MLPClassifier(class_weight="even").fit(X, y)
    with pytest.raises(ValueError) as theirs:
        SGDClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError) as ours:
        MLPClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])
    assert str(ours.value) == str(theirs.value)


def test_early_stopping_split_keeps_the_weights_with_their_rows():
    X, y = blobs()
    X[:, 0] = np.arange(len(y))  # each row names itself
    w = np.arange(len(y)) + 1.0
    model = fit_quietly(MLPClassifier(early_stopping=True, max_iter=3, **SMALL), X, y, sample_weight=w)
    p = model._check_params()
    X_train, _, w_train, X_val, _, w_val = model._split_validation(
        X, y, w, p, xp=model.model_._xp, device=model.model_.device
    )
    assert len(w_val) == 12 and len(w_train) == 108
    np.testing.assert_array_equal(X_train[:, 0] + 1.0, w_train)
    np.testing.assert_array_equal(X_val[:, 0] + 1.0, w_val)


def test_weighted_validation_scores_are_scikit_learns():
    from sklearn.metrics import accuracy_score, r2_score

    from mlp.estimators import MLPRegressor

    X, y = blobs()
    w = np.random.default_rng(0).uniform(0.1, 3.0, len(y))
    clf = fit_quietly(MLPClassifier(max_iter=2, **SMALL), X, y)
    assert clf._validation_score(X, y, w) == pytest.approx(accuracy_score(y, clf.predict(X), sample_weight=w))
    targets = np.stack([y * 1.0, X[:, 0]], axis=1)
    regr = fit_quietly(MLPRegressor(max_iter=2, **SMALL), X, targets)
    assert regr._validation_score(X, targets, w) == pytest.approx(
        r2_score(targets, regr.predict(X), sample_weight=w), rel=1e-12
    )
