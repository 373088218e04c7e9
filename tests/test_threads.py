"""The thread policy (mlp._threads): validation of n_threads, the decisions of the automatic policy
given faked load readings, and that the caller's thread settings always come back. No timing here
(figures: bench/test_busy.py)."""

import numpy as np
import pytest

from mlp import _threads
from mlp._threads import (
    FORGET_AFTER,
    MIN_WINDOW,
    PROBE_SECONDS,
    CpuReading,
    LoadMonitor,
    check_n_threads,
    idle_cores,
    read_cpu,
    read_quota_cores,
    thread_limits,
)

threadpoolctl = pytest.importorskip("threadpoolctl")


# ---- validation ---------------------------------------------------------------------------------
@pytest.mark.parametrize("value, expected", [(None, None), (1, 1), (4, 4), (np.int64(2), 2)])
def test_check_n_threads_accepts_none_and_positive_integers(value, expected):
    result = check_n_threads(value)
    assert result == expected
    assert result is None or type(result) is int


@pytest.mark.parametrize("value", [0, -1, 1.5, 2.0, "2", "auto", True, False, [1]])
def test_check_n_threads_refuses_everything_else_naming_the_fix(value):
    with pytest.raises(ValueError, match=r"n_threads must be None .* or an integer >= 1, got") as error:
        check_n_threads(value)
    assert "n_threads=1" in str(error.value)


def test_thread_limits_validates_before_touching_anything():
    before = _threads.current_threads()
    with pytest.raises(ValueError, match="n_threads"), thread_limits(0):
        pass  # pragma: no cover
    assert _threads.current_threads() == before


# ---- the decision ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "cores, others, expected",
    [
        (2, 0.0, 2),  # quiet: every core
        (2, 0.2, 2),  # a little background noise keeps both
        (2, 0.5, 1),  # half a core taken: that core is not idle enough to share a product with
        (2, 0.67, 1),  # one spinning process beside our two threads gets 2/3 of a core
        (2, 1.0, 1),  # one core busy
        (2, 3.5, 1),  # overloaded: never fewer than one
        (8, 2.0, 6),
        (1, 0.0, 1),
    ],
)
def test_idle_cores_gives_one_thread_per_idle_core(cores, others, expected):
    assert idle_cores(cores, others) == expected


class FakeMachine:
    """Readings of a machine with `cores` cores where other processes use `others` cores and this
    process `own` cores' worth of CPU; time moves only when the policy sleeps or the test says so."""

    def __init__(self, cores=2, others=0.0, own=0.0):
        self.cores, self.others, self.own = cores, others, own
        self.now, self.busy, self.own_total = 100.0, 0.0, 0.0
        self.sleeps = []
        self.readable = True

    def advance(self, seconds):
        self.now += seconds
        self.busy += (self.others + self.own) * seconds
        self.own_total += self.own * seconds

    def read(self):
        return CpuReading(self.busy, self.own_total, self.cores) if self.readable else None

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.advance(seconds)

    def monitor(self):
        return LoadMonitor(read=self.read, clock=self.clock, sleep=self.sleep)


def run_epoch(machine, monitor, seconds):
    """What the training loop does: decide, train for `seconds`, say the epoch ended."""
    threads = monitor.cores_free()
    machine.advance(seconds)
    monitor.epoch_ended()
    return threads


def test_first_epoch_probes_the_machine_then_epochs_decide_from_the_previous_one():
    machine = FakeMachine(others=0.0, own=2.0)
    monitor = machine.monitor()
    assert run_epoch(machine, monitor, 0.4) == 2
    assert machine.sleeps == [PROBE_SECONDS]  # no reading yet: a short probe
    assert run_epoch(machine, monitor, 0.4) == 2
    machine.others = 1.0  # another process starts spinning
    assert run_epoch(machine, monitor, 0.4) == 2  # decided from the quiet epoch before
    assert run_epoch(machine, monitor, 0.4) == 1  # ...and from this busy one
    assert run_epoch(machine, monitor, 0.4) == 1
    machine.others = 0.0
    assert run_epoch(machine, monitor, 0.4) == 1
    assert run_epoch(machine, monitor, 0.4) == 2  # the core came back
    assert machine.sleeps == [PROBE_SECONDS]  # probed once only


