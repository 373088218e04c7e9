"""Model files and training checkpoints: `.npz` archives loaded with allow_pickle=False.

Model file (format "mlp-model", version 1; the C++ port reads and writes the same):
    W0, b0, W1, b1, ...   float32 or float64 arrays, W shaped (fan_in, fan_out)
    metadata              uint8 array holding UTF-8 JSON: format, format_version, library_version,
                          hidden_sizes, activation, loss, n_features, classes, dtype, preprocessing,
                          l2, config, history
Checkpoint (format "mlp-checkpoint", version 1): the model's arrays, the optimizer state as
state0, state1, ..., the early-stopping snapshot as best_W0, best_b0, ..., and metadata with the
epoch, step count, random generator state, schedule state and the fit options it was made with.

Every file is written to a temporary file and renamed into place, so a crash never leaves half a
file where the user's model was.
"""
from __future__ import annotations

import json
import math
import zipfile

import numpy as np

from ._array_api import from_host, to_numpy
from ._files import atomic_write

MODEL_FORMAT, MODEL_VERSION = "mlp-model", 1
CHECKPOINT_FORMAT, CHECKPOINT_VERSION = "mlp-checkpoint", 1
MNIST_PREPROCESSING = {"input": "pixels / 255", "range": [0.0, 1.0], "image_shape": [28, 28]}


class ModelFileError(ValueError):
    """A model or checkpoint file that is not what it claims to be."""


