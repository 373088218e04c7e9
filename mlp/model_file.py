"""Model files: `.npz` archives of plain arrays plus a JSON description, read with every check.

This module handles arrays and metadata only; `mlp.model` turns them into an `MLP`, and
`mlp.engines.checkpoints` adds the optimizer state. The C++ port reads and writes the same files.

Format "mlp-model", version 3 (versions 1 and 2 still load, as models without batch normalisation):
    W0, b0, W1, b1, ...   little-endian float32 or float64 arrays ('<f4' / '<f8'), W shaped
                          (fan_in, fan_out), b shaped (fan_out,)
    gamma0, beta0, mean0, var0, gamma1, ...
                          with batch normalisation only: hidden layer l's scale, shift, running
                          mean and running variance (>= 0), each shaped (width of layer l,), same dtype
    metadata              a 1-D uint8 array holding UTF-8 JSON (strict: no NaN or Infinity tokens,
                          null where a value is missing) with format, format_version,
                          library_version, hidden_sizes, activation, loss, n_features, classes,
                          dtype, l2, batch_norm (null, "before" or "after"; absent before version
                          3: null), preprocessing (null unless known), config, history;
                          classes is null for a model trained on a target matrix (loss
                          squared_error or binary_cross_entropy), whose n_outputs gives the
                          output width (files of classifiers may also carry n_outputs)

Version 2 differs from 1 only in the JSON: strict (version 1 wrote NaN for a missing val_loss), and
`preprocessing` is null unless the trainer recorded it (version 1 always claimed MNIST's). Version 3
adds batch normalisation (`batch_norm` and its arrays).

Reading a file trusts nothing in it. The archive is read by `mlp._npz.NpzReader`, the package's one
.npz reader (its zip directory, entries, .npy headers and data, with its limits; see that module);
this module adds what a model file must hold. In order, before anything large is allocated or
inflated: the zip's end record and central directory, the metadata entry (at most 16 MiB) and its JSON
(an object, known format and version, every field of the right type and within limits), then each
expected array's `.npy` header (the dtype and shape the metadata implies, and the size in the zip
directory equal to header + data) and the memory the parameters need. Only then are the arrays read,
and each must be finite. Entries not expected are ignored and never inflated. Every malformed file
raises `ModelFileError` (a ValueError); a missing path raises FileNotFoundError.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ._files import OutputPathError, atomic_write, refuse_special
from ._memory import MemoryLimitError, check_fits
from ._npz import NpzError, NpzReader
from .activations import ACTIVATIONS
from .losses import LOSSES, VALUE_LOSSES
from .options import MAX_HIDDEN_LAYERS, MAX_METADATA_BYTES, MAX_WIDTH

__all__ = [
    "FORMAT_VERSION",
    "MODEL_FORMAT",
    "MetadataTrimmedWarning",
    "ModelFileError",
    "check_replaceable",
    "load_model_file",
    "save_model_file",
]

MODEL_FORMAT = "mlp-model"
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
NORM_ARRAYS = ("gamma", "beta", "mean", "var")  # a hidden layer's batch normalisation, in file order
BATCH_NORM_VERSION = 3  # the first format version that may hold batch normalisation

# Limits on what a file may declare: MAX_WIDTH, MAX_HIDDEN_LAYERS and MAX_METADATA_BYTES are the options
# table's (the C++ port gets the same through train_defaults.hpp); the structural ones (entries, zip
# directory, .npy header, deflate ratio) are those of mlp._npz, the one .npz reader.
FLOAT_DESCR = {"float32": "<f4", "float64": "<f8"}
SCALAR_HISTORY_KEYS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")


class ModelFileError(ValueError):
    """A model or checkpoint file that is not what it claims to be (truncated, corrupt, tampered
    with, from an unknown format version, or too large for this machine)."""


# ---- JSON ---------------------------------------------------------------------------------------
def to_json(value: Any) -> Any:
    """Plain JSON values: NumPy scalars to Python numbers, tuples and arrays to lists, keys to
    strings, NaN and infinity to None (strict JSON has no token for them), anything else to str."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, str) or value is None:
        return value
    return str(value)


