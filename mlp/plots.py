"""Pictures of a trained model: training curves, predictions, confusion matrix, mistakes, weights.

    from mlp import plots
    plots.write_all(model, X_test, y_test, "report/")      # five PNG files
    fig = plots.plot_history(model.history, "history.png")

Every ``plot_*`` function returns a :class:`matplotlib.figure.Figure` and, when ``path`` is given,
also writes it as a PNG (atomically: a temporary file renamed into place). Figures are made with
``matplotlib.figure.Figure`` directly, never through pyplot, so no backend is chosen, no window
opens and no global state is touched; show one in a notebook by leaving it as a cell's value.

matplotlib is an optional extra (``pip install "mlp-from-scratch[plot]"``) imported only when a figure is made.
:func:`~mlp.metrics.confusion_matrix` and :func:`~mlp.metrics.classification_report` need NumPy only.
Arrays of any namespace (CuPy, ...) are copied to the host with ``to_numpy``: plotting is an explicit request for host data.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ._array_api import Array, to_numpy
from ._files import atomic_write, make_folder, refuse_foreign, starts_with
from .metrics import confusion_matrix

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    from .model import MLP


__all__ = [
    "check_folder",
    "plot_confident_mistakes",
    "plot_confusion_matrix",
    "plot_first_layer_weights",
    "plot_history",
    "plot_predictions",
    "write_all",
]

DPI = 100
WRONG_COLOUR = "#d62728"  # red
RIGHT_COLOUR = "black"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_ANNOTATED_CLASSES = 30  # above this a confusion matrix shows colours only, no numbers


# --------------------------------------------------------------------------------------------
# Plumbing
# --------------------------------------------------------------------------------------------
def _figure(
    layout: Literal["constrained", "compressed", "tight"] | None = "constrained", **kwargs: Any
) -> Figure:
    """A new Figure, without pyplot. ImportError with the install command when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401  (imported first so a blocked parent fails here)
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            'plotting needs matplotlib, an optional extra: pip install "mlp-from-scratch[plot]"'
        ) from error
    return Figure(layout=layout, **kwargs)


def _save(fig: Figure, path: str | os.PathLike[str] | None) -> Figure:
    """Write `fig` as PNG to `path` (atomically); an existing file there is replaced only when it is
    a PNG image itself, and a folder, device or FIFO is refused."""
    if path is not None:
        refuse_foreign(path, "picture", "a PNG image", starts_with(_PNG_SIGNATURE))
        with atomic_write(path, "wb", what="picture") as handle:
            fig.savefig(handle, format="png", dpi=DPI)
    return fig


def _labels_as_given(model: MLP, y: Array) -> np.ndarray:
    """y as NumPy labels (original values); one-hot rows become the label of their 1."""
    y = to_numpy(y)
    if y.ndim == 2:
        y = to_numpy(model.classes_)[np.argmax(y, axis=1)]
    return y.reshape(-1)


