"""Memory estimates, made before anything large is allocated.

Training, prediction and model loading ask here first: a network that cannot fit is refused up front
with a message that names the size and the option to change, instead of a MemoryError traceback
halfway through or the kernel's OOM killer.

The estimates count what the library itself allocates (parameters, gradients, optimizer buffers,
activations of one batch, dropout masks, the shuffling permutation); the caller's own data is already
in memory and is not counted. The limit is the memory available now: the ``MLP_MEMORY_LIMIT``
environment variable (bytes) when set, else ``MemAvailable`` from ``/proc/meminfo`` (capped by a cgroup
limit when one applies), else a generous fallback where neither exists.

Standard library only, so that any module can import it.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence

__all__ = [
    "MemoryLimitError",
    "available_bytes",
    "check_fits",
    "check_training_memory",
    "n_parameters",
    "optimizer_buffers",
    "prediction_chunk_rows",
    "prediction_row_bytes",
    "training_bytes",
]

GIB = 1 << 30
FALLBACK_AVAILABLE = (
    64 * GIB
)  # where the operating system does not say: generous, still refuses 10^9-wide layers
PREDICT_BUDGET = 256 << 20  # bytes of activations per forward pass at prediction time
MAX_PREDICT_ROWS = 8192  # more rows per pass gains nothing measurable
LIMIT_VARIABLE = "MLP_MEMORY_LIMIT"

# Parameter-sized buffers each built-in optimizer keeps (Adam: first and second moments; the
# estimators' L-BFGS-B: SciPy's 10 correction pairs and its work vectors, plus the flat float64 copies).
OPTIMIZER_BUFFERS = {"sgd": 0, "momentum": 1, "nesterov": 1, "rmsprop": 1, "adam": 2, "adamw": 2, "lbfgs": 27}
_ITEMSIZE = {"float32": 4, "float64": 8}


class MemoryLimitError(MemoryError, ValueError):
    """A computation was refused because it would need more memory than is available.

    Both a MemoryError (what it is) and a ValueError (what callers that validate options catch)."""


def available_bytes() -> int:
    """Bytes that may be allocated now: ``MLP_MEMORY_LIMIT`` if set, else what the OS reports."""
    override = os.environ.get(LIMIT_VARIABLE)
    if override is not None and override.strip():
        accepted = "give a whole number of bytes such as 8000000000 or 8e9, or unset it"
        try:
            value = int(float(override))
        except (ValueError, OverflowError):  # text, NaN, or inf (1e400 reads as inf)
            raise ValueError(f"{LIMIT_VARIABLE}={override!r} is not a number of bytes; {accepted}") from None
        if value < 0:
            raise ValueError(
                f"{LIMIT_VARIABLE}={override!r} must be a non-negative number of bytes; {accepted}"
            )
        return value
    candidates = [value for value in (_meminfo_available(), _cgroup_headroom()) if value is not None]
    return min(candidates) if candidates else FALLBACK_AVAILABLE


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", "rb") as handle:
            for line in handle.read(1 << 16).splitlines():
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the value is in kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_headroom() -> int | None:
    """memory.max - memory.current of this process's cgroup (v2), when a limit is set."""
    try:
        with open("/sys/fs/cgroup/memory.max", "rb") as handle:
            limit = handle.read(64).strip()
        if limit == b"max":
            return None
        with open("/sys/fs/cgroup/memory.current", "rb") as handle:
            current = int(handle.read(64).strip())
        return max(int(limit) - current, 0)
    except (OSError, ValueError):
        return None


def _gib(nbytes: float) -> str:
    return f"{nbytes / GIB:,.1f} GiB"


def check_fits(nbytes: int, what: str, option_hint: str) -> None:
    """Raise MemoryLimitError when `nbytes` exceed the memory available now.

    `what` names the computation ("training this network"), `option_hint` the way out
    ("use smaller hidden_sizes or batch_size").
    """
    available = available_bytes()
    if nbytes > available:
        raise MemoryLimitError(
            f"{what} needs about {_gib(nbytes)} of memory but only {_gib(available)} is available; "
            f"{option_hint} (or set {LIMIT_VARIABLE}=BYTES if this estimate is wrong for your machine)"
        )


def _itemsize(dtype: object) -> int:
    name = str(getattr(dtype, "name", dtype)).rsplit(".", 1)[-1]
    try:
        return _ITEMSIZE[name]
    except KeyError:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from None


