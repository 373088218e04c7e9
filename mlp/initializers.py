"""Weight initialisers. Numbers are drawn on the host from a seeded NumPy Generator, in float64,
so the same seed gives the same initial weights on every backend; biases start at zero."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
from numpy.random import Generator


def he_normal(rng: Generator, fan_in: int, fan_out: int) -> np.ndarray:
    return rng.normal(0.0, math.sqrt(2.0 / fan_in), size=(fan_in, fan_out))


def he_uniform(rng: Generator, fan_in: int, fan_out: int) -> np.ndarray:
    limit = math.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, size=(fan_in, fan_out))


def glorot_normal(rng: Generator, fan_in: int, fan_out: int) -> np.ndarray:
    return rng.normal(0.0, math.sqrt(2.0 / (fan_in + fan_out)), size=(fan_in, fan_out))


def glorot_uniform(rng: Generator, fan_in: int, fan_out: int) -> np.ndarray:
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out))


def lecun_normal(rng: Generator, fan_in: int, fan_out: int) -> np.ndarray:
    return rng.normal(0.0, math.sqrt(1.0 / fan_in), size=(fan_in, fan_out))


def lecun_uniform(rng: Generator, fan_in: int, fan_out: int) -> np.ndarray:
    limit = math.sqrt(3.0 / fan_in)
    return rng.uniform(-limit, limit, size=(fan_in, fan_out))


def normal(rng: Generator, fan_in: int, fan_out: int, scale: float = 0.01) -> np.ndarray:
    """The plain scaled normal of many beginner notebooks: N(0, 0.01)."""
    return rng.normal(0.0, scale, size=(fan_in, fan_out))


INITIALIZERS = {
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "glorot_normal": glorot_normal,
    "glorot_uniform": glorot_uniform,
    "xavier_normal": glorot_normal,
    "xavier_uniform": glorot_uniform,
    "lecun_normal": lecun_normal,
    "lecun_uniform": lecun_uniform,
    "normal": normal,
}


def default_init(activation: str) -> str:
    """He for the ReLU family, Glorot for the saturating and linear activations."""
    return "he_normal" if activation in ("relu", "leaky_relu") else "glorot_uniform"


def initial_parameters(
    layer_sizes: Sequence[int], init: str, rng: Generator
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Host (float64) parameters for `layer_sizes` = [n_in, h1, ..., n_out]: a list of (W, b)."""
    try:
        draw = INITIALIZERS[init]
    except (KeyError, TypeError):
        raise ValueError(f"unknown init {init!r}; choose one of {', '.join(sorted(INITIALIZERS))}") from None
    return [
        (draw(rng, fan_in, fan_out), np.zeros(fan_out)) for fan_in, fan_out in itertools.pairwise(layer_sizes)
    ]
