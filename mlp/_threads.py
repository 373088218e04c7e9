"""How many threads the BLAS (and OpenMP) pools get while training, decided afresh every epoch.

Why: OpenBLAS splits every matrix product evenly over its threads, and the caller waits for the
slowest. When another process holds one of two cores, the thread that shares that core gets it only
every few milliseconds, and an epoch of B1 (thousands of products of ~0.1 ms) went from 0.35 s to
1.3-26 s; PyTorch collapses the same way. With one thread per core that is really idle it does not
(numbers in bench/RESULTS.md, "busy machine").

The automatic policy (n_threads=None), per epoch:

- read how much CPU other processes used since the previous epoch began: /proc/stat's busy time of
  the cores this process may run on, less this process's own CPU time (so our own spinning BLAS
  threads do not count against us);
- give the pools one thread per idle core, ``floor(cores - others + SLACK)``, at least 1, and never
  more than the caller's own setting (``OPENBLAS_NUM_THREADS``, an outer ``threadpool_limits``);
- the reading spans the previous epoch and any pause since (the CPU others used while this process
  waited counts as well); with no reading yet in this process, or after a pause of more than
  FORGET_AFTER seconds, it sleeps PROBE_SECONDS and reads twice; a window shorter than MIN_WINDOW
  keeps the previous decision (tiny epochs, partial_fit on small batches).

Where /proc/stat does not exist (macOS, Windows) the automatic policy leaves the pools as they are.
``n_threads=N`` gives the pools exactly N threads. Either way the caller's settings come back when the
block ends.

Reproducibility: the kernels of `mlp_kernels` are serial, so their results do not depend on any thread
count, but OpenBLAS's float32 products do (1 and 2 threads give different roundings for the shapes
of a 784-128-64-10 network), so a fit whose BLAS threads follow the load need not repeat bit for bit.
``deterministic=True`` fixes the count for the whole fit (`fit_threads`): ``n_threads``, or
DETERMINISTIC_THREADS when that is None. Numba's pool is set too when Numba's threading layer is running (no kernel uses it today).

Like threadpoolctl itself, this is meant for one training thread at a time: OpenBLAS (pthreads
build) has one process-wide pool, and a limit set from a second Python thread is ignored.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

SLACK = 0.25  # a core counts as idle when others use at most 1 - SLACK of it
PROBE_SECONDS = 0.05  # five ticks of /proc/stat on each core
MIN_WINDOW = 0.1  # shorter windows keep the previous decision (ticks are 10 ms)
FORGET_AFTER = 30.0  # seconds since the last epoch ended after which the machine is probed afresh
USER_APIS = ("blas", "openmp")
NO_QUOTA = 1 << 16
DETERMINISTIC_THREADS = 1  # deterministic=True without n_threads: the same on every machine and load


def check_n_threads(value: Any, name: str = "n_threads") -> int | None:
    """`value` as `n_threads` takes it: None (the automatic policy) or an int >= 1; a message names `name`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        if name.startswith("--"):  # a command-line flag: None cannot be typed, leaving the flag out can
            raise ValueError(
                f"{name} takes an integer >= 1, got {value!r} (leave {name} out for one thread per idle "
                f"core, decided every epoch); for example {name} 1 keeps training on one core"
            )
        raise ValueError(
            f"{name} must be None (one thread per idle core, decided every epoch) or an integer >= 1, "
            f"got {value!r}; for example {name}=1 keeps training on one core"
        )
    return int(value)


def fit_threads(n_threads: int | None, deterministic: bool) -> int | None:
    """The `n_threads` a fit gives `thread_limits` every epoch: `n_threads` itself when given, else
    DETERMINISTIC_THREADS with `deterministic` (a count that no load changes), else None (the
    automatic policy)."""
    if n_threads is None and deterministic:
        return DETERMINISTIC_THREADS
    return n_threads


def idle_cores(cores: int, others: float) -> int:
    """Threads for the next epoch: one per core that other processes (using `others` cores' worth
    of CPU on average) leave idle; at least 1, at most `cores`."""
    return max(1, min(cores, math.floor(cores - others + SLACK)))


# ---- reading the machine --------------------------------------------------------------------------
@dataclass(frozen=True)
class CpuReading:
    """Cumulative CPU seconds: `busy` of the cores this process may use (every process on them),
    `own` of this process; `cores` how many it may use (affinity, capped by a cgroup CPU quota)."""

    busy: float
    own: float
    cores: int


def read_cpu(stat_path: str = "/proc/stat") -> CpuReading | None:
    """A `CpuReading` now, or None where /proc/stat cannot be read."""
    try:
        allowed = os.sched_getaffinity(0)
        with open(stat_path, "rb") as file:
            text = file.read()
    except (AttributeError, OSError):
        return None
    ticks, busy, cores = os.sysconf("SC_CLK_TCK"), 0, 0
    for line in text.splitlines():
        if not (line.startswith(b"cpu") and line[3:4].isdigit()):
            continue
        name, *fields = line.split()
        if int(name[3:]) not in allowed:
            continue
        # user nice system idle iowait irq softirq steal: all but idle and iowait are busy (steal is
        # time the hypervisor gave to someone else)
        values = [int(v) for v in fields[:8]]
        busy += sum(values) - values[3] - values[4]
        cores += 1
    if cores == 0:
        return None
    times = os.times()
    return CpuReading(busy / ticks, times.user + times.system, min(cores, quota_cores()))


@lru_cache(maxsize=1)
def quota_cores() -> int:
    """The cores this process's cgroup CPU quota allows (read once)."""
    return read_quota_cores()


