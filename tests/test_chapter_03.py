"""The claims of chapters/03-gd.md, recomputed here independently of the notebook's cells.

Each test states one sentence of the chapter's prose and checks it from scratch (plain Python
floats or float64 torch), so a change to the package or to the notebook's numbers that breaks
the prose fails here, not only as an nbval output diff.
"""
import math

import pytest
import torch

import d2lopt as d2l
from d2lopt import problems

C_COS = 0.15 * math.pi


def gd(eta, grad, x0=10.0, steps=10):
    xs = [x0]
    for _ in range(steps):
        xs.append(xs[-1] - eta * grad(xs[-1]))
    return xs


def newton(grad, hess, eta=1.0, x0=10.0, steps=10, absolute=False):
    xs = [x0]
    for _ in range(steps):
        h = hess(xs[-1])
        xs.append(xs[-1] - eta * grad(xs[-1]) / (abs(h) if absolute else h))
    return xs


# f(x) = x cos(cx), c = 0.15 pi, and its derivatives
def xcos(x):
    return x * math.cos(C_COS * x)


def xcos_grad(x):
    return math.cos(C_COS * x) - C_COS * x * math.sin(C_COS * x)


def xcos_hess(x):
    return -2 * C_COS * math.sin(C_COS * x) - C_COS ** 2 * x * math.cos(C_COS * x)


def xcos_third(x):
    c = C_COS
    return -3 * c ** 2 * math.cos(c * x) + c ** 3 * x * math.sin(c * x)


def stationary_point(x, steps=60):
    """The stationary point of x cos(cx) that pure Newton reaches from x."""
    return newton(xcos_grad, xcos_hess, x0=x, steps=steps)[-1]


