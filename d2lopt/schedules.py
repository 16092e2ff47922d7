"""Learning-rate schedules as pure functions of the step, and one adapter that drives torch.optim.

A schedule is a callable ``lr = s(t)``, where ``t`` counts the updates already made (``t = 0`` for
the first update, as optax counts). It keeps no state, so calling it in any order, or plotting it,
changes nothing. Each schedule is a frozen dataclass named like its constructor, so ``repr(s)`` is
the call that rebuilds it. Schedules with an end (``polynomial``, ``cosine``, ``one_cycle``,
``linear``) hold their final value after it; torch's ``CosineAnnealingLR`` rises again instead.

``attach(optimizer, s)`` (from `d2lopt.lr_scheduler`, re-exported here, like ``per_epoch``) drives a
torch optimizer: with the usual ``opt.step(); sched.step()`` loop, update ``t`` runs at ``s(t)``.
"""
from __future__ import annotations

import dataclasses
import functools
import math

from d2lopt.lr_scheduler import ScheduleLR, attach, per_epoch
from d2lopt.validate import check_callable, check_int, check_number, optional

__all__ = ["constant", "square_root", "factor", "multi_step", "exponential", "polynomial",
           "cosine", "triangular", "cosine_restarts", "one_cycle", "warmup", "linear",
           "values", "attach", "per_epoch", "ScheduleLR"]

_frozen = dataclasses.dataclass(frozen=True)


def _cos_anneal(start, end, frac):
    """Half a cosine from ``start`` (frac = 0) to ``end`` (frac = 1)."""
    return end + (start - end) * (1.0 + math.cos(math.pi * frac)) / 2.0


_RATE = functools.partial(check_number, low=0.0)                          # finite, >= 0
_POSITIVE = functools.partial(check_number, low=0.0, low_open=True)       # finite, > 0
_DECAY = functools.partial(check_number, low=0.0, high=1.0, low_open=True)  # in (0, 1]
_FRACTION = functools.partial(check_number, low=0.0, high=1.0)            # in [0, 1]
_COUNT = functools.partial(check_int, low=0)                              # int >= 0
_STEPS = functools.partial(check_int, low=1)                              # int >= 1


class _Schedule:
    """Checks the fields (``_checks``: name -> check) at construction and ``t`` at each call."""
    _checks = {}

    def __post_init__(self):
        for name, check in self._checks.items():
            object.__setattr__(self, name, check(name, getattr(self, name)))

    def __call__(self, t):
        return float(self._lr(_COUNT("t", t)))


@_frozen
class constant(_Schedule):
    """lr(t) = base_lr."""
    base_lr: float
    _checks = {"base_lr": _RATE}

    def _lr(self, t):
        return self.base_lr


@_frozen
class square_root(_Schedule):
    """lr(t) = base_lr / sqrt(t + 1): torch ``LambdaLR(opt, lambda t: (t + 1) ** -0.5)``."""
    base_lr: float
    _checks = {"base_lr": _RATE}

    def _lr(self, t):
        return self.base_lr * (t + 1) ** -0.5


@_frozen
class factor(_Schedule):
    """lr(t) = max(min_lr, base_lr * factor**t), so the first update runs at base_lr.

    (The book's stateful ``FactorScheduler`` multiplies before returning: its n-th call gives
    max(stop_factor_lr, base_lr * factor**(n+1)).)
    """
    base_lr: float
    factor: float
    min_lr: float = 0.0
    _checks = {"base_lr": _RATE, "factor": _DECAY, "min_lr": _RATE}

    def _lr(self, t):
        return max(self.min_lr, self.base_lr * self.factor ** t)


def _milestones(name, value):
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a sequence of ints >= 0, got {value!r}")
    return tuple(sorted(_COUNT(name, m) for m in value))


@_frozen
class multi_step(_Schedule):
    """lr(t) = base_lr * gamma ** #{m in milestones : m <= t}: torch ``MultiStepLR``.

    The rate drops *at* each milestone; a repeated milestone drops it twice, as in torch.
    """
    base_lr: float
    milestones: tuple
    gamma: float
    _checks = {"base_lr": _RATE, "milestones": _milestones, "gamma": _DECAY}

    def _lr(self, t):
        return self.base_lr * self.gamma ** sum(m <= t for m in self.milestones)


