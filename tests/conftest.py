"""Shared fixtures: array namespaces x devices x dtypes, and the real MNIST folder."""
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def blobs(n=120, d=6, k=3, seed=0):
    """A small, well-separated classification problem: (X float64 (n, d), y int64 in 0..k-1)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, size=(k, d))
    y = rng.integers(0, k, size=n)
    return centers[y] + rng.normal(0, 1, size=(n, d)), y


def put(array, xp, device):
    """A host array moved into namespace xp on device (the tests' way to make backend data)."""
    import numpy as np

    from mlp._array_api import from_host

    return from_host(np.asarray(array), xp=xp, device=device)


def assert_lives_on(array, xp, device):
    """The array belongs to namespace xp and sits on device."""
    from mlp._array_api import get_namespace

    array_xp, array_device = get_namespace(array)
    assert array_xp.__name__ == xp.__name__
    assert array_device == device


def mnist_folder():
    """The real MNIST folder: $MLP_DATA_DIR, else ../shared/data/mnist beside the checkout."""
    candidates = []
    if os.environ.get("MLP_DATA_DIR"):
        candidates.append(Path(os.environ["MLP_DATA_DIR"]))
    candidates.append(REPO_ROOT.parent / "shared" / "data" / "mnist")
    for folder in candidates:
        if (folder / "train-images-idx3-ubyte.gz").exists() or (folder / "train-images-idx3-ubyte").exists():
            return folder
    return None


@pytest.fixture(scope="session")
def mnist_dir():
    folder = mnist_folder()
    if folder is None:
        message = "real MNIST not found: set MLP_DATA_DIR to the folder of the four IDX files"
        if os.environ.get("CI"):
            pytest.fail(message + " (in CI these tests must run, not skip)")
        pytest.skip(message)
    return folder


# ---- namespaces x devices x dtypes ------------------------------------------------------------
def _backend_cases():
    """(id, loader) pairs; a loader returns (xp, device) or calls pytest.skip with the reason."""

    def numpy_case():
        import array_api_compat.numpy as xp

        return xp, "cpu"

    def strict_case(device_name):
        def load():
            xp = pytest.importorskip("array_api_strict")
            return xp, xp.Device(device_name)

        return load

    def cupy_case():
        try:
            import cupy

            cupy.cuda.runtime.getDeviceCount()
        except Exception as error:  # not installed, or no CUDA device / driver
            pytest.skip(f"CuPy with a CUDA device is not available: {type(error).__name__}: {error}")
        import array_api_compat.cupy as xp

        return xp, cupy.cuda.Device(0)

    def torch_case():
        pytest.importorskip("torch", reason="PyTorch is not installed (it is optional: any array-API library works)")
        import array_api_compat.torch as xp

        return xp, xp.asarray(0.0).device

    return [
        pytest.param(numpy_case, id="numpy"),
        pytest.param(strict_case("CPU_DEVICE"), id="strict-cpu"),
        pytest.param(strict_case("device1"), id="strict-device1"),
        pytest.param(cupy_case, id="cupy", marks=pytest.mark.gpu),
        pytest.param(torch_case, id="torch-cpu"),
    ]


@pytest.fixture(params=_backend_cases())
def backend(request):
    """(xp, device) for every available array namespace and device; skips with a reason if absent."""
    return request.param()


@pytest.fixture(params=["float32", "float64"])
def float_name(request):
    return request.param


def tolerance(dtype_name):
    """rtol derived from the dtype: 4 * sqrt(eps)."""
    import numpy as np

    return 4 * float(np.sqrt(np.finfo(dtype_name).eps))
