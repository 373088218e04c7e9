"""
Check the gradients with finite differences
===========================================

Backpropagation is easy to get subtly wrong. The test suite compares every gradient with central
finite differences; this page does the same by hand, so you can check a change of your own.

For a parameter :math:`p` and a small step :math:`h`,

.. math::

    \\frac{\\partial L}{\\partial p} \\approx \\frac{L(p + h) - L(p - h)}{2h},

with an error of order :math:`h^2`. In float64 with :math:`h = 10^{-5}` the relative error
:math:`|g_a - g_n| / \\max(|g_a|, |g_n|)` of a correct gradient is about :math:`10^{-8}` or less
for smooth activations (the CS231n threshold: below :math:`10^{-7}` is right).
"""

import matplotlib.pyplot as plt
import numpy as np

import mlp

(X_train, y_train), _ = mlp.datasets.load_mnist()
X = X_train[:32].astype(np.float64)
y = y_train[:32]

# %%
# A small float64 network with a smooth activation (``tanh``: no kinks, where a finite difference
# can step across ``relu``'s corner) and an L2 penalty, trained for one epoch so that its weights
# are not the initial ones.
model = mlp.fit(
    X, y, hidden_sizes=[16, 8], activation="tanh", weight_decay=1e-3, dtype="float64", epochs=1, seed=0
)
loss, grads = model.loss_and_gradients(X, y)
print(f"loss {loss:.6f}; gradient shapes {[(dW.shape, db.shape) for dW, db in grads]}")

# %%
# Central differences on a sample of entries of every tensor: change one entry of ``model.params``
# in place, evaluate the loss, put it back. Entries whose gradient is below 1 % of the tensor's
# largest are left out: there the quotient measures the rounding error of the loss (about
# :math:`10^{-16} L / h`), not the gradient.
rng = np.random.default_rng(0)
h = 1e-5
errors = {}
for layer, ((W, b), (dW, db)) in enumerate(zip(model.params, grads, strict=True)):
    for name, p, g in ((f"W{layer}", W, dW), (f"b{layer}", b, db)):
        flat_p, flat_g = p.reshape(-1), g.reshape(-1)
        candidates = np.flatnonzero(np.abs(flat_g) > 1e-2 * np.abs(flat_g).max())
        rel = []
        for i in rng.choice(candidates, size=min(20, candidates.size), replace=False):
            old = flat_p[i]
            flat_p[i] = old + h
            up, _ = model.loss_and_gradients(X, y)
            flat_p[i] = old - h
            down, _ = model.loss_and_gradients(X, y)
            flat_p[i] = old
            numeric = (up - down) / (2 * h)
            analytic = flat_g[i]
            rel.append(abs(analytic - numeric) / max(abs(analytic), abs(numeric), 1e-12))
        errors[name] = np.array(rel)
        print(f"{name:3s} max relative error {errors[name].max():.2e}")

assert max(e.max() for e in errors.values()) < 1e-7

# %%
# Every relative error, per tensor, on a log scale:
fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
for k, rel in enumerate(errors.values()):
    ax.semilogy(np.full(rel.size, k), np.maximum(rel, 1e-16), "o", alpha=0.6)
ax.axhline(1e-7, color="k", lw=0.8, ls="--", label="1e-7")
ax.set_xticks(range(len(errors)), list(errors))
ax.set_ylabel("relative error")
ax.legend()
