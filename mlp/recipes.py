"""Named training recipes: every setting of a network and its training, under one name.

::

    mlp.fit(X, y, **mlp.recipes.get("best"), seed=0)
    mlp train --recipe best --data DIR            # explicit flags override the recipe's settings

    default              fit's defaults: 784-256-128-10, Adam, cosine decay, dropout 0.1, 25 epochs
    best                 >= 99.5 % on MNIST within 20 minutes on 2 cores (measured: docs/user_guide/recipes.md):
                         784-1024-1024-10, augmentation (affine + elastic), max-norm,
                         label smoothing, Adam with cosine decay, 100 epochs
    classic_fullbatch    the full-batch 784-128-10 gradient descent of the first scripts
    classic_sigmoid_mse  the beginners' notebook network: sigmoid units, sigmoid outputs, squared error

A recipe pins every option that shapes the trained network (`RECIPE_OPTIONS`), so it keeps its
meaning when fit's defaults change; how a run is carried out (seed, validation, early stopping,
printing, checkpoints, engine, threads) stays the caller's. docs/user_guide/recipes.md's table lists what
each reaches and how long it takes, with the command that measured it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from . import options as _options

__all__ = ["RECIPES", "RECIPE_OPTIONS", "Recipe", "describe", "get", "names"]

# The options a recipe fixes: the network and how it is optimised. The rest are settings of one run.
RUN_OPTIONS = (
    "validation_split",
    "early_stopping",
    "patience",
    "min_delta",
    "verbose",
    "seed",
    "checkpoint",
    "resume",
    "log_gradients",
    "progress",
    "engine",
    "n_threads",
    "deterministic",
)
RECIPE_OPTIONS = tuple(name for name in _options.OPTIONS if name not in RUN_OPTIONS)


@dataclass(frozen=True)
class Recipe:
    """name; summary (one line); settings: the options that differ from fit's defaults of today (the
    others are pinned at those defaults by `get`); why: where the choice comes from."""

    name: str
    summary: str
    settings: dict = field(default_factory=dict)
    why: str = ""


_BASE = {name: _options.OPTIONS[name].default for name in RECIPE_OPTIONS}

RECIPES = {
    recipe.name: recipe
    for recipe in (
        Recipe(
            "default",
            "fit's defaults: 784-256-128-10 ReLU, Adam 1e-3 with cosine decay, dropout 0.1, 25 epochs",
            {},
            "the library's default (98.3 % or more on MNIST, tests/test_mnist.py)",
        ),
        Recipe(
            "best",
            "784-1024-1024-10 ReLU on freshly distorted digits (affine + elastic), no dropout, max-norm 3, "
            "label smoothing 0.1, Adam 1e-3 with cosine decay, 100 epochs",
            {
                "hidden_sizes": [1024, 1024],
                "epochs": 100,
                "batch_size": 128,
                "optimizer": "adam",
                "learning_rate": 1e-3,
                "schedule": "cosine",
                "dropout": 0.0,
                "max_norm": 3.0,
                "label_smoothing": 0.1,
                "weight_decay": 0.0,
                "augment": {
                    "shift": 2.0,
                    "rotation": 10.0,
                    "scale": 0.15,
                    "shear": 10.0,
                    "elastic_alpha": 36.0,
                    "elastic_sigma": 6.0,
                    "image_shape": [28, 28],
                },
            },
            "elastic distortions took an 800-unit MLP to 99.3 % (Simard et al. 2003); affine (scale 15 %) + "
            "elastic (alpha 36, sigma 6) deformations took deep MLPs to 99.65 % (Ciresan et al. 2010), and those "
            "strengths beat Simard's alpha 34 / sigma 4 here by 0.13 points at the same cost; dropout with "
            "max-norm c = 3-4 gives 98.9-99.05 % without augmentation (Srivastava et al. 2014). Distortions drawn "
            "afresh every batch already keep the network from fitting its training set, so dropout on top "
            "only cost accuracy; 100 epochs fit in 20 minutes on 2 idle cores (both measured in bench/RESULTS.md, "
            "'The recipes on MNIST')",
        ),
        Recipe(
            "classic_fullbatch",
            "784-128-10 ReLU, full-batch gradient descent (plain SGD, learning rate 0.1, "
            "constant), no dropout, 100 epochs",
            {
                "hidden_sizes": [128],
                "batch_size": "full",
                "optimizer": "sgd",
                "learning_rate": 0.1,
                "schedule": "constant",
                "dropout": 0.0,
                "epochs": 100,
                "shuffle": False,
            },
            "the full-batch gradient descent script the project started from (benchmark B4's network)",
        ),
        Recipe(
            "classic_sigmoid_mse",
            "784-64-10 sigmoid units with sigmoid outputs and squared error, plain SGD "
            "(learning rate 3, batch 32, constant), normal initialisation, no dropout, 10 epochs",
            {
                "hidden_sizes": [64],
                "activation": "sigmoid",
                "loss": "mse",
                "init": "normal",
                "optimizer": "sgd",
                "learning_rate": 3.0,
                "batch_size": 32,
                "schedule": "constant",
                "dropout": 0.0,
                "epochs": 10,
            },
            "the beginners' notebook formulation (as in tests/test_mnist.py)",
        ),
    )
}


def names() -> list[str]:
    """The recipe names, in the order of the table."""
    return list(RECIPES)


def get(name: str) -> dict[str, Any]:
    """The fit keyword arguments of recipe `name`: every option of `RECIPE_OPTIONS` (a fresh copy;
    pass them to `mlp.fit` as `**kwargs`, adding a seed and any run settings)."""
    if not isinstance(name, str) or name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {', '.join(map(repr, RECIPES))}")
    settings = copy.deepcopy({**_BASE, **RECIPES[name].settings})
    settings["hidden_sizes"] = list(settings["hidden_sizes"])
    return settings


def describe(name: str) -> str:
    """One paragraph on recipe `name`: its summary and where its choices come from."""
    get(name)
    recipe = RECIPES[name]
    return f"{recipe.name}: {recipe.summary}." + (f" Why: {recipe.why}." if recipe.why else "")
