"""How much a whole epoch inside one compiled function would save on B1 and B3 (a probe, not a path
the library takes).

    python bench/compiled_loop_probe.py [--rounds 5] [--threads 1]

The probe is the Numba engine's step for the 784-128-64-10 ReLU network with Adam, without its
options (no dropout, clipping, weights, MPI), written as one `@njit` loop over the epoch's batches
that calls the same kernels (`mlp_kernels.unchecked`) and multiplies with `np.dot(a, b, out)` inside
compiled code (Numba's BLAS binding, through SciPy), so Python is entered once per epoch instead of
about 20 times per step. Each round times one epoch of the engine (`run_epoch`) and then one of the
probe on the same buffers; printed: the medians and the ratio probe / engine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from workloads import WORKLOADS, mlp_trainer  # noqa: E402


def compiled_epoch():
    import numba
    from mlp_kernels import unchecked as k

    @numba.njit(nogil=True, error_model="numpy")
    def epoch(X, y, order, params, grads, buffers, adam, t):
        W0, b0, W1, b1, W2, b2 = params
        gW0, gb0, gW1, gb1, gW2, gb2 = grads
        Xb, yb, Z0, Z1, Z2, dZ, dA0, dA1 = buffers
        pw, gw, mw, vw, pb, gbb, mb, vb = adam
        batch, loss = Xb.shape[0], 0.0
        for start in range(0, X.shape[0] - batch + 1, batch):
            rows = order[start : start + batch]
            k.gather_rows(X, rows, Xb)
            k.gather_labels(y, rows, yb)
            np.dot(Xb, W0, Z0)
            k.bias_activation_forward(Z0, b0, 1)
            np.dot(Z0, W1, Z1)
            k.bias_activation_forward(Z1, b1, 1)
            np.dot(Z1, W2, Z2)
            k.bias_activation_forward(Z2, b2, 0)
            loss += k.softmax_cross_entropy_sum(Z2, yb, 1.0 / batch, dZ)[0]
            k.bias_gradient(dZ, gb2)
            np.dot(Z1.T, dZ, gW2)
            np.dot(dZ, W2.T, dA1)
            k.activation_backward(dA1, Z1, 1, gb1)
            np.dot(Z0.T, dA1, gW1)
            np.dot(dA1, W1.T, dA0)
            k.activation_backward(dA0, Z0, 1, gb0)
            np.dot(Xb.T, dA0, gW0)
            t += 1
            k.adam_step_fused(pw, gw, mw, vw, 1e-3, 0.9, 0.999, 1e-8, t, 0.0, 0.0, np.inf, 1.0)
            k.adam_step_fused(pb, gbb, mb, vb, 1e-3, 0.9, 0.999, 1e-8, t, 0.0, 0.0, np.inf, 1.0)
        return loss

    return epoch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--data",
        default=os.environ.get("MLP_DATA_DIR") or str(HERE.parent.parent / "shared" / "data" / "mnist"),
    )
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    import mlp

    (X, y), _ = mlp.datasets.load_mnist(args.data)
    X, y = np.ascontiguousarray(X), y.astype(np.int64)
    epoch = compiled_epoch()
    print(f"load at start: {Path('/proc/loadavg').read_text().strip()}")
    print("| workload | engine s/epoch | compiled loop s/epoch | compiled / engine |")
    print("| --- | ---: | ---: | ---: |")
    for name in ("B1", "B3"):
        trainer = mlp_trainer("numba", WORKLOADS[name], X, y)
        Xp, yp = trainer.prepare_data(X, y)
        batch, nw = WORKLOADS[name].batch_size, trainer.n_weights
        trainer._allocate(batch, X.shape[1])
        params = tuple(p for pair in trainer.model.params for p in pair)
        grads = tuple(g for pair in zip(trainer.grad_W, trainer.grad_b, strict=True) for g in pair)
        Z = [np.empty((batch, w), trainer.dtype) for w in (128, 64, 10)]
        dZ, dA = np.empty_like(Z[2]), [np.empty_like(Z[0]), np.empty_like(Z[1])]
        buffers = (trainer.X_batch, trainer.y_batch, *Z, dZ, *dA)
        m, v = trainer.state_flat
        adam = (trainer.flat[:nw], trainer.grad_flat[:nw], m[:nw], v[:nw])
        adam += (trainer.flat[nw:], trainer.grad_flat[nw:], m[nw:], v[nw:])
        engine, probe = [], []
        with threadpool_limits(args.threads):
            trainer.run_epoch(Xp, yp)
            epoch(Xp, yp, np.arange(X.shape[0]), params, grads, buffers, adam, 1)  # compiles
            for r in range(args.rounds):
                start = time.perf_counter()
                trainer.run_epoch(Xp, yp)
                engine.append(time.perf_counter() - start)
                order = np.random.default_rng(r).permutation(X.shape[0])
                start = time.perf_counter()
                epoch(Xp, yp, order, params, grads, buffers, adam, trainer.step_count)
                probe.append(time.perf_counter() - start)
        a, b = statistics.median(engine), statistics.median(probe)
        print(f"| {name} | {a:.3f} | {b:.3f} | {b / a:.2f} |", flush=True)
    print(f"load at end: {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
