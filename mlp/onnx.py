"""ONNX export: the network's own forward pass, run once on ndonnx arrays, written as an ONNX graph.

ndonnx is an array-API library whose arrays are symbolic: every operation on them becomes a node of
an ONNX graph. Running `mlp.layers.forward` and the output layers of `mlp.losses` on an ndonnx
input records the very code that `MLP.predict` runs, so the file is not a second, hand-written
description of the network that could drift from it.

The graph has one input, ``X`` (batch, n_features) in the model's dtype (float32 or float64), with
a dynamic batch dimension named ``batch``, and these outputs:

    classifier (cross_entropy, mse)      label (batch,): the original class labels (`classes_`)
                                         probabilities (batch, K): `predict_proba`, columns in the
                                         order of the labels
    multilabel (binary_cross_entropy)    label (batch, k): 0/1 int64, as `predict`
                                         probabilities (batch, k)
    regression (squared_error, poisson)  predictions: `predict`, (batch,) for one output, else
                                         (batch, k)

The operators are those of opset 21 of the default ONNX domain (``OPSET``), the opset ndonnx
builds; the file's metadata records it with the model's description. Needs the optional packages
ndonnx and onnx (``pip install "mlp-from-scratch[onnx]"``); onnxruntime runs the files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from . import layers
from ._array_api import Array, Namespace, get_namespace, to_numpy
from ._files import atomic_write, check_writable, refuse_foreign
from ._version import __version__
from .activations import ACTIVATIONS
from .layers import Norm
from .losses import CLASS_LOSSES, OUTPUT_ACTIVATIONS, REGRESSION_LOSSES, output_probabilities, output_values

if TYPE_CHECKING:
    from .model import MLP

__all__ = ["INSTALL_HINT", "OPSET", "export", "onnx_model", "output_names", "require"]

OPSET = 21
"""The version of the default ONNX domain ("ai.onnx") that the exported graphs use."""
INSTALL_HINT = 'pip install "mlp-from-scratch[onnx]"'
BATCH = "batch"  # the name of the dynamic first dimension of the input and of every output
_MAX_BYTES = 2**31 - 1  # protobuf's limit on one serialised message: an ONNX file without external data


def require() -> tuple[Any, Any]:
    """The modules (ndonnx, onnx); an ImportError naming the install command when one is missing."""
    try:
        import ndonnx
        import onnx
    except ImportError as error:
        missing = error.name or "ndonnx or onnx"
        raise ImportError(
            f"ONNX export needs ndonnx and onnx ({missing} is not installed): {INSTALL_HINT}"
        ) from None
    return ndonnx, onnx


def output_names(loss: str) -> list[str]:
    """The graph's outputs for a model trained with `loss`, in order."""
    return ["predictions"] if loss in REGRESSION_LOSSES else ["label", "probabilities"]


def export(
    model: MLP, path: str | os.PathLike[str], *, labels: Array | None = None
) -> str | os.PathLike[str]:
    """Write `model` to `path` as an ONNX file (atomically; an existing file that is not an ONNX
    model, a folder, a FIFO or another special file is refused); return `path`.

    labels: the class labels to output instead of `model.classes_` (an estimator's `classes_`, of
    any kind ONNX holds: integers, floats, booleans, strings). A model with one logistic output
    (binary_cross_entropy) and labels is a two-class classifier: labels[1] where the output's
    probability is above 0.5, and the probabilities of both classes.

    Raises ImportError (with the install command) when ndonnx or onnx is missing, ValueError for a
    model that cannot be exported, OutputPathError (an OSError and a ValueError) for a bad path."""
    require()
    check_writable(path, "ONNX file")
    data = onnx_model(model, labels=labels).SerializeToString()
    refuse_foreign(path, "ONNX file", "an ONNX model", _is_onnx_file)
    with atomic_write(path, "wb", what="ONNX file") as handle:
        handle.write(data)
    return path


