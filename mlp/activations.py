"""Activation functions, each forward next to its backward.

Backward is written from the activation's *output* A (not its input Z), so the training loop keeps one
array per layer. Every function takes the namespace as `xp=`.
"""

from __future__ import annotations

from collections.abc import Callable

from ._array_api import Array, Namespace

# Also in mlp_kernels (kernels/_layers.py, which cannot import mlp, while Numba is optional here) and
# in the C++ port (kLeakySlope): tests/test_structure.py checks that the three agree.
LEAKY_SLOPE = 0.01


def identity(Z: Array, *, xp: Namespace) -> Array:
    return Z


def identity_backward(dA: Array, A: Array, *, xp: Namespace) -> Array:
    return dA


def relu(Z: Array, *, xp: Namespace) -> Array:
    return xp.maximum(Z, 0.0)


def relu_backward(dA: Array, A: Array, *, xp: Namespace) -> Array:
    # relu'(0) = 0: the kink is assigned to the flat side, as in PyTorch.
    return xp.where(A > 0, dA, 0.0)


def leaky_relu(Z: Array, *, xp: Namespace) -> Array:
    return xp.where(Z > 0, Z, LEAKY_SLOPE * Z)


def leaky_relu_backward(dA: Array, A: Array, *, xp: Namespace) -> Array:
    return xp.where(A > 0, dA, LEAKY_SLOPE * dA)


def sigmoid(Z: Array, *, xp: Namespace) -> Array:
    # exp of a non-positive number only, so large |Z| neither overflows nor warns.
    E = xp.exp(-xp.abs(Z))
    return xp.where(Z >= 0, 1.0 / (1.0 + E), E / (1.0 + E))


def sigmoid_backward(dA: Array, A: Array, *, xp: Namespace) -> Array:
    return dA * A * (1.0 - A)


def tanh(Z: Array, *, xp: Namespace) -> Array:
    return xp.tanh(Z)


def tanh_backward(dA: Array, A: Array, *, xp: Namespace) -> Array:
    return dA * (1.0 - A * A)


ACTIVATIONS = {
    "identity": (identity, identity_backward),
    "relu": (relu, relu_backward),
    "leaky_relu": (leaky_relu, leaky_relu_backward),
    "sigmoid": (sigmoid, sigmoid_backward),
    "tanh": (tanh, tanh_backward),
}

# Activations with a kink at 0, where finite differences need a guard.
KINKED = frozenset({"relu", "leaky_relu"})


def get_activation(name: str) -> tuple[Callable[..., Array], Callable[..., Array]]:
    """Return `(forward, backward)` for an activation name, or raise a ValueError listing the choices."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown activation {name!r}; choose one of {', '.join(sorted(ACTIVATIONS))}"
        ) from None
