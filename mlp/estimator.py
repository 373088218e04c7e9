"""`from mlp.estimator import MLPClassifier, MLPRegressor`: the scikit-learn estimators (they live in
`mlp.estimators`; scikit-learn is the optional extra mlp-from-scratch[sklearn])."""

from .estimators import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
