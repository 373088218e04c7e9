"""Data-parallel training over MPI: `mlp.fit(X, y, comm=MPI.COMM_WORLD)` under `mpiexec -n N`.

Which rows form each global batch
---------------------------------
Every rank passes the same whole training set (X, y) and the same options. Every rank draws the same
permutation from the shared seed, so the global batches are exactly those of a one-process run:
global batch k is rows order[k*B : (k+1)*B] (B = batch_size; the last one may be shorter). Of a global
batch of m rows, rank r of N takes the contiguous part [floor(r*m/N), floor((r+1)*m/N)). Each rank
computes the gradient of its part scaled by 1/m (not by its own row count), and ONE allreduce (a sum)
of the flat gradient buffer per step gives every rank the mean gradient of the whole global batch, the
one a single process computes (with sample weights, the weighted sum of its part over the global
batch's weight sum, which every rank computes from the whole set it holds, so no collective is added).
Every rank then takes the same optimizer step, so the parameters stay
identical on all ranks and equal one process's up to the order of floating-point sums. A rank whose
part of a short last batch is empty adds zeros and still joins the allreduce (the Numba engine; the
generic engine asks for at least N rows in every global batch, checked before the first epoch).

Sharded data
------------
With `fit(..., sharded=True)` each rank passes only its own rows: rank r's n_r rows are rows
[offset_r, offset_r + n_r) of the N rows of every rank's rows concatenated in rank order, and the run
equals one process trained on that concatenation (`Shards`). The agreement before training gathers
the row counts and the classes (their union becomes the model's) instead of comparing CRCs. Every
rank draws the permutation of N one process draws from the seed (N int64: 8 bytes a row, drawn whole,
since it must be that very permutation; the data stays O(shard)); global batch b is the positions
order[b*B : (b+1)*B], and a rank trains on those of its rows that fall in it, in the batch's order
(`Shards.epoch`), perhaps none: it then adds zeros and still joins the allreduce (both engines). Its
gradient is scaled by 1/m of the global batch (or the batch's weight sum, reduced once per epoch), so
the allreduce gives one process's mean gradient. validation_split holds out the rows one process
holds out (`Shards.hold_out`), each rank keeping its own; validation sums and counts are reduced.
Checkpoints record the shard sizes: a resume needs the same ranks and the same shards.

What else is agreed
-------------------
- Before training, one allgather compares what every rank passed: sample and feature counts, dtype,
  classes, a CRC-32 of X, of y and of the sample weights, and the options; any difference is a ValueError on every rank.
  The seed is rank 0's (drawn there when seed=None), so the initial weights are the same everywhere.
- Dropout masks differ per rank but are reproducible: rank r draws them in epoch e from a generator
  seeded with (seed, rank, e), so a run resumed at an epoch boundary draws the same masks again.
- The epoch's loss and accuracy are summed over ranks (one small allreduce per epoch), so the NaN
  check sees the same numbers everywhere and raises `TrainingError` on every rank together. The
  validation set is split across ranks the same way and its sums reduced, so early stopping and
  the schedule decide alike; a callback asking to stop on any rank stops all of them.
- `mpiexec -n N mlp train` agrees before that: rank 0 alone checks the output paths (`agreed`), every
  rank loads the data (`on_every_rank`), and a failure of either is raised by every rank together.
- Checkpoints are written by rank 0 only and read by rank 0 only (then broadcast), so they may live
  on a disk the other nodes do not see; a checkpoint resumes only with the same number of ranks.
- An exception on one rank (a bug, a full disk, a callback that raises) is printed with the rank and
  ends the whole job with `Abort`, never leaving the other ranks waiting in a collective. Errors that
  every rank raises together (a ValueError from the checks above, TrainingError) propagate normally.
- A rank that stops responding (stopped, stuck in I/O, never calling fit) ends the job too: every
  collective here is watched by a thread with a deadline, `comm_timeout` seconds (fit's keyword,
  else the environment variable MLP_MPI_TIMEOUT, else 600), after which a waiting rank prints
  which ranks did not arrive and where, and aborts the job (`watching`). torch.distributed's
  `timeout` does the same for its collectives.

Only NumPy arrays are supported here; the GPU plan (CuPy buffers through NCCL or a CUDA-aware MPI) is
in the user guide's "More than one machine" (docs/user_guide/distributed.md).
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
import time
import traceback
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import numpy as np

from ._array_api import Array, Namespace, from_host, to_numpy

if TYPE_CHECKING:
    from .model import MLP

Comm = Any  # an mpi4py communicator (mpi4py is optional and untyped)
E = TypeVar("E", bound=BaseException)
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

__all__ = [
    "DataParallel",
    "abort_on_error",
    "agreed",
    "batch_part",
    "is_root",
    "launched_as_ranks",
    "on_every_rank",
    "running_world",
    "start",
]

ALL_RANKS = "mlp_raised_on_all_ranks"  # attribute marking an exception every rank raises together
ABORT_GRACE_SECONDS = 1.0  # pause between printing a one-rank failure and MPI_Abort (see end_job)
TIMEOUT_VARIABLE = "MLP_MPI_TIMEOUT"  # seconds a rank waits at a collective for the others
DEFAULT_TIMEOUT = 600.0  # generous: a slow rank's data loading, checkpoint or validation fits in it
# one entry per running decorated call: has it reached the agreement of `start`? its timeout?
_calls: list[dict[str, Any]] = []
_HASH_ROWS = 4096
_OPTIONS_NOT_COMPARED = ("verbose", "progress", "n_threads", "checkpoint")


def _mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as error:  # a communicator cannot exist without it, but say so clearly
        raise ImportError(
            'data-parallel training needs mpi4py: pip install "mlp-from-scratch[mpi]"'
        ) from error
    return MPI


def check_comm(comm: Comm | None) -> Comm | None:
    """The communicator, checked to look like an mpi4py one (None stays None)."""
    if comm is None:
        return None
    if not all(
        hasattr(comm, name) for name in ("Get_rank", "Get_size", "Allreduce", "allgather", "bcast", "Abort")
    ):
        raise TypeError(
            f"comm must be an mpi4py communicator such as MPI.COMM_WORLD, got {type(comm).__name__}"
        )
    return comm


def is_root(comm: Comm | None) -> bool:
    """True on rank 0 of `comm`, and always without one."""
    return comm is None or comm.Get_rank() == 0


def all_ranks(error: E) -> E:
    """Mark `error` as raised by every rank together (it propagates instead of aborting the job)."""
    setattr(error, ALL_RANKS, True)
    return error


def raised_on_all_ranks(error: BaseException) -> bool:
    from .engines import TrainingError

    return bool(getattr(error, ALL_RANKS, False)) or isinstance(error, TrainingError)


def abort_on_error(function: F) -> F:
    """Decorate a function taking `comm=`: with more than one rank, an exception that not every rank
    raises together is printed (rank, type, message; the traceback for anything but a ValueError,
    TypeError or OSError) and ends all ranks with `comm.Abort(1)`. Its `comm_timeout` keyword (None:
    `resolve_timeout`'s default) bounds every wait of the call for the other ranks (`watching`)."""

    @functools.wraps(function)
    def run(*args: Any, comm: Comm | None = None, **kwargs: Any) -> Any:
        comm = check_comm(comm)
        given = kwargs.get("comm_timeout")  # every collective of the call waits this long at most
        timeout = resolve_timeout(given) if given is not None or comm is not None else DEFAULT_TIMEOUT
        if comm is None or comm.Get_size() == 1:
            return function(*args, comm=comm, **kwargs)
        call: dict[str, Any] = {"started": False, "timeout": timeout}
        _calls.append(call)
        try:
            return function(*args, comm=comm, **kwargs)
        except Exception as error:
            if raised_on_all_ranks(error):
                raise
            if not call["started"]:  # the others wait in start's allgather: tell them, raise everywhere
                arrive(comm, what="fit's agreement before training", timeout=timeout)
                comm.allgather(("error", f"{type(error).__name__}: {_one_line(error)}", None))
                all_ranks(error)
                raise
            abort(comm, error)
        except BaseException as error:  # KeyboardInterrupt, SystemExit: the other ranks must not hang
            abort(comm, error)
        finally:
            _calls.pop()

    return cast(F, run)


def abort(comm: Comm, error: BaseException, code: int = 1) -> NoReturn:
    """Print `error` with this rank and end every rank of the job."""
    rank, size = comm.Get_rank(), comm.Get_size()
    text = _one_line(error)
    lines = [f"mlp: rank {rank} of {size} failed, ending all {size} ranks: {type(error).__name__}: {text}"]
    if not isinstance(error, (ValueError, TypeError, OSError, KeyboardInterrupt)):
        lines.append("".join(traceback.format_exception(type(error), error, error.__traceback__)).rstrip())
    try:
        print("\n".join(lines), file=sys.stderr, flush=True)
    finally:
        end_job(comm, code)


def end_job(comm: Comm, code: int = 1) -> NoReturn:
    """Abort every rank of `comm`; this process exits even where MPI_Abort returns (as MPICH's may)."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        # the launcher kills every rank on MPI_Abort and drops output it has not forwarded yet (seen
        # under load: an empty stderr); a moment's pause lets this rank's message reach the user
        with contextlib.suppress(BaseException):  # a second Ctrl-C: abort now rather than skip it
            time.sleep(ABORT_GRACE_SECONDS)
        comm.Abort(code)
    finally:
        os._exit(code)


# ---- waiting for the other ranks, with a deadline ---------------------------------------------------
# Every collective of this module runs inside `watching`, which records it (what, since when, how
# long it may take) for a watchdog thread, started with the first one. The collective itself is the
# same blocking MPI call as without a deadline: the step pays for two assignments. Past `timeout`
# seconds the watchdog ends the job (`end_job`) with a message naming the ranks that never arrived:
# a rank waiting longer than `_roll_call_after` tells every other rank "I am at collective k" (a
# point-to-point message with `ROLL_CALL_TAG`, sent from the watchdog thread, which MPI's
# THREAD_MULTIPLE allows: mpi4py's default), so at the deadline the ranks that told nothing are the
# missing ones.
ROLL_CALL_TAG = 32_111  # the tag of those messages on the training communicator (MPI allows >= 32767)
_WATCH_PERIOD = 0.05  # seconds between the watchdog's looks at the collective in progress
_collectives = [0]  # collectives entered through `watching`: the same count on every rank
_watched: list[Any] = [None]  # (comm, collective, what, timeout, started) of the one in progress
_watchdog: list[threading.Thread] = []
_last_seen: dict[int, int] = {}  # rank -> the latest collective it told us it was waiting at
_roll_calls: list[Any] = []  # our unfinished roll-call sends


def resolve_timeout(timeout: float | None) -> float:
    """The seconds a rank waits at a collective: `timeout`, else $MLP_MPI_TIMEOUT, else 600. A
    positive number; anything else is a one-line ValueError naming where it came from."""
    source = "comm_timeout"
    value: object = timeout
    if timeout is None:
        text = os.environ.get(TIMEOUT_VARIABLE, "").strip()
        if not text:
            return DEFAULT_TIMEOUT
        source = f"the environment variable {TIMEOUT_VARIABLE}"
        try:
            value = float(text)
        except ValueError:
            value = text  # refused below with the others
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < float(value) < float("inf"):
        raise ValueError(f"{source} must be a positive number of seconds (such as 600), got {value!r}")
    return float(value)


@contextlib.contextmanager
def watching(comm: Comm, *, what: str, timeout: float) -> Iterator[None]:
    """Run a collective every rank of `comm` joins (the body) under the watchdog: past `timeout`
    seconds, the job ends with a message naming `what` and the ranks that did not arrive at it."""
    _collectives[0] += 1
    if not _watchdog:
        _watchdog.append(threading.Thread(target=_watch, name="mlp MPI watchdog", daemon=True))
        _watchdog[0].start()
    _watched[0] = (comm, _collectives[0], what, timeout, time.monotonic())
    try:
        yield
    finally:
        _watched[0] = None


def arrive(comm: Comm, *, what: str, timeout: float) -> None:
    """A barrier under the watchdog, before a pickled collective (allgather, bcast), which then starts
    with every rank present. A communicator without Barrier (a test double) is not waited on."""
    if hasattr(comm, "Barrier") and comm.Get_size() > 1:
        with watching(comm, what=what, timeout=timeout):
            comm.Barrier()


def _watch() -> None:
    """The watchdog thread: roll calls for slow collectives, the end of the job for late ones."""
    told = 0
    while True:
        time.sleep(_WATCH_PERIOD)
        watched = _watched[0]
        if watched is None:
            continue
        comm, collective, what, timeout, started = watched
        waited = time.monotonic() - started
        if waited >= _roll_call_after(timeout) and told != collective:
            _tell_others(comm, collective)
            told = collective
        if waited >= timeout:
            _give_up(comm, collective, what=what, timeout=timeout)


def _in_progress(collective: int) -> bool:
    watched = _watched[0]
    return watched is not None and watched[1] == collective


def _roll_call_after(timeout: float) -> float:
    return min(0.5, timeout / 4)


def _can_talk() -> bool:
    """True when this thread may call MPI while the main one waits in a collective."""
    MPI = _mpi()
    return bool(MPI.Query_thread() >= MPI.THREAD_MULTIPLE)


def _tell_others(comm: Comm, collective: int) -> None:
    """Tell every other rank that this one waits at `collective` (and read what they told us)."""
    if not _can_talk():
        return
    _read_roll_calls(comm)
    _roll_calls[:] = [request for request in _roll_calls if not request.Test()]
    me = comm.Get_rank()
    for rank in range(comm.Get_size()):
        if rank != me:
            with contextlib.suppress(Exception):  # a rank that has left MPI: it will be named
                _roll_calls.append(comm.isend(collective, dest=rank, tag=ROLL_CALL_TAG))


def _read_roll_calls(comm: Comm) -> None:
    MPI = _mpi()
    status = MPI.Status()
    with contextlib.suppress(Exception):
        while comm.iprobe(source=MPI.ANY_SOURCE, tag=ROLL_CALL_TAG, status=status):
            source = status.Get_source()
            _last_seen[source] = max(_last_seen.get(source, 0), comm.recv(source=source, tag=ROLL_CALL_TAG))


def _give_up(comm: Comm, collective: int, *, what: str, timeout: float) -> None:
    """At the deadline: wait a last roll call for the latest arrivals (return if the collective ends
    meanwhile), then name the ranks that did not arrive and end the job. The lowest waiting rank
    reports; the others give it time to, and end the job themselves if it could not."""
    me, size = comm.Get_rank(), comm.Get_size()
    _tell_others(comm, collective)
    until = time.monotonic() + _roll_call_after(timeout) + 0.1
    while time.monotonic() < until:
        if not _in_progress(collective):
            return
        time.sleep(0.01)
    talked = _can_talk()
    if talked:
        _read_roll_calls(comm)
    arrived = {me} | {rank for rank, seen in _last_seen.items() if seen >= collective}
    if talked and min(arrived) < me:  # a lower rank waits too and reports: end the job if it could not
        until = time.monotonic() + 2 * ABORT_GRACE_SECONDS + 2.0
        while time.monotonic() < until:
            if not _in_progress(collective):
                return
            time.sleep(0.01)
    missing = [rank for rank in range(size) if rank not in arrived]
    if not talked:
        who = "the ranks missing cannot be named (MPI runs without THREAD_MULTIPLE)"
    elif missing:
        plural = "s" if len(missing) > 1 else ""
        who = (
            f"rank{plural} {', '.join(map(str, missing))} did not arrive (stopped, stuck, or not calling fit)"
        )
    else:
        who = "every rank arrived but it did not complete"
    print(
        f"mlp: rank {me} of {size} waited {timeout:g} s at {what}; {who}; ending all {size} ranks "
        f"(the limit is comm_timeout, {TIMEOUT_VARIABLE} or mlp train --mpi-timeout)",
        file=sys.stderr,
        flush=True,
    )
    end_job(comm)


# ---- agreement before training --------------------------------------------------------------------
def start(
    comm: Comm | None,
    X: Array,
    targets: Array,
    classes: Array | None,
    *,
    options: dict[str, Any],
    seed: int | None,
    sample_weight: np.ndarray | None = None,
    sharded: bool = False,
    timeout: float | None = None,
) -> DataParallel | None:
    """Compare what every rank passed and agree on the seed: a `DataParallel` for `comm`, or None
    without a communicator or with one rank. Raises ValueError (on every rank) on any difference.
    With `sharded`, each rank's rows are its own: only their width, dtype and the options are
    compared, and the row counts and the classes (their union) are gathered instead (`Shards`)."""
    comm = check_comm(comm)
    if comm is None or comm.Get_size() == 1:
        return None
    if not isinstance(X, np.ndarray):
        raise all_ranks(
            ValueError(
                f"data-parallel training (comm=) runs on NumPy arrays only, got {type(X).__module__}.{type(X).__name__}; "
                "see the user guide's 'More than one machine' for the GPU plan"
            )
        )
    if _calls:
        _calls[-1]["started"] = True
    if timeout is None:  # the comm_timeout of the fit call that `abort_on_error` decorates
        timeout = _calls[-1]["timeout"] if _calls else resolve_timeout(None)
    candidate = seed if seed is not None else int(np.random.SeedSequence().generate_state(1)[0])
    facts = {
        "samples": int(X.shape[0]),
        "features": int(X.shape[1]),
        "dtype": str(X.dtype),
        "classes": None if classes is None else np.asarray(classes).tolist(),
        "X crc32": _crc32(X),
        "y crc32": _crc32(np.asarray(targets)),
        "sample_weight crc32": None if sample_weight is None else _crc32(sample_weight),
        "seed": seed,
        "options": _comparable(options),
    }
    own: dict[str, Any] = {}  # with sharded: what differs by rank, gathered rather than compared
    if sharded:
        own = {key: facts.pop(key) for key in ("samples", "classes", "sample_weight crc32")}
        for key in ("X crc32", "y crc32"):
            facts.pop(key)
        facts["targets"] = "labels" if classes is not None else int(np.asarray(targets).shape[1])
        facts["sample_weight"] = sample_weight is not None
    facts["sharded"] = sharded
    arrive(comm, what="fit's agreement before training", timeout=timeout)
    gathered = comm.allgather(("ok", {**facts, "own": own}, candidate))
    for rank, (status, message, _) in enumerate(gathered):
        if status == "error":
            raise all_ranks(ValueError(f"rank {rank} of {comm.Get_size()} failed: {message}"))
    first = gathered[0][1]
    for rank, (_, other, _) in enumerate(gathered):
        for key in facts:
            if other[key] != first[key]:
                raise all_ranks(
                    ValueError(
                        f"every rank must pass the same data and options to fit; rank {rank} has {key} "
                        f"{_short(other[key])}, rank 0 has {_short(first[key])}"
                    )
                )
    parallel = DataParallel(comm, seed=gathered[0][2], timeout=timeout)
    if sharded:
        parallel.shards = Shards.of([other["own"] for _, other, _ in gathered], comm.Get_rank())
    return parallel


def _crc32(array: np.ndarray) -> int:
    """CRC-32 of an array's bytes, row block by row block (no whole-array copy)."""
    crc = 0
    if array.ndim == 0 or array.shape[0] == 0:
        return crc
    for start in range(0, array.shape[0], _HASH_ROWS):
        crc = zlib.crc32(np.ascontiguousarray(array[start : start + _HASH_ROWS]).data, crc)
    return crc


def _comparable(options: dict[str, Any]) -> dict[str, Any]:
    simple = (bool, int, float, str, type(None), list, tuple)
    return {
        key: (value if isinstance(value, simple) else type(value).__name__)
        for key, value in sorted(options.items())
        if key not in _OPTIONS_NOT_COMPARED
    }


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


# ---- the command line's agreement before fit -------------------------------------------------------
# `mpiexec -n N mlp train` checks its outputs and loads the data on every rank before fit's own
# agreement (`start`). A failure there must reach every rank at once: one rank raising alone would
# leave the others waiting in a collective, and aborting would lose its message to the launcher.
MPI_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")  # set by MPICH/Intel MPI/Slurm, by Open MPI


def launched_as_ranks() -> bool:
    """True when an MPI launcher started this process as one of several ranks."""
    for name in MPI_SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 1:
            return True
    return False


def running_world() -> Comm | None:
    """MPI.COMM_WORLD when mpi4py is imported and MPI is running (initialised, not yet finalised);
    None otherwise. It never imports mpi4py itself."""
    if "mpi4py.MPI" not in sys.modules:
        return None
    MPI = sys.modules["mpi4py.MPI"]
    return MPI.COMM_WORLD if MPI.Is_initialized() and not MPI.Is_finalized() else None


def agreed(
    comm: Comm | None, check: Callable[[], T], *, failure: type[Exception], timeout: float | None = None
) -> T | None:
    """check() on rank 0 alone (it alone writes files), its outcome told to every rank: the value on
    rank 0 (None elsewhere). When it fails, the other ranks raise `failure` with its message and
    rank 0 raises the failure itself, all marked as raised together (`all_ranks`), so that rank 0
    alone reports it and nothing is aborted. A `failure` keeps its message; anything else is told
    as "TypeName on rank 0: message". timeout: as `resolve_timeout`."""
    if comm is None or comm.Get_size() == 1:
        return check()
    seconds = resolve_timeout(timeout)
    what = "the command line's check of its outputs on rank 0"
    if comm.Get_rank() != 0:
        arrive(comm, what=what, timeout=seconds)
        message = comm.bcast(None, root=0)
        if message is None:
            return None
        raise all_ranks(failure(message))
    try:
        value = check()
    except BaseException as error:  # anything at all: the other ranks wait in bcast for an answer
        expected = isinstance(error, failure)
        arrive(comm, what=what, timeout=seconds)
        comm.bcast(
            str(error) if expected else f"{type(error).__name__} on rank 0: {_one_line(error)}", root=0
        )
        if expected:
            all_ranks(error)
        raise
    arrive(comm, what=what, timeout=seconds)
    comm.bcast(None, root=0)
    return value


def on_every_rank(
    comm: Comm | None, work: Callable[[], T], *, failure: type[Exception], timeout: float | None = None
) -> T:
    """work() on every rank, then an agreement: when it raised a `failure` anywhere, every rank raises
    one `failure` together (marked `all_ranks`), with the message as one process would give it when
    every rank failed, else naming the first rank that did. Any other exception stays raised on its
    own rank (the others raise the agreed `failure` naming it). timeout: as `resolve_timeout`."""
    if comm is None or comm.Get_size() == 1:
        return work()
    value: Any = None
    message, own = None, None
    try:
        value = work()
    except BaseException as error:  # the others wait in allgather for this rank's answer
        own = error
        message = str(error) if isinstance(error, failure) else f"{type(error).__name__}: {_one_line(error)}"
    arrive(comm, what="the agreement after loading the data on every rank", timeout=resolve_timeout(timeout))
    failed = [(rank, text) for rank, text in enumerate(comm.allgather(message)) if text is not None]
    if not failed:
        return value
    if own is not None and not isinstance(own, failure):
        raise own
    rank, text = failed[0]
    size = comm.Get_size()
    raise all_ranks(failure(text if len(failed) == size else f"on rank {rank} of {size}: {text}"))


# ---- during training -------------------------------------------------------------------------------
def batch_part(start: int, stop: int, rank: int, size: int) -> tuple[int, int]:
    """Rank `rank` of `size`'s contiguous rows [lo, hi) of the global batch [start, stop): with m rows,
    [start + floor(rank*m/size), start + floor((rank+1)*m/size)). The parts cover the batch in rank
    order, differ in length by at most one row, and are empty only when m < size."""
    m = stop - start
    return start + rank * m // size, start + (rank + 1) * m // size


class Shards:
    """Which rows each rank holds with `fit(..., comm=, sharded=True)`: rank r passes n_r rows, which
    are rows [offset_r, offset_r + n_r) of the concatenation of every rank's rows in rank order
    (offset_r = n_0 + ... + n_{r-1}; N = the sum). Training on them equals one process training on
    that concatenation (module docstring, "Sharded data")."""

    def __init__(self, rows: Sequence[int], rank: int, classes: list[Any] | None) -> None:
        self.rows = [int(n) for n in rows]  # every rank's row count, in rank order
        self.rank = rank
        self.offset = sum(self.rows[:rank])
        self.samples = sum(self.rows)
        self.classes = classes  # the union of the ranks' classes, sorted (None: value targets)
        self.weights_crc32: int | None = None  # of the sample weights every rank passed, in rank order
        # the training rows: their count over all ranks, and the sorted positions of this rank's
        # training rows among them (local training row k is at global position positions[k])
        self.total = self.samples
        self.positions = np.arange(self.offset, self.offset + self.rows[rank], dtype=np.int64)

    @classmethod
    def of(cls, gathered: Sequence[dict[str, Any]], rank: int) -> Shards:
        """From every rank's {"samples", "classes", "sample_weight crc32"}: the row counts, the union
        of the classes and one CRC-32 of the ranks' sample weights (None without)."""
        labels = [own["classes"] for own in gathered]
        union = None if labels[0] is None else sorted(set().union(*labels))
        shards = cls([own["samples"] for own in gathered], rank, union)
        crcs = [own["sample_weight crc32"] for own in gathered]
        if crcs[0] is not None:
            shards.weights_crc32 = zlib.crc32(np.asarray(crcs, dtype=np.uint32).tobytes())
        return shards

    def hold_out(self, order: np.ndarray, n_val: int) -> tuple[np.ndarray, np.ndarray]:
        """validation_split over the shards: `order` is the permutation of all N rows one process
        draws; its first n_val rows are held out, the rest train in that order. Returns this rank's
        (validation rows, training rows) as local indices, each in `order`'s order, and keeps the
        training rows' positions for `epoch`."""
        lo, hi = self.offset, self.offset + self.rows[self.rank]
        held, rest = order[:n_val], order[n_val:]
        mine = (rest >= lo) & (rest < hi)
        self.total = int(rest.shape[0])
        self.positions = np.flatnonzero(mine).astype(np.int64)
        return held[(held >= lo) & (held < hi)] - lo, rest[mine] - lo

    def epoch(
        self, order: np.ndarray | None, step_size: int
    ) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
        """This rank's rows of an epoch over the `total` training rows in `order` (None: in order),
        global batch b being positions order[b*B:(b+1)*B]: (local rows, spans) where span b is
        (start, stop) of the global batch and [lo, hi) the part of the local rows that falls in it,
        in the batch's order. One batch at a time, so the extra memory is O(batch) besides `order`."""
        positions, n = self.positions, self.positions.shape[0]
        parts, spans, lo = [], [], 0
        for start in range(0, self.total, step_size):
            stop = min(start + step_size, self.total)
            batch = np.arange(start, stop) if order is None else order[start:stop]
            where = np.searchsorted(positions, batch)
            found = where < n
            found[found] = positions[where[found]] == batch[found]
            part = where[found]
            parts.append(part)
            spans.append((start, stop, lo, lo + part.shape[0]))
            lo += part.shape[0]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64), spans


