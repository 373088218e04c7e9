"""
What the first layer learned
============================

Each hidden unit of the first layer computes ``x @ W[:, j] + b[j]`` over the 784 pixels, so its
column of ``W`` is itself a 28×28 image: the pattern of ink that excites the unit (blue) or
inhibits it (red).
"""

import mlp
import mlp.plots

(X_train, y_train), (X_test, y_test) = mlp.datasets.load_mnist()

# %%
# A wide single layer trained briefly shows the clearest strokes; ``weight_decay`` keeps the
# weights of pixels that are always blank (the border) near zero.
model = mlp.fit(X_train[:10_000], y_train[:10_000], hidden_sizes=[64], epochs=10, weight_decay=1e-4, seed=0)
W, b = model.params[0]
print("first layer:", W.shape, "(fan_in, fan_out): one column per hidden unit")

# %%
# The first 64 units as images. Blobs and strokes in the centre are the parts of digits the units
# look for; a unit that looks like noise is one the rest of the network barely uses.
fig = mlp.plots.plot_first_layer_weights(model, n=64)

# %%
# Without training
# ----------------
# For comparison, the same network with a learning rate so small that training leaves the initial
# weights as they were: He-initialised noise, no structure.
untrained = mlp.fit(X_train[:256], y_train[:256], hidden_sizes=[64], epochs=1, learning_rate=1e-12, seed=0)
fig = mlp.plots.plot_first_layer_weights(untrained, n=64)
