"""Gradient processing (L2 is in the loss; clipping here) and the optimizers.

An optimizer holds hyper-parameters only. Its state (velocities, moments) is a list of arrays made by
`init_state`, one per parameter array, in the parameters' namespace and on their device, so the
training loop can checkpoint it. `step` updates the parameters in place; `lr` is a Python float, `t`
the 1-based step count. The formulas are the PyTorch conventions, written out in each docstring.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from ._array_api import Array, Namespace
from ._validation import check_rate


def clip_gradients(
    grads: Sequence[Array], *, clip_value: float | None = None, clip_norm: float | None = None, xp: Namespace
) -> Sequence[Array]:
    """Clip by value (elementwise), then by global norm over all gradients.

    `grads` is a list of arrays; returns the clipped list (new arrays, the input is untouched). The
    norm scale is computed on the device: no host synchronisation.
    """
    if clip_value is not None:
        grads = [xp.clip(g, -clip_value, clip_value) for g in grads]
    if clip_norm is not None:
        norm = global_norm(grads, xp=xp)
        scale = xp.where(norm > clip_norm, clip_norm / xp.maximum(norm, 1e-30), 1.0)
        scale = xp.astype(scale, grads[0].dtype)
        grads = [g * scale for g in grads]
    return grads


def global_norm(arrays: Sequence[Array], *, xp: Namespace) -> Array:
    """sqrt of the sum of squares over all arrays, as a 0-d array."""
    total = xp.sum(arrays[0] * arrays[0])
    for a in arrays[1:]:
        total = total + xp.sum(a * a)
    return xp.sqrt(total)


@dataclass
class Optimizer:
    name = "optimizer"

    def init_state(self, params: Sequence[Array], *, xp: Namespace) -> list[Array]:
        return []

    def step(
        self,
        params: Sequence[Array],
        grads: Sequence[Array],
        state: Sequence[Array],
        *,
        lr: float,
        t: int,
        xp: Namespace,
        is_weight: Sequence[bool] | None = None,
    ) -> None:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {"name": self.name, **{f.name: getattr(self, f.name) for f in fields(self)}}


def _zeros_like_all(params: Sequence[Array], xp: Namespace) -> list[Array]:
    return [xp.zeros_like(p) for p in params]


@dataclass
class SGD(Optimizer):
    """p -= lr * g"""

    name = "sgd"

    def step(
        self,
        params: Sequence[Array],
        grads: Sequence[Array],
        state: Sequence[Array],
        *,
        lr: float,
        t: int,
        xp: Namespace,
        is_weight: Sequence[bool] | None = None,
    ) -> None:
        for p, g in zip(params, grads, strict=True):
            p -= lr * g


@dataclass
class Momentum(Optimizer):
    """v = mu*v + g;  p -= lr*v            (nesterov: p -= lr*(g + mu*v))"""

    momentum: float = 0.9
    name = "momentum"
    nesterov = False

    def __post_init__(self) -> None:
        _check_unit_interval("momentum", self.momentum)

    def init_state(self, params: Sequence[Array], *, xp: Namespace) -> list[Array]:
        return _zeros_like_all(params, xp)

    def step(
        self,
        params: Sequence[Array],
        grads: Sequence[Array],
        state: Sequence[Array],
        *,
        lr: float,
        t: int,
        xp: Namespace,
        is_weight: Sequence[bool] | None = None,
    ) -> None:
        mu = self.momentum
        for p, g, v in zip(params, grads, state, strict=True):
            v *= mu
            v += g
            if self.nesterov:
                p -= lr * (g + mu * v)
            else:
                p -= lr * v


@dataclass
class Nesterov(Momentum):
    name = "nesterov"
    nesterov = True


@dataclass
class RMSProp(Optimizer):
    """s = rho*s + (1-rho)*g^2;  p -= lr * g / (sqrt(s) + eps)"""

    rho: float = 0.9
    eps: float = 1e-8
    name = "rmsprop"

    def __post_init__(self) -> None:
        _check_unit_interval("rho", self.rho)
        _check_positive("eps", self.eps)

    def init_state(self, params: Sequence[Array], *, xp: Namespace) -> list[Array]:
        return _zeros_like_all(params, xp)

    def step(
        self,
        params: Sequence[Array],
        grads: Sequence[Array],
        state: Sequence[Array],
        *,
        lr: float,
        t: int,
        xp: Namespace,
        is_weight: Sequence[bool] | None = None,
    ) -> None:
        for p, g, s in zip(params, grads, state, strict=True):
            s *= self.rho
            s += (1.0 - self.rho) * (g * g)
            p -= lr * g / (xp.sqrt(s) + self.eps)


@dataclass
class Adam(Optimizer):
    """m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;
    p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)"""

    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    name = "adam"

    def __post_init__(self) -> None:
        _check_unit_interval("beta1", self.beta1)
        _check_unit_interval("beta2", self.beta2)
        _check_positive("eps", self.eps)

    def init_state(self, params: Sequence[Array], *, xp: Namespace) -> list[Array]:
        return _zeros_like_all(params, xp) + _zeros_like_all(params, xp)

    def step(
        self,
        params: Sequence[Array],
        grads: Sequence[Array],
        state: Sequence[Array],
        *,
        lr: float,
        t: int,
        xp: Namespace,
        is_weight: Sequence[bool] | None = None,
    ) -> None:
        n = len(params)
        b1, b2 = self.beta1, self.beta2
        step_size = lr / (1.0 - b1**t)
        sqrt_correction = math.sqrt(1.0 - b2**t)
        for p, g, m, v in zip(params, grads, state[:n], state[n:], strict=True):
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * (g * g)
            p -= step_size * m / (xp.sqrt(v) / sqrt_correction + self.eps)


@dataclass
class AdamW(Adam):
    """Adam with decoupled weight decay: first p -= lr*weight_decay*p (weights only), then Adam."""

    weight_decay: float = 0.01
    name = "adamw"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_non_negative("weight_decay", self.weight_decay)

    def step(
        self,
        params: Sequence[Array],
        grads: Sequence[Array],
        state: Sequence[Array],
        *,
        lr: float,
        t: int,
        xp: Namespace,
        is_weight: Sequence[bool] | None = None,
    ) -> None:
        if self.weight_decay:
            for index, p in enumerate(params):
                if is_weight is None or is_weight[index]:
                    p *= 1.0 - lr * self.weight_decay
        super().step(params, grads, state, lr=lr, t=t, xp=xp)


OPTIMIZERS = {cls.name: cls for cls in (SGD, Momentum, Nesterov, RMSProp, Adam, AdamW)}


def make_optimizer(spec: str | Optimizer, **overrides: Any) -> Optimizer:
    """An Optimizer from a name ('adam') or an instance (returned as is)."""
    if isinstance(spec, Optimizer):
        return spec
    try:
        cls = OPTIMIZERS[spec]
    except (KeyError, TypeError):
        raise ValueError(f"unknown optimizer {spec!r}; choose one of {', '.join(OPTIMIZERS)}") from None
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in overrides.items() if k in known and v is not None})


# The constructors' checks: the options table's helper, so fit, the estimators and the command line,
# which check their values through the table first, never see another message for the same value.
def _check_unit_interval(name: str, value: float) -> None:
    check_rate(value, name, high=1.0)


def _check_positive(name: str, value: float) -> None:
    check_rate(value, name, low_inclusive=False)


def _check_non_negative(name: str, value: float) -> None:
    check_rate(value, name)
