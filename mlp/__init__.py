"""mlp: a from-scratch multilayer perceptron, written once against the Python array API standard.

    import mlp
    (X_train, y_train), (X_test, y_test) = mlp.datasets.load_mnist("path/to/mnist")
    model = mlp.fit(X_train, y_train, hidden_sizes=[128, 64], epochs=10, seed=0)
    model.score(X_test, y_test)
"""
from . import activations, datasets, initializers, layers, losses, optimizers, schedules
from .model import MLP
from .saving import ModelFileError, load_model as load
from .training import TrainingError, fit

__version__ = "0.1.0"

__all__ = [
    "MLP",
    "ModelFileError",
    "load",
    "TrainingError",
    "activations",
    "datasets",
    "fit",
    "initializers",
    "layers",
    "losses",
    "optimizers",
    "schedules",
    "__version__",
]