def test_a_busy_machine_is_seen_by_the_first_probe():
    machine = FakeMachine(others=1.0)
    assert run_epoch(machine, machine.monitor(), 0.4) == 1


def test_own_cpu_time_is_not_counted_as_load():
    # two of our threads spinning on two cores: the machine is 100 % busy, but with us
    machine = FakeMachine(others=0.0, own=2.0)
    monitor = machine.monitor()
    for _ in range(3):
        assert run_epoch(machine, monitor, 0.5) == 2


def test_short_epochs_keep_the_decision_until_a_window_is_long_enough():
    machine = FakeMachine(others=1.0)
    monitor = machine.monitor()
    assert run_epoch(machine, monitor, MIN_WINDOW / 4) == 1
    machine.others = 0.0
    short = [run_epoch(machine, monitor, MIN_WINDOW / 4) for _ in range(2)]
    assert short == [1, 1]  # windows of 1/4 and 2/4 of MIN_WINDOW: too short to decide on
    later = [run_epoch(machine, monitor, MIN_WINDOW / 4) for _ in range(6)]
    assert later[-1] == 2 and 1 in later[:3]


def test_a_pause_between_fits_is_measured_without_probing():
    machine = FakeMachine(others=0.0)
    monitor = machine.monitor()
    assert run_epoch(machine, monitor, 0.5) == 2
    machine.others = 1.0
    machine.advance(5.0)  # five seconds between two fits, another process busy meanwhile
    assert run_epoch(machine, monitor, 0.5) == 1
    assert machine.sleeps == [PROBE_SECONDS]


def test_after_a_long_pause_the_machine_is_probed_again():
    machine = FakeMachine(others=0.0)
    monitor = machine.monitor()
    assert run_epoch(machine, monitor, 0.5) == 2
    machine.advance(FORGET_AFTER + 1)  # a long quiet pause...
    machine.others = 1.0  # ...and a competitor that appeared just now
    assert run_epoch(machine, monitor, 0.5) == 1
    assert machine.sleeps == [PROBE_SECONDS, PROBE_SECONDS]


def test_an_unreadable_machine_gives_no_decision():
    machine = FakeMachine()
    machine.readable = False
    assert machine.monitor().cores_free() is None


def test_read_cpu_counts_only_the_cores_this_process_may_use(tmp_path, monkeypatch):
    stat = tmp_path / "stat"
    stat.write_text(
        "cpu  400 0 40 400 0 0 0 0 0 0\n"
        "cpu0 100 0 10 100 5 0 0 0 0 0\n"
        "cpu1 100 0 10 100 5 0 0 0 0 0\n"
        "cpu2 100 5 10 100 5 1 2 3 0 0\n"
        "cpu3 100 0 10 100 5 0 0 0 0 0\n"
        "intr 1 2 3\n"
    )
    monkeypatch.setattr(_threads.os, "sched_getaffinity", lambda pid: {0, 2})
    reading = read_cpu(str(stat))
    ticks = _threads.os.sysconf("SC_CLK_TCK")
    assert reading.cores == 2
    # busy = user + nice + system + irq + softirq + steal; idle and iowait are not busy
    assert reading.busy == pytest.approx((110 + 121) / ticks)
    assert reading.own >= 0


def test_read_cpu_without_proc_stat_is_none(tmp_path):
    assert read_cpu(str(tmp_path / "missing")) is None


