"""
Train a model and read its learning curves
==========================================

The first model: a network with one hidden layer trained on part of MNIST, and the two pictures
that say whether the training went well: the loss and the accuracy per epoch, on the training data
and on data the network never trained on.
"""

# %%
# Load the data
# -------------
# :func:`mlp.datasets.load_mnist` finds MNIST through ``$MLP_DATA_DIR``, the cache, or a
# checksum-verified download. The pixels come as float32 in [0, 1], one row of 784 per image.
import mlp
import mlp.plots

(X_train, y_train), (X_test, y_test) = mlp.datasets.load_mnist()
print(X_train.shape, X_train.dtype, y_train[:10])

# %%
# Train
# -----
# 10 000 training images and 12 epochs keep this page quick; the whole set and the defaults reach
# the accuracy given in :ref:`the default recipe <default-recipe>`. ``validation_data`` adds the
# ``val_loss`` and ``val_accuracy`` columns to the history.
model = mlp.fit(
    X_train[:10_000],
    y_train[:10_000],
    hidden_sizes=[128],
    epochs=12,
    validation_data=(X_test[:2_000], y_test[:2_000]),
    seed=0,
)
print(model)
print(f"test accuracy: {model.score(X_test, y_test):.4f}")

# %%
# The history
# -----------
# ``model.history`` holds one value per epoch for each column.
for epoch, loss, val_loss in zip(
    model.history["epoch"], model.history["loss"], model.history["val_loss"], strict=True
):
    print(f"epoch {epoch:2d}  loss {loss:.4f}  val_loss {val_loss:.4f}")

# %%
# Reading the curves
# ------------------
# :func:`mlp.plots.plot_history` draws the loss (left) and the accuracy (right). Read them so:
#
# * the training loss falls every epoch: the optimizer works (a loss that rises or jumps says the
#   learning rate is too high);
# * the validation loss falls too, then flattens: what the network learns carries over to new images;
# * where the validation loss turns up while the training loss keeps falling, the network has begun
#   to learn its training set by heart (overfitting): stop there (``early_stopping=True``), add
#   ``dropout`` or ``weight_decay``, or give it more data;
# * a gap between training and validation accuracy that grows is the same story told by the accuracy.
#
# The cosine schedule (the default) lowers the learning rate to nearly zero by the last epoch, which
# is why the curves settle at the end.
fig = mlp.plots.plot_history(model.history)
