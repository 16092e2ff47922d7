"""Trusted grading specs of the chapter notebooks: ``SPECS = {notebook stem: [Exercise, ...]}``.

Each exercise is keyed by the ``grade_id`` of its check cell and says what the notebook must
define, the probe inputs (drawn from this run's seed), the reference values (computed here with
numpy, torch.optim or d2lopt), tolerances, points and the hints a student may see. Nothing here
is sent to a sandbox except the probe inputs. Hints are written for students: they say where to
look, never the answer.
"""
import math

import numpy as np
import torch

from d2lopt import schedules
from d2lopt.schedulefree import schedule_free_coefficients
from spec import (Exercise, Probe, call, compare, function, gap_detail, tensor, to_array,
                  update_mismatch, value)
from specs_eos import SPECS as EOS_SPECS
from specs_modern import SPECS as MODERN_SPECS

F64 = torch.float64


# --- 01 ----------------------------------------------------------------------------------------

def _hessian(rng):
    pts = [(1.0, 1.0), (0.0, 0.0)] + [tuple(p) for p in rng.uniform(-3, 3, (5, 2))]
    return [Probe(call("hessian_f", x, y), expected=np.array([[12 * x * x, -4.0], [-4.0, 12 * y * y]]),
                  rtol=1e-10, atol=1e-10,
                  hint="differentiate f twice; the mixed term -4xy contributes off the diagonal")
            for x, y in pts]


def _critical_judge(record):
    pts = to_array(record["ok"])
    if pts is None or pts.ndim != 2 or pts.shape[1] != 2 or not np.all(np.isfinite(pts)):
        return False, "critical_points should be a list of (x, y) pairs"
    grads = np.stack([4 * pts[:, 0] ** 3 - 4 * pts[:, 1], 4 * pts[:, 1] ** 3 - 4 * pts[:, 0]], axis=1)
    if len(pts) == 0 or np.abs(grads).max() > 1e-8:
        return False, "at least one listed point has a non-zero gradient: recheck the algebra"
    distinct = {(round(x, 6), round(y, 6)) for x, y in pts.tolist()}
    if len(distinct) != 3:
        return False, ("a critical point is missing or listed twice: after eliminating one variable, "
                       "count the real roots of the polynomial that is left")
    return True, None


def _critical(rng):
    return [Probe(value("critical_points"), judge=_critical_judge, hint="the critical points are not right")]


# --- 02 ----------------------------------------------------------------------------------------

def _null_projector(W):
    return np.eye(W.shape[1]) - W.T @ np.linalg.solve(W @ W.T, W)


def _projection(rng):
    return [Probe(call("projection_matrix", tensor(W)), expected=_null_projector(W), rtol=1e-8, atol=1e-10,
                  hint="the projected point must satisfy W x' = 0 and x - x' must lie in the row space "
                       "of W; the formula must work for any full-row-rank W")
            for W in (rng.standard_normal(s) for s in [(2, 4), (1, 3), (3, 6), (4, 5)])]


def _clip_judge(grads, theta):
    total = math.sqrt(sum(float((g ** 2).sum()) for g in grads))
    want = [g * min(1.0, theta / total) if total > 0 else g for g in grads]

    def judge(record):
        got, args_after = record["ok"], record.get("args")
        if not isinstance(got, list) or len(got) != len(grads):
            return False, "return one tensor per input gradient, each with its input's shape"
        ok, gap, detail = compare(got, want, 1e-7, 1e-9)
        if not ok:
            return False, detail or f"use one norm over all tensors together ({gap_detail(gap)})"
        if not (isinstance(args_after, list) and compare(args_after[0], grads, 0, 0)[0]):
            return False, "the input gradients were modified in place; return new tensors"
        return True, None
    return judge


def _clip(rng):
    big = [rng.standard_normal((3, 4)) * 2, rng.standard_normal(4)]
    small = [g * 0.01 for g in big]
    one = [rng.standard_normal((5, 5)) * 3]
    probes = []
    for grads, theta in [(big, 1.0), (small, 1.0), (one, float(rng.uniform(0.3, 0.8)))]:
        probes.append(Probe(call("clip_by_global_norm", [tensor(g) for g in grads], theta, return_args=True),
                            judge=_clip_judge(grads, theta), hint="scale all gradients by one common factor"))
    return probes


