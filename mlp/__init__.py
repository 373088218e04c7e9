"""mlp: a from-scratch multilayer perceptron, written once against the Python array API standard.

import mlp
(X_train, y_train), (X_test, y_test) = mlp.datasets.load_mnist("path/to/mnist")
model = mlp.fit(X_train, y_train, hidden_sizes=[128, 64], epochs=10, seed=0)
model.score(X_test, y_test)
"""

import warnings as _warnings

from . import activations, datasets, initializers, layers, losses, optimizers, options, recipes, schedules
from ._version import __version__
from .engines import TrainingError
from .model import MLP, load
from .model_file import ModelFileError
from .training import fit

# `python -m mlp.options` prints the options table: importing mlp imports mlp.options (fit, the model
# files and the recipes read it), so runpy would warn that the module it is about to run as __main__ is
# already imported. Running that second copy only prints, so the warning says nothing here.
_warnings.filterwarnings(
    "ignore", r"'mlp\.options' found in sys\.modules after import of package 'mlp'", RuntimeWarning
)


def __getattr__(name: str) -> type:
    # scikit-learn is the optional extra mlp-from-scratch[sklearn]: the estimator is imported when first asked for.
    if name in ("MLPClassifier", "MLPRegressor"):
        from . import estimators  # without scikit-learn: ImportError saying how to install it

        return getattr(estimators, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MLP",
    "ModelFileError",
    "TrainingError",
    "__version__",
    "activations",
    "datasets",
    "fit",
    "initializers",
    "layers",
    "load",
    "losses",
    "optimizers",
    "options",
    "recipes",
    "schedules",
]
