"""B1 on a busy machine: seconds per epoch with the machine quiet and with another process spinning on
one core, for mlp (both engines: the automatic thread policy, BLAS threads left alone as before it,
and n_threads=1) and for PyTorch CPU (its default threads, and one). Run (see RESULTS.md for the
whole suite):

    cat /proc/loadavg   # others' work spoils "quiet": re-run when it is well above 0
    MLP_DATA_DIR=../shared/data/mnist .venv/bin/python -m pytest bench/test_busy.py \\
        --benchmark-json bench/busy.json

The competitor is a Python process that spins (bounded: it exits after COMPETITOR_SECONDS or when this
process dies, and is killed when the test ends, also on failure). It is paused (SIGSTOP) for the quiet
epochs and resumed (SIGCONT) for the busy ones, so quiet and busy alternate round by round and drifts in
the machine's other load hit both. Within a round every variant of an implementation runs its quiet
epoch, then its busy epoch, so the A/B (policy against no policy) sees the same machine.

The automatic policy decides at the start of each epoch from the epoch before, so the first epoch
after the competitor appears still uses every core: it is timed separately ("first busy epoch"), and
one settling epoch precedes each measured epoch of a policy-managed variant. Everything measured goes
into extra_info (bench/report.py renders it); pytest-benchmark's own timing of the whole protocol is
not used.
"""

import functools
import os
import signal
import statistics
import subprocess
import sys
import time

import pytest
from conftest import loadavg
from workloads import WORKLOADS, TorchEpoch, mlp_trainer

COMPETITOR_SECONDS = 900
SPIN = (
    "import os, time\n"
    "parent, end = os.getppid(), time.monotonic() + {seconds}\n"
    "while time.monotonic() < end and os.getppid() == parent:\n"
    "    for _ in range(200000):\n"
    "        pass\n"
)
ROUNDS = {"numba": 7, "xp": 5, "torch": 3}
MIN_ROUNDS, BUDGET_SECONDS = 3, 240  # past the budget, stop after MIN_ROUNDS (a collapse costs minutes)
if os.environ.get("MLP_BENCH_QUICK"):  # a smoke test of the protocol, not a measurement
    ROUNDS, MIN_ROUNDS = dict.fromkeys(ROUNDS, 1), 1


class Competitor:
    """A bounded spinning process, paused and resumed on demand."""

    def __init__(self, seconds=COMPETITOR_SECONDS):
        self.process = subprocess.Popen([sys.executable, "-c", SPIN.format(seconds=seconds)])
        self.running = True

    def pause(self):
        if self.running:
            self.process.send_signal(signal.SIGSTOP)
            self.running = False

    def resume(self):
        if not self.running:
            self.process.send_signal(signal.SIGCONT)
            self.running = True
            time.sleep(0.05)  # let the scheduler give it its core

    def close(self):
        if self.process.poll() is None:
            self.process.kill()  # SIGKILL ends a stopped process too
        self.process.wait(timeout=30)


@pytest.fixture
def competitor():
    if not hasattr(signal, "SIGSTOP"):
        pytest.skip("pausing the competing process needs POSIX signals")
    busy = Competitor()
    try:
        yield busy
    finally:
        busy.close()


class Variant:
    """One way of training an epoch, with what was measured of it. policy: "auto" (mlp's default,
    thread_limits(None) around the epoch as mlp.loop.run_epochs does), an int (thread_limits(n)), or
    "unmanaged" (no thread_limits: what mlp did before; `threads` says the count it runs with)."""

    def __init__(self, name, epoch, policy, threads=None):
        self.name, self.epoch, self.policy, self.fixed_threads = name, epoch, policy, threads
        self.managed = policy == "auto"  # its decision lags one epoch behind the machine
        self.quiet, self.busy, self.first_busy, self.threads = [], [], [], {"quiet": [], "busy": []}
        self.others = {"quiet": [], "busy": []}

    def run(self, phase=None):
        """One epoch; with `phase`, timed and recorded (seconds, threads chosen, others' CPU load)."""
        from mlp._threads import read_cpu, thread_limits

        before, start = read_cpu(), time.perf_counter()
        if self.policy == "unmanaged":
            threads = self.fixed_threads
            self.epoch()
        else:
            with thread_limits(None if self.policy == "auto" else self.policy) as threads:
                self.epoch()
        seconds, after = time.perf_counter() - start, read_cpu()
        if phase is not None:
            getattr(self, phase).append(seconds)
            if phase in self.threads:
                self.threads[phase].append(threads)
                if before is not None and after is not None:
                    self.others[phase].append(
                        ((after.busy - before.busy) - (after.own - before.own)) / seconds
                    )
        return seconds

    def summary(self):
        quiet, busy = statistics.median(self.quiet), statistics.median(self.busy)
        return {
            "quiet": self.quiet,
            "busy": self.busy,
            "first_busy": self.first_busy,
            "threads": self.threads,
            "others_load": self.others,
            "quiet_median": quiet,
            "busy_median": busy,
            "ratio": busy / quiet,
            "managed": self.managed,
        }


def measure(variants, competitor, rounds):
    """Alternate quiet and busy phases; in each, every variant trains (a settling epoch first for the
    policy-managed ones, whose decision lags one epoch). Returns the number of rounds done."""
    started = time.monotonic()
    for variant in variants:  # warm-up: caches, BLAS pools, the policy's first reading
        competitor.pause()
        variant.run()
        variant.run()
    for done in range(rounds):
        if done >= MIN_ROUNDS and time.monotonic() - started > BUDGET_SECONDS:
            break
        competitor.pause()
        for variant in variants:
            if variant.managed:
                variant.run()
            variant.run("quiet")
        competitor.resume()
        for variant in variants:
            if variant.managed:
                variant.run("first_busy")
            variant.run("busy")
    competitor.pause()
    return len(variants[0].busy)


@pytest.mark.parametrize("implementation", ["numba", "xp", "torch"])
def test_b1_quiet_and_busy(benchmark, implementation, competitor, mnist, threads):
    spec = WORKLOADS["B1"]
    X, y = mnist
    if implementation == "torch":
        pytest.importorskip("torch")
        variants = [
            Variant("torch", TorchEpoch(spec, X, y, threads), "unmanaged", threads=threads),
            Variant("torch_1_thread", TorchEpoch(spec, X, y, 1), "unmanaged", threads=1),
        ]
    else:
        from mlp._threads import current_threads

        blas_default = max(current_threads().values(), default=None)
        epochs = {
            policy: functools.partial(mlp_trainer(implementation, spec, X, y).run_epoch, X, y)
            for policy in ("auto", "unmanaged", 1)
        }
        variants = [
            Variant(f"{implementation}_auto", epochs["auto"], "auto"),
            Variant(f"{implementation}_unmanaged", epochs["unmanaged"], "unmanaged", threads=blas_default),
            Variant(f"{implementation}_1_thread", epochs[1], 1),
        ]
    benchmark.group = "B1 busy"
    benchmark.extra_info.update(
        busy_workload="B1",
        implementation=implementation,
        loadavg_before=loadavg(),
        description=spec.description,
        rounds=ROUNDS[implementation],
    )
    done = benchmark.pedantic(
        measure, args=(variants, competitor, ROUNDS[implementation]), rounds=1, iterations=1
    )
    benchmark.extra_info.update(loadavg_after=loadavg(), rounds=done)
    benchmark.extra_info["variants"] = {variant.name: variant.summary() for variant in variants}
    for variant in variants:
        assert len(variant.quiet) == len(variant.busy) == done >= MIN_ROUNDS
        assert all(seconds > 0 for seconds in variant.quiet + variant.busy)
