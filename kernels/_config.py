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

``SCALAR_MATH_OPTIONS`` is for the scalar helpers in ``mlp_kernels._math``.  Their range reductions
(Cody-Waite splitting of x*log(2)) must be evaluated as written, so they get no ``reassoc``/``afn``.
The flags belong to each LLVM instruction, so the helpers keep them after LLVM inlines them into a
kernel compiled with ``FASTMATH``.
"""

import numba

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
SCALAR_FASTMATH = {"nsz", "arcp", "contract"}

JIT_OPTIONS = {"cache": True, "nogil": True, "error_model": "numpy", "fastmath": FASTMATH}
SCALAR_MATH_OPTIONS = {"error_model": "numpy", "fastmath": SCALAR_FASTMATH}

jit = numba.njit(**JIT_OPTIONS)