def _check_n(n: Any, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return int(n)


def _grid(count: int) -> tuple[int, int]:
    cols = max(1, math.ceil(math.sqrt(count)))
    return math.ceil(count / cols), cols


def _as_images(X: Array, image_shape: Sequence[int]) -> np.ndarray:
    X = to_numpy(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features); got shape {X.shape}")
    if math.prod(image_shape) != X.shape[1]:
        raise ValueError(
            f"X has {X.shape[1]} features, which cannot be shown as images of shape {tuple(image_shape)} "
            f"({math.prod(image_shape)} pixels); pass image_shape=(rows, cols)"
        )
    return X.reshape((X.shape[0], *image_shape))


def _image_grid(count: int, *, cell: float, title_lines: int, suptitle: str) -> tuple[Figure, list[Axes]]:
    """A figure with a grid of `count` square image axes (axes off) and room for titles above each.

    Laid out by hand rather than by the constrained layout engine, which is slow for many axes.
    """
    rows, cols = _grid(count)
    pad, top, gap = 0.1, 0.45, 0.08  # inches
    title = 0.17 * title_lines + 0.08
    width = max(cols * cell + (cols - 1) * gap + 2 * pad, 4.0)
    height = rows * (cell + title) + top + pad
    fig = _figure(layout=None, figsize=(width, height))
    axes = fig.subplots(
        rows,
        cols,
        squeeze=False,
        gridspec_kw=dict(
            left=pad / width,
            right=1 - pad / width,
            bottom=pad / height,
            top=1 - (top + title - 0.05) / height,
            wspace=gap / cell,
            hspace=title / cell,
        ),
    )
    for ax in axes.flat:
        ax.set_axis_off()
    fig.suptitle(suptitle, fontsize=11, y=1 - 0.1 / height, va="top")
    return fig, list(axes.flat)[:count]


def _image_panel(
    images: np.ndarray, titles: Sequence[str], colours: Sequence[str], *, suptitle: str, cell: float = 1.35
) -> Figure:
    lines = max(title.count("\n") + 1 for title in titles)
    fig, axes = _image_grid(len(images), cell=cell, title_lines=lines, suptitle=suptitle)
    for ax, image, title, colour in zip(axes, images, titles, colours, strict=True):
        ax.imshow(
            image, cmap="gray_r", vmin=0.0, vmax=max(1.0, float(np.max(image))), interpolation="nearest"
        )
        ax.set_title(title, color=colour, fontsize=9)
    return fig


def _format_label(value: Any) -> str:
    value = value.item() if hasattr(value, "item") else value
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# --------------------------------------------------------------------------------------------
# Training history
# --------------------------------------------------------------------------------------------
def plot_history(history: dict[str, Any], path: str | os.PathLike[str] | None = None) -> Figure:
    """Loss and accuracy per epoch, training and validation, in two panels.

    history: a model's ``history`` dict (``epoch``, ``loss``, ``accuracy``, ``val_loss``,
    ``val_accuracy``), or the model itself. Validation lines are left out when they are all NaN.
    """
    history = getattr(history, "history", history)
    if not isinstance(history, dict) or not history.get("loss"):
        raise ValueError("history has no epochs to plot (was the model trained with epochs=0?)")
    loss = np.asarray(history["loss"], dtype=float)
    epochs = np.asarray(history.get("epoch") or range(1, len(loss) + 1), dtype=float)
    if epochs.size and epochs[0] == 0:
        epochs = epochs + 1  # a 0-based record; show epochs counted from 1

    fig = _figure(figsize=(9.0, 3.6))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax, key, title in ((ax_loss, "loss", "Loss"), (ax_acc, "accuracy", "Accuracy")):
        for prefix, label, style in (("", "training", "-"), ("val_", "validation", "--")):
            values = np.asarray(history.get(prefix + key, []), dtype=float)
            if values.size == 0 or np.all(np.isnan(values)):
                continue
            ax.plot(epochs[: values.size], values, style, marker="o", markersize=3, label=label)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        if epochs.size <= 12:
            ax.set_xticks(epochs)
        if ax.lines:
            ax.legend()
    ax_acc.yaxis.set_major_formatter(_percent_formatter())
    fig.suptitle("Training history")
    return _save(fig, path)


def plot_gradient_norms(history: dict[str, Any], path: str | os.PathLike[str] | None = None) -> Figure:
    """Per-layer gradient norms (mean over each epoch's steps, before clipping) and update norms per
    epoch, log scale: what `log_gradients=True` (`mlp train --log-gradients`) records."""
    history = getattr(history, "history", history)
    if not isinstance(history, dict) or not history.get("grad_norm"):
        raise ValueError("history has no gradient norms: train with log_gradients=True (--log-gradients)")
    fig = _figure(figsize=(9.0, 3.6))
    axes = fig.subplots(1, 2)
    for ax, key, title in (
        (axes[0], "grad_norm", "Gradient norm per layer"),
        (axes[1], "update_norm", "Update norm per layer"),
    ):
        rows = [row for row in history.get(key) or [] if row is not None]
        if not rows:
            continue
        values = np.asarray(rows, dtype=float)  # (epochs, layers)
        epochs = np.arange(1, values.shape[0] + 1)
        for layer in range(values.shape[1]):
            ax.plot(epochs, values[:, layer], marker="o", markersize=3, label=f"W{layer}")
        ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle("Gradients")
    return _save(fig, path)


def _percent_formatter() -> PercentFormatter:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=1.0)


