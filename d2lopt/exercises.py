"""Check helpers that the exercise (nbgrader "grade") cells of the chapter notebooks call.

Every helper either prints one line ``[check <name>] pass`` or raises
``AssertionError("<name>: <hint>")``; the hint says what to look at, never the answer.
When the environment variable ``D2L_GRADE_LOG`` names a file, each call also appends
one JSON line ``{"check": name, "passed": bool, "hint": str | None, "detail": str | None}``
to it, for tools that want a record of the checks. ``tools/grade.py`` does not use these
helpers at all: it grades each exercise from its own trusted specs, outside the student's code.

>>> from d2lopt import exercises
>>> exercises.check_close("sum", 0.1 + 0.2, 0.3, hint="add the two numbers")
[check sum] pass
"""
import json
import math
import os

import numpy as np

GRADE_LOG_ENV = "D2L_GRADE_LOG"

__all__ = ["GRADE_LOG_ENV", "check_close", "check_true", "check_optimizer"]


def _validate_name(name):
    if not isinstance(name, str) or not name.strip() or "\n" in name:
        raise ValueError(f"name must be a non-empty one-line string, got {name!r}")


def _validate_hint(hint, argname="hint"):
    if not isinstance(hint, str) or not hint.strip():
        raise ValueError(f"{argname} must be a non-empty string, got {hint!r}")


def _log(name, passed, hint, detail):
    path = os.environ.get(GRADE_LOG_ENV)
    if not path:
        return
    record = {"check": name, "passed": bool(passed), "hint": hint, "detail": detail}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def _report(name, passed, hint, detail=None):
    """Log the outcome, then print the pass line or raise the hint."""
    _log(name, passed, None if passed else hint, None if passed else detail)
    if passed:
        print(f"[check {name}] pass")
        return
    message = f"{name}: {hint}"
    if detail:
        message += f" ({detail})"
    raise AssertionError(message)


def _as_float_array(x):
    """float64 ndarray from a number, a nested sequence, a numpy array or a torch tensor."""
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch
        x = x.detach().cpu().double().numpy()
    elif isinstance(x, (list, tuple)) and any(hasattr(v, "detach") for v in x):
        x = [v.detach().cpu().double().numpy() if hasattr(v, "detach") else v for v in x]
    return np.asarray(x, dtype=np.float64)


def _holds_none(x, depth=0):
    """Is ``x`` None, or a (nested) list or tuple holding None? (np.asarray turns None into NaN.)"""
    if x is None:
        return True
    if isinstance(x, (list, tuple)) and depth < 3:
        return any(_holds_none(v, depth + 1) for v in x)
    return False


def check_close(name, got, expected, *, rtol=1e-5, atol=1e-8, hint):
    """Check ``|got - expected| <= atol + rtol * |expected|`` elementwise.

    ``got`` and ``expected`` may be numbers, (nested) sequences, numpy arrays or torch
    tensors; they must have the same shape, and a NaN or inf in ``got`` fails. A ``got`` of None
    (or holding None) fails with a reminder to ``return`` the result. On failure
    the message carries the hint and the largest absolute gap, never the expected value.
    """
    _validate_name(name)
    _validate_hint(hint)
    for argname, tol in (("rtol", rtol), ("atol", atol)):
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not math.isfinite(tol) or tol < 0:
            raise ValueError(f"{argname} must be a finite number >= 0, got {tol!r}")
    try:
        want = _as_float_array(expected)
    except (TypeError, ValueError) as err:
        raise TypeError(f"expected must be numeric (number, sequence, array or tensor): {err}") from None
    if _holds_none(got):
        return _report(name, False, hint, "got None: does your function end with a return statement?")
    try:
        have = _as_float_array(got)
    except (TypeError, ValueError):
        return _report(name, False, hint, f"got a {type(got).__name__} that is not an array of numbers")
    if have.shape != want.shape:
        return _report(name, False, hint, f"shape {have.shape}, expected shape {want.shape}")
    if not np.all(np.isfinite(have)):
        return _report(name, False, hint, "got NaN or inf")
    gap = float(np.max(np.abs(have - want))) if have.size else 0.0
    passed = bool(np.all(np.abs(have - want) <= atol + rtol * np.abs(want)))
    return _report(name, passed, hint, f"max |got - expected| = {gap:.1e}")


def check_true(name, condition, *, hint):
    """Check that ``condition`` is truthy (a bool, or anything with a single truth value)."""
    _validate_name(name)
    _validate_hint(hint)
    try:
        passed = bool(condition)
    except Exception as err:  # e.g. a multi-element tensor or array
        return _report(name, False, hint, f"condition has no single truth value ({type(err).__name__})")
    return _report(name, passed, hint)


def check_optimizer(name, result, *, hint=None):
    """Turn a ``d2lopt.checks`` result into a pass line or an ``AssertionError``.

    ``result`` is duck-typed: it needs ``.passed``; on failure the message uses ``hint`` if
    given, else ``result.diagnosis``, else ``result.verdict``, and adds ``result.gap``.
    """
    _validate_name(name)
    if hint is not None:
        _validate_hint(hint)
    if not hasattr(result, "passed"):
        raise TypeError(
            f"result must be a CheckResult (an object with .passed, .gap, .verdict, .diagnosis), "
            f"got {type(result).__name__}"
        )
    passed = bool(result.passed)
    message = hint or getattr(result, "diagnosis", None) or getattr(result, "verdict", None)
    message = str(message) if message else "does not match the reference"
    gap = getattr(result, "gap", None)
    detail = None
    if isinstance(gap, (int, float)) and not isinstance(gap, bool):
        detail = f"gap = {gap:.1e}"
    return _report(name, passed, message, detail)
