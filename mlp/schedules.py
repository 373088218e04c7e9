"""Learning-rate schedules. A schedule maps (epoch, step within the epoch) to a learning rate, a
Python float, so changing it never touches the device. `ReduceOnPlateau` also watches a metric."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._validation import check_positive_int, check_rate


@dataclass
class Schedule:
    name = "constant"

    def start(self, base_lr: float, epochs: int, steps_per_epoch: int) -> None:
        self.base_lr, self.epochs, self.steps_per_epoch = base_lr, epochs, steps_per_epoch

    def lr(self, epoch: int, step: int) -> float:
        return self.base_lr

    def epoch_end(self, epoch: int, monitored: float) -> None:
        """Called after each epoch with the monitored loss (validation loss if any, else training)."""


Constant = Schedule


@dataclass
class StepDecay(Schedule):
    """lr = base * gamma ** (epoch // step_size)"""

    step_size: int = 10
    gamma: float = 0.1
    name = "step"

    def __post_init__(self) -> None:
        check_positive_int(self.step_size, "step_size")
        _check_factor("gamma", self.gamma)

    def lr(self, epoch: int, step: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


@dataclass
class ExponentialDecay(Schedule):
    """lr = base * gamma ** epoch"""

    gamma: float = 0.95
    name = "exponential"

    def __post_init__(self) -> None:
        _check_factor("gamma", self.gamma)

    def lr(self, epoch: int, step: int) -> float:
        return self.base_lr * self.gamma**epoch


@dataclass
class CosineDecay(Schedule):
    """Linear warm-up from 0 over `warmup_epochs`, then a half cosine from base down to `min_lr`,
    evaluated per step so the decay is smooth even over a few epochs."""

    warmup_epochs: float = 0.0
    min_lr: float = 0.0
    name = "cosine"

    def __post_init__(self) -> None:
        check_rate(self.warmup_epochs, "warmup_epochs")
        check_rate(self.min_lr, "min_lr")

    def lr(self, epoch: int, step: int) -> float:
        progress = epoch + step / self.steps_per_epoch
        if progress < self.warmup_epochs:
            return self.base_lr * (progress + 1.0 / self.steps_per_epoch) / self.warmup_epochs
        span = max(self.epochs - self.warmup_epochs, 1e-12)
        fraction = min((progress - self.warmup_epochs) / span, 1.0)
        return self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (1.0 + math.cos(math.pi * fraction))


@dataclass
class ReduceOnPlateau(Schedule):
    """Multiply the rate by `factor` when the monitored loss has not improved by `min_delta` for
    `patience` epochs; never below `min_lr`."""

    factor: float = 0.1
    patience: int = 3
    min_delta: float = 1e-4
    min_lr: float = 0.0
    name = "plateau"

    def __post_init__(self) -> None:
        _check_factor("factor", self.factor)
        check_positive_int(self.patience, "patience", allow_zero=True)

    def start(self, base_lr: float, epochs: int, steps_per_epoch: int) -> None:
        super().start(base_lr, epochs, steps_per_epoch)
        self.current, self.best, self.waited = base_lr, math.inf, 0

    def lr(self, epoch: int, step: int) -> float:
        return self.current

    def epoch_end(self, epoch: int, monitored: float) -> None:
        if monitored < self.best - self.min_delta:
            self.best, self.waited = monitored, 0
            return
        self.waited += 1
        if self.waited > self.patience:
            self.current = max(self.current * self.factor, self.min_lr)
            self.waited = 0


SCHEDULES = {cls.name: cls for cls in (Schedule, StepDecay, ExponentialDecay, CosineDecay, ReduceOnPlateau)}


def make_schedule(spec: str | Schedule | None) -> Schedule:
    """A Schedule from a name ('cosine'), None (constant) or an instance (returned as is)."""
    if spec is None:
        return Schedule()
    if isinstance(spec, Schedule):
        return spec
    try:
        return SCHEDULES[spec]()
    except (KeyError, TypeError):
        raise ValueError(f"unknown schedule {spec!r}; choose one of {', '.join(SCHEDULES)}") from None


def _check_factor(name: str, value: float) -> None:
    check_rate(value, name, low_inclusive=False, high=1.0, high_inclusive=True)
