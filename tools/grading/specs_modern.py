"""Trusted grading specs of chapters/13-modern-optimizers: ``SPECS = {notebook stem: [Exercise, ...]}``,
in the format of ``specs.py`` (which merges this dict into its own).

Three graded exercises: Signum (pinned to `d2lopt.optim.Lion` with beta1 = beta2), Adafactor's
factored second moment and its memory (pinned to ``torch.optim.Adafactor``'s own state), and the
cubic Newton-Schulz iteration (its steps computed here with numpy, and its limit U V^T from an
SVD). Probe inputs are drawn from each run's ``rng``; reference values are computed here and
never sent to the sandbox. Hints say where to look, never the answer.
"""
import math

import numpy as np
import torch

from d2lopt.optim import Lion
from spec import Exercise, Probe, call, tensor, update_mismatch

F64 = torch.float64
STEM = "13-modern-optimizers"


# --- Signum: Lion with beta1 = beta2 --------------------------------------------------------------

def _signum_reference(start, grads, hp):
    """Parameters and momenta after every step of Lion(lr, betas=(beta, beta), weight_decay)."""
    ps = [torch.tensor(s, dtype=F64, requires_grad=True) for s in start]
    opt = Lion(ps, lr=hp["lr"], betas=(hp["beta"], hp["beta"]), weight_decay=hp["weight_decay"])
    want_p, want_s = [], []
    for gs in grads:
        for p, g in zip(ps, gs):
            p.grad = torch.tensor(g, dtype=F64)
        opt.step()
        want_p.append([p.detach().numpy().ravel().copy() for p in ps])
        want_s.append([opt.state[p]["m"].numpy().copy() for p in ps])
    return want_p, want_s


def _signum_judge(want_p, want_s, zero_start):
    if zero_start:
        params_hint = ("it differs when a gradient starts at exactly zero: the sign of a zero momentum "
                       "is zero, and then the parameter only decays")
    else:
        params_hint = ("the parameters differ from Lion(betas=(beta, beta))'s after the same gradients; "
                       "compare your first step with the formula: which momentum's sign is taken, and "
                       "where the decay enters")
    state_hint = "each parameter's state should be its momentum m, a moving average of its gradients"

    def judge(record):
        return update_mismatch(record["ok"], want_p, want_s, params_hint, state_hint) or (True, None)
    return judge


def _signum(rng):
    probes = []
    d = int(rng.integers(2, 6))
    shapes = [(d, 1), (1,)]
    for steps, zero_start in [(20, False), (15, True)]:
        hp = {"lr": float(rng.uniform(0.005, 0.05)), "beta": float(rng.uniform(0.5, 0.95)),
              "weight_decay": float(rng.choice([0.0, rng.uniform(0.05, 0.5)])) if not zero_start
              else float(rng.uniform(0.05, 0.5))}
        start = [rng.uniform(-1, 1, s) for s in shapes]
        grads = [[rng.standard_normal(s) * float(rng.uniform(0.5, 2.0)) for s in shapes] for _ in range(steps)]
        if zero_start:               # the bias sees no gradient at first: m stays exactly 0
            for k in range(3):
                grads[k][1] = np.zeros(shapes[1])
        want_p, want_s = _signum_reference(start, grads, hp)
        request = {"kind": "optimizer", "fn": "my_signum", "init": "init_signum_states", "feature_dim": d,
                   "shapes": [list(s) for s in shapes], "start": [s.ravel().tolist() for s in start],
                   "grads": [[g.ravel().tolist() for g in gs] for gs in grads], "hyperparams": hp,
                   "trace_steps": 0}
        probes.append(Probe(request, judge=_signum_judge(want_p, want_s, zero_start),
                            hint="the update does not match Lion(betas=(beta, beta))"))
    return probes


# --- Adafactor: the factored second moment and its memory ----------------------------------------

def adafactor_factored_reference(grads, beta2_decay):
    """(row_var, col_var, v_hat) of torch.optim.Adafactor after the gradients ``grads``."""
    x = torch.zeros(grads[0].shape, dtype=F64, requires_grad=True)
    opt = torch.optim.Adafactor([x], beta2_decay=beta2_decay)
    for g in grads:
        x.grad = torch.tensor(g, dtype=F64)
        opt.step()
    r, c = opt.state[x]["row_var"], opt.state[x]["col_var"]
    return [r.numpy().copy(), c.numpy().copy(), (r @ c / r.mean(dim=-2, keepdim=True)).numpy()]


