"""Benchmark fixtures: the real MNIST, the SGEMM rate of this machine, the peers' availability."""
import os
import sys
import time
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


def sgemm_seconds(size=2048, rounds=7):
    """Median seconds of one float32 (size x size) @ (size x size) product through NumPy's BLAS."""
    rng = np.random.default_rng(0)
    A = rng.random((size, size), dtype=np.float32)
    B = rng.random((size, size), dtype=np.float32)
    out = np.empty_like(A)
    np.matmul(A, B, out=out)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        np.matmul(A, B, out=out)
        times.append(time.perf_counter() - start)
    return float(np.median(times))
