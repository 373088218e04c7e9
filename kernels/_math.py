"""Scalar math helpers that LLVM can inline and vectorise.

Numba turns ``math.exp``/``math.tanh`` into calls to the C library, one element at a time; NumPy's
own SIMD loops are then 4-15x faster.  These helpers are short branch-free formulas that LLVM
inlines into a kernel's inner loop and vectorises (AVX2/AVX-512).

- ``exp_nonpos(x)``: exp(x) for x <= 0 (all that softmax, sigmoid and tanh need), within 1 ulp,
  exactly 0 where exp(x) would be subnormal (x < -87.3 float32, < -708.4 float64), NaN for NaN.
- ``sigmoid(x)``: 1/(1+exp(-x)), never overflows.
- ``tanh(x)``: within 3 ulp.
- ``fmaximum(a, b)``: the larger of a and b, NaN if either is NaN (LLVM ``llvm.maximum``); unlike
  ``a if a > b else b`` a loop of it vectorises as a reduction without the ``nnan`` flag.

Each one is a plain Python function (used as is under ``NUMBA_DISABLE_JIT=1``) with a Numba
``overload`` per float type, so float32 stays float32 throughout.
"""

import numpy as np
from llvmlite import binding, ir
from numba.core import cgutils, types
from numba.extending import intrinsic, overload

from ._config import SCALAR_MATH_OPTIONS


@intrinsic
def _pow2i(typingctx, k, like):
    """2.0**k in the float type of ``like``; k is an integer with 2**k a normal number."""
    if not (isinstance(k, types.Integer) and isinstance(like, types.Float)):
        return None
    bits = like.bitwidth
    mantissa, bias = (23, 127) if bits == 32 else (52, 1023)

    def codegen(context, builder, signature, args):
        ity = ir.IntType(bits)
        kk = args[0]
        if kk.type.width < bits:
            kk = builder.sext(kk, ity)
        elif kk.type.width > bits:
            kk = builder.trunc(kk, ity)
        e = builder.shl(builder.add(kk, ir.Constant(ity, bias)), ir.Constant(ity, mantissa))
        return builder.bitcast(e, context.get_value_type(like))

    return like(k, like), codegen


@intrinsic
def _fmaximum(typingctx, a, b):
    if not (isinstance(a, types.Float) and a == b):
        return None

    def codegen(context, builder, signature, args):
        lty = context.get_value_type(a)
        fnty = ir.FunctionType(lty, [lty, lty])
        fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.maximum.f{a.bitwidth}")
        return builder.call(fn, args)

    return a(a, b), codegen


def fmaximum(a, b):
    """max(a, b) propagating NaN."""
    return np.maximum(a, b)


# x86 instruction selection for llvm.maximum (and its vectorised reductions) needs LLVM 17+
# (llvmlite 0.43/numba 0.60 ship LLVM 14); older ones get a NaN-keeping select, not vectorised.
_HAVE_LLVM_MAXIMUM = binding.llvm_version_info >= (17,)


@overload(fmaximum, jit_options=SCALAR_MATH_OPTIONS)
def _fmaximum_overload(a, b):
    if not (isinstance(a, types.Float) and a == b):
        return None
    if _HAVE_LLVM_MAXIMUM:
        return lambda a, b: _fmaximum(a, b)
    return lambda a, b: b if (b > a or b != b) else a


def exp_nonpos(x):
    """exp(x) for x <= 0 (a result in [0, 1])."""
    return np.exp(x)


def sigmoid(x):
    """1 / (1 + exp(-x)) without overflow."""
    e = np.exp(-np.abs(x))
    s = 1 / (1 + e)
    return s if x >= 0 else e * s


def tanh(x):
    """Hyperbolic tangent."""
    return np.tanh(x)