@_frozen
class exponential(_Schedule):
    """lr(t) = base_lr * gamma**t: torch ``ExponentialLR``."""
    base_lr: float
    gamma: float
    _checks = {"base_lr": _RATE, "gamma": _DECAY}

    def _lr(self, t):
        return self.base_lr * self.gamma ** t


@_frozen
class polynomial(_Schedule):
    """lr(t) = (base_lr - final_lr) * (1 - min(t, T)/T)**p + final_lr; T = total_steps, p = power.

    final_lr = 0 is torch ``PolynomialLR(total_iters=T, power=p)``; the general form is optax's
    ``polynomial_schedule(init_value, end_value, power, transition_steps)``.
    """
    base_lr: float
    total_steps: int
    power: float = 1.0
    final_lr: float = 0.0
    _checks = {"base_lr": _RATE, "total_steps": _STEPS, "power": _POSITIVE, "final_lr": _RATE}

    def _lr(self, t):
        frac = 1.0 - min(t, self.total_steps) / self.total_steps
        return (self.base_lr - self.final_lr) * frac ** self.power + self.final_lr


@_frozen
class cosine(_Schedule):
    """Linear warmup over W steps, then half a cosine from base_lr to final_lr at t = T, held after.

    With W = warmup_steps, T = total_steps (T counts the warmup, as in the book and optax),
    b = warmup_begin_lr:

        t < W:    base_lr * (t + 1) / W          if b is None (the default)
                  b + (base_lr - b) * t / W      if b is given
        t >= W:   final_lr + (base_lr - final_lr) * (1 + cos(pi * min(t - W, T - W) / (T - W))) / 2

    The default ramp (schedule-free's) never runs the first update at 0 and reaches base_lr at
    t = W - 1; the given-b ramp is the book's ``CosineScheduler`` and optax's
    ``warmup_cosine_decay_schedule``, which reach base_lr at t = W. Both join the cosine
    continuously. optax's ``cosine_decay_schedule(init_value, decay_steps, alpha)`` takes alpha as
    a *fraction* of init_value: ``cosine(init_value, decay_steps, final_lr=alpha * init_value)``.
    torch's ``CosineAnnealingLR(T_max=T, eta_min)`` agrees up to t = T and rises again after it.
    """
    base_lr: float
    total_steps: int
    final_lr: float = 0.0
    warmup_steps: int = 0
    warmup_begin_lr: float | None = None
    _checks = {"base_lr": _RATE, "total_steps": _STEPS, "final_lr": _RATE,
               "warmup_steps": _COUNT, "warmup_begin_lr": optional(_RATE)}

    def __post_init__(self):
        super().__post_init__()
        if self.warmup_steps >= self.total_steps:
            raise ValueError(f"warmup_steps must be an int in [0, total_steps) = "
                             f"[0, {self.total_steps}), got {self.warmup_steps!r}")

    def _lr(self, t):
        w, total, base, begin = (self.warmup_steps, self.total_steps, self.base_lr,
                                 self.warmup_begin_lr)
        if t < w:
            return base * ((t + 1) / w) if begin is None else begin + (base - begin) * t / w
        return _cos_anneal(base, self.final_lr, min(t - w, total - w) / (total - w))


@_frozen
class triangular(_Schedule):
    """Cyclical rate (Smith 2017): torch ``CyclicLR(mode='triangular')``.

    Up from base_lr to max_lr in step_size_up steps, down in step_size_down (default: the same),
    repeated. With L = up + down, r = up / L: cycle = floor(1 + t/L), x = 1 + t/L - cycle,
    scale = x/r if x <= r else (x - 1)/(r - 1), lr = base_lr + (max_lr - base_lr) * scale.
    """
    base_lr: float
    max_lr: float
    step_size_up: int
    step_size_down: int | None = None
    _checks = {"base_lr": _RATE, "max_lr": _RATE, "step_size_up": _STEPS,
               "step_size_down": optional(_STEPS)}

    def _lr(self, t):
        up = float(self.step_size_up)
        total = up + (up if self.step_size_down is None else float(self.step_size_down))
        cycle = math.floor(1 + t / total)
        x, ratio = 1.0 + t / total - cycle, up / total
        scale = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
        return self.base_lr + (self.max_lr - self.base_lr) * scale