class DataParallel:
    """One rank's view of a data-parallel run: its part of every global batch, the allreduces, and its
    dropout generator. Engines hold one as `trainer.parallel` (None on one process)."""

    def __init__(self, comm: Comm, *, seed: int, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.comm = comm
        self.timeout = timeout  # seconds to wait at a collective for the other ranks (`watching`)
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.seed = int(seed)
        self.dropout_rng: np.random.Generator | None = None
        self.fraction = 1.0  # this rank's share of the current global batch
        self.allreduce_seconds = 0.0  # time spent in the gradient allreduces (read by the benchmark)
        self.allreduces = 0
        self._packed: np.ndarray | None = None
        self._MPI = _mpi()
        self.shards: Shards | None = None  # with sharded=True: every rank's rows are its own

    @property
    def root(self) -> bool:
        return self.rank == 0

    def check_batches(self, n_rows: int, batch_size: int | None, *, empty_parts: bool) -> None:
        """Without `empty_parts` (the generic engine, whose mean loss over no rows is undefined),
        every global batch of an epoch over n_rows must give each rank at least one row. The Numba
        engine takes empty parts: such a rank adds zeros to the sums and still joins the allreduce."""
        step = n_rows if batch_size is None else min(batch_size, n_rows)
        last = n_rows - (n_rows - 1) // step * step if n_rows else 0
        if not empty_parts and min(step, last) < self.size:
            raise all_ranks(
                ValueError(
                    f"with {self.size} ranks and engine='xp' every global batch needs at least {self.size} rows, but "
                    f"{n_rows} training rows in batches of {step} leave a last batch of {last}; choose a batch size "
                    f"for which n_rows % batch_size is 0 or at least {self.size}, or the Numba engine (engine='numba'), "
                    "which has no such limit"
                )
            )

    def start_epoch(self, epoch: int) -> None:
        """This rank's dropout generator for `epoch`, from (seed, rank, epoch)."""
        self.dropout_rng = np.random.default_rng([self.seed, self.rank, int(epoch)])

    def rows_of(self, start: int, stop: int) -> tuple[int, int]:
        """This rank's rows [lo, hi) of the global batch [start, stop), without recording the share
        (engines list an epoch's parts with it before training on them)."""
        return batch_part(start, stop, self.rank, self.size)

    def part(self, start: int, stop: int) -> tuple[int, int]:
        """This rank's rows [lo, hi) of the global batch [start, stop); remembers its share."""
        lo, hi = self.rows_of(start, stop)
        self.fraction = (hi - lo) / (stop - start) if stop > start else 0.0
        return lo, hi

    def share(self, start: int, stop: int, lo: int, hi: int) -> None:
        """Remember this rank's share of the global batch [start, stop): its part has hi - lo rows."""
        self.fraction = (hi - lo) / (stop - start) if stop > start else 0.0

    def sum_values(self, values: np.ndarray) -> np.ndarray:
        """A float64 vector summed over all ranks (a new array)."""
        total = np.array(values, dtype=np.float64)
        self._sum(total, what="the sums of the shards")
        return total

    def sum_gradients(self, flat: np.ndarray) -> np.ndarray:
        """Sum a flat NumPy gradient buffer over all ranks in place: the one allreduce of a step."""
        started = time.perf_counter()
        self._sum(flat, what="the gradient allreduce")
        self.allreduce_seconds += time.perf_counter() - started
        self.allreduces += 1
        return flat

    def sum_gradient_list(self, grads: Sequence[Array]) -> list[np.ndarray]:
        """The generic engine's per-parameter gradients (means over this rank's part), weighted by its
        share of the global batch, packed once into a flat buffer, summed over ranks, and returned
        as views of that buffer shaped like `grads`."""
        total = sum(int(g.size) for g in grads)
        dtype = grads[0].dtype
        if self._packed is None or self._packed.shape[0] != total or self._packed.dtype != dtype:
            self._packed = np.empty(total, dtype=dtype)
        flat, views, offset = self._packed, [], 0
        for g in grads:
            view = flat[offset : offset + g.size]
            np.multiply(np.asarray(g).reshape(-1), self.fraction, out=view)
            views.append(view.reshape(g.shape))
            offset += g.size
        self.sum_gradients(flat)
        return views

    def sum_columns(self, A: Array, *, xp: Namespace, device: Any) -> Array:
        """The per-column sums of A (n, k) over every rank's rows, a (k,) array in A's dtype, namespace
        and device: batch normalisation's statistics over the global batch (a rank without rows
        passes A of shape (0, k) and adds zeros). One allreduce."""
        total = np.array(to_numpy(xp.sum(A, axis=0)), copy=True)
        self._sum(total, what="the batch normalisation sums")
        return from_host(total, xp=xp, device=device)

    def sum_epoch(self, step_losses: Sequence[float] | np.ndarray, correct: float) -> tuple[np.ndarray, int]:
        """(per-step loss sums, correct count) summed over ranks: the numbers of the whole epoch."""
        buffer = np.concatenate([np.asarray(step_losses, dtype=np.float64), [float(correct)]])
        self._sum(buffer, what="the epoch's loss sums")
        return buffer[:-1], int(round(buffer[-1]))  # noqa: RUF046  (NumPy 1's round() of a float64 is a float64)

    def evaluate(
        self, model: MLP, X: Array, targets: Array, sample_weight: Array | None = None, *, xp: Namespace
    ) -> tuple[float, float | None]:
        """Mean loss and accuracy (None for a loss on a target matrix) over (X, targets), each rank
        evaluating its part, the sums reduced; weighted means with sample_weight."""
        from .loop import evaluate

        if self.shards is not None:
            return self._evaluate_shards(model, X, targets, sample_weight, xp=xp)
        lo, hi = self.part(0, X.shape[0])
        sums = np.zeros(3)  # loss sum, correct count, ranks that measured an accuracy
        if hi > lo:
            if sample_weight is None:
                loss, accuracy = evaluate(model, X[lo:hi], targets[lo:hi], xp=xp)
                sums[:] = loss * (hi - lo), (accuracy or 0.0) * (hi - lo), accuracy is not None
            else:  # the weighted sums: this part's weighted means times its weight
                part = sample_weight[lo:hi]
                loss, accuracy = evaluate(model, X[lo:hi], targets[lo:hi], part, xp=xp)
                weight = float(np.sum(part))
                sums[:] = loss * weight, (accuracy or 0.0) * weight, accuracy is not None
        self._sum(sums, what="the validation sums")
        if sample_weight is not None:
            total = float(np.sum(sample_weight)) or 1.0
            return float(sums[0] / total), (float(sums[1] / total) if sums[2] else None)
        return float(sums[0] / X.shape[0]), (round(sums[1]) / X.shape[0] if sums[2] else None)

    def _evaluate_shards(
        self, model: MLP, X: Array, targets: Array, sample_weight: Array | None, *, xp: Namespace
    ) -> tuple[float, float | None]:
        """evaluate with sharded data: each rank evaluates all of its own rows (maybe none), and the
        loss and hit sums and the row count (or weight sum) are reduced."""
        from .loop import evaluate

        sums = np.zeros(4)  # loss sum, correct count, ranks that measured an accuracy, rows or weight
        rows = X.shape[0]
        if rows:
            loss, accuracy = evaluate(model, X, targets, sample_weight, xp=xp)
            weight = rows if sample_weight is None else float(np.sum(np.asarray(sample_weight)))
            sums[:] = loss * weight, (accuracy or 0.0) * weight, accuracy is not None, weight
        sums = self.sum_values(sums)
        total = sums[3] or 1.0
        accuracy = None
        if sums[2]:
            accuracy = round(sums[1]) / total if sample_weight is None else float(sums[1] / total)
        return float(sums[0] / total), accuracy

    def _sum(self, buffer: np.ndarray, *, what: str) -> None:
        """Sum a NumPy buffer over all ranks in place, under the watchdog (`watching`)."""
        with watching(self.comm, what=what, timeout=self.timeout):
            self.comm.Allreduce(self._MPI.IN_PLACE, buffer, op=self._MPI.SUM)

    def any(self, flag: object) -> bool:
        """True on every rank when `flag` is true on any."""
        arrive(self.comm, what="the agreement on stopping", timeout=self.timeout)
        return bool(self.comm.allreduce(bool(flag), op=self._MPI.LOR))

    def from_root(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` run on rank 0 and its result broadcast; its exception raised on every rank."""
        result, error = None, None
        if self.root:
            try:
                result = function(*args)
            except Exception as caught:
                error = caught
        arrive(self.comm, what="a broadcast from rank 0", timeout=self.timeout)
        result, error = self.comm.bcast((result, error), root=0)
        if error is not None:
            raise all_ranks(error)
        return result