def encode_metadata(metadata: dict[str, Any], limit: int | None = None) -> bytes:
    """Strict UTF-8 JSON (allow_nan=False) of `metadata` after `to_json`; at most `limit` bytes
    (MAX_METADATA_BYTES)."""
    limit = MAX_METADATA_BYTES if limit is None else limit
    data = _encode(metadata)
    if len(data) > limit:
        raise ValueError(
            f"the model's metadata is {len(data):,} bytes, over the {limit:,}-byte limit of the "
            "file format; clear model.history or model.config of large values before saving"
        )
    return data


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {key!r} appears twice in one object")
        result[key] = value
    return result


def decode_metadata(data: bytes, where: str) -> dict[str, Any]:
    """The metadata object. NaN and Infinity tokens (written by format version 1) are accepted in
    version 1 only: version 2 is strict JSON, and a file of version 2 holding one is refused."""
    tokens: list[str] = []

    def constant(token: str) -> float:
        tokens.append(token)
        return float(token)

    try:
        metadata = json.loads(
            data.decode("utf-8"), object_pairs_hook=_reject_duplicate_keys, parse_constant=constant
        )
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise ModelFileError(f"{where}: its metadata is not valid JSON ({_short(error, 120)})") from None
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{where}: its metadata is a JSON {type(metadata).__name__}, not an object")
    version = metadata.get("format_version")
    if tokens and isinstance(version, (int, float)) and not isinstance(version, bool) and version >= 2:
        raise ModelFileError(
            f"{where}: its metadata holds the token {tokens[0]}, which format version 2 (strict JSON) "
            "does not allow; null stands for a missing value"
        )
    return metadata


def _short(value: object, limit: int = 60) -> str:
    """A value for an error message: repr() (str() for an exception), cut to `limit` characters."""
    text = str(value) if isinstance(value, BaseException) else repr(value)
    return _clip(text, limit)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---- writing ------------------------------------------------------------------------------------
def param_arrays(params: Sequence[tuple[np.ndarray, np.ndarray]], prefix: str = "") -> dict[str, np.ndarray]:
    """{"W0": W0, "b0": b0, ...} as C-contiguous little-endian host arrays, as the format stores them
    (`prefix` goes before each name)."""
    arrays = {}
    for index, (W, b) in enumerate(params):
        arrays[f"{prefix}W{index}"] = _little_endian(W)
        arrays[f"{prefix}b{index}"] = _little_endian(b)
    return arrays


def norm_arrays(
    norms: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], prefix: str = ""
) -> dict[str, np.ndarray]:
    """{"gamma0": ..., "beta0": ..., "mean0": ..., "var0": ..., "gamma1": ...} as the format stores
    them (`prefix` goes before each name); empty without batch normalisation."""
    arrays = {}
    for index, norm in enumerate(norms):
        for name, array in zip(NORM_ARRAYS, norm, strict=True):
            arrays[f"{prefix}{name}{index}"] = _little_endian(array)
    return arrays


def _little_endian(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))


class MetadataTrimmedWarning(UserWarning):
    """A model file or checkpoint was written without part of its history (the per-layer gradient
    logs, then the oldest epochs), which did not fit in the format's metadata limit."""


def _history_epochs(history: dict[str, Any]) -> int:
    return max((len(values) for values in history.values() if isinstance(values, list)), default=0)


