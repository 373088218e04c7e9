"""Compiler flags for every kernel, in one place.

``jit`` is the decorator for the public kernels and their helpers:

- ``cache=True``: compiled machine code is written beside the sources, so a second process loads it
  in milliseconds instead of compiling again (see ``mlp_kernels.warmup``).
- ``fastmath``: value-safe flags only.  ``nnan``/``ninf`` are left out on purpose, so NaN and inf
  still propagate and ``x != x`` still means "x is NaN"; ``reassoc`` lets LLVM vectorise sums.
- ``error_model="numpy"``: float division by zero gives inf/NaN instead of raising
  ``ZeroDivisionError``; without it every division carries a branch and no loop with a division
  vectorises.
- ``nogil=True``: a caller may run kernels from several threads.
- no ``parallel``/``prange``: on the 2-core development machine every ``prange`` variant measured
  slower or erratic (thread wake-up costs 10 us to several ms against 1-100 us of work), so all
  kernels are serial.

``boundscheck`` is left unset so ``NUMBA_BOUNDSCHECK=1`` can switch it on when debugging.

Where no cache folder is writable (a read-only install run by a user without a writable HOME, as in
a container with a random UID), Numba's ``cache=True`` raises "no locator available" when a kernel is
decorated, so ``jit`` then decorates without the cache: a one-line ``KernelCacheWarning``, once per
process, and the kernels compile afresh in every process that trains (``NUMBA_CACHE_DIR`` pointing
at a writable folder brings the cache back).  Decorating compiles nothing; that happens on the first
call or in ``warmup``.

``NUMBA_NUM_THREADS`` is checked before Numba is imported (Numba raises a bare ValueError at import
for 0 and only warns, with a traceback, for text): anything but a positive integer is an
``EnvironmentVariableError``, both an ImportError (so ``mlp`` imports and reports it) and a ValueError.

``SCALAR_MATH_OPTIONS`` is for the scalar helpers in ``mlp_kernels._math``.  Their range reductions
(Cody-Waite splitting of x*log(2)) must be evaluated as written, so they get no ``reassoc``/``afn``.
The flags belong to each LLVM instruction, so the helpers keep them after LLVM inlines them into a
kernel compiled with ``FASTMATH``.
"""

import os
import warnings

NUM_THREADS_VARIABLE = "NUMBA_NUM_THREADS"


class EnvironmentVariableError(ImportError, ValueError):
    """An environment variable that Numba reads holds a value it cannot use."""


class KernelCacheWarning(UserWarning):
    """The kernels cannot be cached on disk here; they compile in every process."""


def check_num_threads(value):
    """Raise EnvironmentVariableError unless `value` (NUMBA_NUM_THREADS, None when unset) is unset or
    a positive integer."""
    if value is not None and not (value.strip().isdigit() and int(value) >= 1):
        raise EnvironmentVariableError(
            f"{NUM_THREADS_VARIABLE}={value!r} is not a positive integer; set it to a number of "
            f"threads such as 1 or 4, or unset it"
        )


check_num_threads(os.environ.get(NUM_THREADS_VARIABLE))

import numba  # noqa: E402 - after the check: Numba reads NUMBA_NUM_THREADS when imported

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
SCALAR_FASTMATH = {"nsz", "arcp", "contract"}

JIT_OPTIONS = {"cache": True, "nogil": True, "error_model": "numpy", "fastmath": FASTMATH}
SCALAR_MATH_OPTIONS = {"error_model": "numpy", "fastmath": SCALAR_FASTMATH}

_cache_refused = False  # set when Numba found no writable cache folder for a kernel


def jit(function):
    """``numba.njit(**JIT_OPTIONS)``, without ``cache`` where Numba finds no writable cache folder."""
    global _cache_refused
    if not _cache_refused:
        try:
            return numba.njit(**JIT_OPTIONS)(function)
        except RuntimeError as error:
            if "no locator available" not in str(error):
                raise
            _cache_refused = True
            warnings.warn_explicit(  # one line on stderr: no source line to quote
                "no writable folder for Numba's cache of the compiled kernels (beside them, or under "
                "HOME); they compile afresh in every process that trains. Set NUMBA_CACHE_DIR to a "
                "writable folder to keep them",
                KernelCacheWarning,
                "mlp_kernels",
                0,
            )
    return numba.njit(**{**JIT_OPTIONS, "cache": False})(function)
