"""
Augmentation and the recipes, in short
======================================

A recipe is every setting of a network and its training under one name (:mod:`mlp.recipes`); the
best one trains on digits distorted afresh every batch (:mod:`mlp.augment`). Both are shown here on
a small scale: the full runs and their measured accuracy are in :doc:`/user_guide/recipes`.
"""

import matplotlib.pyplot as plt
import numpy as np

import mlp
import mlp.plots

(X_train, y_train), (X_test, y_test) = mlp.datasets.load_mnist()

# %%
# The recipes
# -----------
for name in mlp.recipes.names():
    print(f"{name}: {mlp.recipes.describe(name)}\n")

# %%
# A recipe is a dictionary of :func:`mlp.fit`'s keyword arguments; the seed and everything about
# how a run is carried out stay yours.
best = mlp.recipes.get("best")
print(best)

# %%
# What augmentation does to a digit
# ---------------------------------
# Every training batch is distorted afresh: a random affine map (shift, rotation, scale, shear) and
# Simard's elastic field (Gaussian-smoothed random displacements). Here one digit, distorted eight
# times with the ``best`` recipe's amounts, and then with the elastic part alone.
digit = X_train[:1].repeat(8, axis=0)
affine_and_elastic = mlp.augment.augment(digit, best["augment"], seed=0)
elastic_only = mlp.augment.augment(digit, {"shift": 0, "rotation": 0, "scale": 0, "shear": 0}, seed=1)
fig, axes = plt.subplots(3, 8, figsize=(8, 3.3), layout="constrained")
for row, (title, images) in enumerate(
    (("original", digit), ("best", affine_and_elastic), ("elastic only", elastic_only))
):
    for col in range(8):
        ax = axes[row, col]
        ax.imshow(np.asarray(images[col]).reshape(28, 28), cmap="gray_r")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[row, 0].set_ylabel(title, fontsize=8)

# %%
# A short version of ``best``
# ---------------------------
# The recipe trains 784-1024-1024-10 for 100 epochs (about 12 minutes on two cores). A narrower
# network and 4 epochs on 6 000 images show the mechanics: the recipe's settings, then explicit
# keywords that override them.
short = {**best, "hidden_sizes": [256], "epochs": 4}
model = mlp.fit(
    X_train[:6_000], y_train[:6_000], **short, validation_data=(X_test[:2_000], y_test[:2_000]), seed=0
)
print(model)
print(f"test accuracy after 4 epochs: {model.score(X_test, y_test):.4f}")

# %%
# On distorted digits the training loss stays above the validation loss: the training images are
# harder than the test images, which is the regularisation the recipe relies on instead of dropout.
fig = mlp.plots.plot_history(model.history)
