"""Existing scikit-learn code runs unchanged after swapping the import.

Each snippet below is ordinary scikit-learn code written against `sklearn.neural_network`. The test
runs it as written, then again with only the import line changed to `from mlp import ...`, and
asserts that both run and that our score is comparable (never worse than scikit-learn's by more than
the snippet's margin; the margins are wide enough for the different initialisations of the two
libraries, narrow enough to catch a parameter that is silently ignored)."""

import textwrap
import warnings

import pytest

pytest.importorskip("sklearn", reason="scikit-learn is the optional extra mlp-from-scratch[sklearn]")
from sklearn.exceptions import ConvergenceWarning

SKLEARN_IMPORT = "from sklearn.neural_network import"
OURS_IMPORT = "from mlp import"

SNIPPETS = {
    # scikit-learn's user guide example, word for word
    "user_guide_lbfgs": (
        """
        from sklearn.neural_network import MLPClassifier
        X = [[0., 0.], [1., 1.]]
        y = [0, 1]
        clf = MLPClassifier(solver='lbfgs', alpha=1e-5, hidden_layer_sizes=(5, 2), random_state=1)
        clf.fit(X, y)
        predicted = clf.predict([[2., 2.], [-1., -2.]]).tolist()
        shapes = [coef.shape for coef in clf.coefs_]
        proba = clf.predict_proba([[2., 2.], [-1., -2.]])
        score = float(clf.score(X, y))
        assert shapes == [(2, 5), (5, 2), (2, 1)], shapes
        assert proba.shape == (2, 2)
    """,
        0.0,
    ),
    "classifier_early_stopping": (
        """
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
        from sklearn.neural_network import MLPClassifier
        X, y = load_digits(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, random_state=0)
        clf = MLPClassifier(hidden_layer_sizes=(64,), early_stopping=True, validation_fraction=0.1,
                            n_iter_no_change=5, max_iter=300, random_state=1).fit(X_train, y_train)
        score = clf.score(X_test, y_test)
        assert clf.best_loss_ is None and clf.best_validation_score_ == max(clf.validation_scores_)
        assert len(clf.loss_curve_) == clf.n_iter_ == len(clf.validation_scores_) < 300
        assert clf.t_ == clf.n_iter_ * round(0.9 * len(X_train))
    """,
        0.03,
    ),
    "regressor_make_regression": (
        """
        from sklearn.datasets import make_regression
        from sklearn.model_selection import train_test_split
        from sklearn.neural_network import MLPRegressor
        X, y = make_regression(n_samples=400, n_features=8, noise=5.0, random_state=0)
        X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=1)
        regr = MLPRegressor(random_state=1, max_iter=2000, tol=0.1).fit(X_train, y_train)
        assert regr.predict(X_test[:2]).shape == (2,)
        score = regr.score(X_test, y_test)
        assert regr.n_outputs_ == 1 and regr.out_activation_ == "identity" and regr.n_layers_ == 3
    """,
        0.05,
    ),
    "grid_search_alpha_and_layers": (
        """
        from sklearn.datasets import load_iris
        from sklearn.model_selection import GridSearchCV
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        X, y = load_iris(return_X_y=True)
        pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=500, random_state=0))
        grid = {"mlpclassifier__alpha": [1e-4, 1e-1], "mlpclassifier__hidden_layer_sizes": [(10,), (20, 10)]}
        search = GridSearchCV(pipe, grid, cv=3).fit(X, y)
        score = search.best_score_
        assert search.best_params_["mlpclassifier__alpha"] in (1e-4, 1e-1)
    """,
        0.05,
    ),
    "pipeline_predict_proba_binary": (
        """
        from sklearn.datasets import load_breast_cancer
        from sklearn.model_selection import train_test_split
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler
        X, y = load_breast_cancer(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
        model = Pipeline([("scale", StandardScaler()),
                          ("mlp", MLPClassifier(hidden_layer_sizes=(30,), max_iter=300, random_state=0))])
        model.fit(X_train, y_train)
        proba = model.predict_proba(X_test)
        assert proba.shape == (len(X_test), 2) and abs(proba.sum(axis=1) - 1).max() < 1e-6
        assert model.named_steps["mlp"].n_outputs_ == 1
        score = model.score(X_test, y_test)
    """,
        0.03,
    ),
    "partial_fit_loop": (
        """
        import numpy as np
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
        from sklearn.neural_network import MLPClassifier
        X, y = load_digits(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, random_state=0)
        clf = MLPClassifier(hidden_layer_sizes=(50,), random_state=0)
        classes = np.unique(y)
        for epoch in range(10):
            for start in range(0, len(X_train), 100):
                clf.partial_fit(X_train[start:start + 100], y_train[start:start + 100], classes=classes)
        score = clf.score(X_test, y_test)
    """,
        0.04,
    ),
    "lbfgs_small_set": (
        """
        from sklearn.datasets import load_iris
        from sklearn.neural_network import MLPClassifier
        from sklearn.preprocessing import StandardScaler
        X, y = load_iris(return_X_y=True)
        X = StandardScaler().fit_transform(X)
        clf = MLPClassifier(solver="lbfgs", hidden_layer_sizes=(10,), alpha=1e-3, max_iter=500, random_state=0)
        clf.fit(X, y)
        score = clf.score(X, y)
        assert clf.n_iter_ <= 500 and clf.loss_ < 0.2
    """,
        0.03,
    ),
    "sgd_momentum_adaptive_regression": (
        """
        from sklearn.datasets import make_friedman1
        from sklearn.neural_network import MLPRegressor
        X, y = make_friedman1(n_samples=1000, random_state=0)
        regr = MLPRegressor(hidden_layer_sizes=(50,), solver="sgd", learning_rate="adaptive",
                            learning_rate_init=0.01, momentum=0.9, nesterovs_momentum=True,
                            max_iter=300, random_state=0).fit(X[:800], y[:800])
        score = regr.score(X[800:], y[800:])
    """,
        0.1,
    ),
    "multilabel_and_multioutput": (
        """
        from sklearn.datasets import make_multilabel_classification, make_regression
        from sklearn.neural_network import MLPClassifier, MLPRegressor
        X, Y = make_multilabel_classification(n_samples=300, n_classes=4, random_state=0)
        clf = MLPClassifier(hidden_layer_sizes=(50,), max_iter=500, random_state=0).fit(X, Y)
        assert clf.predict(X).shape == Y.shape and clf.predict_proba(X).shape == Y.shape
        assert clf.out_activation_ == "logistic"
        Xr, Yr = make_regression(n_samples=300, n_features=5, n_targets=3, random_state=0)
        regr = MLPRegressor(solver="lbfgs", max_iter=500, random_state=0).fit(Xr, Yr)
        assert regr.predict(Xr).shape == (300, 3)
        score = (clf.score(X, Y) + regr.score(Xr, Yr)) / 2
    """,
        0.1,
    ),
    "pickle_round_trip": (
        """
        import pickle
        from sklearn.datasets import load_wine
        from sklearn.neural_network import MLPClassifier
        from sklearn.preprocessing import scale
        X, y = load_wine(return_X_y=True)
        X = scale(X)
        clf = MLPClassifier(max_iter=300, random_state=0).fit(X, y)
        restored = pickle.loads(pickle.dumps(clf))
        assert (restored.predict(X) == clf.predict(X)).all()
        assert (restored.predict_proba(X) == clf.predict_proba(X)).all()
        score = restored.score(X, y)
    """,
        0.03,
    ),
    "weighted_fits_side_by_side": (
        """
        import numpy as np
        from sklearn.datasets import load_breast_cancer, load_wine
        from sklearn.model_selection import train_test_split
        from sklearn.neural_network import MLPClassifier
        from sklearn.preprocessing import StandardScaler
        X, y = load_breast_cancer(return_X_y=True)
        X = StandardScaler().fit_transform(X)
        w = np.where(y == 0, 5.0, 1.0)
        X_train, X_test, y_train, y_test, w_train, w_test = train_test_split(X, y, w, stratify=y, random_state=0)
        clf = MLPClassifier(hidden_layer_sizes=(10,), solver="lbfgs", alpha=3.0, max_iter=1000, tol=1e-8,
                            random_state=0).fit(X_train, y_train, sample_weight=w_train)
        cancer = clf.score(X_test, y_test, sample_weight=w_test)
        X, y = load_wine(return_X_y=True)
        X = StandardScaler().fit_transform(X)
        w = np.random.default_rng(1).uniform(0.2, 3.0, len(y))
        clf = MLPClassifier(hidden_layer_sizes=(10,), max_iter=300, random_state=0).fit(X, y, sample_weight=w)
        wine = clf.score(X, y, sample_weight=w)
        score = (cancer + wine) / 2
    """,
        0.01,
    ),
    "metadata_routing_pipeline_grid_search": (
        """
        import numpy as np
        import sklearn
        from sklearn.datasets import load_iris
        from sklearn.model_selection import GridSearchCV
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler
        X, y = load_iris(return_X_y=True)
        w = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
        with sklearn.config_context(enable_metadata_routing=True):
            mlp = MLPClassifier(max_iter=300, random_state=0)
            mlp.set_fit_request(sample_weight=True).set_score_request(sample_weight=True)
            pipe = Pipeline([("scale", StandardScaler().set_fit_request(sample_weight=False)), ("mlp", mlp)])
            search = GridSearchCV(pipe, {"mlp__alpha": [1e-4, 1e-1]}, cv=3).fit(X, y, sample_weight=w)
        score = search.best_score_
        assert search.best_params_["mlp__alpha"] in (1e-4, 1e-1)
    """,
        0.05,
    ),
    "weighted_early_stopping_and_partial_fit": (
        """
        import numpy as np
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
        from sklearn.neural_network import MLPClassifier, MLPRegressor
        X, y = load_digits(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, random_state=0)
        w = np.where(y_train % 2 == 0, 2.0, 1.0)
        clf = MLPClassifier(hidden_layer_sizes=(64,), early_stopping=True, n_iter_no_change=5,
                            random_state=1).fit(X_train, y_train, sample_weight=w)
        assert clf.best_validation_score_ == max(clf.validation_scores_)
        stream = MLPClassifier(hidden_layer_sizes=(50,), random_state=0)
        for epoch in range(5):
            for start in range(0, len(X_train), 100):
                rows = slice(start, start + 100)
                stream.partial_fit(X_train[rows], y_train[rows], sample_weight=w[rows], classes=np.unique(y))
        regr = MLPRegressor(hidden_layer_sizes=(20,), max_iter=50, random_state=0)
        regr.partial_fit(X_train, y_train.astype(float), sample_weight=w)
        score = (clf.score(X_test, y_test) + stream.score(X_test, y_test)) / 2
    """,
        0.04,
    ),
    "start_from_known_weights": (
        """
        import numpy as np
        from sklearn.datasets import load_iris
        from sklearn.neural_network import MLPClassifier
        from sklearn.preprocessing import StandardScaler
        X, y = load_iris(return_X_y=True)
        X = StandardScaler().fit_transform(X)
        teacher = MLPClassifier(hidden_layer_sizes=(8,), max_iter=500, random_state=0).fit(X, y)
        student = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, warm_start=True, random_state=1).fit(X, y)
        student.coefs_ = [c.copy() for c in teacher.coefs_]
        student.intercepts_ = [b.copy() for b in teacher.intercepts_]
        assert np.allclose(student.predict_proba(X), teacher.predict_proba(X))
        student.fit(X, y)  # warm start goes on from the assigned weights
        score = student.score(X, y)
    """,
        0.03,
    ),
    "never_stop_early_and_verbose": (
        """
        import contextlib
        import io
        import numpy as np
        from sklearn.datasets import load_iris
        from sklearn.neural_network import MLPClassifier
        X, y = load_iris(return_X_y=True)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            clf = MLPClassifier(max_iter=30, n_iter_no_change=np.inf, tol=10.0, random_state=0).fit(X, y)
            MLPClassifier(max_iter=30, early_stopping=True, n_iter_no_change=2, tol=10.0, verbose=True,
                          random_state=0).fit(X, y)
        assert clf.n_iter_ == 30
        lines = out.getvalue().splitlines()
        assert lines[0].startswith("Iteration 1, loss = ") and lines[1].startswith("Validation score: ")
        assert lines[-1].startswith("Validation score did not improve more than tol=10.000000 for 2 "
                                    "consecutive epochs. Stopping."), lines[-1]
        score = clf.score(X, y)
    """,
        0.05,
    ),
    "diverging_fit": (
        """
        import numpy as np
        from sklearn.datasets import make_regression
        from sklearn.neural_network import MLPRegressor
        X, y = make_regression(n_samples=200, n_features=5, random_state=0)
        settings = dict(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=1.0, max_iter=50, random_state=0)
        with np.errstate(all="ignore"):  # the overflows on the way to infinity are the point here
            try:
                MLPRegressor(**settings).fit(X, y * 1e3)
                raise AssertionError("a diverging fit must raise")
            except ValueError as error:
                assert str(error).startswith("Solver produced non-finite parameter weights."), error
            regr = MLPRegressor(early_stopping=True, **settings).fit(X, y * 1e3)  # keeps the best weights
        assert all(np.isfinite(c).all() for c in regr.coefs_)
        score = 0.0
    """,
        0.0,
    ),
}


