"""A smoke test of the installed package, as a user gets it: run by tests/test_packaging.py with the
Python of a fresh virtual environment into which only the built wheel (and its extras numba, sklearn,
plot, progress) was installed, from a folder outside the checkout, with no PYTHONPATH.

    python installed_smoke.py --checkout DIR --modules MODULES.json --data MNIST_DIR --work DIR

MODULES.json lists the checkout's modules (mlp.* and mlp_kernels.*); the installed package must hold
exactly those. Prints one line per step and exits non-zero on the first failure.
"""

import argparse
import importlib
import json
import pkgutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path


def step(text):
    print(f"installed smoke: {text}", flush=True)


def installed_modules(package):
    """Every module of an imported package, found by walking its installed files."""
    found = {package.__name__}
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        found.add(info.name)
    return found


def check_imports(checkout, expected):
    import mlp_kernels

    import mlp

    for package in (mlp, mlp_kernels):
        location = Path(package.__file__).resolve()
        assert not location.is_relative_to(checkout), (
            f"{package.__name__} imported from the checkout: {location}"
        )
        assert location.is_relative_to(Path(sys.prefix).resolve()), (
            f"{package.__name__} is not installed here: {location}"
        )
    missing = [name for name in mlp.__all__ if not hasattr(mlp, name)]
    assert not missing, f"mlp.__all__ names missing from the installed package: {missing}"
    found = installed_modules(mlp) | installed_modules(mlp_kernels)
    assert found == expected, (
        f"installed modules differ from the checkout's: missing {sorted(expected - found)}, "
        f"extra {sorted(found - expected)}"
    )
    for name in sorted(found):
        if name.rsplit(".", 1)[-1] != "__main__":  # running it would start the command line
            importlib.import_module(name)
    assert (Path(mlp.__file__).parent / "py.typed").is_file(), "mlp/py.typed is not installed"
    step(f"imported mlp {mlp.__version__} from {Path(mlp.__file__).parent} and its {len(found)} modules")


def blobs(rng, n=240, d=8, k=3):
    centers = rng.normal(0, 3, size=(k, d))
    y = rng.integers(0, k, size=n)
    return (centers[y] + rng.normal(0, 1, size=(n, d))).astype("float32"), y


def check_training(work):
    import numpy as np

    import mlp

    rng = np.random.default_rng(0)
    X, y = blobs(rng)
    model = mlp.fit(X, y, hidden_sizes=[16], epochs=30, batch_size=32, learning_rate=1e-2, seed=0)
    accuracy = model.score(X, y)
    assert accuracy > 0.9, f"mlp.fit learned the blobs to {accuracy:.3f} only"
    path = work / "blobs.npz"
    model.save(path)
    loaded = mlp.load(path)
    assert np.array_equal(loaded.predict(X), model.predict(X)), "the loaded model predicts otherwise"
    step(f"mlp.fit: accuracy {accuracy:.3f}; saved and loaded {path.name}")

    from sklearn.exceptions import ConvergenceWarning

    warnings.simplefilter("ignore", ConvergenceWarning)  # few iterations on purpose
    classifier = mlp.MLPClassifier(hidden_layer_sizes=(16,), max_iter=50, random_state=0).fit(X, y)
    assert classifier.score(X, y) > 0.9, f"MLPClassifier scored {classifier.score(X, y):.3f}"
    assert classifier.predict(X[:5]).shape == (5,)
    targets = X[:, :2] @ np.array([[1.0, -2.0], [0.5, 1.0]], dtype="float32")
    regressor = mlp.MLPRegressor(hidden_layer_sizes=(16,), max_iter=200, random_state=0).fit(X, targets)
    r2 = regressor.score(X, targets)
    assert r2 > 0.8, f"MLPRegressor reached R^2 {r2:.3f} only"
    assert regressor.predict(X[:5]).shape == (5, 2)
    step(f"MLPClassifier accuracy {classifier.score(X, y):.3f}, MLPRegressor R^2 {r2:.3f}")


def run_cli(*args):
    """The installed `mlp` script (beside this Python), not `python -m` from some other place."""
    script = Path(sys.executable).parent / "mlp"
    result = subprocess.run([str(script), *map(str, args)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (
        f"mlp {' '.join(map(str, args))} exited {result.returncode}:\n{result.stderr}"
    )
    return result.stdout


def check_cli(data, work):
    import mlp

    assert "train" in run_cli("--help")
    version = run_cli("--version").strip()
    assert version == f"mlp {mlp.__version__}", f"mlp --version printed {version!r}"
    assert "--limit" in run_cli("train", "--help")
    out = work / "mnist.npz"
    printed = run_cli(
        "train", "--data", data, "--limit", 2000, "--epochs", 1, "--progress", "no", "--out", out
    )
    assert "test accuracy" in printed.lower(), f"mlp train printed no test accuracy:\n{printed}"
    assert mlp.load(out).params[0][0].shape[0] == 784
    step(f"mlp --help, mlp --version ({version}), mlp train on 2000 MNIST images -> {out.name}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkout", type=Path, required=True)
    parser.add_argument("--modules", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="mlp-smoke-"))
    check_imports(args.checkout.resolve(), set(json.loads(args.modules.read_text())))
    check_training(work)
    check_cli(args.data, work)
    step("passed")


if __name__ == "__main__":
    main()
