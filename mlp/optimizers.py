"""Gradient processing (L2 is in the loss; clipping here) and the optimizers.

An optimizer holds hyper-parameters only. Its state (velocities, moments) is a list of arrays made by
`init_state`, one per parameter array, in the parameters' namespace and on their device, so the
training loop can checkpoint it. `update` returns the new parameters and the new state and writes no
array (the array API leaves in-place updates optional, and JAX's arrays are immutable); `step` is the
in-place form, for arrays that can be written. `lr` is a Python float, `t` the 1-based step count.
The formulas are the PyTorch conventions, written out in each docstring.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from ._array_api import Array, Namespace, is_writeable_array
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
    """The base of the optimizers. A subclass implements `update` (and `init_state` when it keeps
    state): the new parameters and state as new arrays, so it runs on every array-API library,
    JAX's immutable arrays included.

    A subclass that overrides `step` instead and updates the arrays in place (the interface before
    `update`) still trains, on libraries whose arrays can be written (NumPy, CuPy, PyTorch,
    array-api-strict); on JAX the trainer refuses it with a TypeError that says to implement `update`.
    """

    name = "optimizer"

    def init_state(self, params: Sequence[Array], *, xp: Namespace) -> list[Array]:
        return []

    def update(
        self,
        params: Sequence[Array],
        grads: Sequence[Array],
        state: Sequence[Array],
        *,
        lr: float,
        t: int,
        xp: Namespace,
        is_weight: Sequence[bool] | None = None,
    ) -> tuple[list[Array], list[Array]]:
        """One step: (new parameters, new state), in the order given. No array is written."""
        raise NotImplementedError(f"{type(self).__name__} implements neither update nor step")

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
        """One step in place: `update`, then its results written into `params` and `state` (arrays
        of a library that allows writing them; TypeError otherwise)."""
        _check_writeable(self, params)
        new_params, new_state = self.update(params, grads, state, lr=lr, t=t, xp=xp, is_weight=is_weight)
        for target, value in zip([*params, *state], [*new_params, *new_state], strict=True):
            target[...] = value

    def config(self) -> dict[str, Any]:
        return {"name": self.name, **{f.name: getattr(self, f.name) for f in fields(self)}}


def _zeros_like_all(params: Sequence[Array], xp: Namespace) -> list[Array]:
    return [xp.zeros_like(p) for p in params]


@dataclass
class SGD(Optimizer):
    """p = p - lr * g"""

    name = "sgd"

    def update(
        self,
        params: Sequence[Array],
        grads: Sequence[Array],
        state: Sequence[Array],
        *,
        lr: float,
        t: int,
        xp: Namespace,
        is_weight: Sequence[bool] | None = None,
    ) -> tuple[list[Array], list[Array]]:
        return [p - lr * g for p, g in zip(params, grads, strict=True)], list(state)


@dataclass
class Momentum(Optimizer):
    """v = mu*v + g;  p = p - lr*v            (nesterov: p = p - lr*(g + mu*v))"""

    momentum: float = 0.9
    name = "momentum"
    nesterov = False

    def __post_init__(self) -> None:
        _check_unit_interval("momentum", self.momentum)

    def init_state(self, params: Sequence[Array], *, xp: Namespace) -> list[Array]:
        return _zeros_like_all(params, xp)

    def update(
        self,
        params: Sequence[Array],
        grads: Sequence[Array],
        state: Sequence[Array],
        *,
        lr: float,
        t: int,
        xp: Namespace,
        is_weight: Sequence[bool] | None = None,
    ) -> tuple[list[Array], list[Array]]:
        mu = self.momentum
        new_params, new_state = [], []
        for p, g, v in zip(params, grads, state, strict=True):
            v = mu * v + g
            new_params.append(p - lr * (g + mu * v) if self.nesterov else p - lr * v)
            new_state.append(v)
        return new_params, new_state


@dataclass
class Nesterov(Momentum):
    name = "nesterov"
    nesterov = True


@dataclass
class RMSProp(Optimizer):
    """s = rho*s + (1-rho)*g^2;  p = p - lr * g / (sqrt(s) + eps)"""

    rho: float = 0.9
    eps: float = 1e-8
    name = "rmsprop"

    def __post_init__(self) -> None:
        _check_unit_interval("rho", self.rho)
        _check_positive("eps", self.eps)

    def init_state(self, params: Sequence[Array], *, xp: Namespace) -> list[Array]:
        return _zeros_like_all(params, xp)

    def update(
        self,
        params: Sequence[Array],
        grads: Sequence[Array],
        state: Sequence[Array],
        *,
        lr: float,
        t: int,
        xp: Namespace,
        is_weight: Sequence[bool] | None = None,
    ) -> tuple[list[Array], list[Array]]:
        new_params, new_state = [], []
        for p, g, s in zip(params, grads, state, strict=True):
            s = self.rho * s + (1.0 - self.rho) * (g * g)
            new_params.append(p - lr * g / (xp.sqrt(s) + self.eps))
            new_state.append(s)
        return new_params, new_state


@dataclass
class Adam(Optimizer):
    """m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;
    p = p - lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)"""

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

    def update(
        self,
        params: Sequence[Array],
        grads: Sequence[Array],
        state: Sequence[Array],
        *,
        lr: float,
        t: int,
        xp: Namespace,
        is_weight: Sequence[bool] | None = None,
    ) -> tuple[list[Array], list[Array]]:
        n = len(params)
        b1, b2 = self.beta1, self.beta2
        step_size = lr / (1.0 - b1**t)
        sqrt_correction = math.sqrt(1.0 - b2**t)
        new_params, new_m, new_v = [], [], []
        for p, g, m, v in zip(params, grads, state[:n], state[n:], strict=True):
            m = b1 * m + (1.0 - b1) * g
            v = b2 * v + (1.0 - b2) * (g * g)
            new_params.append(p - step_size * m / (xp.sqrt(v) / sqrt_correction + self.eps))
            new_m.append(m)
            new_v.append(v)
        return new_params, new_m + new_v


@dataclass
class AdamW(Adam):
    """Adam with decoupled weight decay: first p = p * (1 - lr*weight_decay) (weights only), then Adam."""

    weight_decay: float = 0.01
    name = "adamw"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_non_negative("weight_decay", self.weight_decay)

    def update(
        self,
        params: Sequence[Array],
        grads: Sequence[Array],
        state: Sequence[Array],
        *,
        lr: float,
        t: int,
        xp: Namespace,
        is_weight: Sequence[bool] | None = None,
    ) -> tuple[list[Array], list[Array]]:
        if self.weight_decay:
            decay = 1.0 - lr * self.weight_decay
            params = [
                p * decay if is_weight is None or is_weight[index] else p for index, p in enumerate(params)
            ]
        return super().update(params, grads, state, lr=lr, t=t, xp=xp)


OPTIMIZERS = {cls.name: cls for cls in (SGD, Momentum, Nesterov, RMSProp, Adam, AdamW)}


def apply_step(
    optimizer: Optimizer,
    params: Sequence[Array],
    grads: Sequence[Array],
    state: Sequence[Array],
    *,
    lr: float,
    t: int,
    xp: Namespace,
    is_weight: Sequence[bool] | None = None,
) -> tuple[list[Array], list[Array]]:
    """One optimizer step as a trainer takes it: (new parameters, new state), which the caller
    rebinds. `optimizer.update` for the built-in optimizers and any subclass that implements it; a
    subclass that overrides `step` (in place) runs that on the arrays given, which come back."""
    if type(optimizer).step is Optimizer.step:
        return optimizer.update(params, grads, state, lr=lr, t=t, xp=xp, is_weight=is_weight)
    _check_writeable(optimizer, params)
    optimizer.step(params, grads, state, lr=lr, t=t, xp=xp, is_weight=is_weight)
    return list(params), list(state)


def _check_writeable(optimizer: Optimizer, params: Sequence[Array]) -> None:
    if params and not is_writeable_array(params[0]):
        raise TypeError(
            f"{type(optimizer).__name__}.step updates the parameters in place, and "
            f"{type(params[0]).__module__} arrays cannot be written (JAX arrays are immutable); "
            "implement update(params, grads, state, *, lr, t, xp, is_weight=None), which returns the "
            "new parameters and the new state, instead of step"
        )


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