def run_snippet(source):
    """Execute a snippet in a fresh namespace (ConvergenceWarnings allowed, as in any script); its
    variables come back."""
    namespace = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        exec(compile(textwrap.dedent(source), "<snippet>", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_scikit_learn_code_runs_unchanged_after_swapping_the_import(name):
    source, margin = SNIPPETS[name]
    assert source.count(SKLEARN_IMPORT) == 1
    theirs = run_snippet(source)
    ours = run_snippet(source.replace(SKLEARN_IMPORT, OURS_IMPORT))
    assert ours["score"] >= theirs["score"] - margin, (ours["score"], theirs["score"])


def test_the_swap_really_uses_this_library():
    source = SNIPPETS["user_guide_lbfgs"][0]
    ours = run_snippet(source.replace(SKLEARN_IMPORT, OURS_IMPORT))
    assert type(ours["clf"]).__module__.startswith("mlp.")
    assert ours["predicted"] == [1, 0]


# A value scikit-learn's MLPClassifier refuses for each of its parameters (MLPRegressor's are the same).
REFUSED = {
    "hidden_layer_sizes": (4, 0),
    "activation": "swish",
    "solver": "newton",
    "alpha": -1.0,
    "batch_size": 0,
    "learning_rate": "linear",
    "learning_rate_init": 0.0,
    "power_t": -1.0,
    "max_iter": 0,
    "shuffle": "yes",
    "random_state": -1,
    "tol": -1.0,
    "verbose": -1,
    "warm_start": "yes",
    "momentum": 1.5,
    "nesterovs_momentum": "yes",
    "early_stopping": "yes",
    "validation_fraction": 1.0,
    "beta_1": 1.0,
    "beta_2": -0.5,
    "epsilon": 0.0,
    "n_iter_no_change": 0,
    "max_fun": 0,
}


@pytest.mark.parametrize("parameter", sorted(REFUSED))
def test_a_value_scikit_learn_refuses_is_refused_with_an_error_its_users_catch(parameter):
    """scikit-learn raises InvalidParameterError, a ValueError and a TypeError; code catching ValueError
    (the usual) catches ours too, and ours names the parameter."""
    from sklearn.neural_network import MLPClassifier as Theirs

    from mlp import MLPClassifier as Ours

    X, y = [[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]], [0, 1, 1, 0]
    with pytest.raises(ValueError):
        Theirs(**{parameter: REFUSED[parameter]}).fit(X, y)
    with pytest.raises(ValueError, match=parameter):
        Ours(**{parameter: REFUSED[parameter]}).fit(X, y)


def test_every_parameter_of_scikit_learn_has_a_refused_value():
    import inspect

    from sklearn.neural_network import MLPClassifier as Theirs

    assert sorted(REFUSED) == sorted(set(inspect.signature(Theirs).parameters))


def test_weighted_scores_are_within_001_of_scikit_learns_on_each_data_set():
    source = SNIPPETS["weighted_fits_side_by_side"][0]
    theirs = run_snippet(source)
    ours = run_snippet(source.replace(SKLEARN_IMPORT, OURS_IMPORT))
    for name in ("cancer", "wine"):
        assert abs(ours[name] - theirs[name]) <= 0.01, (name, ours[name], theirs[name])


def test_weighted_lbfgs_minimises_scikit_learns_objective():
    """Started from scikit-learn's weighted optimum (assigned coefs_ and intercepts_), our weighted lbfgs
    finds it optimal too: the same loss, the same predictions."""
    import numpy as np
    from sklearn.datasets import load_diabetes
    from sklearn.neural_network import MLPRegressor as Theirs
    from sklearn.preprocessing import StandardScaler

    from mlp import MLPRegressor as Ours

    X, y = load_diabetes(return_X_y=True)
    X, y = StandardScaler().fit_transform(X), (y - y.mean()) / y.std()
    w = np.random.default_rng(0).uniform(0.2, 3.0, len(y))
    settings = dict(
        hidden_layer_sizes=(5,), solver="lbfgs", alpha=3.0, max_iter=1000, tol=1e-10, random_state=0
    )
    theirs = Theirs(**settings).fit(X, y, sample_weight=w)
    ours = Ours(warm_start=True, **settings).fit(X, y, sample_weight=w)
    ours.coefs_, ours.intercepts_ = theirs.coefs_, theirs.intercepts_
    assert np.array_equal(ours.predict(X), theirs.predict(X))
    ours.fit(X, y, sample_weight=w)
    assert abs(ours.loss_ - theirs.loss_) < 1e-5 * theirs.loss_
    assert np.abs(ours.predict(X) - theirs.predict(X)).max() < 1e-3


def test_assigned_weights_are_checked():
    import numpy as np

    from mlp import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(3,), max_iter=2).fit([[0.0, 1.0], [1.0, 0.0]] * 5, [0, 1] * 5)
    with pytest.raises(
        ValueError, match=r"coefs_\[0\] has shape \(2, 4\); the network's layer 0 needs \(2, 3\)"
    ):
        clf.coefs_ = [np.zeros((2, 4)), np.zeros((3, 1))]
    with pytest.raises(ValueError, match="intercepts_ needs 2 arrays, one per layer, got 1"):
        clf.intercepts_ = [np.zeros(3)]


# ---- the same exception or warning, with the same words, as scikit-learn's on the same case --------------
def _three_blobs(n):
    import numpy as np

    rng = np.random.default_rng(0)
    y = np.arange(n) % 3
    return rng.normal(size=(n, 4)) + y[:, None], y


def _warm_start_other_classes(lib):
    X, y = _three_blobs(60)
    clf = lib.MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, warm_start=True, random_state=0).fit(X, y)
    clf.fit(X, y % 2)


