"""Common mistakes in a from-scratch optimizer, and how `d2lopt.checks` names them.

Known-wrong models: each is the reference's update core in `d2lopt.updates` (torch semantics),
run on flat float64 vectors with one flag flipped: eps inside/outside the square root or of
another value, a missing (1 - β), bias correction shifted, frozen or missing, a damped momentum
buffer.

Public API (what `d2lopt.checks` uses; stable, documented, tested through the checks):

* ``HINTS``: the hint for each mistake, by key; ``hint_for_error(err)``: the hint for an
  exception a book-style update typically raises (None if it is not one of those).
* ``reference_family(cls, kwargs)``: ``(family, hyperparams)`` when the torch reference is one the
  models cover (SGD, Adagrad, RMSprop, Adadelta, Adam) under plain options, else ``(None, None)``.
* ``model(family, hp, **switches)``: an update ``delta(g, state, t)``, the family's core with the
  switches as keywords; ``variants(family, hp)``: the ``(switches, hint)`` pairs of the
  known-wrong versions; ``simulate(step, x0, grads)``: the
  trajectory ``x_t = x_{t-1} - delta(g_t)``.
* ``diagnose_update(...)`` and ``diagnose_function(...)``: one hint for a failed check.
* ``gap(a, b)`` (max |Δ|, inf if either holds NaN/inf), ``flatten(tensors)`` and
  ``as_array(x)`` (float64 numpy views of what a check compares).
"""
import inspect
import math

import numpy as np
import torch

from d2lopt import updates

__all__ = ["HINTS", "hint_for_error", "reference_family", "model", "variants", "simulate",
           "gap", "flatten", "as_array", "diagnose_update", "diagnose_function"]

DIAGNOSIS_STEPS = 20    # the mistakes below all show within the first steps

_FAMILIES = {torch.optim.SGD: "sgd", torch.optim.Adagrad: "adagrad", torch.optim.RMSprop: "rmsprop",
             torch.optim.Adadelta: "adadelta", torch.optim.Adam: "adam"}
# Options under which the known-wrong variants below are valid models of the reference.
_PLAIN = {"sgd": dict(dampening=0, nesterov=False, weight_decay=0, maximize=False),
          "adagrad": dict(lr_decay=0, weight_decay=0, maximize=False),
          "rmsprop": dict(momentum=0, centered=False, weight_decay=0, maximize=False),
          "adadelta": dict(weight_decay=0, maximize=False),
          "adam": dict(amsgrad=False, weight_decay=0, maximize=False, decoupled_weight_decay=False)}
# Per family: its core, the state tensors the core takes after g (in order), and the
# hyperparameters it reads besides lr (Adam's betas are split into beta1, beta2).
_CORES = {"sgd": (updates.sgd_momentum, ("b",), ("momentum",)),
          "adagrad": (updates.adagrad, ("s",), ("eps",)),
          "rmsprop": (updates.rmsprop, ("s",), ("alpha", "eps")),
          "adadelta": (updates.adadelta, ("v", "u"), ("rho", "eps")),
          "adam": (updates.adam, ("m", "v"), ("eps",))}
_EPS_GRID = (1e-10, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3)

HINTS = {
    "nonfinite": "The parameters became NaN or infinite: look for a division by zero, e.g. a "
                 "bias correction 1 - β^t evaluated before the first step is counted.",
    "frozen": "The parameters never change: your update seems to build a new tensor instead of "
              "writing into the parameter (does an assignment rebind the name p?).",
    "kept_grad": "p.grad still holds a gradient after your step and gradients accumulate, so the "
                 "next step adds to it: reset the gradient to zero at the end of your update.",
    "sign": "The parameters move uphill: check the sign of your update.",
    "damp": "Your velocity is too small by a constant factor: the reference adds the whole "
            "gradient into it — is there a (1 - β) factor that does not belong?",
    "eps_place": "The gap is largest when the gradients are tiny, where eps dominates: check "
                 "where eps sits relative to the square root in the reference's formula.",
    "eps_value": "eps is in the right place but its value differs from the reference's "
                 "(eps={eps:g}).",
    "no_sqrt": "The step scales like g/s instead of g/√s: check the denominator.",
    "no_ema": "A running average grows too large: a moving average weights the new term by "
              "(1 - β) so that the weights sum to one — check the average of {what}.",
    "t_shift": "The first steps are off and the gap fades later: check the bias correction — "
               "which power of β belongs to step t, and is the first step t = 1?",
    "t_frozen": "The early steps match, later ones drift: the step counter hyperparams['t'] "
                "never seems to advance.",
    "no_bias": "The first steps are several times too large: both moments start at zero and "
               "are not rescaled — check the bias correction.",
    "half_bias": "Only one of the two moments seems bias-corrected: check both.",
    "raw_eps": "eps seems to be added before the second moment is bias-corrected: check the "
               "order.",
    "probe": "Your update matches on ordinary gradients but not on tiny ones (x{probe:g}), where "
             "eps dominates: check the value of eps and where it sits.",
    "generic": "No common mistake explains the gap; the trajectories first differ at step {k}: "
               "compare that step with the formula by hand.",
}