def adafactor_state_floats_reference(shape):
    """Floats of torch.optim.Adafactor's state for a parameter of ``shape``, step counter excluded
    (tests/test_chapter_13.py checks this formula against torch's state)."""
    shape = tuple(shape)
    if len(shape) < 2:
        return math.prod(shape)
    return math.prod(shape[:-2]) * (shape[-2] + shape[-1])


def _adafactor_factored(rng):
    probes = []
    cases = [((5, 3), 4, -0.8), ((1, 6), 3, -0.8), ((6, 1), 3, -0.8),
             ((int(rng.integers(2, 7)), int(rng.integers(2, 7))), int(rng.integers(1, 8)), float(rng.uniform(-1.0, -0.5))),
             ((2, 4, 3), 3, -0.8), ((2, 2, 3, 2), 2, float(rng.uniform(-1.0, -0.5)))]
    for shape, steps, decay in cases:
        grads = [rng.standard_normal(shape) * float(rng.uniform(0.2, 3.0)) for _ in range(steps)]
        hint = ("r should average G^2 over the last dimension and c over the one before it, each kept "
                "as a dimension of size 1; the weight of step t is t ** beta2_decay (1 at the first step)")
        if len(shape) > 2:
            hint = "factor over the last two dimensions, separately for each index of the leading dimensions"
        probes.append(Probe(call("factored_second_moment", [tensor(g) for g in grads], decay),
                            expected=adafactor_factored_reference(grads, decay), rtol=1e-9, atol=1e-12,
                            hint=hint))
    shapes = [(7,), (5, 3), (1, 1), (4096, 4096), (2, 3, 4, 5), ()]
    shapes.append(tuple(int(k) for k in rng.integers(1, 9, int(rng.integers(2, 5)))))
    for shape in shapes:
        probes.append(Probe(call("adafactor_state_floats", list(shape)),
                            expected=adafactor_state_floats_reference(shape), rtol=0.0, atol=0.0,
                            hint="a matrix keeps one number per row and one per column; leading dimensions "
                                 "multiply that, and a tensor with fewer than two dimensions keeps one per entry"))
    return probes


# --- the cubic Newton-Schulz iteration ------------------------------------------------------------

def newton_schulz_cubic_reference(G, steps):
    X = G / np.linalg.norm(G)
    for _ in range(steps):
        X = 1.5 * X - 0.5 * X @ X.T @ X
    return X


def _polar(rng, n, m, spread):
    """A random n x m matrix with singular values in [1/spread, 1], and its U V^T."""
    k = min(n, m)
    U = np.linalg.qr(rng.standard_normal((n, k)))[0]
    V = np.linalg.qr(rng.standard_normal((m, k)))[0]
    s = np.exp(rng.uniform(-math.log(spread), 0.0, k))
    return U @ np.diag(s) @ V.T, U @ V.T


def _newton_schulz(rng):
    probes = []
    for shape, steps in [((4, 4), 1), ((6, 3), 2), ((3, 7), 3), ((1, 5), 4), ((5, 5), 0),
                         ((int(rng.integers(2, 8)), int(rng.integers(2, 8))), int(rng.integers(1, 10)))]:
        G = rng.standard_normal(shape) * float(rng.uniform(0.1, 10.0))
        probes.append(Probe(call("orthogonalize_cubic", tensor(G), steps),
                            expected=newton_schulz_cubic_reference(G, steps), rtol=1e-9, atol=1e-12,
                            hint="start from G divided by its Frobenius norm, return X after exactly `steps` "
                                 "steps (0 steps: the normalized G), and use X X^T X in each step"))
    for n, m in [(6, 4), (3, 8)]:
        G, polar = _polar(rng, n, m, spread=5.0)
        probes.append(Probe(call("orthogonalize_cubic", tensor(G * float(rng.uniform(0.5, 20.0))), 40),
                            expected=polar, rtol=1e-7, atol=1e-9,
                            hint="after many steps the result should be the orthogonal factor U V^T, for tall "
                                 "and wide matrices alike"))
    return probes


def ex(check_id, points, names, make):
    return Exercise(check_id=check_id, points=points, names=names, make=make)


SPECS = {
    STEM: [ex("13-signum-check", 3, ("my_signum", "init_signum_states"), _signum),
           ex("13-adafactor-factored-check", 3, ("factored_second_moment", "adafactor_state_floats"),
              _adafactor_factored),
           ex("13-newton-schulz-check", 2, ("orthogonalize_cubic",), _newton_schulz)],
}
