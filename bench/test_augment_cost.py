"""What on-the-fly augmentation adds to an epoch (run: see RESULTS.md, "Augmentation cost").

B1's network (784-128-64-10, Adam, batch 128, float32) and B2's (784-1024-1024-10, the width of the
`best` recipe) on the 60 000 MNIST training images, with the default augmentation (`mlp.augment.Augment()`: shift, rotation, scale, shear and Simard's elastic
field). One run times, in interleaved rounds so that a change of machine load hits every case alike:

    plain        an epoch without augmentation
    prefetched   an epoch with augmentation, the next batch made in a background thread (fit's way)
    in turn      the same epoch with the augmentation made in the training thread before each step
    alone        the augmentation of an epoch's batches without any training

and records the median seconds of each and the ratios to `plain` in extra_info (printed too).
"""

import statistics
import time

import numpy as np
import pytest
from workloads import WORKLOADS

ROUNDS = {"B1": 5, "B2": 2}


def _trainer(X, y, augment, workload_name="B1"):
    import mlp
    from mlp import optimizers, schedules
    from mlp.engines import choose_engine

    workload = WORKLOADS[workload_name]
    model = mlp.fit(X, y, hidden_sizes=list(workload.hidden), epochs=0, seed=0, dropout=0.0)
    optimizer = optimizers.make_optimizer(workload.optimizer)
    trainer_class = choose_engine("auto", X, optimizer, model.loss)
    return trainer_class(
        model,
        optimizer=optimizer,
        learning_rate=workload.learning_rate,
        schedule=schedules.Schedule(),
        epochs=1,
        batch_size=workload.batch_size,
        rng=np.random.default_rng(0),
        augment=augment,
    )


@pytest.mark.parametrize("workload", list(ROUNDS))
def test_augmentation_cost_of_an_epoch(benchmark, mnist, workload):
    pytest.importorskip("mlp_kernels", reason="the CPU path of augmentation is the Numba kernel")
    import mlp_kernels

    from mlp._threads import thread_limits
    from mlp.augment import Augment, BatchAugmenter, apply_kernel

    X, y = mnist
    spec = Augment()
    plain, prefetched, in_turn = (_trainer(X, y, augment, workload) for augment in (None, spec, spec))
    in_turn.prefetch = False
    data = {
        name: trainer.prepare_data(X, y)
        for name, trainer in (("plain", plain), ("prefetched", prefetched), ("in turn", in_turn))
    }
    augmenter, rows, out = (
        BatchAugmenter(spec),
        np.arange(128, dtype=np.int64),
        np.empty((128, 784), np.float32),
    )

    def augment_only():
        for step, start in enumerate(range(0, X.shape[0], 128)):
            stop = min(start + 128, X.shape[0])
            affine, noise = augmenter.params(1, step, stop - start)
            apply_kernel(
                mlp_kernels.unchecked.augment_rows,
                X,
                rows[: stop - start] + start,
                affine,
                noise,
                spec,
                out[: stop - start],
            )

    cases = {
        "plain": lambda: plain.run_epoch(*data["plain"]),
        "prefetched": lambda: prefetched.run_epoch(*data["prefetched"]),
        "in turn": lambda: in_turn.run_epoch(*data["in turn"]),
        "alone": augment_only,
    }
    seconds = {name: [] for name in cases}
    with thread_limits(None):
        if ROUNDS[workload] > 2:
            for case in cases.values():  # warm: compiled kernels, touched buffers
                case()
        for _ in range(ROUNDS[workload]):
            for name, case in cases.items():
                started = time.perf_counter()
                case()
                seconds[name].append(time.perf_counter() - started)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    ratios = {name: median[name] / median["plain"] for name in ("prefetched", "in turn", "alone")}
    benchmark.group = "augmentation"
    benchmark.extra_info.update(
        workload=f"{workload} + default augmentation",
        rounds=ROUNDS[workload],
        median_seconds={k: round(v, 4) for k, v in median.items()},
        all_seconds={k: [round(s, 4) for s in v] for k, v in seconds.items()},
        ratio_to_plain={k: round(v, 3) for k, v in ratios.items()},
    )
    print(f"\n{workload}: median seconds per epoch: " + ", ".join(f"{k} {v:.3f}" for k, v in median.items()))
    print("ratio to plain: " + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items()))
    with thread_limits(None):
        benchmark.pedantic(cases["prefetched"], rounds=1, iterations=1)
    assert all(np.isfinite(list(median.values())))