def test_closed_form_on_x_squared_and_torch_sgd():
    for eta in [0.05, 0.2, 0.5, 0.9, 1.1]:
        xs = gd(eta, lambda x: 2 * x)
        assert xs == pytest.approx([10 * (1 - 2 * eta) ** k for k in range(11)], rel=1e-12, abs=1e-12)
        x = torch.tensor(10.0, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.SGD([x], lr=eta)
        for k in range(10):
            opt.zero_grad()
            (x ** 2).backward()
            opt.step()
            assert x.item() == pytest.approx(xs[k + 1], rel=1e-12, abs=1e-12)
    assert gd(0.2, lambda x: 2 * x)[-1] == pytest.approx(0.0604662, abs=1e-7)
    assert gd(0.05, lambda x: 2 * x)[-1] == pytest.approx(3.49, abs=5e-3)       # "creeps"
    assert gd(1.1, lambda x: 2 * x)[-1] == pytest.approx(10 * 1.2 ** 10)        # "+20 % per step"


def test_two_d_example_is_problems_quadratic_and_x2_converges_first():
    for p in [(-5.0, -2.0), (0.3, 1.7), (2.0, -0.5)]:
        assert problems.quadratic.f(*p) == p[0] ** 2 + 2 * p[1] ** 2
        assert problems.quadratic.grad(*p) == (2 * p[0], 4 * p[1])
        assert problems.autograd_check(problems.quadratic, p) == pytest.approx((2 * p[0], 4 * p[1]))
    path = d2l.train_2d(lambda x1, x2, s1, s2: (0.8 * x1, 0.6 * x2, 0, 0), steps=20, verbose=False)
    assert all(abs(x2) / 2 < abs(x1) / 5 for x1, x2 in path[1:])   # x2 shrinks relatively faster


def test_eta_2_on_xcos_jumps_into_a_shallow_basin_and_zigzags():
    xs = gd(2, xcos_grad, steps=400)
    x_star = stationary_point(-1.8)
    deep = stationary_point(7.0)
    hill = stationary_point(1.8)
    assert x_star == pytest.approx(-1.826, abs=5e-4) and xcos_hess(x_star) > 0
    assert deep == pytest.approx(7.27, abs=5e-3) and xcos_hess(deep) > 0
    assert hill == pytest.approx(1.83, abs=5e-3) and xcos_hess(hill) < 0
    assert xcos(x_star) == pytest.approx(-1.19, abs=5e-3) and xcos(deep) == pytest.approx(-6.98, abs=5e-3)
    # x = 10 starts in the basin of the deep minimum (between it and the next hill, 13.66) ...
    assert deep < 10 < stationary_point(13.5) and xcos_hess(stationary_point(13.5)) < 0
    # ... and the first step lands between the hills at -7.27 and 1.83: the basin of x*
    assert all(stationary_point(-7.0) < x < hill for x in xs[1:])
    # the book's printed tenth iterate; it is one end of a zigzag, not a resting point
    assert f"{xs[10]:.6f}" == "-1.528166"
    assert xcos_hess(x_star) == pytest.approx(0.98, abs=5e-3)
    assert 2 * xcos_hess(x_star) == pytest.approx(1.96, abs=5e-3) and 2 * xcos_hess(x_star) < 2
    assert all((xs[k] - x_star) * (xs[k + 1] - x_star) < 0 for k in range(2, 40))
    assert abs(xs[10] - x_star) > 0.25
    assert abs(xs[400] - x_star) < 1e-6


def test_newton_on_cosh_reaches_zero_exactly_and_cubically():
    c = 0.5
    xs = newton(lambda x: c * math.sinh(c * x), lambda x: c ** 2 * math.cosh(c * x))
    assert xs[8] != 0.0 and xs[9] == 0.0 and xs[10] == 0.0
    ratios = [abs(xs[k + 1]) / abs(xs[k]) ** 3 for k in (3, 4, 5)]
    assert ratios == sorted(ratios) and ratios[-1] == pytest.approx(c ** 2 / 3, rel=0.05)
    x = torch.tensor(10.0, dtype=torch.float64)
    for _ in range(10):
        x = x - c * torch.sinh(c * x) / (c ** 2 * torch.cosh(c * x))
    assert x.item() == 0.0


def test_hand_written_second_derivatives_match_autograd():
    for x0 in [-7.0, -1.0, 0.0, 0.5, 3.0, 10.0]:
        x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
        c = torch.tensor(C_COS, dtype=torch.float64)
        (g,) = torch.autograd.grad(x * torch.cos(c * x), x, create_graph=True)
        (h,) = torch.autograd.grad(g, x, create_graph=True)
        (t,) = torch.autograd.grad(h, x)
        assert g.item() == pytest.approx(xcos_grad(x0), rel=1e-12, abs=1e-12)
        assert h.item() == pytest.approx(xcos_hess(x0), rel=1e-12, abs=1e-12)
        assert t.item() == pytest.approx(xcos_third(x0), rel=1e-12, abs=1e-12)


def test_pure_newton_on_xcos_finds_a_maximum_and_damped_newton_a_minimum():
    xs = newton(xcos_grad, xcos_hess)
    assert [round(x, 1) for x in xs[:5]] == [10.0, 5.0, 25.0, 27.8, 26.8]
    assert xs[-1] == pytest.approx(26.834, abs=5e-4) and xcos_hess(xs[-1]) < 0
    damped = newton(xcos_grad, xcos_hess, eta=0.5)
    assert damped[-1] == pytest.approx(7.27, abs=5e-3) and xcos_hess(damped[-1]) > 0
    assert all(stationary_point(1.8) < x < stationary_point(13.5) for x in damped)   # one basin


def test_newton_converges_quadratically_to_the_maximum():
    xs = newton(xcos_grad, xcos_hess)
    x_star = stationary_point(26.8)
    C = abs(xcos_third(x_star) / (2 * xcos_hess(x_star)))
    errors = [abs(x - x_star) for x in xs]
    for k in (3, 4, 5):
        assert errors[k + 1] / errors[k] ** 2 == pytest.approx(C, rel=0.1)
    assert [round(math.log10(errors[k]), 1) for k in (4, 5, 6)] == [-1.5, -4.3, -10.1]
    assert errors[7] < 1e-13


def test_abs_newton_always_moves_downhill_and_ends_at_a_minimum():
    xs = newton(xcos_grad, xcos_hess, absolute=True)
    assert all((b - a) * xcos_grad(a) <= 0 for a, b in zip(xs, xs[1:]))
    assert xs[1] == pytest.approx(5.0, abs=0.05) and xs[2] == pytest.approx(25.0, abs=0.05)
    assert xs[-1] == pytest.approx(20.222, abs=5e-4) and xcos_hess(xs[-1]) > 0


def test_exercise_1_gd_on_ax2_converges_iff_eta_below_1_over_a():
    a = 3.0
    for eta in [0.05, 0.1, 0.2, 0.3, 0.33]:
        assert abs(gd(eta, lambda x: 2 * a * x, steps=1000)[-1]) < 1e-3
    assert gd(1 / (2 * a), lambda x: 2 * a * x, steps=1)[-1] == pytest.approx(0.0, abs=1e-12)
    assert [abs(x) for x in gd(1 / a, lambda x: 2 * a * x)] == pytest.approx([10.0] * 11)
    assert abs(gd(0.35, lambda x: 2 * a * x)[-1]) > 10


# --- exercises 2 to 5: bisection, golden section, preconditioning ------------------------------

def bisection(df, a, b, tol=1e-10):
    steps = 0
    while b - a > tol:
        m = (a + b) / 2
        a, b = (a, m) if df(m) > 0 else (m, b)
        steps += 1
    return (a + b) / 2, steps


def golden_section(fn, a, b, tol=1e-10):
    r = (math.sqrt(5) - 1) / 2
    u, v = b - r * (b - a), a + r * (b - a)
    fu, fv, evals = fn(u), fn(v), 2
    while b - a > tol:
        if fu < fv:
            b, v, fv = v, u, fu
            u = b - r * (b - a)
            fu = fn(u)
        else:
            a, u, fu = u, v, fv
            v = a + r * (b - a)
            fv = fn(v)
        evals += 1
    return (a + b) / 2, evals


def test_exercise_2_bisection_and_golden_section():
    x_exact = (math.log(2) - 3) / 3
    assert x_exact == pytest.approx(-0.769, abs=5e-4)
    dg = lambda x: 3 / (1 + math.exp(-(3 * x + 3))) - 2          # g'(x) = 3 sigma(3x + 3) - 2
    assert dg(x_exact) == pytest.approx(0.0, abs=1e-15)
    x, n = bisection(dg, -5.0, 5.0)
    assert n == math.ceil(math.log2(10 / 1e-10)) and abs(x - x_exact) < 1e-10
    g = lambda x: torch.logaddexp(torch.tensor(x, dtype=torch.float64),
                                  torch.tensor(-2 * x - 3, dtype=torch.float64)).item()
    x_gold, _ = golden_section(g, -5.0, 5.0)
    assert abs(x_gold - x_exact) < 1e-8


def rotation(angle):
    return torch.tensor([[math.cos(angle), -math.sin(angle)],
                         [math.sin(angle), math.cos(angle)]], dtype=torch.float64)


def steps_to_solve(A, x0, method, tol=1e-10, max_steps=2000):
    x = torch.tensor(x0, dtype=torch.float64)
    lam = torch.linalg.eigvalsh(A)
    for k in range(max_steps + 1):
        if (x @ A @ x).item() / 2 < tol:
            return k
        g = A @ x
        if method == "gd":
            x = x - 2 / (lam[0] + lam[-1]) * g
        elif method == "line":
            x = x - (g @ g) / (g @ A @ g) * g        # the exact step; bisection finds it too
        elif method == "diag":
            x = x - g / A.diagonal().abs()
        else:
            x = x - torch.linalg.solve(A, g)
    return max_steps + 1


def test_exercises_3_to_5_scaling_preconditioning_rotation():
    A_well = torch.diag(torch.tensor([2.0, 4.0], dtype=torch.float64))
    A_bad = torch.diag(torch.tensor([2.0, 100.0], dtype=torch.float64))
    Q = rotation(math.pi / 4)
    A_rot = Q.T @ A_bad @ Q
    torch.testing.assert_close(A_rot.abs(), torch.tensor([[51.0, 49.0], [49.0, 51.0]],
                                                         dtype=torch.float64))
    n = {name: {m: steps_to_solve(A, x0, m) for m in ("gd", "line", "diag", "newton")}
         for name, (A, x0) in {"well": (A_well, (-5.0, -2.0)), "bad": (A_bad, (-5.0, -2.0)),
                               "worst": (A_bad, (-5.0, -0.1)), "rot": (A_rot, (-5.0, -2.0))}.items()}
    assert 24 < n["bad"]["gd"] / n["well"]["gd"] < 31                  # "about 27 times slower"
    assert n["bad"]["line"] < 20                                        # the lucky start
    assert n["worst"]["line"] == n["worst"]["gd"] > 200                 # the classic worst start
    assert n["bad"]["diag"] == n["well"]["diag"] == 1
    assert n["rot"]["diag"] == n["rot"]["gd"] and abs(n["rot"]["gd"] - n["bad"]["gd"]) < 0.1 * n["bad"]["gd"]
    assert all(v["newton"] == 1 for v in n.values())
    # the worst start is -10 (1/lambda_1, 1/lambda_2); the GD rate is (kappa - 1) / (kappa + 1)
    assert (-5.0, -0.1) == pytest.approx((-10 / 2.0, -10 / 100.0))


def test_line_search_by_bisection_finds_the_exact_step():
    A = rotation(math.pi / 4).T @ torch.diag(torch.tensor([2.0, 100.0], dtype=torch.float64)) @ rotation(math.pi / 4)
    x = torch.tensor([-5.0, -2.0], dtype=torch.float64)
    g = A @ x
    eta, _ = bisection(lambda s: -(A @ (x - s * g) @ g).item(), 0.0, 10.0, tol=1e-12)
    assert eta == pytest.approx(((g @ g) / (g @ A @ g)).item(), abs=1e-11)


def test_one_newton_step_solves_a_quadratic():
    for a, b, x0 in [(0.5, 0.0, 10.0), (3.0, -1.5, 7.0), (0.2, 4.0, -3.0)]:
        x = newton(lambda x: 2 * a * (x - b), lambda x: 2 * a, x0=x0, steps=1)[-1]
        assert x == pytest.approx(b, abs=1e-12)
