"""
scikit-learn's MLPClassifier swapped in a Pipeline and a grid search
====================================================================

:class:`mlp.MLPClassifier` takes scikit-learn's parameters with their names, meanings and defaults,
so code written for ``sklearn.neural_network.MLPClassifier`` runs unchanged after one import line.
Here it sits in a :class:`~sklearn.pipeline.Pipeline` behind a scaler, and
:class:`~sklearn.model_selection.GridSearchCV` picks its width and its L2 penalty.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import mlp

# from sklearn.neural_network import MLPClassifier   # before
from mlp import MLPClassifier  # after: the rest stays as it is

(X_train, y_train), (X_test, y_test) = mlp.datasets.load_mnist()
X_small, y_small = X_train[:3_000], y_train[:3_000]

# %%
# The pipeline and the grid
# -------------------------
# ``max_iter`` epochs this short stop before scikit-learn's convergence rule is met, so each fit
# warns with a ``ConvergenceWarning``, exactly as scikit-learn's own estimator would; they are
# silenced here to keep the page short.
pipeline = Pipeline(
    [
        ("scale", StandardScaler()),
        ("mlp", MLPClassifier(max_iter=8, random_state=0, n_threads=1)),
    ]
)
grid = {"mlp__hidden_layer_sizes": [(32,), (128,)], "mlp__alpha": [1e-4, 1e-1]}
search = GridSearchCV(pipeline, grid, cv=3)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    search.fit(X_small, y_small)

print("best:", search.best_params_, f"cross-validated accuracy {search.best_score_:.4f}")
print(f"test accuracy of the refitted best pipeline: {search.score(X_test, y_test):.4f}")

# %%
# The scores of the grid
# ----------------------
# Mean cross-validated accuracy of each setting, as ``cv_results_`` holds it.
results = search.cv_results_
labels = [f"{p['mlp__hidden_layer_sizes']}, alpha={p['mlp__alpha']:g}" for p in results["params"]]
order = np.argsort(results["mean_test_score"])
fig, ax = plt.subplots(figsize=(6, 2.8), layout="constrained")
ax.barh(np.array(labels)[order], results["mean_test_score"][order], xerr=results["std_test_score"][order])
ax.set_xlabel("mean cross-validated accuracy (3 folds)")
ax.set_xlim(0.8, 1.0)

# %%
# What is inside
# --------------
# The fitted estimator keeps scikit-learn's attributes (``coefs_``, ``loss_curve_``, ``n_iter_``,
# ...) and ``model_``, the trained :class:`mlp.MLP`, which saves to a model file that
# :func:`mlp.load` reads back.
best = search.best_estimator_.named_steps["mlp"]
print([W.shape for W in best.coefs_], "epochs:", best.n_iter_)
print(best.model_)
