"""The order an epoch visits the rows in: a full shuffle, or a block shuffle for data read from disk.

A full shuffle (`rng.permutation(n)`) sends every batch to rows anywhere in X: for a memory-mapped X
larger than the page cache each row is a random read. `block_order` keeps most reads sequential and
the order still well mixed: the rows are cut into blocks of `block` consecutive rows, the blocks are
put in a random order, and the rows of each run of `BLOCK_WINDOW` consecutive blocks of that order are
shuffled together. An epoch then reads one window (BLOCK_WINDOW * block rows, from BLOCK_WINDOW places
on disk) at a time, and every batch mixes rows of BLOCK_WINDOW blocks drawn from anywhere in X.

Both are drawn from the trainer's generator by the base trainer, so every engine (and every MPI rank)
draws the same order from the same seed.
"""

from __future__ import annotations

import itertools

import numpy as np

BLOCK_WINDOW = 4  # blocks whose rows are shuffled together


def block_order(n: int, block: int, rng: np.random.Generator, *, window: int = BLOCK_WINDOW) -> np.ndarray:
    """A permutation of range(n) (int64): blocks of `block` consecutive rows (the last may be
    shorter) in a random order, the rows shuffled within each run of `window` blocks of it."""
    starts = np.arange(0, n, block, dtype=np.int64)
    starts = starts[rng.permutation(starts.shape[0])]
    lengths = np.minimum(block, n - starts)
    # row i of the order: its block's start plus its place in the block
    offsets = np.arange(n, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    order = np.repeat(starts, lengths) + offsets
    bounds = np.concatenate(([0], np.cumsum(lengths)[window - 1 :: window]))
    if bounds[-1] != n:
        bounds = np.append(bounds, n)
    for lo, hi in itertools.pairwise(bounds):
        rng.shuffle(order[lo:hi])
    return order