@overload(exp_nonpos, jit_options=SCALAR_MATH_OPTIONS)
def _exp_nonpos(x):
    # exp(x) = 2**k * exp(r), k = round(x/ln2), |r| <= ln2/2, ln2 split in two (Cody-Waite).
    if x == types.float32:
        f = np.float32
        lowest, log2e = f(-87.33654), f(1.44269504088896341)  # lowest = log(smallest normal)
        ln2_hi, ln2_lo = f(0.693359375), f(-2.12194440e-4)
        # Cephes expf minimax polynomial for (exp(r) - 1 - r) / r**2
        c5, c4, c3 = f(1.9875691500e-4), f(1.3981999507e-3), f(8.3334519073e-3)
        c2, c1, c0 = f(4.1665795894e-2), f(1.6666665459e-1), f(5.0000001201e-1)
        one, half, zero = f(1.0), f(0.5), f(0.0)

        def impl(x):
            xc = x if x > lowest else lowest  # NaN -> lowest here, restored at the end
            k = np.floor(xc * log2e + half)
            r = xc - k * ln2_hi
            r = r - k * ln2_lo
            p = c5
            p = p * r + c4
            p = p * r + c3
            p = p * r + c2
            p = p * r + c1
            p = p * r + c0
            p = p * (r * r) + r + one
            y = p * _pow2i(np.int32(k), x)
            y = y if x >= lowest else zero
            return y if x == x else x

        return impl
    if x == types.float64:
        f = np.float64
        lowest, log2e = f(-708.3964), f(1.44269504088896338700e00)
        ln2_hi, ln2_lo = f(6.93147180369123816490e-01), f(1.90821492927058770002e-10)
        # fdlibm e_exp.c: rational approximation through r*c/(2-c)
        p1, p2 = f(1.66666666666666019037e-01), f(-2.77777777770155933842e-03)
        p3, p4 = f(6.61375632143793436117e-05), f(-1.65339022054652515390e-06)
        p5 = f(4.13813679705723846039e-08)
        one, two, half, zero = f(1.0), f(2.0), f(0.5), f(0.0)

        def impl(x):
            xc = x if x > lowest else lowest
            k = np.floor(xc * log2e + half)
            hi = xc - k * ln2_hi
            lo = k * ln2_lo
            r = hi - lo
            t = r * r
            c = r - t * (p1 + t * (p2 + t * (p3 + t * (p4 + t * p5))))
            e = one - ((lo - (r * c) / (two - c)) - hi)
            y = e * _pow2i(np.int64(k), x)
            y = y if x >= lowest else zero
            return y if x == x else x

        return impl
    return None


@overload(sigmoid, jit_options=SCALAR_MATH_OPTIONS)
def _sigmoid(x):
    if not isinstance(x, types.Float):
        return None
    one = np.float32(1.0) if x == types.float32 else np.float64(1.0)
    zero = one - one

    def impl(x):
        e = exp_nonpos(-abs(x))
        s = one / (one + e)
        return s if x >= zero else e * s

    return impl


@overload(tanh, jit_options=SCALAR_MATH_OPTIONS)
def _tanh(x):
    if x == types.float32:
        # Eigen's float tanh: odd degree-13 over even degree-6 rational on |x| <= 7.905 (beyond it
        # the rational is flat), x itself for |x| < 4e-4, exactly +-1 beyond |x| = 9.
        f = np.float32
        a13, a11, a9 = f(-2.76076847742355e-16), f(2.00018790482477e-13), f(-8.60467152213735e-11)
        a7, a5, a3 = f(5.12229709037114e-08), f(1.48572235717979e-05), f(6.37261928875436e-04)
        a1 = f(4.89352455891786e-03)
        b6, b4, b2 = f(1.19825839466702e-06), f(1.18534705686654e-04), f(2.26843463243900e-03)
        b0 = f(4.89352518554385e-03)
        clamp, tiny, one, saturated = f(7.90531110763549805), f(4e-4), f(1.0), f(9.0)

        def impl(x):
            xc = x if x < clamp else clamp
            xc = xc if xc > -clamp else -clamp
            z = xc * xc
            p = a13
            p = p * z + a11
            p = p * z + a9
            p = p * z + a7
            p = p * z + a5
            p = p * z + a3
            p = p * z + a1
            q = b6
            q = q * z + b4
            q = q * z + b2
            q = q * z + b0
            y = (p * xc) / q
            y = x if abs(x) < tiny else y
            y = (one if x > 0 else -one) if abs(x) > saturated else y  # tanh rounds to +-1 there
            return x if x != x else y

        return impl
    if x == types.float64:
        # |x| < 0.625: Cephes tanh rational; else (1 - e) / (1 + e) with e = exp(-2|x|).
        f = np.float64
        p0, p1, p2 = f(-9.64399179425052238628e-1), f(-9.92877231001918586564e1), f(-1.61468768441708447952e3)
        q0, q1, q2 = f(1.12811678491632931402e2), f(2.23548839060100448583e3), f(4.84406305325125486048e3)
        one, two, small = f(1.0), f(2.0), f(0.625)

        def impl(x):
            a = abs(x)
            e = exp_nonpos(-two * a)
            big = (one - e) / (one + e)
            big = big if x >= 0 else -big
            s = x * x
            p = x + x * s * (((p0 * s + p1) * s + p2) / (((s + q0) * s + q1) * s + q2))
            return p if a < small else big

        return impl
    return None
