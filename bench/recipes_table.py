"""The README's recipe table and learning curves: train recipes on the real MNIST for several seeds,
one after another in this process, exactly as `mlp train --recipe NAME --seed S` does (same data, same
settings), and record each run's test accuracy, training time and per-epoch curves.

After every epoch a callback scores the test set for the learning curve; the time it takes is measured
and taken out of the training time, so the time is what `mlp train` reports for the same run.

    MLP_DATA_DIR=../shared/data/mnist .venv/bin/python bench/recipes_table.py --recipe best --seeds 0 1 2 \
        [--json bench/recipes.json] [--plot bench/recipes_best.png]

The JSON keeps every run (machine, load average before and after, accuracy, time, curves); running
again for another recipe adds to it. --plot draws the training-loss and test-error curves of the runs of --recipe.
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workloads import machine


def run(recipe, seed, data, overrides=None, save_to=None):
    import mlp

    (X_train, y_train), (X_test, y_test) = data
    curve, scoring = [], [0.0]

    def score(epoch, logs, model):
        started = time.perf_counter()
        curve.append(
            {
                "epoch": epoch,
                "loss": float(logs["loss"]),
                "train_accuracy": float(logs.get("accuracy", np.nan)),
                "test_accuracy": float(model.score(X_test, y_test)),
            }
        )
        scoring[0] += time.perf_counter() - started

    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    settings = {**mlp.recipes.get(recipe), **(overrides or {})}
    model = mlp.fit(X_train, y_train, **settings, seed=seed, callbacks=[score], verbose=0)
    seconds = time.perf_counter() - started - scoring[0]
    if save_to is not None:
        model.save(Path(save_to) / f"{label(recipe, overrides)}-seed{seed}.npz")
    return {
        "recipe": label(recipe, overrides),
        "overrides": overrides or {},
        "seed": seed,
        "test_accuracy": float(model.score(X_test, y_test)),
        "training_seconds": round(seconds, 1),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "curve": curve,
    }


def label(recipe, overrides):
    """The name a run is kept under: the recipe's, with its overrides ("best+batch_norm=before")."""
    return "+".join(
        [recipe, *(f"{key}={json.dumps(value)}".replace('"', "") for key, value in (overrides or {}).items())]
    )


def parse_override(text):
    """KEY=VALUE with VALUE read as JSON where it parses ("3", "null", "[1024, 1024]"), else a string."""
    key, _, value = text.partition("=")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def plot(runs, recipe, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for entry in runs:
        epochs = [point["epoch"] for point in entry["curve"]]
        label = f"seed {entry['seed']} ({100 * entry['test_accuracy']:.2f} %)"
        left.plot(epochs, [point["loss"] for point in entry["curve"]], label=label)
        right.plot(epochs, [100 * (1 - point["test_accuracy"]) for point in entry["curve"]], label=label)
    left.set(
        xlabel="epoch",
        ylabel="training loss (distorted digits, label smoothing)",
        title=f"{recipe}: training loss",
    )
    right.set(xlabel="epoch", ylabel="test error, %", yscale="log", title=f"{recipe}: test error")
    right.axhline(0.7, color="grey", linestyle="--", linewidth=0.8, label="0.7 % (99.3 % accuracy)")
    for axes in (left, right):
        axes.grid(True, alpha=0.3)
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="best")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--json", type=Path, default=Path(__file__).with_name("recipes.json"))
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--plot-only", action="store_true", help="draw --plot from --json without training")
    parser.add_argument(
        "--set",
        type=parse_override,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one of the recipe's settings (repeatable); the runs are kept as RECIPE+KEY=VALUE",
    )
    parser.add_argument(
        "--save-models", type=Path, default=None, metavar="DIR", help="save each trained model there"
    )
    args = parser.parse_args()
    overrides = dict(args.set)
    name = label(args.recipe, overrides)

    import mlp

    stored = json.loads(args.json.read_text()) if args.json.exists() else {"runs": []}
    if not args.plot_only:
        folder = os.environ.get("MLP_DATA_DIR") or str(
            Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
        )
        data = mlp.datasets.load_mnist(folder)
        for seed in args.seeds:
            entry = run(args.recipe, seed, data, overrides, args.save_models)
            entry.update(
                machine={**machine(), "python": platform.python_version()},
                version=mlp.__version__,
                date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            )
            stored["runs"] = [r for r in stored["runs"] if (r["recipe"], r["seed"]) != (name, seed)] + [entry]
            args.json.write_text(json.dumps(stored, indent=1) + "\n")
            print(
                f"{name} seed {seed}: test accuracy {entry['test_accuracy']:.4f}  "
                f"training {entry['training_seconds']:.0f}s  load {entry['load_before']:.1f}->{entry['load_after']:.1f}",
                flush=True,
            )
    runs = [r for r in stored["runs"] if r["recipe"] == name and r["seed"] in args.seeds]
    if runs:
        accuracies = [r["test_accuracy"] for r in runs]
        times = [r["training_seconds"] for r in runs]
        print(
            f"{name}: {len(runs)} seeds, mean {100 * np.mean(accuracies):.2f} % "
            f"(range {100 * min(accuracies):.2f}-{100 * max(accuracies):.2f} %), training {min(times):.0f}-{max(times):.0f} s"
        )
    if args.plot and runs:
        plot(runs, name, args.plot)
        print(f"learning curves written to {args.plot}")


if __name__ == "__main__":
    main()