# --- 03 ----------------------------------------------------------------------------------------

def _gd(rng):
    probes = []
    for eta, a, b, x0, steps in [(float(rng.uniform(0.02, 0.3)), 2.0, 0.0, float(rng.uniform(3, 10)), 10),
                                 (float(rng.uniform(0.55, 0.95)), 2.0, 0.0, 10.0, 10),
                                 (0.1, float(rng.uniform(4, 8)), float(rng.uniform(-2, 2)), -2.0, 15)]:
        want = [b + (x0 - b) * (1 - eta * a) ** k for k in range(steps + 1)]
        probes.append(Probe(call("gd_iterates", eta, function("scaled_linear", a=a, b=b), x0, steps),
                            expected=want, hint="the list should start with x0, hold steps + 1 values, and "
                            "each step should move against the derivative at the current iterate, scaled by eta"))
    return probes


def _newton(rng):
    a, b, x = float(rng.uniform(1, 4)), float(rng.uniform(-2, 2)), float(rng.uniform(3, 8))
    probes = [Probe(call("newton_step", x, function("scaled_linear", a=2 * a, b=b), function("const", c=2 * a)),
                    expected=b, hint="one full Newton step should land on the minimum of a quadratic: check the "
                                     "sign and which derivative divides which")]
    c = float(rng.uniform(0.3, 0.8))
    for x in rng.uniform(-4, 6, 3):
        eta = float(rng.uniform(0.3, 0.9))
        probes.append(Probe(call("newton_step", float(x), function("cosh_grad", c=c), function("cosh_hess", c=c), eta),
                            expected=x - eta * math.tanh(c * x) / c, rtol=1e-10,
                            hint="the damping factor eta multiplies the whole Newton step"))
    return probes


# --- 04 ----------------------------------------------------------------------------------------

def _pick(rng):
    ns = [1, 2, 3, int(rng.integers(4, 40)), int(rng.integers(10 ** 5, 10 ** 6))]
    return [Probe(call("pick_probabilities", n), expected=[1 - (1 - 1 / n) ** n, (1 - 1 / n) ** (n - 1)],
                  rtol=1e-8, atol=1e-12,
                  hint="'at least once' is the complement of 'never', and the single hit in 'exactly once' "
                       "may come at any of the n draws")
            for n in ns]


def _average(rng):
    probes = []
    x_bar, eta_sum = np.zeros(3), 0.0
    for _ in range(4):
        x, eta = rng.standard_normal(3), float(rng.uniform(0.1, 1.1))
        new_sum = eta_sum + eta
        want = [x_bar + eta / new_sum * (x - x_bar), new_sum]
        probes.append(Probe(call("update_average", tensor(x_bar), eta_sum, tensor(x), eta), expected=want,
                            rtol=1e-10, atol=1e-12,
                            hint="the result should be the eta-weighted mean of the iterates, and the second "
                                 "value the total weight including the new iterate"))
        x_bar, eta_sum = want
    return probes


# --- 05 ----------------------------------------------------------------------------------------

def _minibatch(rng):
    probes = []
    for batch, d in [(1, 5), (10, 5), (7, 3)]:
        X, y = rng.standard_normal((batch, d)), rng.standard_normal(batch)
        w, b = rng.standard_normal((d, 1)), rng.standard_normal(1)
        r = X @ w + b - y.reshape(-1, 1)
        probes.append(Probe(call("minibatch_grad", tensor(X), tensor(y), tensor(w), tensor(b)),
                            expected=[X.T @ r / batch, r.mean(axis=0)], rtol=1e-8, atol=1e-10,
                            hint="take the mean over the batch, not the sum; mind the sign of the residual; "
                                 "grad_w has shape (d, 1), grad_b shape (1,); the feature count comes from X"))
    return probes


