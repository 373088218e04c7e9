"""Classification metrics on host arrays (NumPy): the confusion matrix and per-class report."""
from __future__ import annotations

import numpy as np


def confusion_matrix(y_true, y_pred, labels):
    """Counts (len(labels), len(labels)): rows are true labels, columns predicted, in `labels` order."""
    labels = np.asarray(labels)
    index = {label: i for i, label in enumerate(labels.tolist())}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    true_index = np.array([index[v] for v in np.asarray(y_true).tolist()], dtype=np.int64)
    pred_index = np.array([index[v] for v in np.asarray(y_pred).tolist()], dtype=np.int64)
    np.add.at(matrix, (true_index, pred_index), 1)
    return matrix


def classification_report(y_true, y_pred, labels):
    """Per-class precision, recall, F1 and support, plus accuracy. Returns (dict, text table)."""
    matrix = confusion_matrix(y_true, y_pred, labels)
    true_positive = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0)
    support = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, true_positive / predicted, 0.0)
        recall = np.where(support > 0, true_positive / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    report = {
        str(label): {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for label, p, r, f, s in zip(np.asarray(labels).tolist(), precision, recall, f1, support)
    }
    accuracy = float(true_positive.sum() / max(matrix.sum(), 1))
    report["accuracy"] = accuracy
    lines = [f"{'class':>8} {'precision':>10} {'recall':>10} {'f1':>10} {'support':>9}"]
    for label in np.asarray(labels).tolist():
        row = report[str(label)]
        lines.append(f"{label!s:>8} {row['precision']:>10.4f} {row['recall']:>10.4f} {row['f1']:>10.4f} {row['support']:>9d}")
    lines.append(f"{'accuracy':>8} {accuracy:>10.4f} {'':>10} {'':>10} {int(support.sum()):>9d}")
    return report, "\n".join(lines)