# --------------------------------------------------------------------------------------------
# Predictions
# --------------------------------------------------------------------------------------------
def plot_predictions(
    model: MLP,
    X: Array,
    y: Array | None,
    path: str | os.PathLike[str] | None = None,
    n: int = 25,
    image_shape: Sequence[int] = (28, 28),
) -> Figure:
    """The first ``n`` images of X with predicted and true labels; wrong predictions in red.

    y may be None (then only the predictions are shown).
    """
    n = min(_check_n(n), int(X.shape[0]))
    images = _as_images(X[:n, ...], image_shape)
    predicted = to_numpy(model.predict(X[:n, ...]))
    if y is None:
        titles = [f"pred {_format_label(p)}" for p in predicted]
        colours = [RIGHT_COLOUR] * n
        suptitle = f"Predictions for the first {n} images"
    else:
        true = _labels_as_given(model, y)[:n]
        right = predicted == true
        titles = [
            f"pred {_format_label(p)} / true {_format_label(t)}" for p, t in zip(predicted, true, strict=True)
        ]
        colours = [RIGHT_COLOUR if ok else WRONG_COLOUR for ok in right]
        suptitle = f"Predictions for the first {n} images: {int(right.sum())} right, {int(n - right.sum())} wrong (red)"
    return _save(_image_panel(images, titles, colours, suptitle=suptitle, cell=1.55), path)


def plot_confident_mistakes(
    model: MLP,
    X: Array,
    y: Array,
    path: str | os.PathLike[str] | None = None,
    n: int = 16,
    image_shape: Sequence[int] = (28, 28),
) -> Figure:
    """The ``n`` wrong predictions the model was most sure of: predicted label and its probability,
    and the true label. A figure saying so is made when there are no mistakes."""
    n = _check_n(n)
    proba = to_numpy(model.predict_proba(X))
    classes = to_numpy(model.classes_)
    chosen = np.argmax(proba, axis=1)
    confidence = proba[np.arange(proba.shape[0]), chosen]
    predicted = classes[chosen]
    true = _labels_as_given(model, y)
    wrong = np.flatnonzero(predicted != true)
    order = wrong[np.argsort(-confidence[wrong], kind="stable")][:n]

    if order.size == 0:
        fig = _figure(figsize=(5.0, 2.0))
        fig.text(0.5, 0.5, f"No mistakes on these {proba.shape[0]} examples.", ha="center", va="center")
        return _save(fig, path)
    images = _as_images(to_numpy(X)[order], image_shape)
    titles = [
        f"pred {_format_label(predicted[i])} ({confidence[i]:.0%})\ntrue {_format_label(true[i])}"
        for i in order
    ]
    fig = _image_panel(
        images,
        titles,
        [WRONG_COLOUR] * len(order),
        cell=1.45,
        suptitle=f"The {len(order)} most confident of {wrong.size} mistakes in {proba.shape[0]} examples",
    )
    return _save(fig, path)


# --------------------------------------------------------------------------------------------
# Confusion matrix and per-class scores (NumPy only)
# --------------------------------------------------------------------------------------------
def plot_confusion_matrix(
    model_or_matrix: MLP | Array,
    X: Array | None = None,
    y: Array | None = None,
    path: str | os.PathLike[str] | None = None,
    *,
    labels: Sequence[Any] | None = None,
) -> Figure:
    """A confusion matrix as a heat map with the count in each cell (up to 30 classes).

    Either a trained model with X and y (the model's predictions on X against y), or a square
    matrix of counts (e.g. from :func:`~mlp.metrics.confusion_matrix`) with optional ``labels`` for its rows.
    """
    if hasattr(model_or_matrix, "predict"):
        if X is None or y is None:
            raise ValueError("plot_confusion_matrix(model, X, y): X and y are needed with a model")
        model = model_or_matrix
        label_values = to_numpy(model.classes_) if labels is None else np.asarray(labels)
        matrix = confusion_matrix(_labels_as_given(model, y), to_numpy(model.predict(X)), label_values)
    else:
        matrix = np.asarray(to_numpy(model_or_matrix))
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"a confusion matrix must be square; got shape {matrix.shape}")
        label_values = np.arange(matrix.shape[0]) if labels is None else np.asarray(labels)
        if label_values.size != matrix.shape[0]:
            raise ValueError(f"{label_values.size} labels for a {matrix.shape[0]}-class matrix")
    k = matrix.shape[0]
    total = matrix.sum()
    accuracy = np.trace(matrix) / total if total else float("nan")

    side = min(max(4.5, 0.5 * k + 2.0), 16.0)
    fig = _figure(figsize=(side + 1.0, side))
    ax = fig.subplots()
    shown = ax.imshow(matrix, cmap="Blues", interpolation="nearest")
    fig.colorbar(shown, ax=ax, shrink=0.8, label="count")
    names = [_format_label(label) for label in label_values]
    ax.set_xticks(np.arange(k), names, rotation=90 if max(map(len, names)) > 3 else 0)
    ax.set_yticks(np.arange(k), names)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title(f"Confusion matrix: {total} examples, accuracy {accuracy:.2%}")
    if k <= MAX_ANNOTATED_CLASSES:
        threshold = matrix.max() / 2 if matrix.size else 0
        size = 9 if k <= 12 else 7 if k <= 20 else 5
        for i in range(k):
            for j in range(k):
                ax.text(
                    j,
                    i,
                    str(matrix[i, j]),
                    ha="center",
                    va="center",
                    fontsize=size,
                    color="white" if matrix[i, j] > threshold else "black",
                )
    return _save(fig, path)


