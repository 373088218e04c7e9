"""Shared fixtures: array namespaces x devices x dtypes, and the real MNIST folder."""

import contextlib
import os

import pytest

from tests.helpers import jax_backend, jax_without_x64, mnist_folder


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
        pytest.importorskip(
            "torch", reason="PyTorch is not installed (it is optional: any array-API library works)"
        )
        import array_api_compat.torch as xp

        return xp, xp.asarray(0.0).device

    def jax_case():
        pytest.importorskip("jax", reason='JAX is not installed (pip install "jax[cpu]")')
        return jax_backend()

    def jax_x32_case():
        pytest.importorskip("jax", reason='JAX is not installed (pip install "jax[cpu]")')
        return jax_without_x64()

    jax_x32_case.float32_only = True  # type: ignore[attr-defined]

    return [
        pytest.param(numpy_case, id="numpy"),
        pytest.param(strict_case("CPU_DEVICE"), id="strict-cpu"),
        pytest.param(strict_case("device1"), id="strict-device1"),
        pytest.param(cupy_case, id="cupy", marks=pytest.mark.gpu),
        pytest.param(torch_case, id="torch-cpu"),
        pytest.param(jax_case, id="jax-cpu"),
        pytest.param(jax_x32_case, id="jax-cpu-x32"),
    ]


@pytest.fixture(params=_backend_cases())
def backend(request):
    """(xp, device) for every available array namespace and device; skips with a reason if absent.
    JAX runs twice: with 64-bit types, and in its default setup without them (jax-cpu-x32), which
    has no float64 and so runs only in the tests that take float_name, for float32."""
    load = request.param
    if getattr(load, "float32_only", False) and (
        "float_name" not in request.fixturenames or request.getfixturevalue("float_name") != "float32"
    ):
        pytest.skip("JAX without 64-bit types has no float64: only float_name='float32' tests run on it")
    with contextlib.ExitStack() as stack:
        found = load()
        yield stack.enter_context(found) if isinstance(found, contextlib.AbstractContextManager) else found


@pytest.fixture(params=["float32", "float64"])
def float_name(request):
    return request.param