def onnx_model(model: MLP, *, labels: Array | None = None) -> Any:
    """The `onnx.ModelProto` of `model` (see `export`), checked by `onnx.checker`."""
    ndx, onnx = require()
    host_labels = _check_exportable(model, labels)
    X = ndx.argument(shape=(BATCH, model.n_features_in_), dtype=getattr(ndx, model.dtype))
    xp, _ = get_namespace(X)  # ndonnx itself: the forward pass below records its operations
    params = [(xp.asarray(W), xp.asarray(b)) for W, b in model.get_weights()]
    norms = [cast("Norm", tuple(xp.asarray(a) for a in norm)) for norm in model.get_norms()]
    # batch normalisation (if any) with the running statistics, as `MLP.predict`
    logits = layers.forward(params, X, model.activation, xp=xp, batch_norm=model.batch_norm, norms=norms)[0]
    outputs = _outputs(model.loss, model.n_outputs, host_labels)(logits, xp)
    proto = ndx.build({"X": X}, outputs)
    _name_batch_dimensions(proto)
    _describe(proto, model, host_labels, onnx)
    if proto.ByteSize() > _MAX_BYTES:
        raise ValueError(
            f"the model's {model.n_parameters:,} parameters are too many for one ONNX file (protobuf's "
            "2 GiB limit)"
        )
    onnx.checker.check_model(proto, full_check=True)
    return proto


# ---- the graph ------------------------------------------------------------------------------------
Outputs = Callable[[Array, Namespace], dict[str, Array]]


def _outputs(loss: str, n_outputs: int, labels: np.ndarray | None) -> Outputs:
    """The function from the logits to the graph's outputs, written as `MLP.predict`,
    `MLP.predict_proba` and `MLPClassifier.predict_proba` compute them."""

    def regression(Z: Array, xp: Namespace) -> dict[str, Array]:
        values = output_values(Z, loss, xp=xp)
        # n_outputs, not values.shape[1]: ndonnx may not know the width of every intermediate
        return {"predictions": values[:, 0] if n_outputs == 1 else values}

    def multilabel(Z: Array, xp: Namespace) -> dict[str, Array]:
        # sigmoid(z) > 0.5 exactly when z > 0
        return {"label": xp.astype(Z > 0, xp.int64), "probabilities": output_probabilities(Z, loss, xp=xp)}

    def two_classes(Z: Array, xp: Namespace) -> dict[str, Array]:
        p = output_probabilities(Z, loss, xp=xp)
        label = xp.take(xp.asarray(labels), xp.astype(Z[:, 0] > 0, xp.int64))
        return {"label": label, "probabilities": xp.concat([1.0 - p, p], axis=1)}

    def classes(Z: Array, xp: Namespace) -> dict[str, Array]:
        label = xp.take(xp.asarray(labels), xp.argmax(Z, axis=1))
        return {"label": label, "probabilities": output_probabilities(Z, loss, xp=xp)}

    if loss in REGRESSION_LOSSES:
        return regression
    if loss in CLASS_LOSSES:
        return classes
    return multilabel if labels is None else two_classes


def _check_exportable(model: MLP, labels: Array | None) -> np.ndarray | None:
    """A ValueError naming what cannot be exported; else the labels to output, on the host (None for
    regression and multilabel models)."""
    supported = [*CLASS_LOSSES, "binary_cross_entropy", *REGRESSION_LOSSES]
    if model.loss not in supported:
        raise ValueError(
            f"cannot export a model with loss={model.loss!r} to ONNX; supported: {', '.join(supported)}"
        )
    if model.activation not in ACTIVATIONS:
        raise ValueError(
            f"cannot export a model with activation={model.activation!r} to ONNX; supported: "
            f"{', '.join(ACTIVATIONS)}"
        )
    if model.dtype not in ("float32", "float64"):
        raise ValueError(f"cannot export a {model.dtype} model to ONNX: float32 and float64 only")
    if labels is None:
        labels = model.classes_
    if labels is None:
        if model.loss in CLASS_LOSSES:
            raise ValueError(f"cannot export a {model.loss} classifier without its classes to ONNX")
        return None
    if model.loss in REGRESSION_LOSSES:
        raise ValueError(f"a regression model (loss={model.loss!r}) has no class labels to export")
    host = _onnx_labels(to_numpy(labels))
    wanted = 2 if model.loss == "binary_cross_entropy" else model.n_outputs
    if host.shape != (wanted,):
        raise ValueError(
            f"cannot export to ONNX: {host.shape[0] if host.ndim == 1 else host.shape} labels for a "
            f"network that tells {wanted} classes apart"
        )
    return host


