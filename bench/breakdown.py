"""Where one epoch's time goes, per workload, for the Numba engine and the C++ port, beside PyTorch,
and the limit model of each workload, all from one run.

    python bench/breakdown.py [--workloads B1,B2,B3,B4] [--rounds 5] [--threads 1] [--cpp BIN]
                              [--no-torch] [--json PATH]

Per workload (bench/workloads.py):

- the whole epoch: the Numba engine's `run_epoch` (prepared as bench/workloads.py prepares it, one
  warm-up epoch), the C++ port's own per-epoch clock (`mlp-cpp train`, the same options, dropout 0
  as the Python trainer, first epoch dropped) and PyTorch CPU (`workloads.TorchEpoch`); medians over
  --rounds epochs;
- the Numba engine's parts, timed inside real epochs at the workload's shapes (a second trainer,
  built with every kernel and `np.matmul` of the engine wrapped in a timer; medians over --rounds
  epochs): GEMM (every `np.matmul`), elementwise and loss (bias + activation, the loss kernel, bias
  and activation gradients), optimizer (the block updates), batch gather (rows and labels). What the
  instrumented epoch takes beyond their sum is the work outside compiled code (the Python of the step
  and the epoch loop, and the timers' own cost, about 0.2 us a call). The fixed cost of one call into a
  kernel or `np.matmul` (timed on empty arrays) times the calls of an epoch is shown beside it: that
  much of the parts is call overhead as well;
- the C++ port's parts from its own timers (MLP_PROFILE=1: epoch order, gather, gemm, elementwise,
  update);
- the limit model: the epoch's GEMM FLOPs at the best rate measured for those shapes (NumPy's BLAS
  on the step's products, or the C++ port's GEMM over its epoch, whichever is faster) plus the bytes
  that the rest must move at the copy bandwidth measured for that working set (the gather's rows
  from main memory, float32 rows read and written; the optimizer's buffers, Adam 7 and SGD 3 passes
  over the parameters; the activations' elementwise passes); share = limit / measured epoch.

Threads: every implementation gets --threads (BLAS pools through threadpoolctl, the port's
--threads, torch.set_num_threads). The load average is printed with each table: on a shared
machine, compare the ratios of one run, not seconds across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from workloads import WORKLOADS, TorchEpoch, cpp_epoch_seconds, describe_machine, machine, mlp_trainer  # noqa: E402

PARTS = ("gemm", "elementwise", "optimizer", "gather")


def loadavg():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def median_seconds(calls, rounds, min_seconds=0.02):
    """Median over `rounds` of the seconds one pass over `calls` takes (each round loops the pass
    enough times to last about min_seconds)."""
    def once():
        for call in calls:
            call()

    start, reps = time.perf_counter(), 0
    while time.perf_counter() - start < min_seconds / 4:
        once()
        reps += 1
    reps = max(1, int(reps * 4 * (min_seconds / 4) / max(time.perf_counter() - start, 1e-9)))
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(reps):
            once()
        samples.append((time.perf_counter() - start) / reps)
    return statistics.median(samples)


# ---- the Numba engine: its parts timed inside real epochs -------------------------------------------
KERNEL_PARTS = {  # kernel name -> part; every other kernel is elementwise and loss work
    "gather_rows": "gather",
    "gather_labels": "gather",
    "sgd_step_fused": "optimizer",
    "momentum_step_fused": "optimizer",
    "rmsprop_step_fused": "optimizer",
    "adam_step_fused": "optimizer",
}


class _Timed:
    """A stand-in for a module whose functions add their wall time to totals[part] (matmul: "gemm")."""

    def __init__(self, module, totals, part_of):
        self._module, self._totals, self._part_of = module, totals, part_of

    def __getattr__(self, name):
        value = getattr(self._module, name)
        part = self._part_of(name)
        if part is None or not callable(value):
            return value
        totals, clock = self._totals, time.perf_counter

        def timed(*args, **kwargs):
            start = clock()
            result = value(*args, **kwargs)
            totals[part] += clock() - start
            return result

        setattr(self, name, timed)
        return timed


def call_costs(dtype):
    """Seconds of one call into a Numba kernel and into np.matmul(out=) on empty arrays."""
    from mlp_kernels import unchecked as k

    Z, b, out = np.empty((0, 4), dtype), np.empty(4, dtype), np.empty((0, 4), dtype)
    W = np.empty((4, 4), dtype)
    kernel = median_seconds([lambda: k.bias_gradient(Z, b)] * 20, 5) / 20
    matmul = median_seconds([lambda: np.matmul(Z, W, out=out)] * 20, 5) / 20
    return kernel, matmul


def numba_breakdown(spec, X, y, rounds, threads):
    """The epoch (plain), then its parts from epochs run with every kernel and matmul call timed."""
    from threadpoolctl import threadpool_limits

    from mlp.engines import numba_trainer

    with threadpool_limits(threads):
        trainer = mlp_trainer("numba", spec, X, y)
        Xp, yp = trainer.prepare_data(X, y)
        trainer.run_epoch(Xp, yp)  # warm-up
        epochs = []
        for _ in range(rounds):
            start = time.perf_counter()
            trainer.run_epoch(Xp, yp)
            epochs.append(time.perf_counter() - start)
        totals = dict.fromkeys(PARTS, 0.0)
        kernels, numpy = numba_trainer.kernels, numba_trainer.np
        numba_trainer.kernels = _Timed(kernels, totals, lambda name: KERNEL_PARTS.get(name, "elementwise"))
        numba_trainer.np = _Timed(numpy, totals, lambda name: "gemm" if name == "matmul" else None)
        try:
            timed = mlp_trainer("numba", spec, X, y)  # built with the timed kernels (its loss kernel)
            timed.run_epoch(*timed.prepare_data(X, y))
            instrumented, parts = [], []
            for _ in range(rounds):
                for key in totals:
                    totals[key] = 0.0
                start = time.perf_counter()
                timed.run_epoch(Xp, yp)
                instrumented.append(time.perf_counter() - start)
                parts.append(dict(totals))
        finally:
            numba_trainer.kernels, numba_trainer.np = kernels, numpy
    kernel_call, matmul_call = call_costs(trainer.dtype)
    rows = X.shape[0] if spec.batch_size == "full" else spec.batch_size
    steps = -(-X.shape[0] // rows)
    layers = len(spec.hidden) + 1
    n_matmul = 3 * layers - 1
    n_kernels = 2 * layers + 1 + 2 + (2 if rows < X.shape[0] else 0)  # act fwd/bwd, loss, bias, 2 blocks, gather
    epoch, instrumented_epoch = statistics.median(epochs), statistics.median(instrumented)
    medians = {part: statistics.median(p[part] for p in parts) for part in PARTS}
    return {
        "epoch": epoch,
        "epochs": epochs,
        **medians,
        "instrumented_epoch": instrumented_epoch,
        "outside": instrumented_epoch - sum(medians.values()),
        "call_overhead": steps * (n_kernels * kernel_call + n_matmul * matmul_call),
        "kernel_call": kernel_call,
        "matmul_call": matmul_call,
        "steps": steps,
    }


# ---- the C++ port ----------------------------------------------------------------------------------
def cpp_breakdown(binary, folder, spec, rounds, threads):
    """The port's per-epoch seconds and its MLP_PROFILE parts, medians over `rounds` epochs after one."""
    command = [str(binary), "train", "--data", str(folder), "--hidden", ",".join(map(str, spec.hidden))]
    command += ["--epochs", str(rounds + 1), "--batch-size", str(spec.batch_size), "--optimizer", spec.optimizer]
    command += ["--lr", str(spec.learning_rate), "--schedule", "constant", "--test-limit", "100"]
    command += ["--dropout", "0", "--threads", str(threads), "--seed", "0"]
    result = subprocess.run(command, capture_output=True, text=True, check=True, env={**os.environ, "MLP_PROFILE": "1"})
    epochs = cpp_epoch_seconds(result.stdout)[1:]
    profiles = []
    for line in result.stdout.splitlines():
        if line.startswith("profile"):
            words = line.split()[1:]
            profiles.append({words[i]: float(words[i + 1].rstrip("s")) for i in range(0, len(words), 2)})
    profiles = profiles[1:]
    parts = {key: statistics.median(p[key] for p in profiles) for key in profiles[0]}
    return {"epoch": statistics.median(epochs), "epochs": epochs, **parts}


