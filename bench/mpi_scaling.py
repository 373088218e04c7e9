"""Data-parallel scaling of B2 (784-1024-1024-10, Adam, global batch 128, float32, one epoch of the
60 000 MNIST images) over MPI ranks: measured with 1 and 2 ranks on this machine, modelled for N nodes.

    python bench/mpi_scaling.py --ranks 1 2 --json bench/mpi_scaling.json > section.md

launches `mpiexec -n N python bench/mpi_scaling.py --worker ...` for each N, then prints the Markdown
section of bench/RESULTS.md ("Scaling over MPI ranks"): the measured split of an epoch into compute
and gradient allreduce, and the model. Every rank uses --threads BLAS threads (default 1), so the
ranks of this small machine do not fight over its cores, and the single rank measures the compute
of one core.

Measured, per run of N ranks:
  epoch seconds      wall time of `run_epoch` (469 steps), the slowest rank
  allreduce seconds  time inside the per-step gradient allreduce, the slowest rank (this includes
                     waiting for a slower rank: on a shared machine that is most of it)
  isolated allreduce the median of 30 allreduces of the same 7.45 MB buffer after a barrier: the
                     cost of the communication itself
The single rank also runs epochs at batch 64 and 32, so the compute per step is measured at three
batch sizes and fitted as t(b) = a + c*b (a: per-step overhead, c: per-row cost).

Model (ring allreduce of S bytes over N nodes, latency alpha per message, bandwidth beta):
  t_allreduce(N) = 2(N-1) alpha + 2(N-1)/N * S / beta
  strong scaling (global batch 128): t_step(N) = t(128/N) + t_allreduce(N), speed-up t(128) / t_step(N)
  communication dominates when t_allreduce(N) > t(b), i.e. below b* = (t_allreduce(N) - a) / c rows per rank.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

GLOBAL_BATCH = 128
EXTRA_BATCHES = (64, 32)  # the single rank's other points of t(b)
ALPHA = 10e-6  # seconds per message of the ring (TCP over Ethernet: 10-50 us; RDMA: 1-3 us)
LINKS = {"10 Gbit/s": 10e9 / 8, "100 Gbit/s": 100e9 / 8}  # bytes per second
NODES = (1, 2, 4, 8, 16, 32, 64)


def loadavg():
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


# ---- one rank ----------------------------------------------------------------------------------------
def worker(args):
    import numpy as np
    from mpi4py import MPI
    from threadpoolctl import threadpool_limits
    from workloads import WORKLOADS, machine, mlp_trainer

    import mlp
    from mlp.distributed import DataParallel

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    started_load = loadavg()
    folder = os.environ.get("MLP_DATA_DIR") or str(REPO.parent / "shared" / "data" / "mnist")
    (X, y), _ = mlp.datasets.load_mnist(folder)
    X, y = np.ascontiguousarray(X, dtype=np.float32), y.astype(np.int64)
    workload = WORKLOADS["B2"]
    result = {"ranks": size, "threads": args.threads, "machine": machine(), "loadavg_start": started_load}
    with threadpool_limits(args.threads):
        trainer = mlp_trainer("numba", workload, X, y)
        if size > 1:
            trainer.parallel = DataParallel(comm, seed=0)
        trainer.run_epoch(X[:2560], y[:2560])  # warm-up: buffers, caches, the first allreduces
        comm.Barrier()
        parallel = trainer.parallel
        before = parallel.allreduce_seconds if parallel else 0.0
        started = time.perf_counter()
        trainer.run_epoch(X, y)
        epoch = time.perf_counter() - started
        allreduce = (parallel.allreduce_seconds - before) if parallel else 0.0
        steps = -(-X.shape[0] // GLOBAL_BATCH)
        n_params = int(trainer.grad_flat.size)

        # the allreduce alone, after a barrier: the communication's own cost
        buffer = np.ones(n_params, dtype=np.float32)
        isolated = []
        for _ in range(30):
            comm.Barrier()
            t0 = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
            isolated.append(time.perf_counter() - t0)

        compute_by_batch = {GLOBAL_BATCH // size: (epoch - allreduce) / steps}
        if size == 1:
            for batch in EXTRA_BATCHES:
                other = mlp_trainer("numba", type(workload)(**{**vars(workload), "batch_size": batch}), X, y)
                other.run_epoch(X[:2560], y[:2560])
                t0 = time.perf_counter()
                other.run_epoch(X, y)
                compute_by_batch[batch] = (time.perf_counter() - t0) / -(-X.shape[0] // batch)

    gathered = comm.gather({"epoch": epoch, "allreduce": allreduce, "compute": epoch - allreduce}, root=0)
    if rank == 0:
        result.update(
            epoch_seconds=max(g["epoch"] for g in gathered),
            allreduce_seconds=max(g["allreduce"] for g in gathered),
            compute_seconds=max(g["compute"] for g in gathered),
            steps=steps,
            n_params=n_params,
            bytes=n_params * 4,
            isolated_allreduce_seconds=statistics.median(isolated),
            compute_per_step_by_rows=compute_by_batch,
            loadavg_end=loadavg(),
        )
        Path(args.worker).write_text(json.dumps(result, indent=1))


# ---- the driver: launch, collect, model, print -----------------------------------------------------------
def launch(ranks, threads, folder):
    out = Path(folder) / f"ranks{ranks}.json"
    launcher = Path(sys.executable).parent / "mpiexec"
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=os.pathsep.join([str(REPO), str(HERE)]))
    command = [
        str(launcher),
        "-n",
        str(ranks),
        sys.executable,
        __file__,
        "--worker",
        str(out),
        "--threads",
        str(threads),
    ]
    subprocess.run(command, check=True, env=env, timeout=1800)
    return json.loads(out.read_text())


def ring_allreduce(nodes, size_bytes, bandwidth, alpha=ALPHA):
    if nodes == 1:
        return 0.0
    return 2 * (nodes - 1) * alpha + 2 * (nodes - 1) / nodes * size_bytes / bandwidth


def fit_line(points):
    """Least squares t = a + c*b over {b: t}."""
    bs, ts = list(points), [points[b] for b in points]
    mean_b, mean_t = statistics.fmean(bs), statistics.fmean(ts)
    c = sum((b - mean_b) * (t - mean_t) for b, t in zip(bs, ts, strict=True)) / sum(
        (b - mean_b) ** 2 for b in bs
    )
    return mean_t - c * mean_b, c


def model_tables(a, c, size):
    """The speed-up table and the b* table for compute t(b) = a + c*b."""
    lines = [
        "| nodes N | rows per rank | compute ms/step | "
        + " | ".join(f"t_ar {name} ms | speed-up {name}" for name in LINKS)
        + " |",
        "| ---: | ---: | ---: | " + " | ".join("---: | ---:" for _ in LINKS) + " |",
    ]
    base = a + c * GLOBAL_BATCH
    for nodes in NODES:
        rows = GLOBAL_BATCH / nodes
        compute = a + c * rows
        cells = []
        for bandwidth in LINKS.values():
            t_ar = ring_allreduce(nodes, size, bandwidth)
            cells.append(f"{t_ar * 1e3:.2f} | {base / (compute + t_ar):.2f}×")
        lines.append(f"| {nodes} | {rows:g} | {compute * 1e3:.1f} | " + " | ".join(cells) + " |")
    lines += ["", "Communication dominates (t_ar(N) > t(b)) below b* = (t_ar(N) − a) / c rows per rank:", ""]
    lines += [
        "| nodes N | " + " | ".join(f"b* at {name}" for name in LINKS) + " |",
        "| ---: | " + " | ".join("---:" for _ in LINKS) + " |",
    ]
    for nodes in NODES[1:]:
        cells = [
            f"{max((ring_allreduce(nodes, size, bandwidth) - a) / c, 0):.0f}" for bandwidth in LINKS.values()
        ]
        lines.append(f"| {nodes} | " + " | ".join(cells) + " |")
    return lines


def markdown(runs, command, reference=None):
    """The RESULTS.md section. reference: (seconds per epoch, threads) of B2 on an idle machine, to
    repeat the model with that compute (the same a/c ratio, scaled)."""
    one = next(r for r in runs if r["ranks"] == 1)
    points = {int(b): t for b, t in one["compute_per_step_by_rows"].items()}
    a, c = fit_line(points)
    size = one["bytes"]
    lines = [
        "## Scaling over MPI ranks (B2, data-parallel)",
        "",
        "B2 (784-1024-1024-10, Adam, float32), one epoch of the 60 000 MNIST images with a global batch of "
        f"{GLOBAL_BATCH} rows (469 steps), the Numba engine, {one['threads']} BLAS thread per rank; each rank "
        f"takes its contiguous part of every global batch and the {one['n_params']:,} gradients "
        f"({size / 1e6:.2f} MB) are summed by one MPI allreduce per step (`mlp.distributed`).",
        "",
        f"Measured on: {runs[0]['machine'].get('cpu_model', '?')}, {runs[0]['machine'].get('cores', '?')} cores "
        "(shared with other work); MPICH from the `mpich` wheel, both ranks on the same machine (shared memory).",
        "",
        "| ranks | rows per rank and step | epoch s | compute s | in-loop allreduce s | isolated allreduce ms | load average (start → end) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    lines.extend(
        f"| {run['ranks']} | {GLOBAL_BATCH // run['ranks']} | {run['epoch_seconds']:.2f} | {run['compute_seconds']:.2f} "
        f"| {run['allreduce_seconds']:.2f} | {run['isolated_allreduce_seconds'] * 1e3:.2f} "
        f"| {run['loadavg_start']} → {run['loadavg_end']} |"
        for run in sorted(runs, key=lambda r: r["ranks"])
    )
    two = next((r for r in runs if r["ranks"] == 2), None)
    lines += [
        "",
        "Compute per step of one rank (one core), measured at three batch sizes and fitted as "
        f"t(b) = a + c·b: a = {a * 1e3:.2f} ms, c = {c * 1e3:.3f} ms per row "
        f"({', '.join(f'{b} rows: {t * 1e3:.1f} ms' for b, t in sorted(points.items()))}).",
        "",
    ]
    if two is not None:
        speedup = one["epoch_seconds"] / two["epoch_seconds"]
        lines += [
            f"Measured speed-up with 2 ranks: {speedup:.2f}×. The in-loop allreduce time "
            f"({two['allreduce_seconds']:.2f} s) is mostly waiting for the slower rank: the allreduce itself "
            f"costs {two['isolated_allreduce_seconds'] * 1e3:.2f} ms × {two['steps']} steps = "
            f"{two['isolated_allreduce_seconds'] * two['steps']:.2f} s over shared memory.",
            "",
        ]
    lines += [
        "### Model for N nodes",
        "",
        f"Ring allreduce of S = {size / 1e6:.2f} MB: t_ar(N) = 2(N−1)·α + 2(N−1)/N · S / β, with α = "
        f"{ALPHA * 1e6:.0f} µs per message. Strong scaling keeps the global batch at {GLOBAL_BATCH}: "
        f"t_step(N) = t({GLOBAL_BATCH}/N) + t_ar(N), speed-up = t({GLOBAL_BATCH}) / t_step(N) (compute of one core "
        "per node, as measured; a node with more cores divides a and c, and the speed-up falls).",
        "",
    ]
    lines += model_tables(a, c, size)
    base = a + c * GLOBAL_BATCH
    if reference is not None:
        seconds, threads = reference
        idle_step = seconds * threads / one["steps"]  # one core's share of a step on an idle machine
        k = idle_step / base
        lines += [
            "",
            f"The load average above made one core's compute about {1 / k:.1f}× slower than on an idle machine: "
            f"the B2 table of this file ({seconds:.3f} s per epoch on {threads} cores) gives {idle_step * 1e3:.1f} ms "
            "per step of 128 rows per core. With that compute (a and c scaled alike) communication weighs more:",
            "",
        ]
        lines += model_tables(a * k, c * k, size)
    bases = {"measured": base}
    if reference is not None:
        bases["idle"] = idle_step
    lines += [
        "",
        "Weak scaling (each rank keeps 128 rows, the global batch grows to 128·N) keeps the compute per step "
        "at t(128), so its efficiency is t(128) / (t(128) + t_ar(N)); at 64 nodes: "
        + "; ".join(
            f"{label} t(128) = {b * 1e3:.1f} ms: "
            + ", ".join(
                f"{b / (b + ring_allreduce(64, size, bw)) * 100:.0f}% at {name}" for name, bw in LINKS.items()
            )
            for label, b in bases.items()
        )
        + ". It trains a different network than one process (larger global batches), the usual trade.",
        "",
        f"Command: `{command}`",
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write the measurements here")
    parser.add_argument(
        "--from-json", help="print the section from an earlier --json file, measuring nothing"
    )
    parser.add_argument(
        "--reference",
        type=float,
        nargs=2,
        metavar=("SECONDS", "THREADS"),
        help="B2's seconds per epoch on an idle machine and its threads (bench/RESULTS.md), "
        "to repeat the model with that compute",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    command = (
        "cat /proc/loadavg && .venv/bin/python bench/mpi_scaling.py --ranks 1 2 --json bench/mpi_scaling.json "
        "--reference 3.522 2"
    )
    if args.from_json:
        runs = json.loads(Path(args.from_json).read_text())
    else:
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            runs = [launch(n, args.threads, folder) for n in args.ranks]
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1))
    reference = (args.reference[0], int(args.reference[1])) if args.reference else None
    sys.stdout.write(markdown(runs, command, reference))
    return 0


if __name__ == "__main__":
    sys.exit(main())