# ---- writing --------------------------------------------------------------------------------------
def _write_npz(path, arrays, metadata):
    payload = dict(arrays)
    text = json.dumps(metadata, allow_nan=True, sort_keys=True)
    payload["metadata"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    with atomic_write(path) as handle:
        np.savez(handle, **payload)
    return path


def _param_arrays(params, prefix=""):
    arrays = {}
    for index, (W, b) in enumerate(params):
        arrays[f"{prefix}W{index}"] = np.ascontiguousarray(to_numpy(W))
        arrays[f"{prefix}b{index}"] = np.ascontiguousarray(to_numpy(b))
    return arrays


def model_metadata(model):
    from . import __version__

    return {
        "format": MODEL_FORMAT,
        "format_version": MODEL_VERSION,
        "library_version": __version__,
        "hidden_sizes": model.hidden_sizes,
        "activation": model.activation,
        "loss": model.loss,
        "n_features": model.n_features_in_,
        "classes": [int(c) for c in to_numpy(model.classes_).tolist()],
        "dtype": model.dtype,
        "l2": model.l2,
        "preprocessing": model.config.get("preprocessing", MNIST_PREPROCESSING),
        "config": _jsonable(model.config),
        "history": _jsonable(model.history),
    }


def save_model(model, path):
    """Write `model` to `path` (.npz) atomically; return the path."""
    return _write_npz(path, _param_arrays(model.params), model_metadata(model))


# ---- reading --------------------------------------------------------------------------------------
def _read_npz(path, expected_format, max_version):
    try:
        with open(path, "rb") as handle:
            signature = handle.read(4)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such model file") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path} is a folder, not a model file") from None
    if signature[:2] != b"PK":
        raise ModelFileError(f"{path} is not an .npz file (no ZIP header); is it the right file?")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such model file") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path} is a folder, not a model file") from None
    except ValueError as error:
        if "pickle" in str(error) or "object" in str(error):
            raise ModelFileError(f"{path} holds object arrays; refusing to unpickle them (not a model file)") from None
        raise ModelFileError(f"{path} is not a readable .npz file: {error}") from None
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise ModelFileError(f"{path} is truncated or not an .npz file ({type(error).__name__}: {error})") from None
    if "metadata" not in arrays:
        raise ModelFileError(f"{path} has no 'metadata' entry: not an mlp model file")
    try:
        metadata = json.loads(arrays.pop("metadata").astype(np.uint8).tobytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ModelFileError(f"{path}: its metadata is not valid JSON ({error})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != expected_format:
        raise ModelFileError(f"{path} is not an {expected_format} file (format {metadata.get('format')!r})")
    version = metadata.get("format_version")
    if not isinstance(version, int) or version > max_version:
        raise ModelFileError(
            f"{path} has format version {version!r}; this mlp reads versions up to {max_version}: upgrade mlp"
        )
    return arrays, metadata


def _params_from_arrays(arrays, metadata, path, prefix=""):
    n_layers = len(metadata["hidden_sizes"]) + 1
    sizes = [metadata["n_features"], *metadata["hidden_sizes"], len(metadata["classes"])]
    dtype = metadata["dtype"]
    params = []
    for index in range(n_layers):
        pair = []
        for name, shape in ((f"{prefix}W{index}", (sizes[index], sizes[index + 1])), (f"{prefix}b{index}", (sizes[index + 1],))):
            if name not in arrays:
                raise ModelFileError(f"{path} lacks the array {name!r}")
            array = arrays[name]
            if array.dtype.kind == "O" or str(array.dtype) != dtype:
                raise ModelFileError(f"{path}: {name} has dtype {array.dtype}, expected {dtype}")
            if tuple(array.shape) != shape:
                raise ModelFileError(f"{path}: {name} has shape {tuple(array.shape)}, expected {shape}")
            if not np.all(np.isfinite(array)):
                raise ModelFileError(f"{path}: {name} contains NaN or infinity")
            pair.append(array)
        params.append(tuple(pair))
    return params


def _check_model_metadata(metadata, path):
    required = {"hidden_sizes": list, "activation": str, "loss": str, "n_features": int, "classes": list, "dtype": str}
    for key, kind in required.items():
        if not isinstance(metadata.get(key), kind):
            raise ModelFileError(f"{path}: metadata field {key!r} is missing or not a {kind.__name__}")
    if metadata["dtype"] not in ("float32", "float64"):
        raise ModelFileError(f"{path}: unsupported dtype {metadata['dtype']!r}")
    if not all(isinstance(h, int) and h > 0 for h in metadata["hidden_sizes"]):
        raise ModelFileError(f"{path}: hidden_sizes must be positive integers")
    if len(metadata["classes"]) < 1:
        raise ModelFileError(f"{path}: the model has no classes")


def resolve_namespace(device=None, xp=None):
    """(xp, device) for loading: NumPy on the CPU by default, CuPy for device='gpu'/'cuda'/'cuda:N'."""
    if xp is not None:
        return xp, device
    if device in (None, "cpu"):
        import array_api_compat.numpy as numpy_xp

        return numpy_xp, "cpu"
    if isinstance(device, str) and (device in ("gpu", "cuda") or device.startswith("cuda:")):
        try:
            import cupy
            import array_api_compat.cupy as cupy_xp

            index = int(device.split(":")[1]) if ":" in device else 0
            cupy.cuda.Device(index).use()
            return cupy_xp, cupy.cuda.Device(index)
        except ImportError:
            raise ImportError('device="gpu" needs CuPy: pip install "mlp[gpu]"') from None
        except Exception as error:
            raise RuntimeError(f"no usable CUDA device for device={device!r}: {error}") from None
    raise ValueError(f"device must be 'cpu', 'gpu' or 'cuda:N', got {device!r}")


def load_model(path, *, device=None, xp=None):
    """Read a model file; the parameters go to `device` ('cpu' NumPy, 'gpu' CuPy) or to `xp`/`device`."""
    from .model import MLP

    arrays, metadata = _read_npz(path, MODEL_FORMAT, MODEL_VERSION)
    _check_model_metadata(metadata, path)
    host_params = _params_from_arrays(arrays, metadata, path)
    xp, device = resolve_namespace(device, xp)
    params = [(from_host(W, xp=xp, device=device), from_host(b, xp=xp, device=device)) for W, b in host_params]
    classes = from_host(np.asarray(metadata["classes"], dtype=np.int64), xp=xp, device=device)
    config = dict(metadata.get("config") or {})
    config.setdefault("preprocessing", metadata.get("preprocessing"))
    model = MLP(params, activation=metadata["activation"], loss=metadata["loss"], classes=classes,
                l2=float(metadata.get("l2", 0.0)), history=metadata.get("history") or {}, config=config)
    return model


# ---- checkpoints ----------------------------------------------------------------------------------
def save_checkpoint(path, trainer, *, history, fit_options, best=None, finished=False):
    """Everything needed to continue training exactly where it stopped."""
    model = trainer.model
    snapshot = trainer.snapshot()
    arrays = _param_arrays(model.params)
    for index, state in enumerate(snapshot["state"]):
        arrays[f"state{index}"] = state
    if best is not None and best[1] is not None:
        arrays.update(_param_arrays(best[1], prefix="best_"))
    metadata = model_metadata(model)
    metadata.update(
        format=CHECKPOINT_FORMAT,
        format_version=CHECKPOINT_VERSION,
        epoch=snapshot["epoch"],
        step_count=snapshot["step_count"],
        rng_state=snapshot["rng_state"],
        schedule_state=_jsonable(snapshot["schedule_state"]),
        fit_options=_jsonable(fit_options),
        history=_jsonable(history),
        best=None if best is None else {"monitored": best[0], "epoch": best[2], "has_params": best[1] is not None},
        finished=bool(finished),
    )
    return _write_npz(path, arrays, metadata)


def load_checkpoint(path):
    """Host arrays and metadata of a checkpoint: (params, optimizer_state, best_params or None, metadata)."""
    arrays, metadata = _read_npz(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION)
    _check_model_metadata(metadata, path)
    params = _params_from_arrays(arrays, metadata, path)
    state, index = [], 0
    while f"state{index}" in arrays:
        state.append(arrays[f"state{index}"])
        index += 1
    best = metadata.get("best") or {}
    best_params = _params_from_arrays(arrays, metadata, path, prefix="best_") if best.get("has_params") else None
    return params, state, best_params, metadata


def _jsonable(value):
    """Plain JSON types (NumPy scalars to Python numbers, tuples to lists); NaN/inf kept as JSON allows."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


def same_options(saved, current):
    """The fit options that must match for a checkpoint to be resumed, compared with a clear diff."""
    keys = ("hidden_sizes", "activation", "loss", "batch_size", "optimizer", "learning_rate", "weight_decay",
            "dropout", "clip_value", "clip_norm", "schedule", "dtype", "epochs", "seed", "n_samples", "n_features")
    differences = []
    for key in keys:
        a, b = saved.get(key), _jsonable(current.get(key))
        if isinstance(a, float) and isinstance(b, float) and (math.isclose(a, b) or (math.isnan(a) and math.isnan(b))):
            continue
        if a != b:
            differences.append(f"{key}: checkpoint {a!r}, now {b!r}")
    return differences
