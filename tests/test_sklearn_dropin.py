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
