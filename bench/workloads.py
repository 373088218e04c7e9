"""The benchmark workloads (issue 4), their matrix-multiply FLOPs, and the peers' training code."""
from __future__ import annotations

from dataclasses import dataclass


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
        products = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
        return 2 * n_samples * (2 * sum(products) + sum(products[1:]))


WORKLOADS = {
    "B1": Workload("B1", (128, 64), 128, "adam", 1e-3, "784-128-64-10, Adam, batch 128"),
    "B2": Workload("B2", (1024, 1024), 128, "adam", 1e-3, "784-1024-1024-10, Adam, batch 128"),
    "B3": Workload("B3", (128, 64), 32, "adam", 1e-3, "784-128-64-10, Adam, batch 32"),
    "B4": Workload("B4", (128,), "full", "sgd", 0.1, "784-128-10, full-batch gradient descent"),
}


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
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
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
            batches = ((self.X[order[i : i + self.batch]], self.y[order[i : i + self.batch]]) for i in range(0, n, self.batch))
        for xb, yb in batches:
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss(self.model(xb), yb)
            loss.backward()
            self.optimizer.step()


class SklearnEpoch:
    """scikit-learn's MLPClassifier doing one pass per call (partial_fit), no L2 (alpha=0)."""

    def __init__(self, workload, X, y):
        import numpy as np
        from sklearn.neural_network import MLPClassifier

        batch = X.shape[0] if workload.batch_size == "full" else workload.batch_size
        solver = "adam" if workload.optimizer == "adam" else "sgd"
        self.model = MLPClassifier(hidden_layer_sizes=workload.hidden, activation="relu", solver=solver, alpha=0.0,
                                   batch_size=batch, learning_rate_init=workload.learning_rate, momentum=0.0,
                                   nesterovs_momentum=False, shuffle=True, random_state=0)
        self.X, self.y, self.classes = X, y, np.arange(10)

    def __call__(self):
        self.model.partial_fit(self.X, self.y, classes=self.classes)
