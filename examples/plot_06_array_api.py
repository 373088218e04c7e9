"""
The same code on array-api-strict (and PyTorch)
===============================================

The model, the losses, the optimizers and the training loop are written once against the Python
array API standard. Whatever array you pass, the parameters, the mini-batches and the predictions
are made in the same namespace and on the same device. `array-api-strict
<https://data-apis.github.io/array-api-strict/>`_ is a library that implements the standard and
nothing more, so running on it proves that nothing outside the standard slipped in.
"""

import matplotlib.pyplot as plt
import numpy as np

import mlp

(X_train, y_train), (X_test, y_test) = mlp.datasets.load_mnist()
X_small, y_small = X_train[:3_000], y_train[:3_000]
options = dict(hidden_sizes=[64], epochs=5, seed=0)

# %%
# NumPy
# -----
# NumPy input goes to the fused Numba kernels when Numba is installed (``engine="auto"``);
# ``engine="xp"`` forces the generic array-API code, the code every other library runs.
on_numpy = mlp.fit(X_small, y_small, engine="xp", **options)
print(on_numpy)

# %%
# array-api-strict, on its second device
# --------------------------------------
# array-api-strict has two devices and refuses to mix them, so an array created on the wrong one
# fails at once.
import array_api_strict as xp  # noqa: E402  (imported where it is first used, for the reader)

device = xp.Device("device1")
Xs = xp.asarray(X_small, device=device)
ys = xp.asarray(y_small, device=device)
on_strict = mlp.fit(Xs, ys, **options)
print(on_strict)

predictions = on_strict.predict(xp.asarray(X_test, device=device))
print(type(predictions).__module__, predictions.device)

# %%
# The same seed draws the same initial weights and the same batches on every library (the random
# numbers are drawn on the host with NumPy and moved once), so the two runs end with the same
# network up to the order of floating-point sums:
W_numpy = on_numpy.params[0][0]
W_strict = np.asarray(xp.asarray(on_strict.params[0][0], device=xp.Device("CPU_DEVICE")))
print("largest difference of the first layer's weights:", float(np.abs(W_numpy - W_strict).max()))
print(
    f"test accuracy: NumPy {on_numpy.score(X_test, y_test):.4f}, "
    f"array-api-strict {on_strict.score(xp.asarray(X_test, device=device), xp.asarray(y_test, device=device)):.4f}"
)

# %%
# PyTorch
# -------
# PyTorch tensors work through array-api-compat, on the CPU or on a GPU. This part runs only where
# PyTorch is installed.
try:
    import torch
except ImportError:
    torch = None
    print("PyTorch is not installed here: this part is skipped.")

if torch is not None:
    on_torch = mlp.fit(torch.asarray(X_small), torch.asarray(y_small), **options)
    print(on_torch, type(on_torch.predict(torch.asarray(X_test))))

# %%
# The loss curves of both runs lie on top of each other:
fig, ax = plt.subplots(figsize=(5, 3), layout="constrained")
ax.plot(on_numpy.history["epoch"], on_numpy.history["loss"], "o-", label="NumPy (engine='xp')")
ax.plot(on_strict.history["epoch"], on_strict.history["loss"], "x--", label="array-api-strict, device1")
ax.set_xlabel("epoch")
ax.set_ylabel("training loss")
ax.legend()