def _stratified_split_too_small(lib):
    X, y = _three_blobs(10)  # two classes (stratified, as scikit-learn): 10 % of 10 rows, 1 held out
    lib.MLPClassifier(early_stopping=True, random_state=0).fit(X, y % 2)


def _a_class_of_one(lib):
    X, y = _three_blobs(30)
    y[:] = 0
    y[0] = 1  # a class of one sample cannot be stratified
    lib.MLPClassifier(early_stopping=True, random_state=0).fit(X, y)


def _validation_set_too_small(lib):
    X, y = _three_blobs(10)  # 10 % of 10 rows: 1 held out
    lib.MLPRegressor(early_stopping=True, random_state=0).fit(X, y.astype(float))


def _early_stopping_on_one_sample(lib):
    lib.MLPClassifier(early_stopping=True).fit([[1.0, 2.0]], [0])


def _partial_fit_without_classes(lib):
    X, y = _three_blobs(30)
    lib.MLPClassifier().partial_fit(X, y)


def _partial_fit_unseen_class(lib):
    X, y = _three_blobs(30)
    clf = lib.MLPClassifier(hidden_layer_sizes=(4,), random_state=0).partial_fit(X, y, classes=[0, 1, 2])
    clf.partial_fit(X, y * 2)


def _partial_fit_other_classes(lib):
    X, y = _three_blobs(30)
    clf = lib.MLPClassifier(hidden_layer_sizes=(4,), random_state=0).partial_fit(X, y, classes=[0, 1, 2])
    clf.partial_fit(X, y, classes=[0, 1, 2, 3])


