"""Known-wrong variants of the chapter's optimizers, used by `d2lopt.checks` to name a mistake.

Each variant is the reference algorithm (torch semantics, float64 numpy) with one switch flipped:
eps inside/outside the square root or of another value, a missing (1 - β), bias correction
shifted, frozen or missing, a damped momentum buffer. `_variants` pairs each with its hint.
"""
import inspect
import math

import numpy as np
import torch

_FAMILIES = {torch.optim.SGD: "sgd", torch.optim.Adagrad: "adagrad", torch.optim.RMSprop: "rmsprop",
             torch.optim.Adadelta: "adadelta", torch.optim.Adam: "adam"}
# Options under which the known-wrong variants below are valid models of the reference.
_PLAIN = {"sgd": dict(dampening=0, nesterov=False, weight_decay=0, maximize=False),
          "adagrad": dict(lr_decay=0, weight_decay=0, maximize=False),
          "rmsprop": dict(momentum=0, centered=False, weight_decay=0, maximize=False),
          "adadelta": dict(weight_decay=0, maximize=False),
          "adam": dict(amsgrad=False, weight_decay=0, maximize=False, decoupled_weight_decay=False)}
_EPS_GRID = (1e-10, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3)

_MSG = {
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
# Errors a book-style update typically raises: (part of the message, hint).


def _model(family, hp, *, eps_mode=None, eps=None, ema=(True, True), damp=False, t_shift=0,
           t_frozen=False, bias="both"):
    """An update ``delta(g, state, t)`` on flat float64 vectors: the reference's algorithm
    (torch semantics) with switches for common mistakes."""
    lr, eps = float(hp["lr"]), (hp.get("eps") if eps is None else eps)
    eps_mode = eps_mode or ("in" if family == "adadelta" else "out")     # torch's placement

    def root(x):
        return {"out": lambda: np.sqrt(x) + eps, "in": lambda: np.sqrt(x + eps),
                "none": lambda: x + eps}[eps_mode]()

    def avg(old, beta, new, i):
        return beta * old + ((1 - beta) if ema[i] else 1.0) * new

    def step(g, st, t):
        z = np.zeros_like(g)
        if family == "sgd":
            mu = hp["momentum"]
            st["b"] = mu * st.get("b", z) + ((1 - mu) if damp else 1.0) * g
            return lr * st["b"]
        if family == "adagrad":
            st["s"] = st.get("s", z + hp["initial_accumulator_value"]) + g * g
            return lr * g / root(st["s"])
        if family == "rmsprop":
            st["s"] = avg(st.get("s", z), hp["alpha"], g * g, 0)
            return lr * g / root(st["s"])
        if family == "adadelta":
            st["v"] = v = avg(st.get("v", z), hp["rho"], g * g, 0)
            d = root(st.get("u", z)) / root(v) * g
            st["u"] = avg(st.get("u", z), hp["rho"], d * d, 1)
            return lr * d
        (b1, b2), k = hp["betas"], 1 if t_frozen else t + t_shift
        st["m"] = m = avg(st.get("m", z), b1, g, 0)
        st["v"] = v = avg(st.get("v", z), b2, g * g, 1)
        c1 = 1 - b1 ** k if bias in ("both", "m") else 1.0
        c2 = 1 - b2 ** k if bias in ("both", "v") else 1.0
        if eps_mode == "raw":
            return lr * math.sqrt(c2) / c1 * m / (np.sqrt(v) + eps)
        return lr * (m / c1) / root(v / c2)
    return step


def _variants(family, hp):
    """(model switches, hint) pairs for the known-wrong versions of a ``family`` update."""
    if family == "sgd":
        return [(dict(damp=True), _MSG["damp"])] if hp["momentum"] else []
    out = []
    wrong = "out" if family == "adadelta" else "in"
    for e in sorted({hp["eps"], *_EPS_GRID}):
        out.append((dict(eps_mode=wrong, eps=e), _MSG["eps_place"]))
        if e != hp["eps"]:
            out.append((dict(eps=e), _MSG["eps_value"].format(eps=hp["eps"])))
    if family in ("adagrad", "rmsprop"):
        out.append((dict(eps_mode="none"), _MSG["no_sqrt"]))
    names = {"rmsprop": ("squared gradients", ""), "adadelta": ("squared gradients", "updates"),
             "adam": ("gradients", "squared gradients")}.get(family)
    if names:
        out.append((dict(ema=(False, True)), _MSG["no_ema"].format(what=names[0])))
    if names and names[1]:
        out.append((dict(ema=(True, False)), _MSG["no_ema"].format(what=names[1])))
        out.append((dict(ema=(False, False)), _MSG["no_ema"].format(what="both")))
    if family == "adam":
        out += [(dict(t_shift=1), _MSG["t_shift"]),
                (dict(t_frozen=True), _MSG["t_frozen"]), (dict(bias="none"), _MSG["no_bias"]),
                (dict(bias="m"), _MSG["half_bias"]), (dict(bias="v"), _MSG["half_bias"]),
                (dict(eps_mode="raw"), _MSG["raw_eps"])]
    return out


def _simulate(step, x0, grads):
    x, st, traj = x0, {}, []
    with np.errstate(all="ignore"):
        for t, g in enumerate(grads, 1):
            x = x - step(g, st, t)
            traj.append(x)
    return np.stack(traj)


def _gap(a, b):
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return math.inf
    return float(np.abs(a - b).max())


def _family(reference, kwargs):
    family = _FAMILIES.get(reference)
    if family is None:
        return None, None
    hp = {k: p.default for k, p in inspect.signature(reference.__init__).parameters.items()
          if p.default is not inspect.Parameter.empty}
    hp.update(kwargs)
    if any(hp.get(k, v) != v for k, v in _PLAIN[family].items()):
        return None, None
    return family, hp
