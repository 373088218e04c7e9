"""mlp.MLPClassifier next to scikit-learn's MLPClassifier on the real MNIST, in one run.

Same network and training for both: 784-128-64-10, ReLU, Adam (lr 1e-3), batch 128, 10 epochs, no L2,
no early stopping, float32 data. Prints a Markdown table of test accuracy and training seconds.

    MLP_DATA_DIR=../shared/data/mnist .venv/bin/python bench/compare_sklearn.py [--repeats 2]
"""
import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()

    import mlp
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier as SklearnMLP

    folder = os.environ.get("MLP_DATA_DIR") or str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist")
    (X_train, y_train), (X_test, y_test) = mlp.datasets.load_mnist(folder)
    common = dict(batch_size=128, learning_rate=1e-3)
    makers = {
        "mlp.MLPClassifier (Numba engine)": lambda seed: mlp.MLPClassifier(
            hidden_sizes=(128, 64), epochs=args.epochs, n_iter_no_change=None, random_state=seed, **common),
        "sklearn.neural_network.MLPClassifier": lambda seed: SklearnMLP(
            hidden_layer_sizes=(128, 64), solver="adam", alpha=0.0, batch_size=128, learning_rate_init=1e-3,
            max_iter=args.epochs, n_iter_no_change=args.epochs + 1, tol=0.0, random_state=seed),
    }
    rows = {name: [] for name in makers}
    for seed in range(args.repeats):
        for name, make in makers.items():  # interleaved, so both see the same machine
            model = make(seed)
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X_train, y_train)
            seconds = time.perf_counter() - start
            rows[name].append((model.score(X_test, y_test), seconds))
    print(f"| estimator | test accuracy (seeds 0..{args.repeats - 1}) | training seconds | median seconds |")
    print("| --- | --- | --- | ---: |")
    for name, results in rows.items():
        accuracy = ", ".join(f"{a:.4f}" for a, _ in results)
        seconds = ", ".join(f"{s:.1f}" for _, s in results)
        print(f"| {name} | {accuracy} | {seconds} | {np.median([s for _, s in results]):.1f} |")


if __name__ == "__main__":
    main()
