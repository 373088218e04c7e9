"""Array-API plumbing: the one module that knows about namespaces, devices and dtypes.

Everything else in `mlp` is written against the array API standard and receives the namespace as
`xp=` from here. Nothing else imports `array_api_compat`.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import array_api_compat
import numpy as np
from array_api_compat import (
    array_namespace,
    is_array_api_strict_namespace,
    is_cupy_namespace,
    is_numpy_namespace,
    is_writeable_array,
)
from array_api_compat import (
    device as array_device,
)
from array_api_extra import at

__all__ = [
    "Array",
    "DType",
    "Device",
    "Namespace",
    "Params",
    "array_device",
    "assign",
    "at",
    "float_dtype",
    "from_host",
    "get_namespace",
    "index_dtype",
    "is_cupy_namespace",
    "is_numpy_namespace",
    "is_writeable_array",
    "namespace_name",
    "resolve_namespace",
    "same_device",
    "to_numpy",
]

# The types in annotations. The standard defines behaviour, not classes to name: an array is whatever
# its library makes, so these are Any to the type checker and say to the reader what is meant.
Array: TypeAlias = Any
"""An array-API array: a NumPy, CuPy or array_api_strict array, or any other conforming library's."""
Namespace: TypeAlias = Any
"""An array-API namespace (the `xp` of the code), such as ``array_api_compat.numpy``."""
Device: TypeAlias = Any
"""A device of a namespace: the string "cpu" for NumPy, a ``cupy.cuda.Device``, ..."""
DType: TypeAlias = Any
"""A dtype object of a namespace, such as ``xp.float32``."""
Params: TypeAlias = "list[tuple[Array, Array]]"
"""A network's parameters: one (W, b) pair per layer, W (fan_in, fan_out) and b (fan_out,)."""

FLOAT_DTYPE_NAMES = ("float32", "float64")


def get_namespace(*arrays: Array) -> tuple[Namespace, Device]:
    """Return `(xp, device)` of the arrays. NumPy input gets the array-API-compatible numpy wrapper."""
    xp = array_namespace(*arrays)
    return xp, array_device(arrays[0])


def is_array_api_obj(x: object) -> bool:
    return array_api_compat.is_array_api_obj(x)


def namespace_name(xp: Namespace) -> str:
    """A short human name for a namespace: 'numpy', 'cupy', 'array_api_strict' or the module name."""
    if is_numpy_namespace(xp):
        return "numpy"
    if is_cupy_namespace(xp):
        return "cupy"
    if is_array_api_strict_namespace(xp):
        return "array_api_strict"
    return getattr(xp, "__name__", str(xp))


def float_dtype(name: str | DType, *, xp: Namespace) -> DType:
    """The namespace's floating dtype for 'float32' or 'float64' (a dtype object is also accepted)."""
    if not isinstance(name, str):
        name = _dtype_name(name)
    if name not in FLOAT_DTYPE_NAMES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {name!r}")
    return getattr(xp, name)


def _dtype_name(dtype: DType) -> str:
    # numpy/cupy dtypes have .name; others print as "torch.float32", "array_api_strict.float32", ...
    text = str(getattr(dtype, "name", dtype))
    return text.rsplit(".", 1)[-1]


def index_dtype(xp: Namespace, device: Device | None = None) -> DType:
    """The namespace's default integer dtype, for the index and count arrays the library makes: int64
    on NumPy, CuPy, PyTorch and array-api-strict, and on JAX with 64-bit types enabled; int32 on JAX
    in its default setup, where asking for int64 truncates to int32 with a warning."""
    info = getattr(xp, "__array_namespace_info__", None)
    if info is None:  # a namespace older than the 2023.12 standard
        return xp.int64
    return info().default_dtypes(device=device)["integral"]


def dtype_name(dtype: DType) -> str:
    """'float32', 'int64', ... for any namespace's dtype object."""
    return _dtype_name(dtype)


def from_host(array: Any, *, xp: Namespace, device: Device, dtype: DType | None = None) -> Array:
    """Move a host (NumPy) array or Python scalar into namespace `xp` on `device`, once.

    This is the only way host data enters a namespace: random numbers, permutations and masks are
    drawn on the host from a seeded NumPy Generator so every backend sees the same numbers.
    """
    return xp.asarray(array, dtype=dtype, device=device)


def to_numpy(x: Any) -> np.ndarray:
    """Copy an array of any supported namespace to a NumPy array on the host.

    For tests, model files and explicit user requests only: training never calls this.
    """
    if isinstance(x, np.ndarray):
        return x
    if not array_api_compat.is_array_api_obj(x):  # lists, tuples, scalars
        return np.asarray(x)
    xp = array_namespace(x)
    if is_cupy_namespace(xp):
        return x.get()
    if is_array_api_strict_namespace(xp):
        import array_api_strict

        return np.asarray(xp.asarray(array_api_compat.to_device(x, array_api_strict.Device("CPU_DEVICE"))))
    return np.asarray(x)


def assign(target: Array, value: Array, *, xp: Namespace) -> Array:
    """`target` holding `value` (same shape): written into `target` where its library allows in-place
    updates (NumPy, CuPy, PyTorch, array-api-strict: the same array comes back, so views into a flat
    buffer stay views), a new array where it does not (JAX). The caller rebinds to the result.

    The standard leaves `target[...] = value` optional; array-api-extra's `at` is its portable
    spelling."""
    return at(target)[...].set(value, xp=xp)


def same_device(a: Device, b: Device) -> bool:
    """Compare two devices. CuPy devices are not hashable, so compare pairwise with ==."""
    return a == b


def row_chunks(n_rows: int, chunk: int) -> list[slice]:
    """Slices covering range(n_rows) in pieces of at most `chunk`, never past the end (the standard
    leaves out-of-bounds slice stops unspecified)."""
    return [slice(start, min(start + chunk, n_rows)) for start in range(0, n_rows, chunk)]


def resolve_namespace(device: Device | None = None, xp: Namespace | None = None) -> tuple[Namespace, Device]:
    """(xp, device) for a device string: NumPy on the CPU for None or 'cpu', CuPy for 'gpu', 'cuda'
    or 'cuda:N'. With `xp` given, (xp, device) are returned as they are.

    ImportError (with the install command) when CuPy is missing, RuntimeError when no CUDA device
    answers, ValueError for any other string.
    """
    if xp is not None:
        return xp, device
    if device in (None, "cpu"):
        import array_api_compat.numpy as numpy_xp

        return numpy_xp, "cpu"
    if isinstance(device, str) and (device in ("gpu", "cuda") or device.startswith("cuda:")):
        try:
            index = int(device.split(":")[1]) if ":" in device else 0
        except ValueError:
            raise ValueError(
                f"device must be 'cpu', 'gpu' or 'cuda:N' with N an integer, got {device!r}"
            ) from None
        try:
            import array_api_compat.cupy as cupy_xp
            import cupy
        except ImportError:
            raise ImportError('device="gpu" needs CuPy: pip install "mlp-from-scratch[gpu]"') from None
        try:
            cupy.cuda.Device(index).use()
            return cupy_xp, cupy.cuda.Device(index)
        except Exception as error:  # CUDA reports a missing driver or device in several exception types
            raise RuntimeError(f"no usable CUDA device for device={device!r}: {error}") from None
    raise ValueError(f"device must be 'cpu', 'gpu' or 'cuda:N', got {device!r}")
