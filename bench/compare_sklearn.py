"""mlp's estimators next to scikit-learn's, in one process: the same constructor call for both.

Each estimator is built by one function from its class, so the only difference between the two rows
of a task is the import (`sklearn.neural_network` or `mlp`):

    mnist       MLPClassifier on the real MNIST (60,000 train / 10,000 test, pixels / 255, float32):
                784-128-64-10, ReLU, Adam (lr 1e-3), batch 128, no L2, every epoch run (tol=0)
    regression  MLPRegressor on make_friedman1 (100,000 samples, 10 features, noise 1.0; 80,000
                train / 20,000 test, float64): 10-64-32-1, ReLU, Adam (lr 1e-3), batch 200, alpha 1e-4
                (California housing is used instead when it is already in scikit-learn's data cache)

Runs are interleaved (ours, theirs, ours, ...) so both see the same machine; the table gives each
run's score (accuracy or R^2) and the median training seconds.

    MLP_DATA_DIR=../shared/data/mnist .venv/bin/python bench/compare_sklearn.py [--task mnist|regression|both]
        [--repeats 3] [--epochs 10]
"""

import argparse
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np


def mnist_task(epochs):
    import mlp

    folder = os.environ.get("MLP_DATA_DIR") or str(
        Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    )
    (X_train, y_train), (X_test, y_test) = mlp.datasets.load_mnist(folder)

    def make(cls, seed):
        return cls(
            hidden_layer_sizes=(128, 64),
            solver="adam",
            alpha=0.0,
            batch_size=128,
            learning_rate_init=1e-3,
            max_iter=epochs,
            n_iter_no_change=epochs + 1,
            tol=0.0,
            random_state=seed,
        )

    return "MLPClassifier", "MNIST, accuracy", make, (X_train, y_train, X_test, y_test)


def regression_task(epochs):
    from sklearn import datasets

    try:  # only when already cached: benchmarks never download
        X, y = datasets.fetch_california_housing(return_X_y=True, download_if_missing=False)
        name = "California housing, R^2"
    except OSError:
        X, y = datasets.make_friedman1(n_samples=100_000, n_features=10, noise=1.0, random_state=0)
        name = "make_friedman1 (100k), R^2"
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    split = int(0.8 * X.shape[0])

    def make(cls, seed):
        return cls(
            hidden_layer_sizes=(64, 32),
            solver="adam",
            alpha=1e-4,
            batch_size=200,
            learning_rate_init=1e-3,
            max_iter=epochs,
            n_iter_no_change=epochs + 1,
            tol=0.0,
            random_state=seed,
        )

    return "MLPRegressor", name, make, (X[:split], y[:split], X[split:], y[split:])


def run(task, repeats):
    import sklearn.neural_network
    from sklearn.exceptions import ConvergenceWarning

    import mlp

    kind, title, make, (X_train, y_train, X_test, y_test) = task
    classes = {
        f"mlp.{kind}": getattr(mlp, kind),
        f"sklearn.neural_network.{kind}": getattr(sklearn.neural_network, kind),
    }
    results = {name: [] for name in classes}
    for seed in range(repeats):
        for name, cls in classes.items():
            model = make(cls, seed)
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X_train, y_train)
            seconds = time.perf_counter() - start
            results[name].append((model.score(X_test, y_test), seconds))
    rows = []
    for name, values in results.items():
        scores = ", ".join(f"{s:.4f}" for s, _ in values)
        seconds = ", ".join(f"{t:.1f}" for _, t in values)
        rows.append(f"| {title} | {name} | {scores} | {seconds} | {np.median([t for _, t in values]):.1f} |")
    return rows


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=["mnist", "regression", "both"], default="both")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()

    tasks = []
    if args.task in ("mnist", "both"):
        tasks.append(mnist_task(args.epochs))
    if args.task in ("regression", "both"):
        tasks.append(regression_task(args.epochs))
    print(f"{cpu_model()}, {os.cpu_count()} logical CPUs; {args.epochs} epochs, seeds 0..{args.repeats - 1}")
    print("| task | estimator | test score per seed | training seconds per seed | median seconds |")
    print("| --- | --- | --- | --- | ---: |")
    for task in tasks:
        for row in run(task, args.repeats):
            print(row, flush=True)


if __name__ == "__main__":
    main()
