"""Does my from-scratch update match the reference? Numerical checks that come with hints.

:func:`check_optimizer` runs a book-style update ``fn(params, states, hyperparams)`` and a
reference (a ``torch.optim`` class or another book-style function) on the same start
``[w, b]`` (shapes ``(feature_dim, 1)``, ``(1,)``) and the same seeded gradients, injected as
autograd does (*added* into ``p.grad``, so a gradient that is never cleared shows). Phase 1 runs
``steps`` steps with gradients ~ N(0, 1)·grad_scale; phase 2 restarts and runs ``min(steps, 20)``
steps with gradients ``probe_scale`` (1e-4) times smaller, where eps (value and placement)
dominates. ``gap`` is max |Δ| over parameters, steps and both phases. On a mismatch the
diagnosis tries exact probes (NaN, parameters never changed, gradient left in ``p.grad``), then
replays known-wrong variants of the reference (wrong sign, bias correction shifted or missing,
eps misplaced or of another value, a missing (1 - β), ...) and names one only if it explains the
gap at least 20x better than the reference does.

>>> print(check_optimizer(adam, init_adam_states, torch.optim.Adam, {'lr': 0.01, 't': 1}))
max |Δ| vs torch.optim.Adam over 100 steps within 1e-6 (match)
"""
import copy
import functools
import inspect
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from d2lopt import mistakes
from d2lopt.schedulefree import is_schedule_free
from d2lopt.validate import check_callable, check_int, check_number

__all__ = ["CheckResult", "check_optimizer", "check_function", "assert_passes", "show_gap"]

_DEFAULT_TOL = {torch.float32: 1e-6, torch.float64: 1e-12}
_PROBE_STEPS = 20
# Book hyperparameter name -> torch.optim keyword ('t' is the book's step counter: dropped).
_TO_TORCH = {"lr": "lr", "momentum": "momentum", "gamma": "alpha", "alpha": "alpha", "rho": "rho",
             "eps": "eps", "betas": "betas", "weight_decay": "weight_decay",
             "dampening": "dampening", "nesterov": "nesterov"}



@dataclass(frozen=True)
class CheckResult:
    """Outcome of a check: ``gap`` (max |Δ|), ``passed``, a one-sentence ``verdict``, and a
    ``diagnosis`` hint (None when passed or when nothing could be said)."""
    gap: float
    passed: bool
    verdict: str
    diagnosis: Optional[str]
    steps: int
    reference_name: str
    tol: float = 0.0
    unit: str = "steps"
    bound: str = ""

    def __str__(self):
        # A match prints the tolerance it met, never the gap itself: a gap at round-off level
        # differs in its digits from one CPU's kernels to another's, the tolerance does not.
        head = f"max |Δ| vs {self.reference_name} over {self.steps} {self.unit}"
        bound = self.bound or _sci(self.tol)
        if self.passed:
            return f"{head} within {bound} (match)"
        return f"{head}: {self.gap:.1e}, tolerance {bound} (MISMATCH)"

    def __repr__(self):
        return (f"CheckResult(gap={self.gap:.1e}, passed={self.passed}, steps={self.steps}, "
                f"reference_name={self.reference_name!r}, diagnosis={self.diagnosis!r})")


def _sci(x):
    """``1e-06`` -> ``1e-6``: a tolerance in its shortest scientific form."""
    mantissa, exponent = f"{x:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def show_gap(gap, tol=1e-12):
    """A gap as a reader should see it: ``'< 1e-12'`` when it is below ``tol`` (round-off, whose
    digits differ from one CPU's kernels to another's), else its value to two digits."""
    gap = float(gap.detach()) if isinstance(gap, torch.Tensor) else float(gap)
    tol = float(tol)
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    if math.isnan(gap):
        return "nan"
    return f"< {_sci(tol)}" if gap < tol else f"{gap:.1e}"


def assert_passes(result):
    """Raise ``AssertionError(diagnosis or verdict)`` unless ``result.passed``; return result."""
    if not isinstance(result, CheckResult):
        raise TypeError(f"result must be a CheckResult, got {type(result).__name__}")
    if not result.passed:
        raise AssertionError(result.diagnosis or result.verdict)
    return result