@pytest.mark.parametrize(
    "files, expected",
    [
        ({"cpu.max": "200000 100000\n"}, 2),
        ({"cpu.max": "150000 100000\n"}, 2),
        ({"cpu.max": "50000 100000\n"}, 1),
        ({"cpu.max": "max 100000\n"}, _threads.NO_QUOTA),
        ({"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, _threads.NO_QUOTA),
        ({"job/cpu.max": "100000 100000\n", "cpu.max": "max 100000\n"}, 1),  # the process's own v2 group
        ({}, _threads.NO_QUOTA),
    ],
)
def test_cgroup_cpu_quota_caps_the_cores(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    cgroup = tmp_path / "self_cgroup"
    cgroup.write_text("0::/job\n")
    assert read_quota_cores(root=str(tmp_path), cgroup_file=str(cgroup)) == expected


# ---- setting and restoring the pools --------------------------------------------------------------
def blas_pools():
    pools = _threads._pools().lib_controllers
    if not pools:
        pytest.skip("no BLAS or OpenMP library that threadpoolctl can control is loaded")
    return pools


class FixedMonitor:
    """A policy that always answers `threads`, counting the epochs it was told about."""

    def __init__(self, threads):
        self.threads, self.ended = threads, 0

    def cores_free(self):
        return self.threads

    def epoch_ended(self):
        self.ended += 1


@pytest.fixture
def caller_has_three_threads():
    """The caller's own setting (as OPENBLAS_NUM_THREADS=3 would be), restored after the test."""
    blas_pools()
    with threadpoolctl.threadpool_limits(limits=3):
        assert set(_threads.current_threads().values()) == {3}
        yield


def test_explicit_n_threads_sets_the_pools_and_restores_the_callers_settings(caller_has_three_threads):
    with thread_limits(1) as threads:
        assert threads == 1
        assert set(_threads.current_threads().values()) == {1}
    assert set(_threads.current_threads().values()) == {3}
    with thread_limits(5):  # explicit may also raise the count
        assert set(_threads.current_threads().values()) == {5}
    assert set(_threads.current_threads().values()) == {3}


def test_settings_come_back_after_an_exception(caller_has_three_threads):
    monitor = FixedMonitor(1)
    with pytest.raises(KeyError), thread_limits(None, monitor=monitor):
        assert set(_threads.current_threads().values()) == {1}
        raise KeyError("boom")
    assert set(_threads.current_threads().values()) == {3}
    assert monitor.ended == 1


def test_automatic_policy_lowers_but_never_raises_the_callers_setting(caller_has_three_threads):
    monitor = FixedMonitor(2)
    with thread_limits(None, monitor=monitor) as threads:
        assert threads == 2
        assert set(_threads.current_threads().values()) == {2}
    monitor.threads = 8
    with thread_limits(None, monitor=monitor):
        assert set(_threads.current_threads().values()) == {3}
    assert set(_threads.current_threads().values()) == {3}
    assert monitor.ended == 2


def test_automatic_policy_leaves_the_pools_alone_when_the_machine_cannot_be_read(caller_has_three_threads):
    monitor = FixedMonitor(None)
    with thread_limits(None, monitor=monitor) as threads:
        assert threads is None
        assert set(_threads.current_threads().values()) == {3}
    assert monitor.ended == 1


def test_explicit_n_threads_does_not_consult_the_policy(caller_has_three_threads):
    monitor = FixedMonitor(1)
    with thread_limits(2, monitor=monitor):
        assert set(_threads.current_threads().values()) == {2}
    assert monitor.ended == 0


def test_numba_pool_is_set_and_restored_when_running(monkeypatch):
    state = {"threads": 4}
    calls = []

    def set_threads(n):
        calls.append(n)
        state["threads"] = n

    monkeypatch.setattr(_threads, "_numba_pool", lambda: (lambda: state["threads"], set_threads, 4))
    with thread_limits(2):
        assert state["threads"] == 2
    assert state["threads"] == 4
    with thread_limits(16):  # capped at Numba's own maximum: already there, nothing set
        assert state["threads"] == 4
    with thread_limits(None, monitor=FixedMonitor(1)):
        assert state["threads"] == 1
    assert state["threads"] == 4
    assert calls == [2, 4, 1, 4]


def test_numba_pool_is_not_started_by_asking():
    numba = pytest.importorskip("numba")
    from numba.np.ufunc import parallel

    if getattr(parallel, "_is_initialized", None) is not False:
        pytest.skip("Numba's threading layer is already running in this process")
    with thread_limits(1):
        pass
    assert parallel._is_initialized is False
    assert numba is not None


def test_the_real_monitor_decides_something_sensible():
    threads = LoadMonitor().cores_free()
    if threads is None:
        pytest.skip("this system has no /proc/stat")
    assert 1 <= threads <= len(_threads.os.sched_getaffinity(0))