# ---- the limit model -------------------------------------------------------------------------------
def copy_bandwidth(nbytes, rounds):
    """Bytes per second moved (read + written) within compiled code over a working set of `nbytes`:
    the faster of a copy between two arrays and an in-place update of one."""
    import numba

    @numba.njit(fastmath=True, cache=False)
    def copy(src, dst, reps):
        for _ in range(reps):
            for i in range(src.shape[0]):
                dst[i] = src[i]

    @numba.njit(fastmath=True, cache=False)
    def update(a, reps):
        for _ in range(reps):
            for i in range(a.shape[0]):
                a[i] = a[i] * np.float32(0.999)

    src = np.ones(max(nbytes // 8, 1024), np.float32)
    dst, one = np.empty_like(src), np.ones(2 * src.shape[0], np.float32)
    reps = max(1, int(4e8 // (8 * src.shape[0])))
    copy(src, dst, 1)
    update(one, 1)
    seconds_copy = median_seconds([lambda: copy(src, dst, reps)], rounds, min_seconds=0.05) / reps
    seconds_update = median_seconds([lambda: update(one, reps)], rounds, min_seconds=0.05) / reps
    return 8 * src.shape[0] / min(seconds_copy, seconds_update)


def limit_model(spec, n, numba_parts, cpp_parts, rounds):
    """Seconds of an epoch at the measured GEMM rate and copy bandwidths (see the docstring)."""
    sizes = spec.layer_sizes()
    rows = n if spec.batch_size == "full" else spec.batch_size
    steps = -(-n // rows)
    params = sum(a * b + b for a, b in zip(sizes, sizes[1:], strict=False))
    flops = spec.gemm_flops(n)
    rates = {"numpy": flops / numba_parts["gemm"]}  # in the epoch, call overhead included
    if cpp_parts:
        rates["cpp"] = flops / cpp_parts["gemm"]
    best = max(rates.values())
    gather_bytes = 0 if spec.batch_size == "full" else 2 * 4 * n * sizes[0]
    optimizer_bytes = steps * (7 if spec.optimizer == "adam" else 3) * 4 * params
    hidden = sum(sizes[1:-1])
    activation_bytes = 4 * n * (5 * hidden + 3 * sizes[-1])  # fwd r+w, bwd r dA, r A, w dA; loss, bias
    bandwidth = {
        "gather": copy_bandwidth(256 << 20, rounds),
        "optimizer": copy_bandwidth(4 * 4 * params, rounds),
        "elementwise": copy_bandwidth(4 * rows * max(sizes[1:]), rounds),
    }
    parts = {
        "gemm": flops / best,
        "gather": gather_bytes / bandwidth["gather"],
        "optimizer": optimizer_bytes / bandwidth["optimizer"],
        "elementwise": activation_bytes / bandwidth["elementwise"],
    }
    return {
        "flops": flops,
        "rates": rates,
        "best_rate": best,
        "bandwidth": bandwidth,
        "bytes": {"gather": gather_bytes, "optimizer": optimizer_bytes, "elementwise": activation_bytes},
        "parts": parts,
        "limit": sum(parts.values()),
    }


# ---- the run ---------------------------------------------------------------------------------------
def torch_epochs(spec, X, y, rounds, threads):
    try:
        epoch = TorchEpoch(spec, X, y, threads)
    except ImportError:
        return None
    epoch()
    seconds = []
    for _ in range(rounds):
        start = time.perf_counter()
        epoch()
        seconds.append(time.perf_counter() - start)
    return {"epoch": statistics.median(seconds), "epochs": seconds}


def find_cpp(given):
    for candidate in [given, os.environ.get("MLP_CPP_BIN"), HERE.parent / "cpp" / "build" / "mlp-cpp"]:
        if candidate and Path(candidate).exists():
            return Path(candidate)
    return None


def print_tables(results, threads):
    ms = 1000.0
    print(f"\nNumba engine, ms per epoch ({threads} thread(s)); parts timed inside epochs")
    print("| workload | epoch (instrumented) | GEMM | elementwise + loss | optimizer | gather | outside compiled code | (call overhead in the parts) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        b = r["numba"]
        cells = " | ".join(f"{b[p] * ms:.0f}" for p in (*PARTS, "outside", "call_overhead"))
        print(f"| {name} | {b['epoch'] * ms:.0f} ({b['instrumented_epoch'] * ms:.0f}) | {cells} |")
    if any(r["cpp"] for r in results.values()):
        print(f"\nC++ port, ms per epoch ({threads} thread(s)), its own timers (MLP_PROFILE=1)")
        print("| workload | epoch | GEMM | elementwise + loss | optimizer | gather | epoch order | other |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, r in results.items():
            c = r["cpp"]
            if c:
                cells = " | ".join(f"{c[p] * ms:.0f}" for p in ("gemm", "elementwise", "update", "gather", "order", "other"))
                print(f"| {name} | {c['epoch'] * ms:.0f} | {cells} |")
    print("\nLimit model, ms per epoch")
    print("| workload | GEMM GFLOP | GFLOP/s NumPy / C++ | GEMM | gather | optimizer | elementwise | limit | Numba share | C++ share |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        lim = r["limit"]
        rates = " / ".join(f"{lim['rates'][k] / 1e9:.0f}" for k in ("numpy", "cpp") if k in lim["rates"])
        cells = " | ".join(f"{lim['parts'][p] * ms:.0f}" for p in ("gemm", "gather", "optimizer", "elementwise"))
        cpp_share = f"{lim['limit'] / r['cpp']['epoch']:.0%}" if r["cpp"] else "-"
        print(
            f"| {name} | {lim['flops'] / 1e9:.1f} | {rates} | {cells} | {lim['limit'] * ms:.0f} | "
            f"{lim['limit'] / r['numba']['epoch']:.0%} | {cpp_share} |"
        )
    print("\nSame run, s per epoch (medians)")
    print("| workload | Numba | C++ port | PyTorch | Numba / C++ | Numba / PyTorch |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        n, c, t = r["numba"]["epoch"], r["cpp"] and r["cpp"]["epoch"], r["torch"] and r["torch"]["epoch"]
        print(
            f"| {name} | {n:.3f} | {f'{c:.3f}' if c else '-'} | {f'{t:.3f}' if t else '-'} | "
            f"{f'{n / c:.2f}' if c else '-'} | {f'{n / t:.2f}' if t else '-'} |"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="B1,B2,B3,B4")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cpp", help="the mlp-cpp binary (default: $MLP_CPP_BIN, cpp/build/mlp-cpp)")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--data", default=os.environ.get("MLP_DATA_DIR") or str(HERE.parent.parent / "shared" / "data" / "mnist")
    )
    args = parser.parse_args(argv)
    import mlp

    (X, y), _ = mlp.datasets.load_mnist(args.data)
    X, y = np.ascontiguousarray(X), y.astype(np.int64)
    binary = find_cpp(args.cpp)
    print(describe_machine(machine()))
    print(f"command: python bench/breakdown.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    print(f"load at start: {loadavg()}")
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        if binary:
            mlp.datasets.write_binary(Path(folder) / "train.mlpd", X, y)
            mlp.datasets.write_binary(Path(folder) / "test.mlpd", X[:100], y[:100])
        for name in args.workloads.split(","):
            spec = WORKLOADS[name]
            rounds = max(3, args.rounds // 2) if name == "B2" else args.rounds
            numba = numba_breakdown(spec, X, y, rounds, args.threads)
            cpp = cpp_breakdown(binary, folder, spec, rounds, args.threads) if binary else None
            torch = None if args.no_torch else torch_epochs(spec, X, y, rounds, args.threads)
            limit = limit_model(spec, X.shape[0], numba, cpp, rounds)
            results[name] = {"numba": numba, "cpp": cpp, "torch": torch, "limit": limit}
            print(f"{name} done, load {loadavg()}", file=sys.stderr, flush=True)
    print_tables(results, args.threads)
    print(f"\nload at end: {loadavg()}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "threads": args.threads, "results": results}, indent=1))


if __name__ == "__main__":
    main()
