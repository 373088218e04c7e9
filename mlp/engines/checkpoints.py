"""Training checkpoints: everything needed to continue a run exactly where it stopped.

Format "mlp-checkpoint", version 3 (versions 1 and 2 still load), a model file (see `mlp.model_file`)
with:
    state0, state1, ...     the optimizer state, each shaped and typed like the parameter it belongs
                            to (state i goes with parameter i mod the number of parameters, in the
                            order W0, b0, W1, b1, ..., then gamma0, beta0, gamma1, ... with batch
                            normalisation): none for SGD, one per parameter for momentum and RMSProp,
                            two for Adam
    best_W0, best_b0, ...   the early-stopping snapshot, when best.has_params (and best_gamma0,
                            best_beta0, best_mean0, best_var0, ... with batch normalisation)
    metadata                the model's fields plus epoch, step_count (integers >= 0), rng_state (a
                            NumPy PCG64 state), schedule_state (null or an object of numbers), fit_options,
                            history, best (null or {monitored, epoch, has_params}), finished
Non-finite numbers of the schedule state and of best.monitored are written as {"__float__": "inf"}
(or "-inf", "nan") so that strict JSON still restores them exactly; history uses null.

Reading checks every field and every array before the trainer sees any of it: a tampered file
raises `ModelFileError`, never an exception from inside the trainer.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import model_file
from .._array_api import Params, to_numpy
from .._files import OutputPathError, check_writable
from ..layers import Norms
from ..model_file import ModelFileError, integer_field, to_json
from ..schedules import SCHEDULES

if TYPE_CHECKING:
    from ..model import MLP

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "check_checkpoint_path",
    "load_checkpoint",
    "same_options",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "mlp-checkpoint"
CHECKPOINT_VERSION = 3
MAX_EPOCH = 10**9
MAX_STEPS = 2**53
MAX_STATE_SETS = 4  # optimizer arrays per parameter (Adam keeps 2)
_SCHEDULE_INTEGERS = {"epochs": 1, "steps_per_epoch": 1, "step_size": 1, "patience": 0, "waited": 0}
# Ranges of the built-in schedules' numbers: (low, high, low included); every other number must be
# finite, except the plateau schedule's best loss, which starts at infinity.
_SCHEDULE_RANGES = {
    "base_lr": (0.0, math.inf, False),
    "current": (0.0, math.inf, True),
    "min_lr": (0.0, math.inf, True),
    "warmup_epochs": (0.0, math.inf, True),
    "min_delta": (0.0, math.inf, True),
    "gamma": (0.0, 1.0, False),
    "factor": (0.0, 1.0, False),
}
# Names a restored schedule state must not overwrite: the schedules' methods and class attributes.
_SCHEDULE_RESERVED = frozenset(
    name
    for cls in SCHEDULES.values()
    for name, value in vars(cls).items()
    if callable(value) or name == "name"
)
_STATE_NAME = re.compile(r"state[0-9]{1,9}")
_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


# ---- writing ------------------------------------------------------------------------------------
def encode_float(value: Any) -> Any:
    """A number for strict JSON: finite as is, non-finite as {"__float__": "inf" | "-inf" | "nan"}."""
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        return {"__float__": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    return to_json(value)


def save_checkpoint(
    path: str | os.PathLike[str],
    model: MLP,
    snapshot: dict[str, Any],
    *,
    history: dict[str, Any],
    fit_options: dict[str, Any],
    best: tuple[float, Params | None, int] | None = None,
    finished: bool = False,
    best_norms: Norms | None = None,
) -> str | os.PathLike[str]:
    """Write `model` (an MLP) and the trainer's `snapshot` (`Trainer.snapshot()`: state, step_count,
    epoch, rng_state, schedule_state) to `path` atomically; return the path.

    best: None, or (monitored loss, parameter copy or None, epoch index) of early stopping;
    best_norms: the batch normalisations of that copy (for a model with batch normalisation).
    """
    arrays = model_file.param_arrays(model.get_weights())
    arrays.update(model_file.norm_arrays(model.get_norms()))
    for index, state in enumerate(snapshot["state"]):
        arrays[f"state{index}"] = np.ascontiguousarray(state)
    if best is not None and best[1] is not None:
        arrays.update(
            model_file.param_arrays([(to_numpy(W), to_numpy(b)) for W, b in best[1]], prefix="best_")
        )
        host_norms = [(to_numpy(g), to_numpy(b), to_numpy(m), to_numpy(v)) for g, b, m, v in best_norms or ()]
        arrays.update(model_file.norm_arrays(host_norms, prefix="best_"))
    schedule_state = snapshot.get("schedule_state")
    metadata = {
        **model.metadata(),
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "epoch": int(snapshot["epoch"]),
        "step_count": int(snapshot["step_count"]),
        "rng_state": to_json(snapshot["rng_state"]),
        "schedule_state": None
        if schedule_state is None
        else {str(k): encode_float(v) for k, v in schedule_state.items()},
        "fit_options": to_json(fit_options),
        "history": to_json(history),
        "best": None
        if best is None
        else {
            "monitored": encode_float(float(best[0])),
            "epoch": int(best[2]),
            "has_params": best[1] is not None,
        },
        "finished": bool(finished),
    }
    return model_file.write_archive(path, arrays, metadata, what="checkpoint")


def check_checkpoint_path(
    path: str | os.PathLike[str], *, resume: bool, what: str = "checkpoint", resume_hint: str = "resume=True"
) -> Path:
    """Before the first epoch: `path` can be written, and an existing file there is one this run may
    replace. Refused with one line (OutputPathError, a ValueError and an OSError): a folder, device,
    FIFO or socket; a file that is not an mlp checkpoint (a text file, a data set, a trained model),
    which is never overwritten; an existing checkpoint without `resume` (continuing it or starting
    over is the user's choice, never made silently). With `resume`, an existing checkpoint is
    continued (its options are compared when it is loaded). Only the zip directory and the metadata
    are read, with the model-file reader's limits. Returns `path` as a Path."""
    path = check_writable(path, what)
    model_file.check_replaceable(
        path, what, kind=CHECKPOINT_FORMAT, hint="give another path, or delete it if it is not needed"
    )
    if path.exists() and not resume:
        raise OutputPathError(
            f"{what} {path} already holds a training checkpoint; pass {resume_hint} to continue it or "
            "remove it (or give another path) to start over"
        )
    return path


# ---- reading ------------------------------------------------------------------------------------
def load_checkpoint(
    path: str | os.PathLike[str],
) -> tuple[
    list[tuple[np.ndarray, np.ndarray]],
    list[np.ndarray],
    list[tuple[np.ndarray, np.ndarray]] | None,
    dict[str, Any],
]:
    """Host arrays and metadata of a checkpoint: (params, optimizer_state, best_params or None, metadata).
    With batch normalisation, metadata["norms"] and metadata["best_norms"] (None without best_params)
    hold the host (gamma, beta, running_mean, running_var) of each hidden layer (empty lists without).

    Every array is checked against the model's shapes and dtype (an optimizer state is shaped like its
    parameter, never broadcast); epoch and step_count are integers >= 0; rng_state is a valid PCG64
    state; schedule_state holds numbers only. `metadata` is normalised: non-finite numbers decoded,
    history's nulls read as NaN. Raises ModelFileError for any malformed file.
    """
    with model_file.open_archive(path) as archive:
        where = archive.where
        raw = archive.read_metadata()
        metadata = model_file.check_model_metadata(raw, where, expected_format=CHECKPOINT_FORMAT)
        metadata.update(_check_training_fields(raw, where))
        descr = model_file.FLOAT_DESCR[metadata["dtype"]]
        sizes, batch_norm = metadata["layer_sizes"], metadata["batch_norm"]
        shapes = model_file.param_shapes(sizes)
        norm_shapes = model_file.norm_shapes(sizes, batch_norm)
        state_shapes = _state_shapes(archive, model_file.trainable_shapes(sizes, batch_norm))
        has_best = metadata["best"] is not None and metadata["best"]["has_params"]
        best_shapes = model_file.param_shapes(sizes, prefix="best_") if has_best else []
        best_norm_shapes = model_file.norm_shapes(sizes, batch_norm, prefix="best_") if has_best else []
        total = sum(
            archive.header(name, descr=descr, shape=shape)
            for name, shape in shapes + norm_shapes + state_shapes + best_shapes + best_norm_shapes
        )
        model_file.check_memory(archive, total, "the checkpoint's arrays")
        params = model_file.read_params(archive, shapes, descr)
        metadata["norms"] = model_file.read_norms(archive, norm_shapes, descr)
        state = [archive.read(name, descr=descr, shape=shape, finite=True) for name, shape in state_shapes]
        best_params = model_file.read_params(archive, best_shapes, descr) if best_shapes else None
        metadata["best_norms"] = model_file.read_norms(archive, best_norm_shapes, descr) if has_best else None
    return params, state, best_params, metadata


def _state_shapes(
    archive: model_file.Archive, param_shapes: Sequence[tuple[str, tuple[int, ...]]]
) -> list[tuple[str, tuple[int, ...]]]:
    """[(name, shape)] of state0, state1, ...: numbered without gaps, a whole number of sets of the
    parameters (at most MAX_STATE_SETS)."""
    numbers = sorted(int(key[5:]) for key in archive.keys if _STATE_NAME.fullmatch(key))
    n = len(param_shapes)
    if numbers != list(range(len(numbers))) or len(numbers) % n or len(numbers) > MAX_STATE_SETS * n:
        raise ModelFileError(
            f"{archive.where}: its optimizer-state arrays are numbered {_numbers_text(numbers)}; expected "
            f"state0 to stateK-1 with K a multiple of the {n} parameter arrays (at most {MAX_STATE_SETS * n})"
        )
    return [(f"state{index}", param_shapes[index % n][1]) for index in numbers]


def _numbers_text(numbers: Sequence[int]) -> str:
    text = ", ".join(map(str, numbers[:8]))
    return (text + ", ..." if len(numbers) > 8 else text) or "(none)"


def _check_training_fields(metadata: dict[str, Any], where: str) -> dict[str, Any]:
    """The checkpoint-only fields, checked and decoded."""
    fields = {
        "epoch": integer_field(metadata, "epoch", where, low=0, high=MAX_EPOCH),
        "step_count": integer_field(metadata, "step_count", where, low=0, high=MAX_STEPS),
        "rng_state": _check_rng_state(metadata.get("rng_state"), where),
        "schedule_state": _check_schedule_state(metadata.get("schedule_state"), where),
        "fit_options": metadata.get("fit_options") if metadata.get("fit_options") is not None else {},
        "best": _check_best(metadata.get("best"), where),
        "finished": metadata.get("finished", False),
    }
    if not isinstance(fields["fit_options"], dict):
        raise ModelFileError(f"{where}: metadata field 'fit_options' must be an object")
    if not isinstance(fields["finished"], bool):
        raise ModelFileError(f"{where}: metadata field 'finished' must be true or false")
    return fields


def _check_rng_state(value: Any, where: str) -> dict[str, Any]:
    """A PCG64 state NumPy accepts (tried on a throw-away generator)."""
    ok = (
        isinstance(value, dict)
        and value.get("bit_generator") == "PCG64"
        and isinstance(value.get("state"), dict)
        and set(value["state"]) == {"state", "inc"}
        and all(type(v) is int and 0 <= v < 2**128 for v in value["state"].values())
        and value.get("has_uint32") in (0, 1)
        and type(value.get("has_uint32")) is int
        and type(value.get("uinteger")) is int
        and 0 <= value["uinteger"] < 2**32
        and set(value) == {"bit_generator", "state", "has_uint32", "uinteger"}
    )
    if ok:
        try:
            np.random.PCG64().state = value
        except (ValueError, TypeError, KeyError, OverflowError):
            ok = False
    if not ok:
        raise ModelFileError(f"{where}: metadata field 'rng_state' is not a NumPy PCG64 generator state")
    return value


def _decode_number(value: Any, where: str, what: str) -> Any:
    if isinstance(value, dict) and set(value) == {"__float__"} and str(value["__float__"]) in _NON_FINITE:
        return _NON_FINITE[value["__float__"]]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ModelFileError(f"{where}: {what} must be a number, got {model_file._short(value)}")
    return value


def _check_schedule_state(value: Any, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > 64:
        raise ModelFileError(f"{where}: metadata field 'schedule_state' must be null or an object of numbers")
    state = {}
    for key, item in value.items():
        if not key.isidentifier() or key.startswith("_") or key in _SCHEDULE_RESERVED:
            raise ModelFileError(f"{where}: schedule_state has an invalid key {model_file._short(key)}")
        number = _decode_number(item, where, f"schedule_state[{key!r}]")
        if key in _SCHEDULE_INTEGERS:
            number = integer_field({key: number}, key, where, low=_SCHEDULE_INTEGERS[key], high=MAX_STEPS)
        elif key in _SCHEDULE_RANGES:
            low, high, closed = _SCHEDULE_RANGES[key]
            if not (math.isfinite(number) and (low <= number if closed else low < number) and number <= high):
                raise ModelFileError(
                    f"{where}: schedule_state[{key!r}] must be in {'[' if closed else '('}{low:g}, "
                    f"{high:g}], got {model_file._short(number)}"
                )
        elif key != "best" and not math.isfinite(number):
            raise ModelFileError(f"{where}: schedule_state[{key!r}] must be finite, got {number}")
        state[key] = number
    return state


def _check_best(value: Any, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not (isinstance(value, dict) and isinstance(value.get("has_params"), bool)):
        raise ModelFileError(
            f"{where}: metadata field 'best' must be null or {{monitored, epoch, has_params}}"
        )
    return {
        "monitored": _decode_number(value.get("monitored"), where, "best['monitored']"),
        "epoch": integer_field(value, "epoch", where, low=-1, high=MAX_EPOCH),
        "has_params": value["has_params"],
    }


# ---- resuming -----------------------------------------------------------------------------------
RESUME_KEYS = (
    "hidden_sizes",
    "activation",
    "loss",
    "batch_size",
    "optimizer",
    "learning_rate",
    "weight_decay",
    "dropout",
    "clip_value",
    "clip_norm",
    "schedule",
    "dtype",
    "epochs",
    "seed",
    "n_samples",
    "n_features",
    "ranks",
    "shards",
    "augment",
    "max_norm",
    "label_smoothing",
    "sample_weight",
    "batch_norm",
    "batch_norm_momentum",
)
# Absent from an older file: MPI ranks of the run (one process; rank 0 writes the file); no augmentation,
# max-norm, label smoothing or sample weights.
_RESUME_DEFAULTS = {
    "ranks": 1,
    "shards": None,
    "augment": None,
    "max_norm": None,
    "label_smoothing": 0.0,
    "sample_weight": None,
    "batch_norm": None,
    "batch_norm_momentum": None,
}


def same_options(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The fit options that must match for a checkpoint to be resumed: a list of differences, each
    "key: checkpoint A, now B" (empty when they agree)."""
    differences = []
    for key in RESUME_KEYS:
        default = _RESUME_DEFAULTS.get(key)  # NaN (format version 1) reads as null
        a, b = to_json(saved.get(key, default)), to_json(current.get(key, default))
        if isinstance(a, float) and isinstance(b, float) and math.isclose(a, b):
            continue
        if a != b:
            differences.append(f"{key}: checkpoint {a!r}, now {b!r}")
    return differences
