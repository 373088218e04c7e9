"""Training from a memory-mapped file larger than the memory a process may take (run: see RESULTS.md).

    python bench/out_of_core.py disk [--rows 2500000 --features 256 --limit-mb 700 --dir /tmp]
    python bench/out_of_core.py accuracy [--epochs 5 --seeds 0 1 2 --block 1024]

disk: writes a synthetic float32 .npy (rows x features, labels from a random linear teacher), then
trains 2 epochs in a child process per case and reports the second epoch's seconds, the peak
resident memory (ru_maxrss: it counts the map's pages that are in memory, which the kernel may drop)
and the peak anonymous memory (RssAnon sampled every 20 ms: what the process itself allocated):

    ram          the file read into memory (np.load), full shuffle, no limit: the control
    map          np.load(mmap_mode="r"), full shuffle, under RLIMIT_AS = the address space after the
                 imports, a warm-up fit and the mapping + limit-mb (a copy of X cannot be made: checked)
    map-blocks   the same with shuffle_block
    cold, cold-blocks  map / map-blocks with the file's pages dropped from the page cache before the
                 timed epoch (madvise + posix_fadvise DONTNEED): every read comes from the disk
The file is deleted afterwards.

accuracy: MNIST (MLP_DATA_DIR), the same network and seeds with a full shuffle and with shuffle_block,
on the training set as it is stored and sorted by label (the worst case for blocks); test accuracy,
mean of the seeds.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workloads import describe_machine, machine

NETWORK = dict(hidden_sizes=[64], batch_size=256, epochs=2, learning_rate=1e-3, dropout=0.0)
CLASSES = 10


def write_data(path: Path, rows: int, features: int, chunk: int = 100_000) -> None:
    """X (rows, features) float32 standard normal, written in chunks; y = argmax(X @ T) of a fixed T."""
    rng = np.random.default_rng(0)
    teacher = rng.standard_normal((features, CLASSES)).astype(np.float32)
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, features))
    y = np.empty(rows, dtype=np.int64)
    for start in range(0, rows, chunk):
        block = rng.standard_normal((min(chunk, rows - start), features), dtype=np.float32)
        X[start : start + block.shape[0]] = block
        y[start : start + block.shape[0]] = np.argmax(block @ teacher, axis=1)
    X.flush()
    del X
    np.save(path.with_suffix(".labels.npy"), y)


def _anon_kb() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("RssAnon"))


def _vm_bytes() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmSize")) << 10


def _drop_cache(X: np.memmap, path: str) -> None:
    """The map's pages out of this process and out of the page cache: the next reads hit the disk."""
    X._mmap.madvise(mmap.MADV_DONTNEED)  # type: ignore[attr-defined]
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # dirty pages (the file was just written) are not dropped
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def child(case: str, path: str, limit_mb: int, block: int) -> dict:
    """One case, in this (child) process: returns its figures."""
    import mlp

    y = np.load(Path(path).with_suffix(".labels.npy"))
    mlp.fit(np.zeros((256, 8), np.float32), y[:256], hidden_sizes=[4], epochs=1, seed=0)  # compile, threads
    peak = [_anon_kb()]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], _anon_kb())

    threading.Thread(target=sample, daemon=True).start()
    limit = None
    if case == "ram":
        X = np.load(path)
    else:
        X = np.load(path, mmap_mode="r")
        limit = _vm_bytes() + (limit_mb << 20)  # the map is already in the address space
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    stamps = [time.perf_counter()]
    cached_mb = []  # the file's pages in the page cache after the drop (fincore)

    def stamp(epoch, logs, model):
        if case.startswith("cold") and len(stamps) == 1:  # after the first epoch
            _drop_cache(X, path)
            out = subprocess.run(["fincore", "-b", "-n", "-o", "RES", path], capture_output=True, text=True)
            cached_mb.append(int(out.stdout.split()[0]) >> 20 if out.returncode == 0 else None)
        stamps.append(time.perf_counter())

    model = mlp.fit(
        X,
        y,
        **NETWORK,
        seed=0,
        shuffle_block=block if case.endswith("blocks") else None,
        callbacks=[stamp],
    )
    accuracy = float(np.mean(model.predict(X[:200_000]) == y[:200_000]))
    done.set()
    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10
    copy_fails = None
    if limit is not None:  # the limit leaves no room for a copy of X
        try:
            np.array(X)
            copy_fails = False
        except MemoryError:
            copy_fails = True
    return {
        "case": case,
        "epoch_s": round(stamps[2] - stamps[1], 2),
        "first_epoch_s": round(stamps[1] - stamps[0], 2),
        "maxrss_mb": maxrss_mb,
        "peak_anon_mb": max(peak[0], _anon_kb()) >> 10,
        "rlimit_as_mb": None if limit is None else limit >> 20,
        "train_accuracy": round(accuracy, 4),
        "shuffle_block": model.config.get("shuffle_block"),
        "cached_after_drop_mb": cached_mb[0] if cached_mb else None,
        "copy_of_X_fails": copy_fails,
    }


