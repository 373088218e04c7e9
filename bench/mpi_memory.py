"""Peak memory per rank (ru_maxrss) of `mlp train` over MPI, whole set or --shard.

    mpiexec -n 2 python bench/mpi_memory.py --data FOLDER --epochs 1 --hidden 128 --no-save [--shard]

runs `mlp train` with the arguments given, then each rank prints its peak resident memory (Linux
ru_maxrss, in MiB), rank by rank. Recorded in bench/RESULTS.md ("Sharded data over MPI").
"""

import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mpi4py import MPI

from mlp.cli import main

if __name__ == "__main__":
    status = main(["train", *sys.argv[1:]])
    comm = MPI.COMM_WORLD
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    peaks = comm.gather(peak, root=0)
    if comm.Get_rank() == 0:
        mode = "--shard" if "--shard" in sys.argv else "whole set"
        print(
            f"{mode}: peak memory per rank (ru_maxrss) "
            + ", ".join(f"rank {r} {p:.0f} MiB" for r, p in enumerate(peaks))
        )
    sys.exit(status)
