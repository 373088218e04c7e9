"""Renamed public names keep working for one version, with a DeprecationWarning naming the new one."""

import importlib
import sys
import warnings

import numpy as np
import pytest

import mlp


def test_set_params_is_a_deprecated_alias_of_set_weights():
    X = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    model = mlp.fit(X, np.arange(20) % 2, hidden_sizes=[4], epochs=0, seed=0)
    weights = [(W + 1, b - 1) for W, b in model.get_weights()]
    with pytest.warns(DeprecationWarning, match=r"MLP\.set_weights") as caught:
        model.set_params(weights)
    assert caught[0].filename == __file__  # points at the caller
    for (W, b), (W_set, b_set) in zip(model.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(W, W_set)
        np.testing.assert_array_equal(b, b_set)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.set_weights(model.get_weights())  # the new name warns of nothing


def test_mlp_estimator_is_a_deprecated_shim_of_mlp_estimators(monkeypatch):
    estimators = pytest.importorskip("mlp.estimators", reason="the estimators need scikit-learn")
    monkeypatch.delitem(sys.modules, "mlp.estimator", raising=False)  # imported anew: it warns again
    with pytest.warns(DeprecationWarning, match=r"mlp\.estimator is deprecated.*mlp\.estimators"):
        shim = importlib.import_module("mlp.estimator")
    assert shim.MLPClassifier is estimators.MLPClassifier and shim.MLPRegressor is estimators.MLPRegressor
    assert "deprecated" in shim.__doc__.lower()
