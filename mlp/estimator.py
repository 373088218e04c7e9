"""Deprecated: the old name of `mlp.estimators`; import `MLPClassifier` and `MLPRegressor` from
`mlp.estimators` (or from `mlp`). Kept one version so that `from mlp.estimator import ...` keeps
working; importing it warns. scikit-learn is the optional extra mlp-from-scratch[sklearn]."""

import warnings

from .estimators import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]

warnings.warn(
    "mlp.estimator is deprecated and will be removed; import MLPClassifier and MLPRegressor from "
    "mlp.estimators (or mlp)",
    DeprecationWarning,
    stacklevel=2,
)
