"""Metrics: the confusion matrix and per-class report of a classifier on host arrays (NumPy only),
and the coefficient of determination of a regressor in any array namespace.

Used by the command line's `evaluate`, by `mlp.plots`, by `MLP.score` and `MLPRegressor.score`; no
plotting library needed.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ._array_api import Array, Namespace, to_numpy


def _label_list(y_true: Array, y_pred: Array, labels: int | Array | None) -> np.ndarray:
    if labels is None:
        return np.union1d(y_true, y_pred)
    if isinstance(labels, (int, np.integer)) and not isinstance(labels, bool):
        if labels < 1:
            raise ValueError(f"n_classes must be at least 1, got {labels}")
        return np.arange(int(labels))
    labels = to_numpy(labels).reshape(-1)
    if labels.size == 0:
        raise ValueError("labels is empty")
    if np.unique(labels).size != labels.size:
        raise ValueError(f"labels has repeated values: {labels.tolist()}")
    return labels


def confusion_matrix(y_true: Array, y_pred: Array, labels: int | Array | None = None) -> np.ndarray:
    """Counts (n_classes, n_classes) as a NumPy int64 array: row = true label, column = predicted.

    labels: the class count n (labels 0..n-1), or the label values in the order wanted, or None for
    the sorted labels present in either array. A label outside ``labels`` is a ValueError.
    """
    y_true = to_numpy(y_true).reshape(-1)
    y_pred = to_numpy(y_pred).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} labels but y_pred has {y_pred.size}")
    labels = _label_list(y_true, y_pred, labels)
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]

    def index_of(values: np.ndarray, name: str) -> np.ndarray:
        position = np.clip(np.searchsorted(sorted_labels, values), 0, sorted_labels.size - 1)
        unknown = sorted_labels[position] != values
        if np.any(unknown):
            missing = np.unique(values[unknown])[:10].tolist()
            raise ValueError(f"{name} has labels not in labels={labels.tolist()}: {missing}")
        return order[position]

    k = labels.size
    flat = index_of(y_true, "y_true") * k + index_of(y_pred, "y_pred")
    return np.bincount(flat, minlength=k * k).astype(np.int64).reshape(k, k)


class ClassificationReport(NamedTuple):
    """``scores``: {label: {"precision", "recall", "f1", "support"}, "accuracy": float,
    "macro avg": {...}, "weighted avg": {...}}; ``text``: the same as a table. ``str()`` gives the text."""

    scores: dict[Any, Any]
    text: str

    def __str__(self) -> str:
        return self.text


def classification_report(
    y_true: Array, y_pred: Array, labels: int | Array | None = None, *, digits: int = 3
) -> ClassificationReport:
    """Per-class precision, recall, F1 and support, their macro and support-weighted means, and the
    accuracy. Returns a :class:`ClassificationReport` (``scores, text = ...``).

    labels: as for :func:`confusion_matrix`. A precision or recall with nothing to divide by (no
    predictions, or no examples, of a class) is 0, as is the F1 then.
    """
    y_true_np = to_numpy(y_true).reshape(-1)
    labels = _label_list(y_true_np, to_numpy(y_pred).reshape(-1), labels)
    matrix = confusion_matrix(y_true, y_pred, labels)
    hits = np.diag(matrix).astype(float)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(hits), where=both > 0)
    total = int(support.sum())

    scores: dict[Any, Any] = {}
    for i, label in enumerate(labels.tolist()):
        scores[label] = {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
    scores["accuracy"] = float(hits.sum() / total) if total else 0.0
    weights = support / total if total else np.zeros_like(hits)
    scores["macro avg"] = {
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "f1": float(f1.mean()),
        "support": total,
    }
    scores["weighted avg"] = {
        "precision": float(precision @ weights),
        "recall": float(recall @ weights),
        "f1": float(f1 @ weights),
        "support": total,
    }

    names = [str(label) for label in labels.tolist()]
    width = max(len("weighted avg"), *(len(name) for name in names))
    column = max(digits + 2, 9)
    header = (
        f"{'':>{width}} {'precision':>{column}} {'recall':>{column}} {'f1':>{column}} {'support':>{column}}"
    )

    def row(name: str, entry: dict[str, Any]) -> str:
        return (
            f"{name:>{width}} {entry['precision']:>{column}.{digits}f} {entry['recall']:>{column}.{digits}f} "
            f"{entry['f1']:>{column}.{digits}f} {entry['support']:>{column}d}"
        )

    lines = [header, ""]
    lines += [row(name, scores[label]) for name, label in zip(names, labels.tolist(), strict=True)]
    lines += [
        "",
        f"{'accuracy':>{width}} {'':>{column}} {'':>{column}} {scores['accuracy']:>{column}.{digits}f} "
        f"{total:>{column}d}",
    ]
    lines += [row(key, scores[key]) for key in ("macro avg", "weighted avg")]
    return ClassificationReport(scores, "\n".join(lines) + "\n")


def r2_score(Y: Array, predicted: Array, *, xp: Namespace, sample_weight: Array | None = None) -> float:
    """Coefficient of determination of (n, k) predictions, averaged over the k outputs (scikit-learn's
    r2_score with multioutput="uniform_average"): 1 - SS_res / SS_tot per output; an output whose
    targets are constant scores 1 when predicted exactly, else 0, as scikit-learn does. sample_weight
    (n,), in Y's namespace and on its device: the sums and the mean weighted, as scikit-learn's."""
    if sample_weight is None:
        residual = xp.sum((Y - predicted) ** 2, axis=0)
        total = xp.sum((Y - xp.mean(Y, axis=0, keepdims=True)) ** 2, axis=0)
    else:
        w = xp.reshape(sample_weight, (-1, 1))
        mean = xp.sum(w * Y, axis=0, keepdims=True) / xp.sum(w)
        residual = xp.sum(w * (Y - predicted) ** 2, axis=0)
        total = xp.sum(w * (Y - mean) ** 2, axis=0)
    res, tot = to_numpy(residual).astype(np.float64), to_numpy(total).astype(np.float64)
    scores = np.where(tot > 0, 1.0 - res / np.where(tot > 0, tot, 1.0), np.where(res == 0, 1.0, 0.0))
    return float(np.mean(scores))