def model(family, hp, *, t_shift=0, t_frozen=False, **flags):
    """An update ``delta(g, state, t)`` on flat float64 numpy vectors: the reference's core in
    `d2lopt.updates` (torch semantics) with the reference's hyperparameters ``hp``, overridden
    by ``flags`` (the core's keywords: a mistake is a flag, e.g. ``eps_inside=True``), fed the
    step counter ``t + t_shift`` (1 if ``t_frozen``). States start at 0 (Adagrad's at
    ``initial_accumulator_value``), the book's way."""
    core, names, keys = _CORES[family]
    kw = {key: hp[key] for key in keys}
    if family == "adam":
        kw["beta1"], kw["beta2"] = hp["betas"]
    kw.update(lr=float(hp["lr"]), **flags)

    def step(g, st, t):
        g = torch.from_numpy(g)
        for name in names:
            st.setdefault(name, torch.full_like(g, hp.get("initial_accumulator_value", 0.0)))
        counter = [1 if t_frozen else t + t_shift] if family == "adam" else []
        delta, *new = core(g, *(st[name] for name in names), *counter, **kw)
        st.update(zip(names, new))
        return delta.numpy()
    return step


def variants(family, hp):
    """(model switches, hint) pairs for the known-wrong versions of a ``family`` update."""
    if family == "sgd":
        return [(dict(dampening=hp["momentum"]), HINTS["damp"])] if hp["momentum"] else []
    out = []
    for e in sorted({hp["eps"], *_EPS_GRID}):
        out.append((dict(eps_inside=family != "adadelta", eps=e), HINTS["eps_place"]))
        if e != hp["eps"]:
            out.append((dict(eps=e), HINTS["eps_value"].format(eps=hp["eps"])))
    if family in ("adagrad", "rmsprop"):
        out.append((dict(root=False), HINTS["no_sqrt"]))
    averages = {"rmsprop": ["squared gradients"], "adadelta": ["squared gradients", "updates"],
                "adam": ["gradients", "squared gradients"]}.get(family, [])
    if len(averages) == 1:
        out.append((dict(average=False), HINTS["no_ema"].format(what=averages[0])))
    elif averages:
        for flags, what in (((False, True), averages[0]), ((True, False), averages[1]),
                            (False, "both")):
            out.append((dict(average=flags), HINTS["no_ema"].format(what=what)))
    if family == "adam":
        out += [(dict(t_shift=1), HINTS["t_shift"]),
                (dict(t_frozen=True), HINTS["t_frozen"]),
                (dict(bias_correction=False), HINTS["no_bias"]),
                (dict(bias_correction=(True, False)), HINTS["half_bias"]),
                (dict(bias_correction=(False, True)), HINTS["half_bias"]),
                (dict(correct_step=True), HINTS["raw_eps"])]
    return out


def simulate(step, x0, grads):
    """The points ``x_t = x_{t-1} - step(g_t, state, t)``, t = 1, 2, ..., as a (steps, n) array."""
    x, st, traj = x0, {}, []
    with np.errstate(all="ignore"):
        for t, g in enumerate(grads, 1):
            x = x - step(g, st, t)
            traj.append(x)
    return np.stack(traj)


def gap(a, b):
    """max |a - b|, or inf when either holds a NaN or inf."""
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return math.inf
    return float(np.abs(a - b).max())


