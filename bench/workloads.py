"""The benchmark workloads (issue 4), their matrix-multiply FLOPs, mlp's and the peers' training code,
and the machine they ran on."""

from __future__ import annotations

import itertools
import os
import platform
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


@dataclass(frozen=True)
class Workload:
    name: str
    hidden: tuple
    batch_size: object  # int, or "full"
    optimizer: str
    learning_rate: float
    description: str

    def layer_sizes(self, n_features=784, n_classes=10):
        return [n_features, *self.hidden, n_classes]

    def gemm_flops(self, n_samples, n_features=784, n_classes=10):
        """Matrix-multiply FLOPs of one epoch: forward, weight gradients, and input gradients of every
        layer but the first (2 FLOPs per multiply-add)."""
        sizes = self.layer_sizes(n_features, n_classes)
        products = [a * b for a, b in itertools.pairwise(sizes)]
        return 2 * n_samples * (2 * sum(products) + sum(products[1:]))


WORKLOADS = {
    "B1": Workload("B1", (128, 64), 128, "adam", 1e-3, "784-128-64-10, Adam, batch 128"),
    "B2": Workload("B2", (1024, 1024), 128, "adam", 1e-3, "784-1024-1024-10, Adam, batch 128"),
    "B3": Workload("B3", (128, 64), 32, "adam", 1e-3, "784-128-64-10, Adam, batch 32"),
    "B4": Workload("B4", (128,), "full", "sgd", 0.1, "784-128-10, full-batch gradient descent"),
}


# ---- mlp -----------------------------------------------------------------------------------------
def mlp_trainer(engine, workload, X, y):
    """A trainer for `workload` on (X, y), prepared so that `trainer.run_epoch(X, y)` times one epoch
    only (validation, initialisation and compilation done here). engine: "numba" or "xp"."""
    import numpy as np

    import mlp
    from mlp import optimizers, schedules
    from mlp.engines import choose_engine

    model = mlp.fit(X, y, hidden_sizes=list(workload.hidden), epochs=0, seed=0, dropout=0.0)
    optimizer = optimizers.make_optimizer(workload.optimizer)
    trainer_class = choose_engine(engine, X, optimizer, model.loss)  # compiles the kernels, if any
    return trainer_class(
        model,
        optimizer=optimizer,
        learning_rate=workload.learning_rate,
        schedule=schedules.Schedule(),
        epochs=1,
        batch_size=None if workload.batch_size == "full" else workload.batch_size,
        rng=np.random.default_rng(0),
    )


# ---- the machine ---------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def machine():
    """CPU model, vector extensions (AVX2 / AVX-512), cores this process may use, and the BLAS."""
    model, flags = None, set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model is None:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags.update(re.findall(r"\b(avx2|avx512[a-z0-9_]*)\b", line))
    except OSError:
        pass
    model = model or platform.processor() or "unknown CPU"
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    blas = "unknown"
    try:
        import numpy  # noqa: F401  (loads the BLAS that threadpool_info reports)
        from threadpoolctl import threadpool_info

        blas = ", ".join(
            f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture', '?')}, "
            f"{i.get('threading_layer', '?')})"
            for i in threadpool_info()
            if i.get("user_api") == "blas"
        )
    except ImportError:
        pass
    return {"cpu_model": model, "vector_extensions": sorted(flags), "cores": cores, "blas": blas}


def describe_machine(info):
    """One line for RESULTS.md from `machine()`'s dict."""
    extensions = (
        ", ".join(e.upper().replace("AVX512", "AVX-512") for e in info.get("vector_extensions", [])) or "none"
    )
    return (
        f"{info.get('cpu_model', 'unknown CPU')}; vector extensions: {extensions}; "
        f"{info.get('cores', '?')} cores visible; BLAS: {info.get('blas', 'unknown')}"
    )


# ---- peers ---------------------------------------------------------------------------------------
class TorchEpoch:
    """The same training in PyTorch on the CPU: nn.Linear layers, ReLU, cross-entropy, the same
    optimizer, a fresh permutation per epoch, batches gathered by indexing."""

    def __init__(self, workload, X, y, threads):
        import torch

        torch.set_num_threads(threads)
        torch.manual_seed(0)
        self.torch = torch
        sizes = workload.layer_sizes()
        layers = []
        for i, (a, b) in enumerate(itertools.pairwise(sizes)):
            layers.append(torch.nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(torch.nn.ReLU())
        self.model = torch.nn.Sequential(*layers)
        params = self.model.parameters()
        if workload.optimizer == "adam":
            self.optimizer = torch.optim.Adam(params, lr=workload.learning_rate)
        else:
            self.optimizer = torch.optim.SGD(params, lr=workload.learning_rate)
        self.loss = torch.nn.CrossEntropyLoss()
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(y)
        self.batch = X.shape[0] if workload.batch_size == "full" else workload.batch_size

    def __call__(self):
        torch, n = self.torch, self.X.shape[0]
        if self.batch >= n:
            batches = [(self.X, self.y)]
        else:
            order = torch.randperm(n)
            batches = (
                (self.X[order[i : i + self.batch]], self.y[order[i : i + self.batch]])
                for i in range(0, n, self.batch)
            )
        for xb, yb in batches:
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss(self.model(xb), yb)
            loss.backward()
            self.optimizer.step()


_SECONDS = re.compile(r"(\bcpu\s+)?(\d+(?:\.\d+)?)s\b")


def cpp_epoch_seconds(stdout):
    """Wall-clock seconds of each epoch from the C++ port's `train` output. Its epoch lines end in
    "cpu 0.250s  0.136s": the CPU seconds of all its threads, then the wall seconds; only the latter
    are epoch times. A line with other than one wall figure is an error (the format changed)."""
    seconds = []
    for line in stdout.splitlines():
        if not line.lstrip().lower().startswith("epoch"):
            continue
        wall = [float(match.group(2)) for match in _SECONDS.finditer(line) if match.group(1) is None]
        if len(wall) != 1:
            raise ValueError(
                f"expected one wall-clock figure (like 0.136s) in the C++ port's epoch line, "
                f"found {len(wall)}: {line!r}"
            )
        seconds.append(wall[0])
    return seconds


class SklearnEpoch:
    """scikit-learn's MLPClassifier doing one pass per call (partial_fit), no L2 (alpha=0)."""

    def __init__(self, workload, X, y):
        import numpy as np
        from sklearn.neural_network import MLPClassifier

        batch = X.shape[0] if workload.batch_size == "full" else workload.batch_size
        solver = "adam" if workload.optimizer == "adam" else "sgd"
        self.model = MLPClassifier(
            hidden_layer_sizes=workload.hidden,
            activation="relu",
            solver=solver,
            alpha=0.0,
            batch_size=batch,
            learning_rate_init=workload.learning_rate,
            momentum=0.0,
            nesterovs_momentum=False,
            shuffle=True,
            random_state=0,
        )
        self.X, self.y, self.classes = X, y, np.arange(10)

    def __call__(self):
        self.model.partial_fit(self.X, self.y, classes=self.classes)
