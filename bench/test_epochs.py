"""Seconds per epoch of the same training work across implementations (run: see RESULTS.md).

Every case trains one epoch of the 60 000 MNIST training images from a prepared state, so setup
(validation, initialisation, compilation) is not timed. The C++ port reports its own per-epoch
seconds (process start and file loading excluded) in extra_info.
"""

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from workloads import WORKLOADS, SklearnEpoch, TorchEpoch, cpp_epoch_seconds, mlp_trainer

ROUNDS = {"B1": 7, "B2": 3, "B3": 5, "B4": 7}
IMPLEMENTATIONS = ["numpy", "numba", "cpp", "cupy", "torch", "sklearn"]
SGEMM_SIZE = 2048


def test_sgemm_roofline(benchmark):
    """The machine's float32 GEMM rate through NumPy's BLAS, measured in the same run."""
    benchmark.group = "roofline"
    benchmark.extra_info.update(implementation="sgemm", flops=2 * SGEMM_SIZE**3)
    rng = np.random.default_rng(0)
    A = rng.random((SGEMM_SIZE, SGEMM_SIZE), dtype=np.float32)
    B = rng.random((SGEMM_SIZE, SGEMM_SIZE), dtype=np.float32)
    out = np.empty_like(A)
    benchmark.pedantic(np.matmul, args=(A, B), kwargs={"out": out}, rounds=9, iterations=1, warmup_rounds=2)


def _mlp_epoch(engine, workload, X, y, xp_arrays=None):
    """One epoch as mlp.fit runs it: the trainer's run_epoch inside the thread policy's block."""
    from mlp._threads import thread_limits

    data_X, data_y = xp_arrays if xp_arrays is not None else (X, y)
    try:
        trainer = mlp_trainer(engine, workload, data_X, data_y)
    except ImportError as error:  # engine="numba" without Numba
        pytest.skip(str(error))

    def epoch():
        with thread_limits(None):
            trainer.run_epoch(data_X, data_y)

    return epoch


def _cupy_arrays(X, y):
    try:
        import cupy

        cupy.cuda.runtime.getDeviceCount()
    except Exception as error:
        pytest.skip(f"CuPy with a CUDA device is not available: {type(error).__name__}")
    import array_api_compat.cupy as cxp

    return cxp.asarray(X), cxp.asarray(y)


def _cpp_binary():
    candidates = [
        os.environ.get("MLP_CPP_BIN"),
        REPO / "cpp" / "build" / "mlp-cpp",
        REPO / "cpp" / "build-ci" / "mlp-cpp",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return Path(candidate)
    pytest.skip("the C++ port is not built (cmake -S cpp -B cpp/build && cmake --build cpp/build)")


@pytest.fixture(scope="session")
def binary_mnist(tmp_path_factory, mnist):
    """The training set in the C++ port's binary format (fast to load)."""
    import mlp

    folder = tmp_path_factory.mktemp("mlpd")
    X, y = mnist
    mlp.datasets.write_binary(folder / "train.mlpd", X, y)
    mlp.datasets.write_binary(folder / "test.mlpd", X[:100], y[:100])
    return folder


def _epochs_as_rounds(benchmark, seconds):
    """Epochs timed by another process's own clock (the C++ port's) become this benchmark's rounds, so
    pytest-benchmark's table shows one epoch, as in every other row, not the whole process (data
    loading and all its epochs)."""
    benchmark.pedantic(lambda: None, rounds=len(seconds), iterations=1)
    benchmark.stats.stats.data[:] = seconds


@pytest.mark.parametrize("workload", list(WORKLOADS))
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_epoch(benchmark, request, implementation, workload, mnist, threads):
    spec = WORKLOADS[workload]
    X, y = mnist
    benchmark.group = workload
    benchmark.extra_info.update(
        workload=workload,
        implementation=implementation,
        gemm_flops=spec.gemm_flops(X.shape[0]),
        description=spec.description,
    )
    rounds = ROUNDS[workload]
    if implementation in ("numpy", "numba"):
        epoch = _mlp_epoch("xp" if implementation == "numpy" else "numba", spec, X, y)
    elif implementation == "cupy":
        epoch = _mlp_epoch("xp", spec, X, y, xp_arrays=_cupy_arrays(X, y))
    elif implementation == "torch":
        pytest.importorskip("torch")
        epoch = TorchEpoch(spec, X, y, threads)
    elif implementation == "sklearn":
        pytest.importorskip("sklearn")
        if workload == "B2":
            rounds = 1  # several seconds an epoch
        epoch = SklearnEpoch(spec, X, y)
    else:
        binary = _cpp_binary()
        folder = request.getfixturevalue("binary_mnist")
        epochs = rounds + 1
        batch = "full" if spec.batch_size == "full" else str(spec.batch_size)
        command = [
            str(binary),
            "train",
            "--data",
            str(folder),
            "--hidden",
            ",".join(map(str, spec.hidden)),
            "--epochs",
            str(epochs),
            "--batch-size",
            batch,
            "--optimizer",
            spec.optimizer,
            "--lr",
            str(spec.learning_rate),
            "--schedule",
            "constant",
            "--test-limit",
            "100",
            "--dropout",  # the port's default is 0.1; the Python trainers here run without dropout
            "0",
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        seconds = cpp_epoch_seconds(result.stdout)  # wall seconds only, not the CPU seconds beside them
        assert len(seconds) == epochs, result.stdout
        benchmark.extra_info["epoch_seconds"] = seconds[1:]  # the first epoch warms the caches
        _epochs_as_rounds(benchmark, seconds[1:])
        return
    benchmark.pedantic(epoch, rounds=rounds, iterations=1, warmup_rounds=1)
