"""Benchmark fixtures: the real MNIST, the SGEMM rate of this machine, the peers' availability."""
import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    config.addinivalue_line("markers", "peer: a library the project is compared with")


@pytest.fixture(scope="session")
def mnist():
    import mlp

    folder = os.environ.get("MLP_DATA_DIR") or str(REPO.parent / "shared" / "data" / "mnist")
    (X, y), _ = mlp.datasets.load_mnist(folder)
    return np.ascontiguousarray(X), y.astype(np.int64)


@pytest.fixture(scope="session")
def threads():
    return len(os.sched_getaffinity(0))