def _sample_weight_of_another_length(lib):
    X, y = _three_blobs(30)
    lib.MLPClassifier(max_iter=2).fit(X, y, sample_weight=[1.0] * 29)


def _weights_all_zero(lib):
    X, y = _three_blobs(30)
    lib.MLPClassifier(max_iter=2).fit(X, y, sample_weight=[0.0] * 30)


def _a_nan_weight(lib):
    X, y = _three_blobs(30)
    lib.MLPRegressor(max_iter=2).partial_fit(X, y.astype(float), sample_weight=[float("nan")] + [1.0] * 29)


def _diverging_fit(lib):
    X, y = _three_blobs(60)
    lib.MLPRegressor(
        hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=1.0, max_iter=20, random_state=0
    ).fit(X, y * 1e6)


ERRORS = {
    f.__name__.lstrip("_"): f
    for f in (
        _warm_start_other_classes,
        _stratified_split_too_small,
        _a_class_of_one,
        _validation_set_too_small,
        _early_stopping_on_one_sample,
        _partial_fit_without_classes,
        _partial_fit_unseen_class,
        _partial_fit_other_classes,
        _sample_weight_of_another_length,
        _weights_all_zero,
        _a_nan_weight,
        _diverging_fit,
    )
}


def _raised(case, lib):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            case(lib)
        except Exception as error:
            return type(error).__name__, str(error)
    return None


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_errors_are_scikit_learns(name):
    import sklearn.neural_network

    import mlp

    theirs = _raised(ERRORS[name], sklearn.neural_network)
    assert theirs is not None
    assert _raised(ERRORS[name], mlp) == theirs


