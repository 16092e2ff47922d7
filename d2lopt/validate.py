"""Argument checks shared by the package: each raises a TypeError/ValueError that names the
argument and the allowed range (e.g. ``lr must be a finite number >= 0, got -0.1``)."""
import math
from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
import torch

__all__ = ["is_int", "check_number", "check_int", "check_betas", "check_mapping",
           "check_callable", "optional", "check_finite_rows", "check_some_finite",
           "check_points_2d", "check_returned", "check_flag", "check_dtype", "check_schedule",
           "CheckedGroups"]

FLOAT32_MAX = float(np.finfo(np.float32).max)


def is_int(value):
    """True for Python and numpy integers; False for bools (True is not the integer 1 here)."""
    return isinstance(value, Integral) and not isinstance(value, (bool, np.bool_))


def check_number(name, value, *, low=None, high=None, low_open=False, high_open=False):
    """Return ``float(value)`` if it is a finite real number in the stated range, else raise.

    One-element tensors and numpy scalars are accepted; bools are not numbers here.
    """
    if hasattr(value, "numel") and not isinstance(value, bool):
        if value.numel() != 1:
            raise TypeError(f"{name} must be a real number, got a tensor of shape "
                            f"{tuple(value.shape)}")
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        bounds.append(f"{'<' if high_open else '<='} {high:g}")
    ok = math.isfinite(value)
    if low is not None:
        ok = ok and (value > low if low_open else value >= low)
    if high is not None:
        ok = ok and (value < high if high_open else value <= high)
    if not ok:
        raise ValueError(f"{name} must be a finite number {' and '.join(bounds)}, got {value}")
    return value


def check_int(name, value, *, low=0):
    """Return ``int(value)`` if it is an integer >= ``low`` (numpy integers too), else raise."""
    if not is_int(value):
        raise TypeError(f"{name} must be an int >= {low}, got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value}")
    return int(value)


def check_betas(betas, *, name="betas", beta1_low_open=False):
    """Validate a pair (beta1, beta2) with 0 <= beta < 1 (0 < beta1 if ``beta1_low_open``)."""
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"{name} must be a pair (beta1, beta2), got {betas!r}")
    beta1 = check_number(f"{name}[0]", betas[0], low=0.0, high=1.0,
                         low_open=beta1_low_open, high_open=True)
    beta2 = check_number(f"{name}[1]", betas[1], low=0.0, high=1.0, high_open=True)
    return beta1, beta2


def check_mapping(name, value, example="{'lr': 0.1}"):
    """Return ``value`` if it is a mapping (a dict of hyperparameters), else raise TypeError."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict such as {example}, got "
                        f"{type(value).__name__} {value!r}")
    return value


def check_callable(name, value, what="callable"):
    """Return ``value`` if it is callable, else raise ``TypeError("<name> must be <what>, ...")``."""
    if not callable(value):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__}")
    return value


def optional(check):
    """The check ``check(name, value)`` that also lets None through (an unset option)."""
    return lambda name, value: None if value is None else check(name, value)


def check_finite_rows(where, table, rows=None, *, limit=FLOAT32_MAX):
    """Raise ValueError naming ``where`` and the row unless every entry is finite and |x| <= limit.

    ``table`` is 2-D; ``rows[i]`` is how row i is called in the message (e.g. its line number in
    the file; default: ``row i``). The default limit is float32's largest value, so data read as
    float32 cannot overflow to inf.
    """
    table = np.asarray(table, dtype=np.float64)
    bad = ~np.isfinite(table) | (np.abs(table) > limit)
    if bad.any():
        i, j = (int(k) for k in np.argwhere(bad)[0])
        label = f"line {rows[i]}" if rows is not None else f"row {i}"
        raise ValueError(f"{where}, {label}, column {j + 1}: {table[i, j]!r} is not a finite "
                         f"number within float32 range (|x| <= {limit:.4g})")
    return table


def check_some_finite(name, series):
    """Raise ValueError naming ``name`` unless one of the arrays in ``series`` holds a finite value.

    Plotting nothing but empty or all-NaN data draws an empty figure or fails deep inside numpy.
    """
    for values in series:
        if hasattr(values, "detach"):
            values = values.detach().cpu().numpy()
        if np.isfinite(np.asarray(values, dtype=float)).any():
            return
    raise ValueError(f"{name} must hold at least one finite value, got no data or only NaN/inf")


def check_points_2d(name, points):
    """Return ``points`` as an (n, 2) float array with n >= 1 and one finite point, else raise."""
    try:
        array = np.asarray([[float(a), float(b)] for a, b in points], dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of (x1, x2) points, got "
                        f"{type(points).__name__}") from None
    if len(array) == 0:
        raise ValueError(f"{name} must hold at least one (x1, x2) point, got an empty "
                         f"{type(points).__name__}")
    return array


def check_returned(name, value, fields):
    """Return ``tuple(value)`` if it holds one item per name in ``fields``, else raise.

    For callbacks: ``x1, x2, s1, s2 = check_returned("trainer", out, ("x1", "x2", "s1", "s2"))``.
    """
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must return {len(fields)} values ({', '.join(fields)}), got "
                        f"{type(value).__name__} {value!r}") from None
    if len(items) != len(fields):
        raise ValueError(f"{name} must return {len(fields)} values ({', '.join(fields)}), got "
                         f"{len(items)}: {value!r}")
    return items


class CheckedGroups:
    """Mixin for a ``torch.optim.Optimizer``: per-group settings get the constructor's checks.

    ``_group_checks`` maps a setting to ``check(name, value)``; the settings a param group gives
    itself (in the constructor's list of dicts or in ``add_param_group``) are checked before the
    group is added, and the message names the group, e.g. ``param_groups[1]['lr'] must be ...``.
    """
    _group_checks = {}

    def add_param_group(self, param_group):
        if isinstance(param_group, Mapping):
            where = f"param_groups[{len(getattr(self, 'param_groups', ()))}]"
            for key, check in self._group_checks.items():
                if key in param_group:
                    check(f"{where}[{key!r}]", param_group[key])
        super().add_param_group(param_group)


def check_flag(name, value):
    """Return ``value`` if it is a bool, else raise ``TypeError`` naming ``name``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return value


def check_dtype(dtype, name="dtype"):
    """Return ``dtype`` if it is None or a floating torch dtype, else raise TypeError."""
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"{name} must be None or a floating torch dtype such as torch.float64, "
                        f"got {dtype!r}")
    return dtype


def check_schedule(schedule, name="schedule"):
    """Return ``schedule`` if it is None or a callable ``lr = s(t)``, else raise TypeError."""
    if schedule is not None:
        check_callable(name, schedule, "None or a callable lr = s(t) (see d2lopt.schedules)")
    return schedule