def _check_sizes(layer_sizes: Sequence[int]) -> list[int]:
    sizes = [int(size) for size in layer_sizes]
    if len(sizes) < 2 or any(size < 1 for size in sizes):
        raise ValueError(f"layer_sizes must be at least two positive widths, got {list(layer_sizes)!r}")
    return sizes


def n_parameters(layer_sizes: Sequence[int]) -> int:
    sizes = _check_sizes(layer_sizes)
    return sum(fan_in * fan_out + fan_out for fan_in, fan_out in itertools.pairwise(sizes))


def training_bytes(
    layer_sizes: Sequence[int],
    *,
    batch_size: int | None,
    n_samples: int,
    dtype: object,
    optimizer_buffers: int,
    dropout: float,
) -> int:
    """Bytes the library allocates to train a network of `layer_sizes` ([n_features, *hidden, n_classes]).

    Parameters, their gradients and `optimizer_buffers` parameter-sized buffers; for one batch
    (`batch_size` rows, None for the whole data set) each layer's pre-activation and activation, the
    dropout masks when `dropout` > 0, and the backward pass's two widest deltas; the batch of inputs
    gathered by shuffling; a permutation and per-step losses over `n_samples`. Python integers, so a
    10^9-wide layer gives a number, not an overflow.
    """
    sizes = _check_sizes(layer_sizes)
    item = _itemsize(dtype)
    n_samples = int(n_samples)
    rows = n_samples if batch_size is None else min(int(batch_size), n_samples)
    rows = max(rows, 1)
    parameters = n_parameters(sizes) * (2 + int(optimizer_buffers))
    hidden, widest = sizes[1:-1], max(sizes[1:])
    per_row = sizes[0] + 2 * sum(hidden) + 2 * sizes[-1] + 2 * widest
    if dropout:
        per_row += sum(hidden)
    per_sample = 8 + 2 * 8  # the shuffling permutation (int64), per-step bookkeeping (generous)
    return parameters * item + rows * per_row * item + n_samples * per_sample


def optimizer_buffers(optimizer: object) -> int:
    """Parameter-sized buffers an optimizer keeps: by name, or an `mlp.optimizers` instance's name;
    2 (the most of any built-in) for one not known here."""
    name = optimizer if isinstance(optimizer, str) else getattr(optimizer, "name", None)
    return OPTIMIZER_BUFFERS.get(name, 2) if isinstance(name, str) else 2


def check_training_memory(
    layer_sizes: Sequence[int],
    batch_size: int | None,
    n_samples: int,
    dtype: object,
    optimizer_name: object,
    dropout: float,
    *,
    hint: str = "use smaller hidden_sizes or a smaller batch_size",
) -> int:
    """Refuse (MemoryLimitError, a ValueError) a training run that cannot fit; return its estimate in bytes.

    `optimizer_name`: a name such as "adam" or an optimizer instance. `batch_size`: rows per step, or
    None for full-batch training. `hint`: the way out, in the caller's words (the command line says
    "use a smaller --hidden or --batch-size").
    """
    nbytes = training_bytes(
        layer_sizes,
        batch_size=batch_size,
        n_samples=n_samples,
        dtype=dtype,
        optimizer_buffers=optimizer_buffers(optimizer_name),
        dropout=dropout,
    )
    sizes = [int(size) for size in layer_sizes]
    check_fits(
        nbytes,
        f"training a {'-'.join(map(str, sizes))} network ({n_parameters(sizes):,} parameters, "
        f"{dtype}, batches of {n_samples if batch_size is None else batch_size})",
        hint,
    )
    return nbytes


def prediction_row_bytes(layer_sizes: Sequence[int], dtype: object) -> int:
    """Bytes one row of input costs in a forward pass: its input row, each hidden layer's
    pre-activation and activation, and the output's logits and probabilities."""
    sizes = _check_sizes(layer_sizes)
    return _itemsize(dtype) * (sizes[0] + 2 * sum(sizes[1:-1]) + 2 * sizes[-1])


def prediction_chunk_rows(
    layer_sizes: Sequence[int], dtype: object, budget_bytes: int = PREDICT_BUDGET
) -> int:
    """Rows per forward pass so that one pass allocates at most about `budget_bytes` (at least 1 row,
    at most 8192)."""
    per_row = prediction_row_bytes(layer_sizes, dtype)
    return max(1, min(MAX_PREDICT_ROWS, int(budget_bytes) // per_row))