def read_quota_cores(root: str = "/sys/fs/cgroup", cgroup_file: str = "/proc/self/cgroup") -> int:
    """The cores a cgroup CPU quota allows (v2 cpu.max, v1 cpu.cfs_quota_us), rounded up; 65536 when
    there is none or it cannot be read."""
    candidates = [
        (f"{root}/cpu.max", None),
        (f"{root}/cpu/cpu.cfs_quota_us", f"{root}/cpu/cpu.cfs_period_us"),
    ]
    try:
        for line in Path(cgroup_file).read_text().splitlines():
            if line.startswith("0::/") and len(line) > 4:  # cgroup v2: this process's own group first
                candidates.insert(0, (f"{root}{line[3:]}/cpu.max", None))
    except OSError:
        pass
    for quota_path, period_path in candidates:
        try:
            parts = Path(quota_path).read_text().split()
            if period_path is not None:
                parts.append(Path(period_path).read_text().strip())
            quota, period = int(parts[0]), int(parts[1])
        except (OSError, ValueError, IndexError):  # missing, or "max" (no quota)
            continue
        if quota > 0 and period > 0:
            return max(1, math.ceil(quota / period))
    return NO_QUOTA


class LoadMonitor:
    """The idle cores, measured over the previous epoch (see the module's docstring); thread-safe.

    read() -> CpuReading or None, clock() -> seconds and sleep(seconds) are injectable for tests.
    """

    def __init__(
        self,
        read: Callable[[], CpuReading | None] = read_cpu,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._read, self._clock, self._sleep = read, clock, sleep
        self._lock = threading.Lock()
        self._start: tuple[float, CpuReading] | None = None  # (time, reading) that opened the current window
        self._ended: float | None = None  # when the last epoch ended
        self._cores: int | None = None  # the last decision

    def cores_free(self) -> int | None:
        """Threads for the epoch about to start, or None when the machine cannot be read."""
        with self._lock:
            now, reading = self._clock(), self._read()
            if reading is None:
                return None
            if self._start is None or self._ended is None or now - self._ended > FORGET_AFTER:
                self._sleep(PROBE_SECONDS)
                self._start = (now, reading)
                now, reading = self._clock(), self._read()
                if reading is None:
                    return None
            elif now - self._start[0] < MIN_WINDOW:
                return self._cores
            start_time, start = self._start
            others = ((reading.busy - start.busy) - (reading.own - start.own)) / max(now - start_time, 1e-9)
            self._cores = idle_cores(reading.cores, max(others, 0.0))
            self._start = (now, reading)
            return self._cores

    def epoch_ended(self) -> None:
        with self._lock:
            self._ended = self._clock()


MONITOR = LoadMonitor()


# ---- setting the pools ----------------------------------------------------------------------------
_selected: tuple[Any, Any] = (None, None)  # (threadpoolctl's controller, our selection of it)


def _pools() -> Any:
    """A threadpoolctl controller of the loaded BLAS and OpenMP libraries (cached until a module is
    imported, as threadpoolctl's own cache)."""
    global _selected
    try:
        import threadpoolctl
    except ImportError:  # pragma: no cover - a declared dependency
        raise ImportError("choosing BLAS threads needs threadpoolctl: pip install threadpoolctl") from None
    get_cached = getattr(threadpoolctl, "get_cached_controller", None)
    if get_cached is not None:
        controller = get_cached()
    else:  # threadpoolctl < 3.8
        controller = _own_cached_controller(threadpoolctl, len(sys.modules))
    if _selected[0] is not controller:
        _selected = (controller, controller.select(user_api=list(USER_APIS)))
    return _selected[1]


@lru_cache(maxsize=1)
def _own_cached_controller(threadpoolctl: Any, n_modules: int) -> Any:
    return threadpoolctl.ThreadpoolController()


def _numba_pool() -> tuple[Callable[[], int], Callable[[int], None], int] | None:
    """Numba's (get, set, most) when its threading layer is already running, else None (asking
    Numba would start the pool)."""
    if "numba" not in sys.modules:
        return None
    try:
        import numba
        from numba.np.ufunc import parallel
    except ImportError:  # pragma: no cover
        return None
    if not getattr(parallel, "_is_initialized", False):
        return None
    # numba.config sets its attributes at import time, from the environment
    return numba.get_num_threads, numba.set_num_threads, numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]


@contextlib.contextmanager
def thread_limits(
    n_threads: int | None = None, *, monitor: LoadMonitor | None = None
) -> Iterator[int | None]:
    """Run the block (one epoch) with the BLAS/OpenMP pools at `n_threads` threads, or at the
    automatic policy's choice when None; the caller's settings come back afterwards.

    Yields the number of threads chosen (None when the policy could not read the machine and left the
    pools alone). Costs ~0.1 ms when nothing changes.
    """
    n_threads = check_n_threads(n_threads)
    monitor = MONITOR if monitor is None else monitor
    threads = n_threads if n_threads is not None else monitor.cores_free()
    with contextlib.ExitStack() as stack:
        if n_threads is None:
            stack.callback(monitor.epoch_ended)
        if threads is not None:
            pools = _pools()
            limits = {}
            for lib in pools.lib_controllers:
                current = lib.num_threads
                wanted = threads if n_threads is not None else min(current or threads, threads)
                if current != wanted:
                    limits[lib.filepath] = wanted
            if limits:
                stack.enter_context(pools.limit(limits=limits))
            numba_pool = _numba_pool()
            if numba_pool is not None:
                get, set_, most = numba_pool
                before = get()
                wanted = min(threads, most) if n_threads is not None else min(before, threads)
                if wanted != before:
                    set_(wanted)
                    stack.callback(set_, before)
        yield threads


def current_threads() -> dict[str, int]:
    """{library file: threads} of the loaded BLAS and OpenMP pools (for reports and tests)."""
    return {lib.filepath: lib.num_threads for lib in _pools().lib_controllers}
