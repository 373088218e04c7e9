"""Benchmark fixtures: the real MNIST, the cores to use, and the machine recorded in every result
(CPU model and vector extensions in the JSON's machine_info and in each benchmark's extra_info)."""

import contextlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workloads import machine

REPO = Path(__file__).resolve().parent.parent


LOADAVG = {}


def loadavg():
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def pytest_configure(config):
    if not config.pluginmanager.hasplugin("benchmark"):
        raise pytest.UsageError('the benchmarks need pytest-benchmark: pip install -e ".[bench]"')
    config.addinivalue_line("markers", "peer: a library the project is compared with")
    LOADAVG["start"] = loadavg()


@pytest.hookimpl(optionalhook=True)  # pytest-benchmark's hook: unknown to pytest without it
def pytest_benchmark_update_machine_info(config, machine_info):
    """pytest-benchmark's hook: beside its own machine_info, the CPU model, AVX2/AVX-512 and the BLAS,
    the versions measured, and the load average when the run started and ended."""
    machine_info["mlp_machine"] = machine()
    machine_info["mlp_versions"] = versions()
    machine_info["loadavg"] = dict(LOADAVG, end=loadavg())


def versions():
    found = {}
    for module in ("numpy", "numba", "threadpoolctl", "torch", "sklearn"):
        with contextlib.suppress(Exception):  # not installed, or broken: not part of this run
            found[module] = __import__(module).__version__
    return found


@pytest.fixture(autouse=True)
def _record_machine(request):
    """Every benchmark's extra_info names the machine too, so a result copied out of its file keeps it."""
    if "benchmark" in request.fixturenames:
        info = machine()
        request.getfixturevalue("benchmark").extra_info.update(
            cpu_model=info["cpu_model"], vector_extensions=info["vector_extensions"]
        )
    yield


@pytest.fixture(scope="session")
def mnist():
    import mlp

    folder = os.environ.get("MLP_DATA_DIR") or str(REPO.parent / "shared" / "data" / "mnist")
    (X, y), _ = mlp.datasets.load_mnist(folder)
    return np.ascontiguousarray(X), y.astype(np.int64)


@pytest.fixture(scope="session")
def threads():
    return len(os.sched_getaffinity(0))
