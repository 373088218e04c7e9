"""Test-time augmentation of trained MNIST models: each model's test accuracy as it is, and with its
class probabilities averaged over the test images and copies of them shifted by one pixel (4 shifts,
then 8), or over copies distorted with `mlp.augment.augment` (small random affine distortions).

    MLP_DATA_DIR=../shared/data/mnist .venv/bin/python bench/tta.py MODEL.npz [MODEL.npz ...]

Prints a line per model and per method, and the mean over the models; inference only, so its cost is
the predictions' (one forward pass per copy), no training.
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ONE_PIXEL = [(0, 1), (0, -1), (1, 0), (-1, 0)]
DIAGONALS = [(1, 1), (1, -1), (-1, 1), (-1, -1)]


def shifted(X, dy, dx, shape=(28, 28)):
    """The images of X (n, 784) moved dy rows down and dx columns right, zeros shifted in."""
    images = X.reshape(-1, *shape)
    out = np.zeros_like(images)
    rows_to = slice(max(dy, 0), shape[0] + min(dy, 0))
    rows_from = slice(max(-dy, 0), shape[0] + min(-dy, 0))
    cols_to = slice(max(dx, 0), shape[1] + min(dx, 0))
    cols_from = slice(max(-dx, 0), shape[1] + min(-dx, 0))
    out[:, rows_to, cols_to] = images[:, rows_from, cols_from]
    return out.reshape(X.shape)


def accuracy(probabilities, y):
    return float(np.mean(np.argmax(probabilities, axis=1) == y))


def methods(model, X, seed=0):
    """name -> averaged class probabilities of the test set."""
    import mlp

    plain = model.predict_proba(X)
    results = {"as is": plain}
    total = plain.copy()
    for dy, dx in ONE_PIXEL:
        total += model.predict_proba(shifted(X, dy, dx))
    results["+ 4 one-pixel shifts"] = total / 5
    for dy, dx in DIAGONALS:
        total += model.predict_proba(shifted(X, dy, dx))
    results["+ 8 shifts"] = total / 9
    mild = {"shift": 1.0, "rotation": 5.0, "scale": 0.05, "image_shape": [28, 28]}
    total = plain.copy()
    for copy in range(8):
        total += model.predict_proba(mlp.augment.augment(X, mild, seed=seed + copy))
    results["+ 8 mild affine copies"] = total / 9
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path, nargs="+")
    args = parser.parse_args()
    import mlp

    folder = os.environ.get("MLP_DATA_DIR") or str(
        Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    )
    _, (X_test, y_test) = mlp.datasets.load_mnist(folder)
    table = {}
    for path in args.models:
        model = mlp.load(path)
        X = X_test.astype(model.dtype)
        for name, probabilities in methods(model, X).items():
            score = accuracy(probabilities, y_test)
            table.setdefault(name, []).append(score)
            print(f"{path.name}: {name}: {100 * score:.2f} %", flush=True)
    for name, scores in table.items():
        print(f"mean over {len(scores)} models, {name}: {100 * np.mean(scores):.3f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