def _stable_lr(rng):
    probes = []
    for n, d, shift in [(4, 1, 12.0), (50, 5, 0.0), (30, 3, float(rng.uniform(1, 3)))]:
        X = rng.standard_normal((n, d)) + shift
        A = np.concatenate([X, np.ones((n, 1))], axis=1)
        probes.append(Probe(call("max_stable_lr", tensor(X)), expected=2 / np.linalg.eigvalsh(A.T @ A / n)[-1],
                            rtol=1e-7, atol=0.0,
                            hint="the Hessian needs a row and a column for the bias; check how the loss is "
                                 "normalised (a mean, and the 1/2) and use the largest eigenvalue"))
    return probes


# --- 06 ----------------------------------------------------------------------------------------

def _heavy(rng):
    probes = []
    for d in (2, 3):
        M = rng.standard_normal((d, d))
        A, c, x0 = M @ M.T / d + 0.5 * np.eye(d), rng.standard_normal(d), rng.uniform(-5, 5, d)
        eta, beta, steps = float(rng.uniform(0.05, 0.3)), float(rng.uniform(0.0, 0.9)), 20
        xs, x, v = [x0], x0.copy(), np.zeros(d)
        for _ in range(steps):
            v = beta * v + A @ x + c
            x = x - eta * v
            xs.append(x)
        probes.append(Probe(call("heavy_ball", function("affine", A=A.tolist(), c=c.tolist()), tensor(x0), eta, beta, steps),
                            expected=np.stack(xs), rtol=1e-9, atol=1e-11,
                            hint="the result should start with x0 and hold steps + 1 points; the velocity must "
                                 "use the gradient at the current point before x moves, and start at zero"))
    return probes


def _rate(eta_lam, beta):
    return float(np.abs(np.roots([1.0, -(1 + beta - eta_lam), beta])).max())


def _contraction(rng):
    pts = [(0.5, 0.0), (1.5, 0.0), (2.5, 0.0), (1.0, 0.5), (2 + 2 * 0.5, 0.5)]
    pts += [(float(rng.uniform(0, 4.5)), float(rng.uniform(0, 0.99))) for _ in range(12)]
    return [Probe(call("contraction_rate", el, b), expected=_rate(el, b), rtol=1e-7, atol=1e-9,
                  hint="take the larger modulus of the two roots, negative real roots included; when the "
                       "discriminant is negative both roots have the same modulus")
            for el, b in pts]


# --- optimizers (07-10) ------------------------------------------------------------------------

def _optimizer_probes(rng, *, fn, init, cls, make_hp, to_torch, state_of, name, state_hint, trace=False,
                      profile=None):
    """Two runs per draw: ordinary gradients, then gradients 1e-4 times smaller (where eps shows).

    ``make_hp(rng, scale)`` draws the hyperparameters of a run; ``profile(k)`` (default 1)
    multiplies the gradients of step k, e.g. to make the second moment shrink."""
    probes = []
    d = int(rng.integers(2, 6))
    shapes = [(d, 1), (1,)]
    for scale, steps in [(float(rng.uniform(0.5, 2.0)), 20), (1e-4, 12)]:
        hp = make_hp(rng, scale)
        start = [rng.uniform(-1, 1, s) for s in shapes]
        grads = [[rng.standard_normal(s) * scale * (profile(k) if profile else 1.0) for s in shapes]
                 for k in range(steps)]
        ps = [torch.tensor(s, dtype=F64, requires_grad=True) for s in start]
        opt = cls(ps, **to_torch(hp))
        want_p, want_s, gprime = [], [], []
        for t, gs in enumerate(grads, start=1):
            before = [{k: v.clone() for k, v in opt.state[p].items()} for p in ps]
            for p, g in zip(ps, gs):
                p.grad = torch.tensor(g, dtype=F64)
            opt.step()
            want_p.append([p.detach().numpy().ravel().copy() for p in ps])
            want_s.append([state_of(opt.state[p], hp, t) for p in ps])
            if trace and t <= 3:
                gprime.append([_gprime(opt.state[p], b, p.grad, hp) for p, b in zip(ps, before)])
        request = {"kind": "optimizer", "fn": fn, "init": init, "feature_dim": d,
                   "shapes": [list(s) for s in shapes], "start": [s.ravel().tolist() for s in start],
                   "grads": [[g.ravel().tolist() for g in gs] for gs in grads], "hyperparams": hp,
                   "trace_steps": 3 if trace else 0}
        probes.append(Probe(request, judge=_optimizer_judge(want_p, want_s, gprime, name, state_hint, scale),
                            hint=f"the update does not match {name}"))
    return probes