# --------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------
def plot_first_layer_weights(
    model: MLP, path: str | os.PathLike[str] | None = None, n: int = 64, image_shape: Sequence[int] = (28, 28)
) -> Figure:
    """The first ``n`` columns of the first layer's W (one per unit) as images: blue where a pixel's
    ink excites the unit, red where it inhibits; each image has its own symmetric colour scale.

    For a model with no hidden layer the first layer is the output layer, so the images are the
    weights of each class, titled with the class label.
    """
    n = _check_n(n)
    W = to_numpy(model.params[0][0])
    fan_in, fan_out = W.shape
    if math.prod(image_shape) != fan_in:
        raise ValueError(
            f"the first layer has {fan_in} inputs, which cannot be shown as images of shape "
            f"{tuple(image_shape)}; pass image_shape=(rows, cols)"
        )
    count = min(n, fan_out)
    images = W[:, :count].T.reshape((count, *image_shape))
    output_layer = len(model.params) == 1
    if output_layer:
        names = [_format_label(c) for c in to_numpy(model.classes_)]
        titles = [f"class {names[j]}" for j in range(count)]
        suptitle = f"No hidden layer: output weights of the {count} classes"
    else:
        titles = [f"unit {j}" for j in range(count)]
        suptitle = f"First hidden layer: weights of {count} of its {fan_out} units"

    fig, axes = _image_grid(count, cell=1.2, title_lines=1, suptitle=suptitle + " (blue +, red -)")
    for ax, image, title in zip(axes, images, titles, strict=True):
        limit = float(np.max(np.abs(image))) or 1.0
        ax.imshow(image, cmap="RdBu", vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_title(title, fontsize=8)
    return _save(fig, path)


# --------------------------------------------------------------------------------------------
# Everything at once
# --------------------------------------------------------------------------------------------
FILE_NAMES = ("history.png", "predictions.png", "confusion_matrix.png", "mistakes.png", "first_layer.png")


def check_folder(folder: str | os.PathLike[str]) -> None:
    """Refuse (OutputPathError, one line) a `write_all` folder where a picture cannot go: a file, FIFO
    or device in place of the folder, or in place of one of its pictures a folder, device, FIFO or a
    file that is not a PNG (only earlier pictures are replaced). Nothing is created; `mlp train
    --plot` calls this before training."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        make_folder(folder, "picture folder")  # refused: the one message for what is there
    for name in (*FILE_NAMES, "gradients.png"):
        refuse_foreign(folder / name, "picture", "a PNG image", starts_with(_PNG_SIGNATURE))


def write_all(
    model: MLP,
    X_test: Array,
    y_test: Array,
    folder: str | os.PathLike[str],
    *,
    image_shape: Sequence[int] = (28, 28),
) -> list[Path]:
    """Write the five standard plots into ``folder`` (made if needed) and return their paths:
    history.png, predictions.png, confusion_matrix.png, mistakes.png, first_layer.png, and
    gradients.png when the history holds gradient norms (log_gradients=True).

    history.png is left out when the model was never trained (its history is empty). Every one of
    these paths is checked (`check_folder`) before the first is written.
    """
    check_folder(folder)
    folder = make_folder(folder, "picture folder")
    paths: list[Path] = []

    def write(name: str, draw: Callable[[Path], object]) -> None:
        path = folder / name
        draw(path)
        paths.append(path)

    if model.history.get("loss"):
        write("history.png", lambda p: plot_history(model.history, p))
    if model.history.get("grad_norm"):
        write("gradients.png", lambda p: plot_gradient_norms(model.history, p))
    write("predictions.png", lambda p: plot_predictions(model, X_test, y_test, p, image_shape=image_shape))
    write("confusion_matrix.png", lambda p: plot_confusion_matrix(model, X_test, y_test, p))
    write(
        "mistakes.png", lambda p: plot_confident_mistakes(model, X_test, y_test, p, image_shape=image_shape)
    )
    write("first_layer.png", lambda p: plot_first_layer_weights(model, p, image_shape=image_shape))
    return paths
