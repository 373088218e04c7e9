"""Snapshot ensembles (Huang et al. 2017) of the `best` recipe on MNIST: the same training budget, but
the cosine schedule restarts `--cycles` times (SGDR, Loshchilov & Hutter 2017) and the network's test-set
class probabilities are kept at the end of every cycle. Averaging the last k snapshots' probabilities
costs no extra training (k forward passes at prediction time).

    MLP_DATA_DIR=../shared/data/mnist .venv/bin/python bench/snapshot_ensemble.py --seeds 0 1 2 --cycles 4 \
        [--json bench/snapshot_ensemble.json]

Prints, per seed, each snapshot's test accuracy and the accuracy of the average of the last k snapshots
(k = 2 .. cycles). Compare with the recipe's own single-cycle runs (bench/recipes.json, "best"), which
spend the same epochs on one cosine decay.
"""

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workloads import machine

import mlp
from mlp.schedules import Schedule


class CosineRestarts(Schedule):
    """A half cosine from the base rate to 0 over each of `cycles` equal cycles, evaluated per step."""

    name = "cosine_restarts"

    def __init__(self, cycles):
        self.cycles = cycles

    def lr(self, epoch, step):
        cycle_epochs = self.epochs / self.cycles
        progress = (epoch + step / self.steps_per_epoch) % cycle_epochs / cycle_epochs
        return 0.5 * self.base_lr * (1.0 + math.cos(math.pi * progress))


def accuracy(probabilities, y):
    return float(np.mean(np.argmax(probabilities, axis=1) == y))


def run(seed, cycles, data):
    (X_train, y_train), (X_test, y_test) = data
    settings = {**mlp.recipes.get("best"), "schedule": CosineRestarts(cycles)}
    cycle_epochs = settings["epochs"] // cycles
    snapshots, scoring = [], [0.0]

    def keep_snapshot(epoch, logs, model):
        if epoch % cycle_epochs == 0:
            started = time.perf_counter()
            snapshots.append(model.predict_proba(X_test).astype(np.float64))
            scoring[0] += time.perf_counter() - started

    started = time.perf_counter()
    mlp.fit(X_train, y_train, **settings, seed=seed, callbacks=[keep_snapshot], verbose=0)
    seconds = time.perf_counter() - started - scoring[0]
    return {
        "seed": seed,
        "cycles": cycles,
        "training_seconds": round(seconds, 1),
        "snapshot_accuracy": [accuracy(p, y_test) for p in snapshots],
        # ensemble_of_last[k - 1]: the average of the last k snapshots (k = 1 is the final network)
        "ensemble_of_last": [
            accuracy(np.mean(snapshots[-k:], axis=0), y_test) for k in range(1, len(snapshots) + 1)
        ],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--cycles", type=int, default=4)
    parser.add_argument("--json", type=Path, default=Path(__file__).with_name("snapshot_ensemble.json"))
    args = parser.parse_args()
    epochs = mlp.recipes.get("best")["epochs"]
    if args.cycles < 1 or epochs % args.cycles:
        parser.error(f"--cycles must divide best's {epochs} epochs, so that every cycle ends on an epoch")
    folder = os.environ.get("MLP_DATA_DIR") or str(
        Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    )
    data = mlp.datasets.load_mnist(folder)
    stored = json.loads(args.json.read_text()) if args.json.exists() else {"runs": []}
    for seed in args.seeds:
        entry = run(seed, args.cycles, data)
        entry.update(
            machine={**machine(), "python": platform.python_version()},
            version=mlp.__version__,
            augment=mlp.recipes.get("best")["augment"],
            date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        )
        key = (seed, args.cycles)
        stored["runs"] = [r for r in stored["runs"] if (r["seed"], r["cycles"]) != key] + [entry]
        args.json.write_text(json.dumps(stored, indent=1) + "\n")
        snapshots = " ".join(f"{100 * a:.2f}" for a in entry["snapshot_accuracy"])
        ensembles = " ".join(f"last {k}: {100 * a:.2f}" for k, a in enumerate(entry["ensemble_of_last"], 1))
        print(
            f"seed {seed}, {args.cycles} cycles, {entry['training_seconds']:.0f} s: snapshots {snapshots} %; {ensembles} %",
            flush=True,
        )
    runs = [r for r in stored["runs"] if r["cycles"] == args.cycles and r["seed"] in args.seeds]
    means = np.mean([r["ensemble_of_last"] for r in runs], axis=0)
    print(
        f"mean over {len(runs)} seeds: "
        + ", ".join(f"last {k}: {100 * m:.3f} %" for k, m in enumerate(means, 1))
    )


if __name__ == "__main__":
    main()