def _gprime(state, before, grad, hp):
    acc_prev = before.get("acc_delta", torch.zeros_like(grad))
    return (torch.sqrt(acc_prev + hp["eps"]) / torch.sqrt(state["square_avg"] + hp["eps"]) * grad).numpy().ravel()


def _optimizer_judge(want_p, want_s, gprime, name, state_hint, scale):
    if scale < 1e-3:
        params_hint = f"it differs from {name} when the gradients are tiny: check eps, its value and where it enters"
    else:
        params_hint = (f"the parameters differ from {name}'s after the same gradients; compare your first "
                       "step with the update formula")

    def judge(record):
        answer = record["ok"]
        mismatch = update_mismatch(answer, want_p, want_s, params_hint, state_hint)
        if mismatch:
            return mismatch
        for step, wanted in zip(answer.get("trace") or [], gprime):
            for g in wanted:
                if np.abs(g).max() < 1e-12:
                    continue
                for t in step if isinstance(step, list) else []:
                    t = to_array(t)
                    if t is not None and t.shape == g.shape and np.allclose(np.abs(t), np.abs(g), rtol=1e-9, atol=0):
                        return False, ("your update forms g' (the rescaled gradient sqrt(r) * g) as a tensor; "
                                       "the exercise asks for the update without it")
        return True, None
    return judge


def _adagrad_hp(r, scale):
    # s0 on the scale of the squared gradients, so that eps still shows with tiny gradients
    return {"lr": float(r.uniform(0.05, 0.5)), "lr_decay": float(r.uniform(0.02, 0.3)),
            "initial_accumulator_value": float(r.uniform(0.2, 2.0)) * scale ** 2,
            "eps": float(r.choice([1e-10, 1e-7])), "t": 1}


def _adagrad(rng):
    return _optimizer_probes(
        rng, fn="my_adagrad", init="init_adagrad_states", cls=torch.optim.Adagrad, name="torch.optim.Adagrad",
        make_hp=_adagrad_hp, to_torch=lambda hp: {k: v for k, v in hp.items() if k != "t"},
        state_of=lambda s, hp, t: s["sum"].numpy().copy(),
        state_hint="s should be the running sum of squared gradients, started at initial_accumulator_value")


def _rmsprop(rng):
    return _optimizer_probes(
        rng, fn="my_centered_rmsprop", init="init_centered_states", cls=torch.optim.RMSprop,
        name="torch.optim.RMSprop(centered=True)",
        make_hp=lambda r, scale: {"lr": float(r.uniform(0.005, 0.05)), "gamma": float(r.uniform(0.8, 0.99)),
                                  "eps": float(r.choice([1e-8, 1e-6]))},
        to_torch=lambda hp: {"lr": hp["lr"], "alpha": hp["gamma"], "eps": hp["eps"], "centered": True},
        state_of=lambda s, hp, t: [s["square_avg"].numpy().copy(), s["grad_avg"].numpy().copy()],
        state_hint="each parameter's state should be the pair (s, m): the leaky averages of g^2 and of g")


def _adadelta(rng):
    return _optimizer_probes(
        rng, fn="my_adadelta", init="init_adadelta_states", cls=torch.optim.Adadelta, name="torch.optim.Adadelta",
        make_hp=lambda r, scale: {"rho": float(r.uniform(0.85, 0.97)), "lr": float(r.uniform(0.3, 0.8)),
                           "eps": float(r.choice([1e-6, 1e-5]))},
        to_torch=lambda hp: dict(hp),
        state_of=lambda s, hp, t: [s["square_avg"].numpy().copy(), s["acc_delta"].numpy().copy()],
        state_hint="s is the leaky average of squared gradients and delta the leaky average of the "
                   "squared unscaled steps (the learning rate scales only the applied step)",
        trace=True)


