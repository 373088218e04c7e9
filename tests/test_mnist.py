"""Training on the real MNIST (the folder comes from $MLP_DATA_DIR / ../shared/data/mnist).

In CI these run; they never skip there (see conftest.mnist_dir)."""

import numpy as np
import pytest

import mlp

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mnist(mnist_dir):
    return mlp.datasets.load_mnist(mnist_dir)


def test_a_ci_sized_run_reaches_97_percent(mnist):
    (X_train, y_train), (X_test, y_test) = mnist
    model = mlp.fit(
        X_train,
        y_train,
        hidden_sizes=[128, 64],
        epochs=5,
        batch_size=128,
        optimizer="adam",
        learning_rate=1e-3,
        seed=0,
    )
    assert model.score(X_test, y_test) >= 0.97
    assert model.history["accuracy"][-1] > model.history["accuracy"][0]


def test_the_default_recipe_reaches_98_3_percent(mnist):
    """The README's promise: no options beyond X, y and seed give >= 98.3 % test accuracy."""
    (X_train, y_train), (X_test, y_test) = mnist
    model = mlp.fit(X_train, y_train, seed=0)
    assert model.score(X_test, y_test) >= 0.983


def test_beginners_sigmoid_mse_network_learns_mnist(mnist):
    """The classic notebook network: sigmoid hidden layer, sigmoid outputs, MSE, plain SGD."""
    (X_train, y_train), (X_test, y_test) = mnist
    model = mlp.fit(
        X_train[:20000],
        y_train[:20000],
        hidden_sizes=[64],
        activation="sigmoid",
        loss="mse",
        optimizer="sgd",
        learning_rate=3.0,
        batch_size=32,
        epochs=2,
        schedule="constant",
        init="normal",
        seed=0,
    )
    assert model.score(X_test, y_test) >= 0.88


def test_validation_split_and_early_stopping_on_mnist(mnist):
    (X_train, y_train), _ = mnist
    model = mlp.fit(
        X_train[:10000],
        y_train[:10000],
        hidden_sizes=[64],
        epochs=4,
        validation_split=0.1,
        early_stopping=True,
        patience=1,
        seed=0,
    )
    assert 0.9 < model.history["val_accuracy"][-1] <= 1.0
    assert np.isfinite(model.history["val_loss"]).all()
