"""
Export to ONNX and run it with onnxruntime
==========================================

:meth:`mlp.MLP.to_onnx` writes the trained network as an ONNX graph, recorded by running the
library's own forward pass on `ndonnx <https://ndonnx.readthedocs.io>`_ arrays, so the file cannot
drift from :meth:`~mlp.MLP.predict`. Any ONNX runtime then serves it without this library:
here onnxruntime. Needs ``pip install "mlp-from-scratch[onnx]" onnxruntime``.
"""

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import onnxruntime

import mlp

(X_train, y_train), (X_test, y_test) = mlp.datasets.load_mnist()
model = mlp.fit(X_train[:5_000], y_train[:5_000], hidden_sizes=[64], epochs=5, seed=0)

# %%
# Export
# ------
folder = Path(tempfile.mkdtemp())
path = model.to_onnx(folder / "model.onnx")
print(path, f"{Path(path).stat().st_size / 1e3:.0f} kB")

# %%
# Run
# ---
# One input, ``X`` (batch, 784) float32 with a dynamic batch size; a classifier has two outputs,
# ``label`` and ``probabilities``.
session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
print([(i.name, i.shape, i.type) for i in session.get_inputs()])
print([o.name for o in session.get_outputs()])
label, probabilities = session.run(None, {"X": X_test})

# %%
# The same answers as the model in Python:
print("labels equal:", bool(np.array_equal(label, model.predict(X_test))))
print("largest probability difference:", float(np.abs(probabilities - model.predict_proba(X_test)).max()))
print(f"accuracy through onnxruntime: {np.mean(label == y_test):.4f}")

# %%
# Each of the 100 000 probabilities, onnxruntime's against Python's: one line.
fig, ax = plt.subplots(figsize=(4, 4), layout="constrained")
ax.plot(model.predict_proba(X_test).ravel(), probabilities.ravel(), ".", ms=2, alpha=0.3)
ax.set_xlabel("MLP.predict_proba")
ax.set_ylabel("onnxruntime")
ax.set_aspect("equal")