@_frozen
class cosine_restarts(_Schedule):
    """SGDR (Loshchilov & Hutter 2017): torch ``CosineAnnealingWarmRestarts(T_0, T_mult, eta_min)``.

    Cycle i lasts T_i = T_0 * T_mult**i steps; with T_cur the steps since the last restart,
    lr = final_lr + (base_lr - final_lr) * (1 + cos(pi * T_cur / T_i)) / 2. As in torch, a cycle
    restarts before reaching final_lr (its last step is T_cur = T_i - 1).
    """
    base_lr: float
    T_0: int
    T_mult: int = 1
    final_lr: float = 0.0
    _checks = {"base_lr": _RATE, "T_0": _STEPS, "T_mult": _STEPS, "final_lr": _RATE}

    def _lr(self, t):
        t_cur, t_i = (t % self.T_0 if self.T_mult == 1 else t), self.T_0
        while t_cur >= t_i:
            t_cur, t_i = t_cur - t_i, t_i * self.T_mult
        return _cos_anneal(self.base_lr, self.final_lr, t_cur / t_i)


@_frozen
class one_cycle(_Schedule):
    """One-cycle policy (Smith & Topin 2019): torch ``OneCycleLR``, anneal_strategy='cos'.

    With N = total_steps, P = pct_start * N - 1, start = max_lr / div_factor and
    end = start / final_div_factor: half a cosine from start up to max_lr over [0, P] (the peak is
    at t = P, as in torch), then down to end at t = N - 1, held there for t >= N (where torch
    raises). optax's ``cosine_onecycle_schedule`` peaks one step later.
    """
    max_lr: float
    total_steps: int
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    _checks = {"max_lr": _RATE, "total_steps": _STEPS,
               "pct_start": _FRACTION,
               "div_factor": _POSITIVE, "final_div_factor": _POSITIVE}

    def __post_init__(self):
        super().__post_init__()
        if self.pct_start * self.total_steps == 1:
            raise ValueError(f"pct_start must not be 1 / total_steps (an empty warm-up phase), "
                             f"got {self.pct_start!r}")

    def _lr(self, t):
        last, peak = self.total_steps - 1, self.pct_start * self.total_steps - 1
        t, start = min(t, last), self.max_lr / self.div_factor
        if t <= peak:
            return _cos_anneal(start, self.max_lr, t / peak)
        return _cos_anneal(self.max_lr, start / self.final_div_factor, (t - peak) / (last - peak))


@_frozen
class warmup(_Schedule):
    """Put a linear warmup of W = warmup_steps in front of any schedule s.

    With peak = s(0): lr(t) = peak * (t + 1) / W for t < W (or b + (peak - b) * t / W when
    begin_lr = b is given), then lr(t) = s(t - W): the wrapped schedule starts after the warmup,
    so its own horizon counts from there. ``warmup(cosine(lr, T - W), W)`` equals
    ``cosine(lr, T, warmup_steps=W)``.
    """
    schedule: _Schedule
    warmup_steps: int
    begin_lr: float | None = None
    _checks = {"schedule": functools.partial(check_callable, what="callable as schedule(t)"),
               "warmup_steps": _STEPS, "begin_lr": optional(_RATE)}

    def _lr(self, t):
        w, begin = self.warmup_steps, self.begin_lr
        if t >= w:
            return self.schedule(t - w)
        peak = self.schedule(0)
        return peak * ((t + 1) / w) if begin is None else begin + (peak - begin) * t / w


@_frozen
class linear(_Schedule):
    """lr(t) = start_lr + (end_lr - start_lr) * min(t, T) / T, T = total_steps.

    torch ``LinearLR(start_factor, end_factor, total_iters=T)`` on base rate b is
    ``linear(b * start_factor, b * end_factor, T)``.
    """
    start_lr: float
    end_lr: float
    total_steps: int
    _checks = {"start_lr": _RATE, "end_lr": _RATE, "total_steps": _STEPS}

    def _lr(self, t):
        frac = min(t, self.total_steps) / self.total_steps
        return self.start_lr + (self.end_lr - self.start_lr) * frac


def values(schedule, steps):
    """The rates ``[schedule(0), ..., schedule(steps - 1)]`` as floats, for tables and plots."""
    return [float(schedule(t)) for t in range(_COUNT("steps", steps))]