def disk(args: argparse.Namespace) -> None:
    path = Path(args.dir) / "mlp_out_of_core.npy"
    write_data(path, args.rows, args.features)
    size_mb = path.stat().st_size >> 20
    print(f"X: {args.rows:,} x {args.features} float32, {size_mb:,} MB; {describe_machine(machine())}")
    try:
        for case in args.cases:
            done = subprocess.run(
                [sys.executable, __file__, "child", case, str(path), str(args.limit_mb), str(args.block)],
                capture_output=True,
                text=True,
                env={**os.environ, "MALLOC_ARENA_MAX": "2"},
            )
            if done.returncode:
                print(f"{case}: failed\n{done.stderr[-2000:]}")
                continue
            print(done.stdout.strip().splitlines()[-1], flush=True)
    finally:
        path.unlink(missing_ok=True)
        path.with_suffix(".labels.npy").unlink(missing_ok=True)


def accuracy(args: argparse.Namespace) -> None:
    import mlp
    from mlp.datasets import load_mnist

    (X, y), (X_test, y_test) = load_mnist()
    X, X_test = X.astype(np.float32), X_test.astype(np.float32)
    by_label = np.argsort(y, kind="stable")
    print(describe_machine(machine()))
    layouts = {"stored": (X, y), "sorted by label": (X[by_label], y[by_label])}
    for layout, (X_train, y_train) in layouts.items():
        for block in (None, args.block):
            scores = []
            for seed in args.seeds:
                model = mlp.fit(X_train, y_train, epochs=args.epochs, seed=seed, shuffle_block=block)
                scores.append(float(np.mean(model.predict(X_test) == y_test)))
            print(
                json.dumps(
                    {
                        "layout": layout,
                        "shuffle_block": block,
                        "test_accuracy_mean": round(float(np.mean(scores)), 4),
                        "per_seed": [round(s, 4) for s in scores],
                    }
                ),
                flush=True,
            )


def main() -> None:
    if sys.argv[1:2] == ["child"]:
        case, path, limit_mb, block = sys.argv[2:6]
        print(json.dumps(child(case, path, int(limit_mb), int(block))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    d = sub.add_parser("disk")
    d.add_argument("--rows", type=int, default=2_500_000)
    d.add_argument("--features", type=int, default=256)
    d.add_argument("--limit-mb", type=int, default=700)
    d.add_argument("--block", type=int, default=4096)
    d.add_argument("--dir", default="/tmp")
    d.add_argument("--cases", nargs="+", default=["ram", "map", "map-blocks", "cold", "cold-blocks"])
    a = sub.add_parser("accuracy")
    a.add_argument("--epochs", type=int, default=5)
    a.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    a.add_argument("--block", type=int, default=1024)
    args = parser.parse_args()
    (disk if args.what == "disk" else accuracy)(args)


if __name__ == "__main__":
    main()