def reference_family(reference, kwargs):
    """``(family, hyperparams)`` of a torch reference built with ``kwargs`` (its defaults filled
    in), or ``(None, None)`` when no model covers it (another class, or a non-plain option)."""
    family = _FAMILIES.get(reference)
    if family is None:
        return None, None
    hp = {k: p.default for k, p in inspect.signature(reference.__init__).parameters.items()
          if p.default is not inspect.Parameter.empty}
    hp.update(kwargs)
    if any(hp.get(k, v) != v for k, v in _PLAIN[family].items()):
        return None, None
    return family, hp


# Errors a book-style update typically raises: (part of the message, hint).
_ERROR_HINTS = (("'NoneType' object has no attribute",
                 "p.grad is None inside your update: is p still the parameter you were given? "
                 "An assignment that rebinds the name p makes a new tensor, which has no "
                 "gradient."),
                ("leaf Variable that requires grad",
                 "A parameter that requires grad cannot be changed in place while autograd "
                 "records: run the update under torch.no_grad()."))


def hint_for_error(err):
    """The hint for an exception raised by a book-style update, or None if it is not a known one."""
    return next((msg for key, msg in _ERROR_HINTS if key in str(err)), None)


def flatten(tensors):
    """The tensors' values as one flat float64 numpy vector."""
    return np.concatenate([p.detach().cpu().double().numpy().ravel() for p in tensors])


def as_array(x):
    """``x`` (a number, sequence, array or tensor) as a float64 numpy array."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double()
    return np.asarray(x, dtype=np.float64)


def diagnose_update(cand, ref, kept, start, grads, fam, rerun, tol, probe_scale):
    """Hint for a failed `d2lopt.checks.check_optimizer`.

    ``cand``, ``ref`` (trajectories, ``(steps, n)`` arrays) and ``grads`` (per step, a list of
    tensors) hold one entry per phase; ``start`` is the list of start tensors; ``kept`` says
    whether a gradient was left in ``p.grad``; ``fam`` is `reference_family`'s pair;
    ``rerun(grads)`` replays the reference on other gradients (here: sign-flipped ones).
    """
    x0 = flatten(start)
    if not all(np.isfinite(c).all() for c in cand):
        return HINTS["nonfinite"]
    if all((c == x0).all() for c in cand) and not all((r == x0).all() for r in ref):
        return HINTS["frozen"]
    if kept:
        return HINTS["kept_grad"]
    k = min(len(grads[0]), DIAGNOSIS_STEPS)
    grads, cand_k = (grads[0][:k], grads[1]), (cand[0][:k], cand[1])
    ref_gap = max(gap(c, r[:len(c)]) for c, r in zip(cand_k, ref))
    if ref_gap > tol:
        best, hint = max(gap(c, rerun([[-g for g in gs] for gs in gr]))
                         for c, gr in zip(cand_k, grads)), HINTS["sign"]
        flat = [[flatten(gs) for gs in gr] for gr in grads]
        for switches, msg in (variants(*fam) if fam[0] else []):
            step = model(fam[0], fam[1], **switches)
            g = max(gap(c, simulate(step, x0, fg)) for c, fg in zip(cand_k, flat))
            if g < best:
                best, hint = g, msg
        if best <= max(tol, 0.05 * ref_gap):
            return hint
    if gap(cand[0], ref[0]) <= tol:
        return HINTS["probe"].format(probe=probe_scale)
    first = int(np.argmax(np.abs(cand[0] - ref[0]).max(axis=1) > tol)) + 1
    return HINTS["generic"].format(k=first)


def diagnose_function(reference_fn, inputs, got, exp, oks, rtol, atol):
    """Hint for a failed `d2lopt.checks.check_function`: ``got``/``exp`` are the arrays at each
    input, ``oks`` says where they agreed (the first False is the one reported)."""
    i = oks.index(False)
    if got[i].shape != exp[i].shape:
        return f"At input {inputs[i]!r} your result has shape {got[i].shape}, the reference {exp[i].shape}."
    if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in inputs):
        for shift, word in ((1, "ahead of"), (-1, "behind")):
            try:
                moved = [as_array(reference_fn(x + shift)) for x in inputs]
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
    return f"The first mismatch is at input {inputs[i]!r} (largest |Δ| there: {gap(got[i], exp[i]):.1e})."
