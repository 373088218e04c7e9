"""The cost of the watchdog (`mlp.distributed.watching`) on the gradient allreduce of B1.

    mpiexec -n 2 python bench/allreduce_timeout.py [--rounds 9] [--steps 469]

B1's gradients (784-128-64-10: 109,386 float32, 437.5 KB) summed by `steps` allreduces per round, one
epoch of 60 000 rows in batches of 128, in three ways alternating round by round: MPI's blocking
Allreduce alone (before), the same inside `watching` (as DataParallel does now), and Iallreduce
polled with Test against a deadline (the design not taken: polling Test is slower than MPI's own
wait). Prints rank 0's median seconds per round of each and per allreduce.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from mpi4py import MPI

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mlp.distributed import watching

B1_GRADIENTS = 784 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10


def blocking(comm, buffer):
    comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)


def watched(comm, buffer):
    with watching(comm, what="the benchmark", timeout=600.0):
        comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)


def polled(comm, buffer):
    request = comm.Iallreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
    deadline = time.monotonic() + 600.0
    while not request.Test():
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark's allreduce")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=469)
    args = parser.parse_args()
    comm = MPI.COMM_WORLD
    buffer = np.ones(B1_GRADIENTS, dtype=np.float32)
    ways = {
        "blocking Allreduce": blocking,
        "Allreduce in watching": watched,
        "Iallreduce + Test polls": polled,
    }
    times = {name: [] for name in ways}
    for _ in range(2):  # warm up
        for way in ways.values():
            way(comm, buffer)
    for _ in range(args.rounds):
        for name, way in ways.items():
            comm.Barrier()
            started = time.perf_counter()
            for _ in range(args.steps):
                way(comm, buffer)
            times[name].append(time.perf_counter() - started)
    if comm.Get_rank() == 0:
        print(
            f"{comm.Get_size()} ranks, {args.rounds} rounds of {args.steps} allreduces of {buffer.nbytes} bytes"
        )
        for name, seconds in times.items():
            median = statistics.median(seconds)
            print(
                f"{name:24s} median {median:.4f} s per round, {median / args.steps * 1e6:.1f} us per allreduce"
            )


if __name__ == "__main__":
    main()