def _adam_hp(r, scale=1.0):
    return {"lr": float(r.uniform(0.005, 0.08)), "t": 1, "beta1": float(r.uniform(0.75, 0.92)),
            "beta2": float(r.uniform(0.95, 0.999)), "eps": 1e-8}


def _adam_torch(hp):
    return {"lr": hp["lr"], "betas": (hp["beta1"], hp["beta2"]), "eps": hp["eps"]}


def _amsgrad(rng):
    return _optimizer_probes(
        rng, fn="my_amsgrad", init="init_amsgrad_states", cls=torch.optim.Adam,
        name="torch.optim.Adam(amsgrad=True)", make_hp=_adam_hp,
        to_torch=lambda hp: {**_adam_torch(hp), "amsgrad": True},
        state_of=lambda s, hp, t: [s["exp_avg"].numpy().copy(), s["exp_avg_sq"].numpy().copy(),
                                   s["max_exp_avg_sq"].numpy().copy()],
        state_hint="each parameter's state should be the triple (v, s, u): the leaky averages of g and "
                   "g^2 and the running maximum of the raw s (before bias correction)",
        profile=lambda k: 3.0 if k < 5 else 0.3)     # large, then small gradients: s shrinks


def _adam_unbiased(rng):
    return _optimizer_probes(
        rng, fn="my_adam_unbiased", init="init_adam_states", cls=torch.optim.Adam, name="torch.optim.Adam",
        make_hp=_adam_hp, to_torch=_adam_torch,
        state_of=lambda s, hp, t: [s["exp_avg"].numpy() / (1 - hp["beta1"] ** t),
                                   s["exp_avg_sq"].numpy() / (1 - hp["beta2"] ** t)],
        state_hint="with the correction folded into the averaging coefficients, the stored v and s "
                   "must be the bias-corrected averages themselves")


# --- 07, 08, 09 (closed forms) -----------------------------------------------------------------

def _precondition(rng):
    probes = []
    for d in (3, 4):
        A = rng.standard_normal((d, d))
        S = np.exp(rng.uniform(-4, 3.5, d))
        Q = S[:, None] * (A @ A.T + np.eye(d)) * S[None, :]
        for lam in (0.0, float(rng.uniform(0.05, 2.0)) * float(np.median(np.diag(Q))), float(rng.uniform(0.1, 5))):
            D = np.diag((np.diag(Q) + lam) ** -0.5)
            probes.append(Probe(call("my_precondition", tensor(Q), lam), expected=D @ Q @ D, rtol=1e-10, atol=1e-12,
                                hint="rescale both the rows and the columns, by the inverse square root of the "
                                     "diagonal plus lam; with lam = 0 every diagonal entry of the result is 1"))
    return probes


def _half_life(rng):
    gammas = [0.5, 0.9] + rng.uniform(0.3, 0.999, 4).tolist()
    return [Probe(call("half_life", g), expected=math.log(2) / math.log(1 / g), rtol=1e-9, atol=0.0,
                  hint="the half-life should be positive and grow as gamma approaches 1: check which "
                       "logarithm goes on top, and its sign")
            for g in gammas]


def _leaky(rng):
    rhos = [0.5, 0.9] + rng.uniform(0.3, 0.995, 4).tolist()
    return [Probe(call("leaky_average_stats", r), expected=[math.log(0.5) / math.log(r), 1 / (1 - r)],
                  rtol=1e-8, atol=1e-12,
                  hint="after the half-life the weight rho^k should be half of rho^0; the window is the sum "
                       "of the geometric series of the weights")
            for r in rhos]


# --- 11, 12 -------------------------------------------------------------------------------------

def _cosine(rng):
    cases = [(0.3, 20, 5, 0.01), (1.0, 10, 0, 0.0),
             (float(rng.uniform(0.1, 1)), int(rng.integers(20, 60)), int(rng.integers(1, 10)), float(rng.uniform(0, 0.05)))]
    probes = []
    for base, total, warm, final in cases:
        ref = schedules.cosine(base, total, final_lr=final, warmup_steps=warm)
        for t in range(total + 11):
            probes.append(Probe(call("cosine_with_warmup", t, base, total, warm, final), expected=float(ref(t)),
                                hint="the first update runs at one W-th of the peak rate, the ramp reaches the peak "
                                     "where the cosine starts, the cosine takes the T - W steps after the warmup, "
                                     "and the rate stays at final_lr after T"))
    return probes


