"""A/B of two versions of the library on the epoch workloads B1-B4, in one run.

    python bench/ab_versions.py OLD_TREE [NEW_TREE] [--rounds 3] [--epochs 5]

OLD_TREE and NEW_TREE are checkouts (e.g. `git worktree add /tmp/old COMMIT`); NEW_TREE defaults to
this checkout. Each measurement is a fresh process that imports `mlp` from one tree (PYTHONPATH),
prepares a trainer for the workload exactly as bench/workloads.py does, runs one warm-up epoch and
then `--epochs` timed epochs; the two versions alternate (A B A B ...) so a machine that slows down
or speeds up mid-run affects both. Printed: per workload and engine, each version's median seconds per
epoch over all rounds and the ratio new/old.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKLOADS = {  # name: (hidden, batch size, optimizer, learning rate), as bench/workloads.py
    "B1": ((128, 64), 128, "adam", 1e-3),
    "B2": ((1024, 1024), 128, "adam", 1e-3),
    "B3": ((128, 64), 32, "adam", 1e-3),
    "B4": ((128,), "full", "sgd", 0.1),
}

CHILD = r"""
import json, os, sys, time
import numpy as np
import mlp
from mlp import optimizers, schedules
hidden, batch, opt, lr, engine, epochs, data = json.loads(sys.argv[1])
(X, y), _ = mlp.datasets.load_mnist(data)
X, y = np.ascontiguousarray(X), y.astype(np.int64)
model = mlp.fit(X, y, hidden_sizes=list(hidden), epochs=0, seed=0, dropout=0.0)
optimizer = optimizers.make_optimizer(opt)
try:  # the layout after the restructure
    from mlp.engines import choose_engine
    cls = choose_engine(engine, X, optimizer, model.loss)
except ImportError:  # the layout before it
    from mlp.training import _choose_engine
    cls = _choose_engine(engine, X, optimizer, model.loss)
trainer = cls(model, optimizer=optimizer, learning_rate=lr, schedule=schedules.Schedule(), epochs=1,
              batch_size=None if batch == "full" else batch, rng=np.random.default_rng(0))
X, y = trainer.prepare_data(X, y)
trainer.run_epoch(X, y)
times = []
for _ in range(epochs):
    start = time.perf_counter()
    trainer.run_epoch(X, y)
    times.append(time.perf_counter() - start)
print(json.dumps(times))
"""


def measure(tree, workload, engine, epochs, data):
    hidden, batch, opt, lr = WORKLOADS[workload]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    args = json.dumps([hidden, batch, opt, lr, engine, epochs, data])
    result = subprocess.run(
        [sys.executable, "-c", CHILD, args], capture_output=True, text=True, env=env, cwd=tree, timeout=900
    )
    if result.returncode != 0:
        raise SystemExit(f"{tree} {workload} {engine} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path, nargs="?", default=HERE.parent)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--workloads", default="B1,B2,B3,B4")
    parser.add_argument("--engines", default="numba,xp")
    parser.add_argument(
        "--data",
        default=os.environ.get("MLP_DATA_DIR") or str(HERE.parent.parent / "shared" / "data" / "mnist"),
    )
    args = parser.parse_args(argv)
    print(f"old: {args.old}\nnew: {args.new}\nload: {Path('/proc/loadavg').read_text().strip()}")
    print("| workload | engine | old s/epoch | new s/epoch | new / old |")
    print("| --- | --- | ---: | ---: | ---: |")
    for workload in args.workloads.split(","):
        epochs = max(2, args.epochs // 2) if workload == "B2" else args.epochs
        for engine in args.engines.split(","):
            old, new = [], []
            for _ in range(args.rounds):
                old += measure(args.old.resolve(), workload, engine, epochs, args.data)
                new += measure(args.new.resolve(), workload, engine, epochs, args.data)
            a, b = statistics.median(old), statistics.median(new)
            print(f"| {workload} | {engine} | {a:.3f} | {b:.3f} | {b / a:.2f} |", flush=True)
    print(f"load after: {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
