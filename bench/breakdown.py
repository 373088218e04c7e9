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
  on the step's products, in the epochs or alone, or the C++ port's GEMM over its epoch, whichever
  is fastest) plus the bytes
  that the rest must move at the copy bandwidth measured for that working set (the gather's rows
  from main memory, float32 rows read and written; the optimizer's buffers, Adam 7 and SGD 3 passes
  over the parameters; the activations' elementwise passes); share = limit / measured epoch.

Threads: every implementation gets --threads (BLAS pools through threadpoolctl, the port's
--threads, torch.set_num_threads). With --threads auto each runs as its users get it: the Numba
engine's epochs inside `mlp._threads.thread_limits(None)` (one BLAS thread per idle core, decided
every epoch, as `fit` runs them), the port with its default pool, PyTorch with one thread per core. The load average is printed with each table: on a shared
machine, compare the ratios of one run, not seconds across runs.
"""

from __future__ import annotations

import argparse
import itertools
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


def median_seconds(calls, rounds, min_seconds=0.02, statistic=statistics.median):
    """Median (or `statistic`) over `rounds` of the seconds one pass over `calls` takes (each round
    loops the pass enough times to last about min_seconds)."""

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
    return statistic(samples)


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


class NumbaEpochs:
    """Two trainers of the workload, prepared as bench/workloads.py prepares them and warmed up: one
    plain, one whose kernel and matmul calls are timed (see _Timed), for epochs run in turn."""

    def __init__(self, spec, X, y, threads):
        import contextlib

        from mlp._threads import thread_limits
        from mlp.engines import numba_trainer

        self.module, self.totals = numba_trainer, dict.fromkeys(PARTS, 0.0)
        self.limits = (lambda: thread_limits(None)) if threads == "auto" else contextlib.nullcontext
        self.plain = mlp_trainer("numba", spec, X, y)
        self.X, self.y = self.plain.prepare_data(X, y)
        self.plain.run_epoch(self.X, self.y)
        with self._timing():
            self.timed = mlp_trainer("numba", spec, X, y)  # binds the timed loss kernel
            self.timed.run_epoch(*self.timed.prepare_data(X, y))

    def _timing(self):
        import contextlib

        @contextlib.contextmanager
        def swapped():
            kernels, numpy = self.module.kernels, self.module.np
            self.module.kernels = _Timed(
                kernels, self.totals, lambda name: KERNEL_PARTS.get(name, "elementwise")
            )
            self.module.np = _Timed(numpy, self.totals, lambda name: "gemm" if name == "matmul" else None)
            try:
                yield
            finally:
                self.module.kernels, self.module.np = kernels, numpy

        return swapped()

    def epoch(self):
        start = time.perf_counter()
        with self.limits():
            self.plain.run_epoch(self.X, self.y)
        return time.perf_counter() - start

    def timed_epoch(self):
        """(seconds, {part: seconds}) of one instrumented epoch."""
        for key in self.totals:
            self.totals[key] = 0.0
        with self._timing(), self.limits():
            start = time.perf_counter()
            self.timed.run_epoch(self.X, self.y)
            seconds = time.perf_counter() - start
        return seconds, dict(self.totals)


def numba_summary(spec, n, dtype, epochs, instrumented_runs):
    """Medians of the plain and the instrumented epochs and of the parts; the best GEMM time."""
    kernel_call, matmul_call = call_costs(dtype)
    rows = n if spec.batch_size == "full" else spec.batch_size
    steps = -(-n // rows)
    layers = len(spec.hidden) + 1
    n_matmul = 3 * layers - 1
    n_kernels = 2 * layers + 1 + 2 + (2 if rows < n else 0)  # act fwd/bwd, loss, bias, 2 blocks, gather
    instrumented = statistics.median(seconds for seconds, _ in instrumented_runs)
    parts = {part: statistics.median(p[part] for _, p in instrumented_runs) for part in PARTS}
    return {
        "epoch": statistics.median(epochs),
        "epochs": epochs,
        **parts,
        "best_gemm": min(p["gemm"] for _, p in instrumented_runs),
        "instrumented_epoch": instrumented,
        "outside": instrumented - sum(parts.values()),
        "call_overhead": steps * (n_kernels * kernel_call + n_matmul * matmul_call),
        "kernel_call": kernel_call,
        "matmul_call": matmul_call,
        "steps": steps,
    }


# ---- the C++ port ----------------------------------------------------------------------------------
def cpp_epoch(binary, folder, spec, threads):
    """(seconds, {part: seconds}) of the port's second epoch (the first warms the caches), one process."""
    command = [str(binary), "train", "--data", str(folder), "--hidden", ",".join(map(str, spec.hidden))]
    command += ["--epochs", "2", "--batch-size", str(spec.batch_size), "--optimizer", spec.optimizer]
    command += ["--lr", str(spec.learning_rate), "--schedule", "constant", "--test-limit", "100"]
    command += ["--dropout", "0", "--seed", "0"] + ([] if threads == "auto" else ["--threads", str(threads)])
    result = subprocess.run(
        command, capture_output=True, text=True, check=True, env={**os.environ, "MLP_PROFILE": "1"}
    )
    seconds = cpp_epoch_seconds(result.stdout)[-1]
    line = [line for line in result.stdout.splitlines() if line.startswith("profile")][-1]
    words = line.split()[1:]
    return seconds, {words[i]: float(words[i + 1].rstrip("s")) for i in range(0, len(words), 2)}