def fit_metadata(metadata: dict[str, Any], limit: int | None = None) -> tuple[bytes, list[str]]:
    """(encoded metadata, what was left out): `metadata` as strict JSON within `limit` bytes
    (MAX_METADATA_BYTES), so that whatever a long or heavily logged run recorded is still written in
    a file every reader takes. Left out, in this order, only as far as needed: the per-epoch
    per-layer logs of `log_gradients` (history keys whose entries are lists), then the oldest epochs
    of the history (the newest are kept; history["epoch"] says which). `what` is a list of phrases
    (empty when nothing was left out). When even an empty history does not fit (a huge `config`),
    the ValueError of `encode_metadata` is raised."""
    limit = MAX_METADATA_BYTES if limit is None else limit
    metadata = to_json(metadata)  # once: the tries below only cut lists
    data = _encode(metadata, plain=True)
    history = metadata.get("history")
    if len(data) <= limit:
        return data, []
    if not isinstance(history, dict) or not history:
        return encode_metadata(metadata, limit), []  # raises: nothing here can be left out
    dropped = []
    layered = sorted(
        key
        for key, values in history.items()
        if isinstance(values, list) and any(isinstance(item, list) for item in values)
    )
    if layered:
        history = {key: values for key, values in history.items() if key not in layered}
        dropped.append(f"the per-layer logs history[{', '.join(map(repr, layered))}]")
        data = _encode({**metadata, "history": history}, plain=True)
        if len(data) <= limit:
            return data, dropped
    epochs = _history_epochs(history)

    def keeping(n: int) -> dict[str, Any]:  # the last n epochs of every key
        cut = {k: (v[len(v) - n :] if n else []) if isinstance(v, list) else v for k, v in history.items()}
        return {**metadata, "history": cut}

    # The encoded size of the last n epochs, computed from each entry's own length (JSON lists join
    # their items with ", "), so a long history costs two encodings, not a search over encodings.
    base = len(_encode(keeping(0), plain=True))
    tails = [
        np.concatenate([[0], np.cumsum([_json_length(item) for item in reversed(values)])])
        for values in history.values()
        if isinstance(values, list)
    ]

    def size(n: int) -> int:
        total = base
        for tail in tails:
            kept = min(n, len(tail) - 1)
            if kept:
                total += int(tail[kept]) + 2 * (kept - 1)
        return total

    low, high = 0, epochs + 1  # size(low) fits (or low is 0), size(high) does not
    while high - low > 1:
        middle = (low + high) // 2
        if size(middle) <= limit:
            low = middle
        else:
            high = middle
    data = _encode(keeping(low), plain=True)
    while len(data) > limit and low > 0:  # never expected (the sizes add up exactly): be safe
        low -= max(1, low // 100)
        data = _encode(keeping(low), plain=True)
    if len(data) > limit:
        encode_metadata(keeping(0), limit)  # even no history does not fit: its ValueError
    dropped.append(f"the oldest {epochs - low:,} of {epochs:,} epochs of history (the last {low:,} kept)")
    return data, dropped


def _json_length(value: Any) -> int:
    return len(json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8"))


def _encode(metadata: dict[str, Any], *, plain: bool = False) -> bytes:
    """UTF-8 strict JSON; `plain`: `metadata` is already made of plain JSON values (`to_json`)."""
    text = json.dumps(
        metadata if plain else to_json(metadata), allow_nan=False, sort_keys=True, ensure_ascii=False
    )
    return text.encode("utf-8")


def write_archive(
    path: str | os.PathLike[str],
    arrays: dict[str, np.ndarray],
    metadata: dict[str, Any],
    *,
    what: str = "model file",
) -> str | os.PathLike[str]:
    """Write `arrays` (name -> host array) and `metadata` (JSON-able) to `path` atomically; return path.

    Metadata over the format's limit is shrunk by `fit_metadata` with a MetadataTrimmedWarning saying
    what was left out, so the arrays are never lost to a long history. `what` names the file in
    errors ("cannot write checkpoint run.npz: No space left on device")."""
    payload: dict[str, Any] = dict(arrays)
    data, dropped = fit_metadata(metadata)
    if dropped:
        warnings.warn(
            f"{what} {path}: the metadata was over the {MAX_METADATA_BYTES:,}-byte limit of the file "
            f"format; written without {' and '.join(dropped)}",
            MetadataTrimmedWarning,
            stacklevel=3,
        )
    payload["metadata"] = np.frombuffer(data, dtype=np.uint8)
    with atomic_write(path, what=what) as handle:
        np.savez(handle, **payload)
    return path


def check_replaceable(
    path: str | os.PathLike[str],
    what: str = "model file",
    *,
    kind: str = MODEL_FORMAT,
    hint: str = "give another path or delete it",
) -> dict[str, Any] | None:
    """Before writing a `kind` file ("mlp-model", "mlp-checkpoint") at `path`: refuse (OutputPathError,
    one line) an existing path that is not a regular file, or a file that is not of that kind (a text
    file, a Keras mnist.npz, a checkpoint where a model goes), so that no user file is replaced by a
    model. Only the zip directory and the metadata are read, with the reader's limits. Returns the
    existing file's metadata (None when there is no file)."""
    path = refuse_special(path, what)
    if not path.exists():
        return None
    found = None
    try:
        with open_archive(path) as archive:
            metadata = archive.read_metadata()
        found = metadata.get("format")
    except (ModelFileError, OSError):
        metadata = None
    if found == kind:
        return metadata
    kinds: dict[Any, str] = {MODEL_FORMAT: "an mlp model", "mlp-checkpoint": "an mlp training checkpoint"}
    holds = kinds.get(found, "something else")
    raise OutputPathError(
        f"{what} {path} exists and is not {'an mlp model file' if kind == MODEL_FORMAT else 'an mlp checkpoint'}"
        f" (it holds {holds}); {hint}"
    )


def save_model_file(
    path: str | os.PathLike[str],
    params: Sequence[tuple[np.ndarray, np.ndarray]],
    metadata: dict[str, Any],
    *,
    norms: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = (),
) -> str | os.PathLike[str]:
    """Write a model file: `params` [(W, b), ...] as host arrays, `norms` [(gamma, beta, running_mean,
    running_var), ...] of a model with batch normalisation (metadata["batch_norm"] says where),
    `metadata` the model's description (hidden_sizes, activation, loss, n_features, classes, dtype,
    ...); format fields are added here. An existing file at `path` is replaced (atomically) only
    when it is a model file itself."""
    check_replaceable(path, "model file")
    full = {"batch_norm": None, **metadata, "format": MODEL_FORMAT, "format_version": FORMAT_VERSION}
    hidden_layers = len(params) - 1  # a network without hidden layers has nothing to normalise
    if len(norms) != (hidden_layers if full["batch_norm"] is not None else 0):
        raise ValueError(
            "a model file holds one norm per hidden layer exactly when metadata['batch_norm'] is "
            f"'before' or 'after' (got {len(norms)} norms for {hidden_layers} hidden layers and "
            f"batch_norm={full['batch_norm']!r})"
        )
    return write_archive(path, {**param_arrays(params), **norm_arrays(norms)}, full, what="model file")


# ---- the archive: mlp._npz's reader with the format's checks on each array -----------------------
@contextlib.contextmanager
def _model_errors() -> Iterator[None]:
    """The reader's NpzError, with its message, as this module's ModelFileError."""
    try:
        yield
    except NpzError as error:
        raise ModelFileError(str(error)) from None


class Archive:
    """An open model file or checkpoint: `mlp._npz.NpzReader` (the zip directory, the entries, the
    `.npy` headers and the data, read with bounds) plus the format's checks of each array's dtype and
    shape. `keys` maps each array name ("W0") to its zip entry. Every problem raises ModelFileError.
    Use as a context manager."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        with _model_errors():
            self._reader = NpzReader.open(path, "model file")
        self.where = self._reader.where
        self.keys = self._reader.keys
        self.size = self._reader.size

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        self.close()
        return False

    def close(self) -> None:
        self._reader.close()

    def __contains__(self, key: object) -> bool:
        return key in self.keys

    def header(self, key: str, *, descr: str, shape: tuple[int, ...]) -> int:
        """Check `key`'s .npy header against the expected `descr` ('<f4') and `shape`, and the zip
        directory's size against header + data; return the number of data bytes. Reads only the header."""
        with _model_errors():
            found = self._reader.header(key)
        got_descr, got_shape = found.descr, found.shape
        if got_descr != descr and got_descr == ">" + descr[1:]:  # the right type, the wrong byte order
            raise ModelFileError(
                f"{self.where}: {key} is big-endian {_dtype_text(descr)} ({got_descr!r}); the format stores "
                f"little-endian ({descr!r}): write the arrays with numpy as array.astype({descr!r})"
            )
        if got_descr != descr:
            raise ModelFileError(
                f"{self.where}: {key} has dtype {_dtype_text(got_descr)}, expected {_dtype_text(descr)}"
            )
        if got_shape != tuple(shape):
            raise ModelFileError(
                f"{self.where}: {key} has shape {_short(got_shape)}, expected {tuple(shape)}"
            )
        if found.fortran_order and len(shape) > 2:
            raise ModelFileError(f"{self.where}: {key} is a Fortran-ordered array of {len(shape)} dimensions")
        with _model_errors():
            return found.data_bytes()

    def read(self, key: str, *, descr: str, shape: tuple[int, ...], finite: bool = False) -> np.ndarray:
        """The array `key` (checked by `header`, then read by the reader, at most the bytes the
        expected shape takes), C-contiguous."""
        nbytes = self.header(key, descr=descr, shape=shape)
        with _model_errors():
            array = self._reader.read(key, max_bytes=nbytes)
        if array.dtype != np.dtype(descr) or array.shape != tuple(shape):  # the file changed meanwhile
            raise ModelFileError(f"{self.where}: {key} changed while it was read")
        array = np.ascontiguousarray(array)
        if finite and not np.all(np.isfinite(array)):
            raise ModelFileError(f"{self.where}: {key} contains NaN or infinity")
        return array

    def read_metadata(self) -> dict[str, Any]:
        """The metadata JSON object (at most MAX_METADATA_BYTES), not yet checked field by field."""
        if "metadata" not in self.keys:
            raise ModelFileError(f"{self.where} has no 'metadata' entry: not an mlp model file")
        with _model_errors():
            found = self._reader.header("metadata")
        descr, shape = found.descr, found.shape
        if descr != "|u1" or len(shape) != 1:
            raise ModelFileError(
                f"{self.where}: the metadata entry must be a 1-D uint8 array, got "
                f"{_dtype_text(descr)} of shape {_short(shape)}"
            )
        if shape[0] > MAX_METADATA_BYTES:
            raise ModelFileError(
                f"{self.where}: the metadata is {shape[0]:,} bytes, over the "
                f"{MAX_METADATA_BYTES:,}-byte limit"
            )
        data = self.read("metadata", descr="|u1", shape=shape)
        return decode_metadata(data.tobytes(), self.where)


def _dtype_text(descr: str) -> str | None:
    """'float32' for the dtypes this format uses, else e.g. "int32 ('<i4')" (or the raw text)."""
    name = None
    if len(descr) <= 16:
        try:
            name = np.dtype(descr).name
        except Exception:  # any text at all may be in a hostile header; this is only for the message
            name = None
    if descr in ("<f4", "<f8", "|u1"):
        return name
    return f"{name} ({descr!r})" if name else _short(descr, 30)


# ---- metadata fields ----------------------------------------------------------------------------
def integer_field(
    metadata: dict[str, Any], key: str, where: str, *, low: int, high: int, default: int | None = None
) -> int:
    """metadata[key] as a Python int in [low, high] (an integral JSON float such as 3.0 counts)."""
    value = metadata.get(key, default)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ModelFileError(
            f"{where}: metadata field {key!r} must be an integer from {low:,} to {high:,}, got {_short(value)}"
        )
    return value


def _integer_list(values: Any, key: str, where: str, *, low: int, high: int, max_length: int) -> list[int]:
    if not isinstance(values, list) or len(values) > max_length:
        raise ModelFileError(
            f"{where}: metadata field {key!r} must be a list of at most {max_length:,} integers, "
            f"got {_short(values)}"
        )
    holder = {}
    result = []
    for value in values:
        holder[key] = value
        result.append(integer_field(holder, key, where, low=low, high=high))
    return result


def _history(value: Any, where: str) -> dict[str, Any]:
    """{key: [number or None or [numbers], ...]} with None read back as NaN (strict JSON has no NaN)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ModelFileError(
            f"{where}: metadata field 'history' must be an object of lists, got {_short(value)}"
        )

    def number(item: Any, key: str) -> Any:
        if item is None:
            return math.nan
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise ModelFileError(f"{where}: history[{key!r}] holds {_short(item)}, not a number")
        return item

    history = {}
    for key, values in value.items():
        if not isinstance(values, list):
            raise ModelFileError(f"{where}: history[{key!r}] must be a list, got {_short(values)}")
        if key in SCALAR_HISTORY_KEYS:
            history[key] = [number(item, key) for item in values]
        else:  # per-layer values (grad_norm, ...): a list of numbers per epoch
            history[key] = [
                [number(x, key) for x in item] if isinstance(item, list) else number(item, key)
                for item in values
            ]
    return history


def check_model_metadata(
    metadata: dict[str, Any], where: str, *, expected_format: str = MODEL_FORMAT
) -> dict[str, Any]:
    """Check the description of a model (also the model part of a checkpoint) field by field, and
    return it normalised: `layer_sizes` added, history's nulls read as NaN, defaults filled in."""
    kind = metadata.get("format")
    if kind != expected_format:
        hint = (
            " (a training checkpoint: resume it with fit(checkpoint=..., resume=True))"
            if kind == "mlp-checkpoint"
            else ""
        )
        raise ModelFileError(f"{where} is not an {expected_format} file (format {_short(kind)}){hint}")
    version = metadata.get("format_version")
    if isinstance(version, float) and version.is_integer():
        version = int(version)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(
            f"{where}: metadata field 'format_version' must be a positive integer, got {_short(version)}"
        )
    if version not in READABLE_VERSIONS:
        raise ModelFileError(
            f"{where} has {expected_format} format version {version}; this mlp reads format versions "
            f"{READABLE_VERSIONS[0]} to {READABLE_VERSIONS[-1]}: upgrade mlp (pip install -U mlp-from-scratch) "
            "or re-save the model with the version that wrote it"
        )
    n_features = integer_field(metadata, "n_features", where, low=1, high=MAX_WIDTH)
    hidden = _integer_list(
        metadata.get("hidden_sizes"),
        "hidden_sizes",
        where,
        low=1,
        high=MAX_WIDTH,
        max_length=MAX_HIDDEN_LAYERS,
    )
    for key, table in (("activation", ACTIVATIONS), ("loss", LOSSES)):
        if not isinstance(metadata.get(key), str) or metadata[key] not in table:
            raise ModelFileError(
                f"{where}: unknown {key} {_short(metadata.get(key))}; this mlp knows "
                f"{', '.join(sorted(table))}"
            )
    if metadata["loss"] in VALUE_LOSSES:  # regression or multilabel: no classes, n_outputs outputs
        if metadata.get("classes") is not None:
            raise ModelFileError(
                f"{where}: a model with loss {metadata['loss']!r} has no classes, but metadata "
                f"field 'classes' is {_short(metadata.get('classes'))}"
            )
        classes = None
        n_outputs = integer_field(metadata, "n_outputs", where, low=1, high=MAX_WIDTH)
    else:
        classes = _integer_list(
            metadata.get("classes"), "classes", where, low=-(2**63), high=2**63 - 1, max_length=MAX_WIDTH
        )
        if not classes:
            raise ModelFileError(f"{where}: the model has no classes (metadata field 'classes' is empty)")
        if len(set(classes)) != len(classes):
            raise ModelFileError(f"{where}: metadata field 'classes' lists a class twice")
        n_outputs = len(classes)
        if metadata.get("n_outputs", n_outputs) != n_outputs:
            raise ModelFileError(
                f"{where}: metadata field 'n_outputs' is {_short(metadata.get('n_outputs'))} but "
                f"the model lists {n_outputs} classes"
            )
    if not isinstance(metadata.get("dtype"), str) or metadata["dtype"] not in FLOAT_DESCR:
        raise ModelFileError(
            f"{where}: metadata field 'dtype' must be 'float32' or 'float64', got "
            f"{_short(metadata.get('dtype'))}"
        )
    l2 = metadata.get("l2", 0.0)
    if isinstance(l2, bool) or not isinstance(l2, (int, float)) or not (math.isfinite(l2) and l2 >= 0):
        raise ModelFileError(f"{where}: metadata field 'l2' must be a number >= 0, got {_short(l2)}")
    for key in ("config", "preprocessing"):
        if metadata.get(key) is not None and not isinstance(metadata[key], dict):
            raise ModelFileError(
                f"{where}: metadata field {key!r} must be an object or null, got {_short(metadata[key])}"
            )
    config = dict(metadata.get("config") or {})
    if config.get("optimizer") is not None and not isinstance(config["optimizer"], dict):
        raise ModelFileError(
            f'{where}: config[\'optimizer\'] must be an object such as {{"name": "adam"}}, got '
            f"{_short(config['optimizer'])}"
        )
    if config.get("preprocessing") is not None and not isinstance(config["preprocessing"], dict):
        raise ModelFileError(f"{where}: config['preprocessing'] must be an object or null")
    if not isinstance(metadata.get("library_version", ""), str):
        raise ModelFileError(f"{where}: metadata field 'library_version' must be a string")
    batch_norm = _batch_norm_field(metadata, version, where)
    return {
        **metadata,
        "format_version": version,
        "n_features": n_features,
        "hidden_sizes": hidden,
        "classes": classes,
        "l2": float(l2),
        "batch_norm": batch_norm,
        "config": config,
        "history": _history(metadata.get("history"), where),
        "n_outputs": n_outputs,
        "layer_sizes": [n_features, *hidden, n_outputs],
    }


def _batch_norm_field(metadata: dict[str, Any], version: int, where: str) -> str | None:
    """metadata["batch_norm"]: null (or absent), "before" or "after"; only from format version 3."""
    value = metadata.get("batch_norm")
    if value is not None and value not in ("before", "after"):
        raise ModelFileError(
            f"{where}: metadata field 'batch_norm' must be null, 'before' or 'after', got {_short(value)}"
        )
    if value is not None and version < BATCH_NORM_VERSION:
        raise ModelFileError(
            f"{where}: batch_norm {value!r} needs format version {BATCH_NORM_VERSION}, but the file says {version}"
        )
    return value


def norm_shapes(
    layer_sizes: Sequence[int], batch_norm: str | None, prefix: str = "", names: Sequence[str] = NORM_ARRAYS
) -> list[tuple[str, tuple[int, ...]]]:
    """[(name, shape), ...] of the batch normalisations' arrays (`names` of each hidden layer, in file
    order); empty when batch_norm is None."""
    if batch_norm is None:
        return []
    return [
        (f"{prefix}{name}{index}", (width,))
        for index, width in enumerate(layer_sizes[1:-1])
        for name in names
    ]


def trainable_shapes(layer_sizes: Sequence[int], batch_norm: str | None) -> list[tuple[str, tuple[int, ...]]]:
    """[(name, shape), ...] of the trained arrays in the optimizer's order: W0, b0, ..., then gamma0,
    beta0, gamma1, ... with batch normalisation (the running statistics are not trained)."""
    return param_shapes(layer_sizes) + norm_shapes(layer_sizes, batch_norm, names=("gamma", "beta"))


def read_norms(
    archive: Archive, names_and_shapes: Sequence[tuple[str, tuple[int, ...]]], descr: str
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """[(gamma, beta, running_mean, running_var), ...] read from `archive` (headers already checked
    by the caller), finite, every running variance >= 0."""
    arrays = [archive.read(name, descr=descr, shape=shape, finite=True) for name, shape in names_and_shapes]
    for (name, _), array in zip(names_and_shapes, arrays, strict=True):
        if name.removeprefix("best_").startswith("var") and np.any(array < 0):
            raise ModelFileError(f"{archive.where}: {name} holds a negative variance")
    return [(g, b, m, v) for g, b, m, v in zip(*(iter(arrays),) * 4, strict=True)]


def param_shapes(layer_sizes: Sequence[int], prefix: str = "") -> list[tuple[str, tuple[int, ...]]]:
    """[(name, shape), ...] of the arrays of a network with `layer_sizes`, in file order."""
    shapes: list[tuple[str, tuple[int, ...]]] = []
    for index, (fan_in, fan_out) in enumerate(itertools.pairwise(layer_sizes)):
        shapes += [(f"{prefix}W{index}", (fan_in, fan_out)), (f"{prefix}b{index}", (fan_out,))]
    return shapes


def check_memory(archive: Archive, nbytes: int, what: str) -> None:
    """ModelFileError (naming the size) when `nbytes` for `what` cannot fit in memory now."""
    try:
        check_fits(nbytes, f"loading {what} from {archive.where}", "load it on a machine with more memory")
    except MemoryLimitError as error:
        raise ModelFileError(str(error)) from None


def read_params(
    archive: Archive, names_and_shapes: Sequence[tuple[str, tuple[int, ...]]], descr: str
) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(W, b), ...] read from `archive` (headers already checked by the caller), finite."""
    arrays = [archive.read(name, descr=descr, shape=shape, finite=True) for name, shape in names_and_shapes]
    return list(zip(arrays[0::2], arrays[1::2], strict=True))


def open_archive(path: str | os.PathLike[str]) -> Archive:
    """An `Archive` for `path` with its directory checked (FileNotFoundError when missing)."""
    return Archive(path)


# ---- reading a model ----------------------------------------------------------------------------
def load_model_file(
    path: str | os.PathLike[str],
) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict[str, Any]]:
    """Read a model file with every check: ([(W, b), ...] host arrays, metadata).

    `metadata` is normalised (see `check_model_metadata`): it has `layer_sizes`, history's nulls are
    NaN, `config` is a dict, `batch_norm` is None unless the model has batch normalisation, whose
    host arrays are `norms` [(gamma, beta, running_mean, running_var), ...] (empty without). Raises
    ModelFileError for any malformed file, FileNotFoundError when there is none.
    """
    with open_archive(path) as archive:
        metadata = check_model_metadata(archive.read_metadata(), archive.where)
        descr = FLOAT_DESCR[metadata["dtype"]]
        shapes = param_shapes(metadata["layer_sizes"])
        norms = norm_shapes(metadata["layer_sizes"], metadata["batch_norm"])
        total = sum(archive.header(name, descr=descr, shape=shape) for name, shape in shapes + norms)
        check_memory(archive, total, "the model's parameters")
        params = read_params(archive, shapes, descr)
        metadata["norms"] = read_norms(archive, norms, descr)
        return params, metadata