def _warm_start_fits(lib):
    X, y = _three_blobs(60)
    clf = lib.MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, warm_start=True, random_state=0)
    clf.fit(X, y)
    clf.fit(X, y)


def _lbfgs_max_fun(lib):
    X, y = _three_blobs(60)
    lib.MLPClassifier(hidden_layer_sizes=(4,), solver="lbfgs", max_fun=3, random_state=0).fit(X, y)


def _lbfgs_max_iter(lib):
    X, y = _three_blobs(60)
    lib.MLPClassifier(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=2, random_state=0).fit(X, y)


WARNINGS = {f.__name__.lstrip("_"): f for f in (_warm_start_fits, _lbfgs_max_fun, _lbfgs_max_iter)}


def _told(case, lib):
    import re

    with warnings.catch_warnings(record=True) as told:
        warnings.simplefilter("always")
        case(lib)
    # the iteration counts of two different starting points may differ: compared as N
    return [
        (w.category.__name__, re.sub(r"after \d+ iteration", "after N iteration", str(w.message)))
        for w in told
    ]


@pytest.mark.parametrize("name", sorted(WARNINGS))
def test_warnings_are_scikit_learns(name):
    import sklearn.neural_network

    import mlp

    theirs = _told(WARNINGS[name], sklearn.neural_network)
    assert theirs and all(category == "ConvergenceWarning" for category, _ in theirs)
    assert _told(WARNINGS[name], mlp) == theirs
