"""
Data-parallel training over MPI
===============================

Under ``mpiexec -n N`` every rank passes the same data and options to :func:`mlp.fit` with
``comm=MPI.COMM_WORLD``; each takes a contiguous part of every global batch, and one allreduce per
step gives every rank the mean gradient of the whole batch, so **N ranks train the same network as
one process**. This page runs with one rank (the build is one process); the same script runs
unchanged with more::

    mpiexec -n 4 python plot_09_mpi.py

Needs ``pip install "mlp-from-scratch[mpi]"``. The details: :doc:`/user_guide/distributed`.
"""

import matplotlib.pyplot as plt
import numpy as np
from mpi4py import MPI

import mlp

comm = MPI.COMM_WORLD
(X_train, y_train), (X_test, y_test) = mlp.datasets.load_mnist()

# %%
# Train
# -----
# Every rank calls the same line. Rank 0 alone prints and saves.
model = mlp.fit(X_train[:6_000], y_train[:6_000], hidden_sizes=[128], epochs=4, comm=comm, seed=0)
if comm.rank == 0:
    print(f"{comm.size} rank(s):", model)
    print(f"test accuracy {model.score(X_test, y_test):.4f}")

# %%
# The same network as one process
# -------------------------------
# With one rank the communicator changes nothing; with more, the weights agree with a single
# process's to the order of floating-point sums (the test suite checks two ranks to 1e-10 in
# float64).
alone = mlp.fit(X_train[:6_000], y_train[:6_000], hidden_sizes=[128], epochs=4, seed=0)
difference = max(
    float(np.abs(a - b).max()) for (a, _), (b, _) in zip(model.params, alone.params, strict=True)
)
print("largest weight difference from the run without comm:", difference)

# %%
# Which rows each rank takes
# --------------------------
# :func:`mlp.distributed.batch_part` gives rank r of N its contiguous rows of a global batch; the
# parts cover the batch in rank order and differ in length by at most one row. Here a global batch
# of 128 rows over 1 to 6 ranks:
fig, ax = plt.subplots(figsize=(6, 2.8), layout="constrained")
for size in range(1, 7):
    for rank in range(size):
        lo, hi = mlp.distributed.batch_part(0, 128, rank, size)
        ax.barh(size, hi - lo, left=lo, color=plt.cm.tab10(rank), edgecolor="white")
        ax.text((lo + hi) / 2, size, str(rank), ha="center", va="center", fontsize=7, color="white")
ax.set_xlabel("row of the global batch")
ax.set_ylabel("ranks")
ax.set_yticks(range(1, 7))
ax.invert_yaxis()