def _averaging(rng):
    def reference(gammas, r, p):
        cs, lr_max, weight_sum = [], 0.0, 0.0
        for k, gamma in enumerate(gammas):
            _, c, lr_max, weight_sum = schedule_free_coefficients(
                k, lr=gamma, warmup_steps=0, r=r, weight_lr_power=p, lr_max=lr_max, weight_sum=weight_sum)
            cs.append(c)
        return cs
    ramp = [0.1 * min(1, (k + 1) / 8) for k in range(30)]
    rates = (0.05 + rng.random(40)).tolist()
    cases = [([0.5] * 10, 0.0, 2.0), (ramp, 0.0, 2.0), (ramp, 1.0, 0.0),
             ([0.3 / (k + 1) for k in range(20)], 0.0, 2.0),
             (rates, float(rng.uniform(0, 1.5)), float(rng.uniform(0.5, 2.5)))]
    return [Probe(call("averaging_coefficients", g, r, p), expected=reference(g, r, p),
                  hint="c is a weight divided by the sum of the weights so far; the weight uses (k + 1)^r and "
                       "the largest rate seen so far to the power weight_lr_power")
            for g, r, p in cases]


def ex(check_id, points, names, make):
    return Exercise(check_id=check_id, points=points, names=names, make=make)


SPECS = {
    "01-optimization-intro": [ex("optimization-intro-hessian-check", 2, ("hessian_f",), _hessian),
                              ex("optimization-intro-critical-check", 2, ("critical_points",), _critical)],
    "02-convexity": [ex("convexity-projection-matrix-check", 3, ("projection_matrix",), _projection),
                     ex("convexity-clip-global-check", 2, ("clip_by_global_norm",), _clip)],
    "03-gd": [ex("03-gd-iterates-check", 2, ("gd_iterates",), _gd),
              ex("03-newton-step-check", 2, ("newton_step",), _newton)],
    "04-sgd": [ex("04-pick-probabilities-check", 2, ("pick_probabilities",), _pick),
               ex("04-running-average-check", 2, ("update_average",), _average)],
    "05-minibatch-sgd": [ex("05-minibatch-grad-check", 2, ("minibatch_grad",), _minibatch),
                         ex("05-stable-lr-check", 2, ("max_stable_lr",), _stable_lr)],
    "06-momentum": [ex("06-heavy-ball-check", 2, ("heavy_ball",), _heavy),
                    ex("06-contraction-rate-check", 2, ("contraction_rate",), _contraction)],
    "07-adagrad": [ex("07-adagrad-update-check", 3, ("my_adagrad", "init_adagrad_states"), _adagrad),
                   ex("07-precondition-check", 2, ("my_precondition",), _precondition)],
    "08-rmsprop": [ex("08-rmsprop-update-check", 3, ("my_centered_rmsprop", "init_centered_states"), _rmsprop),
                   ex("08-half-life-check", 1, ("half_life",), _half_life)],
    "09-adadelta": [ex("09-adadelta-no-gprime-check", 3, ("my_adadelta", "init_adadelta_states"), _adadelta),
                    ex("09-adadelta-leaky-stats-check", 2, ("leaky_average_stats",), _leaky)],
    "10-adam": [ex("10-adam-unbiased-check", 3, ("my_adam_unbiased", "init_adam_states"), _adam_unbiased),
                ex("10-adam-update-check", 3, ("my_amsgrad", "init_amsgrad_states"), _amsgrad)],
    "11-lr-scheduler": [ex("11-cosine-warmup-check", 3, ("cosine_with_warmup",), _cosine)],
    "12-schedule-free": [ex("12-averaging-coefficients-check", 2, ("averaging_coefficients",), _averaging)],
}
SPECS.update(MODERN_SPECS)
SPECS.update(EOS_SPECS)
