"""The vocabulary of grading specs (trusted side): exercises, probes and how answers are compared.

An :class:`Exercise` is one graded check cell of an instructor notebook (its ``grade_id``,
points, the names the notebook must define). ``make(rng)`` draws this run's probes: each
:class:`Probe` is a request the sandbox answers with plain data (see ``harness.py``) and either
an ``expected`` value, compared like ``d2lopt.exercises.check_close``, or a ``judge``.
Reference values are computed here, never in the sandbox.
"""
import re
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np


@dataclass
class Probe:
    request: dict
    hint: str
    expected: object = None
    rtol: float = 1e-9
    atol: float = 1e-12
    judge: Optional[Callable] = None   # judge(record) -> (passed, detail); record["ok"] = the answer


@dataclass
class Exercise:
    check_id: str
    points: float
    names: tuple
    make: Callable                       # make(rng) -> [Probe, ...]
    notes: str = field(default="")


def tensor(x):
    """A float64 tensor argument for a request."""
    x = np.asarray(x, dtype=np.float64)
    return {"tensor": x.ravel().tolist(), "shape": list(x.shape)}


def function(name, **params):
    """A callable argument for a request (built by name in the sandbox, see harness.FUNCTIONS)."""
    return {"function": name, "params": params}


def call(name, *args, return_args=False, **kwargs):
    request = {"kind": "call", "name": name, "args": list(args), "kwargs": kwargs}
    if return_args:
        request["return_args"] = True
    return request


def value(name):
    return {"kind": "value", "name": name}


def to_array(x):
    """float64 ndarray from answer data (numbers, lists, {"shape", "data"}), or None."""
    if isinstance(x, dict):
        if "shape" in x and "data" in x:
            try:
                return np.asarray(x["data"], dtype=np.float64).reshape(x["shape"])
            except (TypeError, ValueError):
                return None
        return None
    if isinstance(x, (bool, int, float, np.floating, np.integer)):
        return np.asarray(x, dtype=np.float64)
    if isinstance(x, np.ndarray):
        return x.astype(np.float64)
    if isinstance(x, (list, tuple)):
        parts = [to_array(v) for v in x]
        if any(p is None for p in parts):
            return None
        if not parts:
            return np.zeros(0)
        if all(p.shape == parts[0].shape for p in parts):
            return np.stack(parts)
    return None


def safe_name(name):
    """A type name from the sandbox, or "object" if it is not a plain identifier."""
    name = str(name)
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,39}", name) else "object"


def kind(x):
    if isinstance(x, dict) and "type" in x:
        return safe_name(x["type"])
    return {"list": "sequence", "dict": "mapping", "float": "number"}.get(type(x).__name__, "object")


def compare(got, expected, rtol, atol):
    """``(passed, gap, detail)``: elementwise ``|got - expected| <= atol + rtol |expected|``."""
    want = to_array(expected)
    if want is None:                      # a heterogeneous tuple, e.g. (tensor, float)
        if not isinstance(got, list) or len(got) != len(expected):
            return False, None, f"got a {kind(got)}, expected a sequence of {len(expected)} items"
        gap = 0.0
        for g, e in zip(got, expected):
            ok, g_gap, detail = compare(g, e, rtol, atol)
            if not ok:
                return False, g_gap, detail
            gap = max(gap, g_gap or 0.0)
        return True, gap, None
    have = to_array(got)
    if have is None:
        if kind(got) == "NoneType" or (isinstance(got, list) and any(kind(g) == "NoneType" for g in got)):
            return False, None, "got None: does your function end with a return statement?"
        return False, None, f"got a {kind(got)} that is not an array of numbers"
    if have.shape != want.shape:
        if have.size == want.size == 1:      # a number returned as a 1-element tensor, or back
            have = have.reshape(want.shape)
        else:
            return False, None, f"shape {tuple(have.shape)}, expected shape {tuple(want.shape)}"
    if not np.all(np.isfinite(have)):
        return False, None, "got NaN or inf"
    gap = float(np.max(np.abs(have - want))) if have.size else 0.0
    return bool(np.all(np.abs(have - want) <= atol + rtol * np.abs(want))), gap, None


def gap_detail(gap):
    return None if gap is None else f"max |got - expected| = {gap:.1e}"


def update_mismatch(answer, want_params, want_states, params_hint, state_hint):
    """The verdict ``(False, hint)`` on the first way a book-style update's answer (a dict with
    ``params``, ``states`` and ``grad_left``) differs from the reference, or None if it does not.

    ``params_hint`` is said when the parameters differ (unless the gradient was left in
    ``p.grad``), ``state_hint`` when they match but the stored state does not; each is followed
    by the size of the gap.
    """
    if not isinstance(answer, dict) or not isinstance(answer.get("params"), list):
        return False, "the update could not be run"
    ok, gap, detail = compare(answer["params"], want_params, 1e-8, 1e-11)
    if not ok:
        if answer.get("grad_left"):
            return False, "the gradient is left in p.grad after the step: zero it at the end of the update"
        return False, f"{params_hint} ({detail or gap_detail(gap)})"
    ok, gap, detail = compare(answer.get("states"), want_states, 1e-8, 1e-11)
    if not ok:
        return False, (f"the parameters match but the stored state does not: {state_hint} "
                       f"({detail or gap_detail(gap)})")
    return None
