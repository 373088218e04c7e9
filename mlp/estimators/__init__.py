"""`MLPClassifier` and `MLPRegressor`: the multilayer perceptron as scikit-learn's estimators.

Drop-in replacements for `sklearn.neural_network.MLPClassifier` / `MLPRegressor`: the same
constructor parameters with the same meanings and defaults, the same fitted attributes, warnings and
errors, plus this library's extras (dropout, more optimizers and schedules, dtype, engine,
n_threads). The translation between scikit-learn's parameter names and `mlp.fit`'s lives in the
options table (`mlp/options.py`, its estimator column).

    base        what both share: parameters, the solvers (epochs through `mlp.loop.run_epochs`, or
                SciPy's L-BFGS-B), scikit-learn's stopping rule, fitted attributes, array-API plumbing
    classifier  labels of any kind, binary (one logistic output), multiclass (softmax), multilabel
    regressor   real targets, one or several outputs (identity output, squared error)

scikit-learn is an optional extra (`pip install "mlp-from-scratch[sklearn]"`): importing `mlp` never
imports it; this package does, and is imported only when an estimator is used.
"""

from __future__ import annotations

try:
    import sklearn  # noqa: F401  (its version is read through globals() when the next imports fail)
    from sklearn.base import BaseEstimator  # noqa: F401
    from sklearn.utils.validation import validate_data  # noqa: F401  (scikit-learn >= 1.6)
except ImportError as error:  # sklearn missing, or older than 1.6 (no validate_data / __sklearn_tags__)
    found = getattr(globals().get("sklearn"), "__version__", None)
    reason = (
        f"scikit-learn {found} is too old; upgrade it with: pip install -U"
        if found
        else "scikit-learn is not installed; install it with: pip install"
    )
    raise ImportError(
        f'mlp.MLPClassifier and mlp.MLPRegressor need scikit-learn >= 1.6, but {reason} "mlp-from-scratch[sklearn]"'
    ) from error

from .classifier import MLPClassifier
from .regressor import MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
