"""Hyper-parameter search on a Dask cluster: `GridSearchCV(MLPClassifier(), ..., n_jobs=-1)` under
joblib's "dask" backend spreads the fits over the workers (here a LocalCluster of two worker
processes, so every estimator and fold travels pickled, as on a real cluster) and finds the same
scores and best parameters as the serial search."""

import os

import numpy as np
import pytest

from tests.helpers import blobs


def _distributed():
    try:
        import distributed
        import joblib  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as error:
        reason = f'{error.name} is not installed (pip install "mlp-from-scratch[dask]")'
        if os.environ.get("CI"):
            pytest.fail(reason + " (in CI this test must run, not skip)")
        pytest.skip(reason)
    import distributed

    return distributed


def _search(n_jobs):
    from sklearn.model_selection import GridSearchCV

    import mlp

    estimator = mlp.MLPClassifier(random_state=0, n_threads=1)
    epochs = "max_iter" if "max_iter" in estimator.get_params() else "epochs"
    estimator.set_params(**{epochs: 20})
    grid = {"activation": ["relu", "tanh"], "batch_size": [16, 64]}
    return GridSearchCV(estimator, grid, cv=3, n_jobs=n_jobs)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_grid_search_on_a_dask_cluster_matches_the_serial_search():
    distributed = _distributed()
    import joblib

    X, y = blobs(n=150, d=5, k=3, seed=4)
    X = X + np.random.default_rng(1).normal(0, 2.0, size=X.shape)  # overlapping classes: scores differ
    serial = _search(n_jobs=1).fit(X, y)

    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster, timeout="60s") as client,
    ):
        with joblib.parallel_backend("dask"):
            spread = _search(n_jobs=-1).fit(X, y)
        # the fits ran on the workers: each worker's log of finished tasks is not empty
        ran = client.run(lambda dask_worker: len(dask_worker.state.log))
    assert len(ran) == 2 and all(count > 0 for count in ran.values())

    assert spread.best_params_ == serial.best_params_
    assert spread.best_score_ == serial.best_score_
    for key in ("mean_test_score", "rank_test_score", *(f"split{i}_test_score" for i in range(3))):
        np.testing.assert_array_equal(spread.cv_results_[key], serial.cv_results_[key], err_msg=key)
    assert len(set(serial.cv_results_["mean_test_score"])) > 1  # a real choice was made
    np.testing.assert_array_equal(spread.predict_proba(X), serial.predict_proba(X))