def _onnx_labels(labels: np.ndarray) -> np.ndarray:
    """The labels as an array of a type ONNX tensors hold: numbers and booleans as they are, text
    (also Python strings in an object array) as strings; a ValueError for anything else."""
    if labels.dtype.kind in "biuf":
        return labels
    if labels.dtype.kind == "U" or (
        labels.dtype.kind == "O" and all(isinstance(label, str) for label in labels.tolist())
    ):
        return labels.astype(str)
    raise ValueError(
        f"cannot export to ONNX: class labels of type {labels.dtype} (numbers, booleans and strings only)"
    )


def _name_batch_dimensions(proto: Any) -> None:
    """Name every output's unnamed first dimension ``batch``, as the input's is: the outputs have as
    many rows as the input, which a reader of the file (or a runtime's checks) can then see."""
    for value in proto.graph.output:
        dims = value.type.tensor_type.shape.dim
        if len(dims) and not dims[0].dim_param and not dims[0].HasField("dim_value"):
            dims[0].dim_param = BATCH


def _describe(proto: Any, model: MLP, labels: np.ndarray | None, onnx: Any) -> None:
    """The producer, a doc string and the metadata (opset, the model's description, the outputs)."""
    opsets = {entry.domain or "ai.onnx": entry.version for entry in proto.opset_import}
    if opsets.get("ai.onnx") != OPSET:
        raise RuntimeError(
            f"ndonnx built the graph with opset {opsets.get('ai.onnx')}, not {OPSET}: {INSTALL_HINT} "
            "installs a version this library was tested with"
        )
    proto.producer_name = "mlp-from-scratch"
    proto.producer_version = __version__
    proto.graph.name = "mlp"
    names = output_names(model.loss)
    proto.doc_string = (
        f"{model!r} exported by mlp {__version__}, opset {OPSET}. Input X (batch, {model.n_features_in_}) "
        f"{model.dtype}; outputs: {', '.join(names)}."
    )
    metadata = {
        "opset": str(OPSET),
        "library_version": __version__,
        "layer_sizes": json.dumps(model.layer_sizes),
        "activation": model.activation,
        "loss": model.loss,
        "output_activation": OUTPUT_ACTIVATIONS[model.loss],
        "dtype": model.dtype,
        "outputs": json.dumps(names),
    }
    if labels is not None:
        metadata["classes"] = json.dumps(labels.tolist())
    if model.batch_norm is not None:  # folded into the graph with the running statistics
        metadata["batch_norm"] = model.batch_norm
    preprocessing = model.config.get("preprocessing")
    if preprocessing is not None:
        metadata["preprocessing"] = json.dumps(preprocessing)
    onnx.helper.set_model_props(proto, metadata)


def _is_onnx_file(path: Path) -> bool:
    """For `refuse_foreign`: an empty file, or one that parses as an ONNX model with a graph."""
    if path.stat().st_size == 0:
        return True
    _, onnx = require()
    try:
        proto = onnx.load_model(str(path), load_external_data=False)
    except Exception:  # protobuf's DecodeError and whatever else a foreign file makes the parser raise
        return False
    return bool(proto.ir_version) and len(proto.graph.node) > 0