def _fresh(obj, dtype):
    """Deep copy of a state structure, floating tensors cast to ``dtype`` (the book's
    ``init_*_states`` always build float32 zeros)."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().clone()
        return t.to(dtype) if t.is_floating_point() else t
    if isinstance(obj, list):
        return [_fresh(o, dtype) for o in obj]
    if type(obj) is tuple:
        return tuple(_fresh(o, dtype) for o in obj)
    if isinstance(obj, dict):
        return {k: _fresh(v, dtype) for k, v in obj.items()}
    return copy.deepcopy(obj)


def _run(make_step, start, grads):
    """Trajectory (steps, n) of ``make_step(params)()`` on injected gradients, and whether a
    gradient was left in ``p.grad`` after a step."""
    ps = [s.clone().requires_grad_(True) for s in start]
    step, traj, kept = make_step(ps), [], False
    for gs in grads:
        for p, g in zip(ps, gs):
            if p.grad is None:
                p.grad = g.clone()
            else:
                p.grad += g         # accumulate, as backward() does
        step()
        kept = kept or any(p.grad is not None and bool(p.grad.ne(0).any()) for p in ps)
        traj.append(mistakes.flatten(ps))
    return np.stack(traj), kept


def _book(fn, states, hp, dtype):
    """A ``make_step`` for a book-style update; each run gets fresh copies of states and hp."""
    def make_step(ps):
        return functools.partial(fn, list(ps), _fresh(states, dtype), copy.deepcopy(hp))
    return make_step


def _torch(cls, kwargs):
    def make_step(ps):
        opt = cls(ps, **kwargs)
        if is_schedule_free(opt):   # steps need train mode; the parameters compared are y
            opt.train()
        return lambda: (opt.step(), opt.zero_grad())
    return make_step


def _torch_name(cls):
    if getattr(torch.optim, cls.__name__, None) is cls:
        return f"torch.optim.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def _torch_kwargs(cls, hyperparams, reference_hyperparams):
    if reference_hyperparams is not None:
        return dict(reference_hyperparams)
    accepted, kw = inspect.signature(cls.__init__).parameters, {}
    for key, value in hyperparams.items():
        if key == "t":
            continue
        if key in ("beta1", "beta2"):
            betas = list(kw.get("betas", accepted["betas"].default if "betas" in accepted else ()))
            if len(betas) == 2:
                betas[key == "beta2"] = value
                kw["betas"] = tuple(betas)
                continue
        name = _TO_TORCH.get(key)
        if name is None or name not in accepted:
            raise ValueError(f"hyperparams key {key!r} has no counterpart in {_torch_name(cls)}; "
                             "pass reference_hyperparams explicitly")
        kw[name] = value
    return kw


def check_optimizer(step_fn, init_states, reference, hyperparams, reference_hyperparams=None, *,
                    steps=100, feature_dim=5, dtype=torch.float32, seed=0, grad_scale=1.0,
                    tol=None, probe_scale=1e-4):
    """Compare a book-style update with a reference on the same seeded random gradients.

    Args:
        step_fn: ``fn(params, states, hyperparams)`` that reads ``p.grad``, updates each ``p``
            in place under ``torch.no_grad()`` and zeroes ``p.grad`` (the book's style).
        init_states: the book's ``init_*_states`` (called with ``feature_dim``) or a ready
            state object (copied, never mutated). Its floating tensors are cast to ``dtype``.
        reference: a ``torch.optim.Optimizer`` class; or a book-style function (it starts
            from a copy of the same states), or a pair ``(fn, init_states)``.
        hyperparams: the dict for ``step_fn``; each run gets a deep copy, so the caller's
            ``'t'`` never advances.
        reference_hyperparams: keyword arguments for a torch reference. Default: translated
            from ``hyperparams``: lr→lr, momentum→momentum, gamma→alpha (RMSprop), rho→rho,
            eps/betas/weight_decay/dampening/nesterov unchanged, beta1/beta2→betas, 't'
            dropped, any other key a ValueError; unset options keep torch's defaults (so
            Adadelta keeps lr=1.0, the book's lr-free update). For a function reference the
            default is ``hyperparams``.
        steps: steps of phase 1 (the small-gradient phase 2 runs ``min(steps, 20)``).
        dtype: float32 (default tol 1e-6) or float64 (default tol 1e-12); others need tol.
        seed: seeds the start ``[w, b]`` ~ U(-1, 1) and the gradients ~ N(0, 1)·grad_scale.
        tol: tolerance on max |Δ|, scaled by max(1, largest |reference parameter|) since
            rounding grows with the parameters (the result's ``tol`` is the scaled one).
        probe_scale: gradient scale of phase 2 relative to phase 1.

    Returns:
        CheckResult; ``print(result)`` is one stable line for stored notebook outputs.
    """
    check_callable("step_fn", step_fn, "a callable fn(params, states, hyperparams)")
    for arg, value in (("hyperparams", hyperparams), ("reference_hyperparams", reference_hyperparams)):
        if not isinstance(value, dict) and (value is not None or arg == "hyperparams"):
            raise TypeError(f"{arg} must be a dict, got {type(value).__name__}")
    steps, feature_dim = check_int("steps", steps, low=1), check_int("feature_dim", feature_dim, low=1)
    seed = check_int("seed", seed, low=0)
    grad_scale = check_number("grad_scale", grad_scale, low=0.0, low_open=True)
    probe_scale = check_number("probe_scale", probe_scale, low=0.0, low_open=True)
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    if tol is None and dtype not in _DEFAULT_TOL:
        raise ValueError(f"tol must be given for dtype {dtype} (defaults exist for float32/float64)")
    tol = _DEFAULT_TOL[dtype] if tol is None else check_number("tol", tol, low=0.0)

    states = init_states(feature_dim) if callable(init_states) else init_states
    fam = (None, None)
    if isinstance(reference, type) and issubclass(reference, torch.optim.Optimizer):
        name = _torch_name(reference)
        kwargs = _torch_kwargs(reference, hyperparams, reference_hyperparams)
        ref_step, fam = _torch(reference, kwargs), mistakes.reference_family(reference, kwargs)
    elif callable(reference) or (isinstance(reference, tuple) and len(reference) == 2
                                 and callable(reference[0])):
        ref_fn, ref_init = reference if isinstance(reference, tuple) else (reference, None)
        ref_states = states if ref_init is None else (
            ref_init(feature_dim) if callable(ref_init) else ref_init)
        name = getattr(ref_fn, "__name__", type(ref_fn).__name__)
        ref_hp = hyperparams if reference_hyperparams is None else reference_hyperparams
        ref_step = _book(ref_fn, ref_states, ref_hp, dtype)
    else:
        raise TypeError("reference must be a torch.optim.Optimizer class, a book-style function "
                        f"or a pair (fn, init_states), got {reference!r}")

    gen, shapes = torch.Generator().manual_seed(seed), [(feature_dim, 1), (1,)]

    def draw(scale, rand=torch.randn):
        return [(rand(s, generator=gen, dtype=torch.float64) * scale).to(dtype) for s in shapes]
    start = [(2 * x - 1).to(dtype) for x in draw(1.0, torch.rand)]
    grads = ([draw(grad_scale) for _ in range(steps)],
             [draw(grad_scale * probe_scale) for _ in range(min(steps, _PROBE_STEPS))])
    try:
        (c1, kept1), (c2, kept2) = (_run(_book(step_fn, states, hyperparams, dtype), start, gr)
                                    for gr in grads)
    except (AttributeError, RuntimeError) as err:
        hint = mistakes.hint_for_error(err)
        if hint is None:
            raise
        return CheckResult(gap=math.inf, passed=False, diagnosis=hint, steps=steps, tol=tol,
                           reference_name=name, verdict=f"Your update raised {type(err).__name__}: {err}")
    cand, kept = [c1, c2], kept1 or kept2
    ref = [_run(ref_step, start, gr)[0] for gr in grads]
    gap = max(mistakes.gap(c, r) for c, r in zip(cand, ref))
    bound = _sci(tol)
    if any(np.abs(r).max() > 1 for r in ref if np.isfinite(r).all()):
        bound += " relative"        # to the largest |θ|: rounding grows with the parameters
    tol *= max([1.0] + [float(np.abs(r).max()) for r in ref if np.isfinite(r).all()])
    passed, diagnosis = gap <= tol, None
    if passed:
        verdict = f"Your update matches {name} to within {bound} over {steps} steps."
    else:
        verdict = (f"Your update does not match {name}: the parameters differ by up to "
                   f"{gap:.1e} (tolerance {bound}).")
        diagnosis = mistakes.diagnose_update(
            cand, ref, kept, start, grads, fam, lambda gr: _run(ref_step, start, gr)[0], tol,
            probe_scale)
    return CheckResult(gap=gap, passed=passed, verdict=verdict, diagnosis=diagnosis, steps=steps,
                       reference_name=name, tol=tol, bound=bound)


def check_function(fn, reference_fn, inputs, *, rtol=1e-6, atol=1e-9, name=None):
    """Compare ``fn(x)`` with ``reference_fn(x)`` for every ``x`` in ``inputs`` (a tuple ``x``
    is unpacked into positional arguments); pass if ``|Δ| <= atol + rtol·|reference|``
    everywhere. ``gap`` is max |Δ|; ``name`` defaults to ``reference_fn.__name__``."""
    check_callable("fn", fn), check_callable("reference_fn", reference_fn)
    rtol, atol = check_number("rtol", rtol, low=0.0), check_number("atol", atol, low=0.0)
    inputs = list(inputs)
    if not inputs:
        raise ValueError("inputs must hold at least one input, got none")
    name = name if name is not None else getattr(reference_fn, "__name__", "reference")

    def call(f, x):
        return mistakes.as_array(f(*x) if isinstance(x, tuple) else f(x))
    got, exp = [call(fn, x) for x in inputs], [call(reference_fn, x) for x in inputs]
    same = [a.shape == b.shape for a, b in zip(got, exp)]
    oks = [ok and bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(b)))
           for ok, a, b in zip(same, got, exp)]
    gap = max(mistakes.gap(a.ravel(), b.ravel()) if ok and a.size else (0.0 if ok else math.inf)
              for ok, a, b in zip(same, got, exp))
    passed, diagnosis, n = all(oks), None, len(inputs)
    if passed:
        verdict = f"Your function matches {name} at all {n} inputs (rtol={rtol:g}, atol={atol:g})."
    else:
        verdict = f"Your function does not match {name}: the values differ by up to {gap:.1e}."
        diagnosis = mistakes.diagnose_function(reference_fn, inputs, got, exp, oks, rtol, atol)
    return CheckResult(gap=gap, passed=passed, verdict=verdict, diagnosis=diagnosis, steps=n,
                       reference_name=name, tol=atol, unit="inputs",
                       bound=f"rtol {rtol:g}, atol {atol:g}")

