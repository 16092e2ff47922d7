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

>>> r = check_optimizer(adam, init_adam_states, torch.optim.Adam, {'lr': 0.01, 't': 1})
>>> print(r)             # max |Δ| vs torch.optim.Adam over 100 steps within 1e-6 (match)
>>> assert_passes(r)     # raises AssertionError(diagnosis) on a mismatch
"""
import copy
import functools
import inspect
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from d2lopt._mistakes import _MSG, _family, _gap, _model, _simulate, _variants
from d2lopt.validate import check_int, check_number

__all__ = ["CheckResult", "check_optimizer", "check_function", "assert_passes", "show_gap"]

_DEFAULT_TOL = {torch.float32: 1e-6, torch.float64: 1e-12}
_PROBE_STEPS = 20
_DIAG_STEPS = 20
# Book hyperparameter name -> torch.optim keyword ('t' is the book's step counter: dropped).
_TO_TORCH = {"lr": "lr", "momentum": "momentum", "gamma": "alpha", "alpha": "alpha", "rho": "rho",
             "eps": "eps", "betas": "betas", "weight_decay": "weight_decay",
             "dampening": "dampening", "nesterov": "nesterov"}
_ERRORS = (("'NoneType' object has no attribute",
            "p.grad is None inside your update: is p still the parameter you were given? An "
            "assignment that rebinds the name p makes a new tensor, which has no gradient."),
           ("leaf Variable that requires grad",
            "A parameter that requires grad cannot be changed in place while autograd records: "
            "run the update under torch.no_grad()."))


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


def _flat(ps):
    return np.concatenate([p.detach().cpu().double().numpy().ravel() for p in ps])


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
        traj.append(_flat(ps))
    return np.stack(traj), kept


def _book(fn, states, hp, dtype):
    """A ``make_step`` for a book-style update; each run gets fresh copies of states and hp."""
    def make_step(ps):
        return functools.partial(fn, list(ps), _fresh(states, dtype), copy.deepcopy(hp))
    return make_step


def _torch(cls, kwargs):
    def make_step(ps):
        opt = cls(ps, **kwargs)
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


def _diagnose(cand, ref, kept, start, ref_step, fam, grads, tol, probe_scale):
    """Hint for a failed check; ``cand``, ``ref`` and ``grads`` hold one entry per phase."""
    x0 = _flat(start)
    if not all(np.isfinite(c).all() for c in cand):
        return _MSG["nonfinite"]
    if all((c == x0).all() for c in cand) and not all((r == x0).all() for r in ref):
        return _MSG["frozen"]
    if kept:
        return _MSG["kept_grad"]
    k = min(len(grads[0]), _DIAG_STEPS)         # the mistakes below all show early
    grads, cand_k = (grads[0][:k], grads[1]), (cand[0][:k], cand[1])
    ref_gap = max(_gap(c, r[:len(c)]) for c, r in zip(cand_k, ref))
    if ref_gap > tol:
        best, hint = max(_gap(c, _run(ref_step, start, [[-g for g in gs] for gs in gr])[0])
                         for c, gr in zip(cand_k, grads)), _MSG["sign"]
        flat = [[_flat(gs) for gs in gr] for gr in grads]
        for switches, msg in (_variants(*fam) if fam[0] else []):
            step = _model(fam[0], fam[1], **switches)
            gap = max(_gap(c, _simulate(step, x0, fg)) for c, fg in zip(cand_k, flat))
            if gap < best:
                best, hint = gap, msg
        if best <= max(tol, 0.05 * ref_gap):
            return hint
    if _gap(cand[0], ref[0]) <= tol:
        return _MSG["probe"].format(probe=probe_scale)
    first = int(np.argmax(np.abs(cand[0] - ref[0]).max(axis=1) > tol)) + 1
    return _MSG["generic"].format(k=first)


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
    if not callable(step_fn):
        raise TypeError(f"step_fn must be a callable fn(params, states, hyperparams), got {step_fn!r}")
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
        ref_step, fam = _torch(reference, kwargs), _family(reference, kwargs)
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
        hint = next((msg for key, msg in _ERRORS if key in str(err)), None)
        if hint is None:
            raise
        return CheckResult(gap=math.inf, passed=False, diagnosis=hint, steps=steps, tol=tol,
                           reference_name=name, verdict=f"Your update raised {type(err).__name__}: {err}")
    cand, kept = [c1, c2], kept1 or kept2
    ref = [_run(ref_step, start, gr)[0] for gr in grads]
    gap = max(_gap(c, r) for c, r in zip(cand, ref))
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
        diagnosis = _diagnose(cand, ref, kept, start, ref_step, fam, grads, tol, probe_scale)
    return CheckResult(gap=gap, passed=passed, verdict=verdict, diagnosis=diagnosis, steps=steps,
                       reference_name=name, tol=tol, bound=bound)


def _as_array(x):
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double()
    return np.asarray(x, dtype=np.float64)


def check_function(fn, reference_fn, inputs, *, rtol=1e-6, atol=1e-9, name=None):
    """Compare ``fn(x)`` with ``reference_fn(x)`` for every ``x`` in ``inputs`` (a tuple ``x``
    is unpacked into positional arguments); pass if ``|Δ| <= atol + rtol·|reference|``
    everywhere. ``gap`` is max |Δ|; ``name`` defaults to ``reference_fn.__name__``."""
    if not callable(fn) or not callable(reference_fn):
        raise TypeError("fn and reference_fn must be callables")
    rtol, atol = check_number("rtol", rtol, low=0.0), check_number("atol", atol, low=0.0)
    inputs = list(inputs)
    if not inputs:
        raise ValueError("inputs must hold at least one input, got none")
    name = name if name is not None else getattr(reference_fn, "__name__", "reference")

    def call(f, x):
        return _as_array(f(*x) if isinstance(x, tuple) else f(x))
    got, exp = [call(fn, x) for x in inputs], [call(reference_fn, x) for x in inputs]
    same = [a.shape == b.shape for a, b in zip(got, exp)]
    oks = [ok and bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(b)))
           for ok, a, b in zip(same, got, exp)]
    gap = max(_gap(a.ravel(), b.ravel()) if ok and a.size else (0.0 if ok else math.inf)
              for ok, a, b in zip(same, got, exp))
    passed, diagnosis, n = all(oks), None, len(inputs)
    if passed:
        verdict = f"Your function matches {name} at all {n} inputs (rtol={rtol:g}, atol={atol:g})."
    else:
        verdict = f"Your function does not match {name}: the values differ by up to {gap:.1e}."
        diagnosis = _diagnose_function(reference_fn, inputs, got, exp, oks, rtol, atol)
    return CheckResult(gap=gap, passed=passed, verdict=verdict, diagnosis=diagnosis, steps=n,
                       reference_name=name, tol=atol, unit="inputs",
                       bound=f"rtol {rtol:g}, atol {atol:g}")


def _diagnose_function(reference_fn, inputs, got, exp, oks, rtol, atol):
    i = oks.index(False)
    if got[i].shape != exp[i].shape:
        return f"At input {inputs[i]!r} your result has shape {got[i].shape}, the reference {exp[i].shape}."
    if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in inputs):
        for shift, word in ((1, "ahead of"), (-1, "behind")):
            try:
                moved = [_as_array(reference_fn(x + shift)) for x in inputs]
            except Exception:       # the reference may be undefined one step outside the inputs
                continue
            if all(m.shape == a.shape and np.allclose(a, m, rtol=rtol, atol=atol)
                   for a, m in zip(got, moved)):
                return (f"Your values are one step {word} the reference: check whether the "
                        "count starts at 0 or at 1.")
    a, b = np.concatenate([g.ravel() for g in got]), np.concatenate([e.ravel() for e in exp])
    if np.all(b != 0) and np.all(np.isfinite(a)):
        ratio = a / b
        if np.allclose(ratio, ratio[0], rtol=1e-9, atol=0.0):
            return f"Your values are the reference's times a constant {ratio[0]:.4g}: check the scale factors."
    if got[i].size == 1:
        return (f"The first mismatch is at input {inputs[i]!r}: yours {got[i].item():.6g}, "
                f"reference {exp[i].item():.6g}.")
    return f"The first mismatch is at input {inputs[i]!r} (largest |Δ| there: {_gap(got[i], exp[i]):.1e})."
