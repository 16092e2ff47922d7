"""Argument checks shared by the package: each raises a TypeError/ValueError that names the
argument and the allowed range (e.g. ``lr must be a finite number >= 0, got -0.1``)."""
import math
from numbers import Integral, Real

__all__ = ["check_number", "check_int"]


def check_number(name, value, *, low=None, high=None, low_open=False, high_open=False):
    """Return ``float(value)`` if it is a finite real number in the stated range, else raise.

    One-element tensors and numpy scalars are accepted; bools are not numbers here.
    """
    if hasattr(value, "numel") and not isinstance(value, bool):
        if value.numel() != 1:
            raise TypeError(f"{name} must be a real number, got a tensor of shape "
                            f"{tuple(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real):
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
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int >= {low}, got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value}")
    return int(value)
