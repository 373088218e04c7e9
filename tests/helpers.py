"""Helpers shared by the test modules (plain functions; the fixtures live in conftest.py)."""

import contextlib
import os
from pathlib import Path

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


def tolerance(dtype_name):
    """rtol derived from the dtype: 4 * sqrt(eps)."""
    import numpy as np

    return 4 * float(np.sqrt(np.finfo(dtype_name).eps))


def host_backends():
    """(xp, device) pairs available without a GPU: NumPy, array-api-strict on its default and its
    second device, and JAX on the CPU, each when it is installed (for loops inside one test; the
    `backend` fixture covers more)."""
    import array_api_compat.numpy as npx

    found = [(npx, "cpu")]
    try:
        import array_api_strict as strict

        found += [(strict, strict.Device("CPU_DEVICE")), (strict, strict.Device("device1"))]
    except ImportError:
        pass
    with contextlib.suppress(ImportError):
        found.append(jax_backend())
    return found


def jax_backend():
    """(jax.numpy, the first CPU device), with 64-bit floats enabled (JAX makes float32 arrays of
    float64 data otherwise). JAX arrays are immutable: `x[i] = v` raises, and `p -= g` makes a new
    array and leaves the one that others hold as it was. ImportError when JAX is not installed."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    return jnp, jax.devices("cpu")[0]


@contextlib.contextmanager
def jax_without_x64():
    """(jax.numpy, the first CPU device) with JAX in its default setup for the block: no 64-bit
    types, so int64 and float64 requests truncate to int32 and float32 with a warning. The setting
    is global; it is put back as it was. ImportError when JAX is not installed."""
    import jax
    import jax.numpy as jnp

    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    try:
        yield jnp, jax.devices("cpu")[0]
    finally:
        jax.config.update("jax_enable_x64", before)