def cpp_summary(runs):
    keys = runs[0][1]
    return {
        "epoch": statistics.median(seconds for seconds, _ in runs),
        "epochs": [seconds for seconds, _ in runs],
        **{key: statistics.median(p[key] for _, p in runs) for key in keys},
        "best_gemm": min(p["gemm"] for _, p in runs),
    }


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
    seconds_copy = median_seconds([lambda: copy(src, dst, reps)], rounds, 0.05, min) / reps
    seconds_update = median_seconds([lambda: update(one, reps)], rounds, 0.05, min) / reps
    return 8 * src.shape[0] / min(seconds_copy, seconds_update)


def isolated_gemm_seconds(spec, n, rounds):
    """Seconds of an epoch's products through np.matmul, timed alone on the step's shapes (float32,
    best of `rounds`): the products of one step in a loop, times the steps."""
    rng = np.random.default_rng(0)
    sizes = spec.layer_sizes()
    rows = n if spec.batch_size == "full" else spec.batch_size
    W = [rng.random((a, b), dtype=np.float32) for a, b in itertools.pairwise(sizes)]
    Z = [rng.random((rows, b), dtype=np.float32) for b in sizes]  # Z[0] plays the batch
    grads = [np.empty_like(w) for w in W]
    calls = [lambda i=i: np.matmul(Z[i], W[i], out=Z[i + 1]) for i in range(len(W))]
    calls += [lambda i=i: np.matmul(Z[i].T, Z[i + 1], out=grads[i]) for i in range(len(W))]
    dA = [np.empty_like(z) for z in Z]
    calls += [lambda i=i: np.matmul(Z[i + 1], W[i].T, out=dA[i]) for i in range(1, len(W))]
    return median_seconds(calls, rounds, 0.05, min) * -(-n // rows)


def limit_model(spec, n, numba_parts, cpp_parts, rounds):
    """Seconds of an epoch at the measured GEMM rate and copy bandwidths (see the docstring)."""
    sizes = spec.layer_sizes()
    rows = n if spec.batch_size == "full" else spec.batch_size
    steps = -(-n // rows)
    params = sum(a * b + b for a, b in itertools.pairwise(sizes))
    flops = spec.gemm_flops(n)
    rates = {"numpy": flops / min(numba_parts["best_gemm"], isolated_gemm_seconds(spec, n, rounds))}
    if cpp_parts:
        rates["cpp"] = flops / cpp_parts["best_gemm"]
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
def torch_epoch(spec, X, y, threads):
    """A warmed-up PyTorch epoch, or None without torch."""
    try:
        epoch = TorchEpoch(spec, X, y, threads)
    except ImportError:
        return None
    epoch()
    return epoch


def timed(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def measure(spec, X, y, rounds, threads, binary, folder, with_torch):
    """Every implementation's epochs, in turn within each round (so a change of load hits all)."""
    from threadpoolctl import threadpool_limits

    cores = len(os.sched_getaffinity(0))
    with threadpool_limits(None if threads == "auto" else threads):
        numba = NumbaEpochs(spec, X, y, threads)
        torch = torch_epoch(spec, X, y, cores if threads == "auto" else threads) if with_torch else None
        epochs, instrumented, cpp, torch_seconds = [], [], [], []
        for _ in range(rounds):
            epochs.append(numba.epoch())
            instrumented.append(numba.timed_epoch())
            if binary:
                cpp.append(cpp_epoch(binary, folder, spec, threads))
            if torch is not None:
                torch_seconds.append(timed(torch))
        summary = numba_summary(spec, X.shape[0], numba.plain.dtype, epochs, instrumented)
    return {
        "numba": summary,
        "cpp": cpp_summary(cpp) if cpp else None,
        "torch": {"epoch": statistics.median(torch_seconds), "epochs": torch_seconds}
        if torch_seconds
        else None,
    }


def find_cpp(given):
    for candidate in [given, os.environ.get("MLP_CPP_BIN"), HERE.parent / "cpp" / "build" / "mlp-cpp"]:
        if candidate and Path(candidate).exists():
            return Path(candidate)
    return None


def print_tables(results, threads):
    ms = 1000.0
    print(f"\nNumba engine, ms per epoch ({threads} thread(s)); parts timed inside epochs")
    print(
        "| workload | epoch (instrumented) | GEMM | elementwise + loss | optimizer | gather | outside compiled code | (call overhead in the parts) |"
    )
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
                cells = " | ".join(
                    f"{c[p] * ms:.0f}" for p in ("gemm", "elementwise", "update", "gather", "order", "other")
                )
                print(f"| {name} | {c['epoch'] * ms:.0f} | {cells} |")
    print("\nLimit model, ms per epoch")
    print(
        "| workload | GEMM GFLOP | GFLOP/s NumPy / C++ | GEMM | gather | optimizer | elementwise | limit | Numba share | C++ share |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        lim = r["limit"]
        rates = " / ".join(f"{lim['rates'][k] / 1e9:.0f}" for k in ("numpy", "cpp") if k in lim["rates"])
        cells = " | ".join(
            f"{lim['parts'][p] * ms:.0f}" for p in ("gemm", "gather", "optimizer", "elementwise")
        )
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
    parser.add_argument("--threads", type=lambda v: v if v == "auto" else int(v), default=1, help="N or auto")
    parser.add_argument("--cpp", help="the mlp-cpp binary (default: $MLP_CPP_BIN, cpp/build/mlp-cpp)")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--data",
        default=os.environ.get("MLP_DATA_DIR") or str(HERE.parent.parent / "shared" / "data" / "mnist"),
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
            result = measure(spec, X, y, rounds, args.threads, binary, folder, not args.no_torch)
            result["limit"] = limit_model(spec, X.shape[0], result["numba"], result["cpp"], rounds)
            results[name] = result
            print(f"{name} done, load {loadavg()}", file=sys.stderr, flush=True)
    print_tables(results, args.threads)
    print(f"\nload at end: {loadavg()}")
    if args.json:
        args.json.write_text(
            json.dumps({"machine": machine(), "threads": args.threads, "results": results}, indent=1)
        )


if __name__ == "__main__":
    main()
