"""Chapter 01 (optimization and deep learning): the claims the notebook makes, recomputed.

Each test restates one sentence of chapters/01-optimization-intro.md and checks it from scratch
(plain Python floats, float64 torch, closed-form derivatives) or with d2lopt, never from the
notebook's stored output, so that a change that would make the prose wrong fails here.
"""
import itertools
import math
import warnings

import numpy as np
import pytest
import torch
from torch.autograd.functional import hessian

import d2lopt as d2l
from d2lopt import problems

PI = math.pi
F64 = torch.float64


# The risk f(x) = x cos(pi x), its derivatives, and the empirical risk g = f + 0.2 cos(5 pi x).
def f(x):
    return x * math.cos(PI * x)


def f1(x):
    return math.cos(PI * x) - PI * x * math.sin(PI * x)


def f2(x):
    return -2 * PI * math.sin(PI * x) - PI ** 2 * x * math.cos(PI * x)


def g(x):
    return f(x) + 0.2 * math.cos(5 * PI * x)


def bisect(fn, lo, hi, iters=200):
    flo = fn(lo)
    for _ in range(iters):
        mid = (lo + hi) / 2
        if (fn(mid) < 0) == (flo < 0):
            lo, flo = mid, fn(mid)
        else:
            hi = mid
    return (lo + hi) / 2


def critical_points(lo, hi, n=3000):
    """Zeros of f' on [lo, hi], as (x, 'min' | 'max')."""
    xs = [lo + (hi - lo) * i / n for i in range(n + 1)]
    out = []
    for a, b in zip(xs, xs[1:]):
        if f1(a) < 0 <= f1(b):
            out.append((bisect(f1, a, b), "min"))
        elif f1(a) > 0 >= f1(b):
            out.append((bisect(f1, a, b), "max"))
    return out


def classify(eigenvalues, tol=1e-9):
    """The notebook's table: the second-order test from the Hessian's eigenvalues."""
    pos, neg = (eigenvalues > tol), (eigenvalues < -tol)
    if pos.all():
        return "minimum"
    if neg.all():
        return "maximum"
    if pos.any() and neg.any():
        return "saddle"
    return "inconclusive"


def test_empirical_risk_minimizer_is_left_of_the_risk_minimizer_and_worse():
    grid = [0.5 + i / 1000 for i in range(1000)]
    x_f, x_g = min(grid, key=f), min(grid, key=g)
    assert 0.6 < x_f < 1.4 and 0.6 < x_g < 1.4                    # interior minima
    assert x_f - x_g == pytest.approx(0.07, abs=0.01)              # "about 0.07 to the left"
    assert f(x_g) - f(x_f) == pytest.approx(0.03, abs=0.005)       # "worse by about 0.03"
    # the grid minimizers sit within a grid step of the true ones
    assert x_f == pytest.approx(bisect(f1, 1.0, 1.2), abs=1e-3)


def test_xcos_has_one_local_and_one_global_minimum_on_the_interval():
    crit = critical_points(-1.0, 2.0)
    minima = [x for x, kind in crit if kind == "min"]
    assert len(minima) == 2
    x_local, x_global = sorted(minima, key=f, reverse=True)
    assert x_local == pytest.approx(-0.2739, abs=1e-4) and x_global == pytest.approx(1.0904, abs=1e-4)
    assert f2(x_local) > 0 and f2(x_global) > 0
    assert f(x_global) <= min(f(-1 + 3 * i / 30000) for i in range(30001))   # the lowest on [-1, 2]
    assert abs(x_local - (-0.3)) > 0.02                  # the book's arrow misses it
    # the bump between them is a local maximum at +0.274: f is odd
    maxima = [x for x, kind in crit if kind == "max" and x_local < x < x_global]
    assert len(maxima) == 1 and maxima[0] == pytest.approx(-x_local, abs=1e-9)
    assert all(f(-x) == pytest.approx(-f(x), abs=1e-15) for x in (0.1, 0.7, 1.9))


def test_local_minima_by_autograd_and_newton_match_closed_form():
    """The notebook finds the minima with autograd and Newton; the closed form agrees."""
    for x0, want in [(-0.3, bisect(f1, -0.5, 0.0)), (1.1, bisect(f1, 1.0, 1.2))]:
        x = torch.tensor(x0, dtype=F64, requires_grad=True)
        for _ in range(8):
            (d1,) = torch.autograd.grad(x * torch.cos(PI * x), x, create_graph=True)
            (d2,) = torch.autograd.grad(d1, x)
            x = (x - d1 / d2).detach().requires_grad_(True)
        assert x.item() == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("x0, end", [(0.2, "local"), (0.3, "global")])
def test_gradient_descent_ends_in_the_basin_of_its_start(x0, end):
    x_local, x_global = bisect(f1, -0.5, 0.0), bisect(f1, 1.0, 1.2)
    x = torch.tensor(x0, dtype=F64, requires_grad=True)
    opt = torch.optim.SGD([x], lr=0.05)
    for _ in range(100):
        opt.zero_grad()
        (x * torch.cos(PI * x)).backward()
        opt.step()
    assert x.item() == pytest.approx(x_local if end == "local" else x_global, abs=1e-4)
    # far from the edge of stability: lr * f'' < 2 at both minima
    assert 0.05 * max(f2(x_local), f2(x_global)) < 1.0


def test_cube_is_flat_but_not_extremal_at_zero():
    x = torch.tensor(0.0, dtype=F64, requires_grad=True)
    (d1,) = torch.autograd.grad(x ** 3, x, create_graph=True)
    (d2,) = torch.autograd.grad(d1, x)
    assert d1.item() == 0.0 and d2.item() == 0.0
    assert (-0.1) ** 3 < 0 < 0.1 ** 3


def test_d2l_meshgrid_is_quiet_and_the_books_call_warns():
    x = torch.linspace(-1, 1, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a, b = d2l.meshgrid(x, x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        c, d = torch.meshgrid(x, x)
    assert any("indexing" in str(w.message) for w in caught)
    assert torch.equal(a, c) and torch.equal(b, d)       # same result: 'ij' is the old default


CASES = [  # (f(x, y), critical point, what it is, what the second-order test says)
    (lambda x, y: x ** 2 + 2 * y ** 2, (0.0, 0.0), "minimum", "minimum"),
    (lambda x, y: -x ** 2 - y ** 2, (0.0, 0.0), "maximum", "maximum"),
    (lambda x, y: x ** 2 - y ** 2, (0.0, 0.0), "saddle", "saddle"),
    (lambda x, y: x ** 3 - 3 * x + y ** 2, (1.0, 0.0), "minimum", "minimum"),
    (lambda x, y: x ** 3 - 3 * x + y ** 2, (-1.0, 0.0), "saddle", "saddle"),
    (lambda x, y: x ** 4 + y ** 4, (0.0, 0.0), "minimum", "inconclusive"),
    (lambda x, y: x ** 3 - 3 * x * y ** 2, (0.0, 0.0), "saddle", "inconclusive"),
]


@pytest.mark.parametrize("fn, point, truth, test_says", CASES)
def test_second_order_test_on_known_critical_points(fn, point, truth, test_says):
    p = torch.tensor(point, dtype=F64, requires_grad=True)
    (grad,) = torch.autograd.grad(fn(*p), p)
    assert grad.abs().max() < 1e-12                                # a critical point
    assert classify(torch.linalg.eigvalsh(hessian(lambda v: fn(*v), p.detach()))) == test_says
    # what the point really is, from f itself on a small circle around it
    ts = torch.linspace(0, 2 * PI, 73, dtype=F64)[:-1]
    near = fn(point[0] + 1e-2 * torch.cos(ts), point[1] + 1e-2 * torch.sin(ts)) - fn(*point)
    kind = "minimum" if (near > 0).all() else "maximum" if (near < 0).all() else "saddle"
    assert kind == truth


def test_tanh_slope_at_four():
    closed = 1 - math.tanh(4.0) ** 2
    assert round(closed, 4) == 0.0013 and round(closed, 5) == 0.00134
    x = torch.tensor(4.0, dtype=F64, requires_grad=True)
    (slope,) = torch.autograd.grad(torch.tanh(x), x)
    assert abs(slope.item() - closed) < 1e-12
    assert math.tanh(-50.0) == -1.0 and all(math.tanh(a) > math.tanh(a - 1) for a in range(-3, 5))


def test_ten_stacked_sigmoids_stay_below_four_to_the_minus_ten():
    x = torch.tensor(0.0, dtype=F64, requires_grad=True)
    h, hs = x, []
    for _ in range(10):
        hs.append(h.item())
        h = torch.sigmoid(h)
    (chain,) = torch.autograd.grad(h, x)
    sig = lambda v: 1 / (1 + math.exp(-v))
    assert chain.item() == pytest.approx(math.prod(sig(v) * (1 - sig(v)) for v in hs), rel=1e-12)
    assert chain.item() <= 0.25 ** 10 < 1e-6
    assert max(sig(v) * (1 - sig(v)) for v in [-3, -0.5, 0.0, 0.5, 3]) == 0.25   # max at 0


def _mlp(width):
    return torch.nn.Sequential(torch.nn.Linear(1, width), torch.nn.Tanh(),
                               torch.nn.Linear(width, 1)).double()


@pytest.mark.parametrize("seed", [0, 1])
def test_permuted_hidden_units_compute_the_same_function_but_the_midpoint_does_not(seed):
    width = 6
    torch.manual_seed(seed)
    X = torch.linspace(-2, 2, 64, dtype=F64).reshape(-1, 1)
    Y = torch.sin(2 * X)
    loss = lambda m: ((m(X) - Y) ** 2).mean()
    net = _mlp(width)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        loss(net).backward()
        opt.step()
    perm = torch.randperm(width)
    permuted, midpoint = _mlp(width), _mlp(width)
    with torch.no_grad():
        permuted[0].weight.copy_(net[0].weight[perm])
        permuted[0].bias.copy_(net[0].bias[perm])
        permuted[2].weight.copy_(net[2].weight[:, perm])
        permuted[2].bias.copy_(net[2].bias)
        for pm, a, b in zip(midpoint.parameters(), net.parameters(), permuted.parameters()):
            pm.copy_((a + b) / 2)
    assert (net(X) - permuted(X)).abs().max() < 1e-12
    assert not torch.equal(net[0].weight, permuted[0].weight)     # a different parameter vector
    assert loss(net) < 1e-2 and loss(midpoint) > 100 * loss(net)  # "much worse than either end"
    assert math.factorial(width) == 720


def test_gaussian_symmetric_matrices_eigenvalue_signs():
    gen = torch.Generator().manual_seed(1)     # another sample than the notebook's
    for n in range(1, 7):
        A = torch.randn(20000, n, n, dtype=F64, generator=gen)
        lam = torch.linalg.eigvalsh((A + A.transpose(1, 2)) / 2)
        pos = (lam > 0).double().mean().item()
        allpos = (lam > 0).all(dim=1).double().mean().item()
        assert pos == pytest.approx(0.5, abs=0.01)                # one eigenvalue: a fair coin
        if n >= 2:
            assert allpos < 0.7 * 2.0 ** -n                       # all of them: rarer than 2^-n
        if n >= 3:
            assert allpos < 0.25 * 2.0 ** -n                      # and the shortfall grows
        if n == 6:
            assert allpos < 2e-4


def test_ternary_two_by_two_matrices_exactly():
    """Signs from the integer trace and determinant, no floating point involved."""
    pos = neg = zero = 0
    for a, b, c in itertools.product([-1, 0, 1], repeat=3):
        det, tr = a * c - b * b, a + c
        if det > 0:                      # both eigenvalues carry the sign of the trace
            pos, neg = pos + 2 * (tr > 0), neg + 2 * (tr < 0)
        elif det < 0:
            pos, neg = pos + 1, neg + 1
        else:                            # one zero eigenvalue; the other is the trace
            zero += 1 + (tr == 0)
            pos, neg = pos + (tr > 0), neg + (tr < 0)
    assert (pos, neg, zero) == (22, 22, 10)
    assert round(pos / 54, 4) == 0.4074
    lams = torch.cat([torch.linalg.eigvalsh(torch.tensor([[a, b], [b, c]], dtype=F64))
                      for a, b, c in itertools.product([-1.0, 0.0, 1.0], repeat=3)])
    assert int((lams.abs() < 1e-12).sum()) == zero


def test_gradient_descent_on_the_saddle():
    lr = 0.2
    off = d2l.trajectory_2d(problems.saddle, torch.optim.SGD, x0=(-1.0, 1e-3), steps=20, lr=lr)
    on = d2l.trajectory_2d(problems.saddle, torch.optim.SGD, x0=(-1.0, 0.0), steps=20, lr=lr)
    k = torch.arange(21, dtype=F64)
    torch.testing.assert_close(off[:, 0], -(1 - 2 * lr) ** k, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(off[:, 1], 1e-3 * (1 + 2 * lr) ** k, rtol=1e-12, atol=1e-15)
    assert (on[:, 1] == 0).all() and on[-1].abs().max() < 1e-4     # walks into the saddle
    steps = math.log(1e3) / math.log(1 + 2 * lr)
    assert round(steps, 1) == 20.5
    assert off[20, 1] < 1 < off[20, 1] * (1 + 2 * lr)              # |y| reaches 1 at step 21


def test_exercise5_hessian_critical_points_and_their_kinds():
    fn = lambda v: v[0] ** 4 + v[1] ** 4 - 4 * v[0] * v[1]
    hand = lambda x, y: torch.tensor([[12 * x * x, -4.0], [-4.0, 12 * y * y]], dtype=F64)
    for x, y in [(1.0, 1.0), (0.0, 0.0), (0.5, -2.0), (-1.3, 2.7)]:
        torch.testing.assert_close(hand(x, y), hessian(fn, torch.tensor([x, y], dtype=F64)))
    # grad = 0: y = x^3 and x = y^3, so x^9 = x: real roots 0, +1, -1
    roots = np.roots([1, 0, 0, 0, 0, 0, 0, 0, -1, 0])
    roots = sorted(round(r.real, 9) + 0.0 for r in roots if abs(r.imag) < 1e-9)
    assert roots == [-1.0, 0.0, 1.0]
    kinds = {(x, x ** 3): classify(torch.linalg.eigvalsh(hand(x, x ** 3))) for x in roots}
    assert kinds == {(0.0, 0.0): "saddle", (1.0, 1.0): "minimum", (-1.0, -1.0): "minimum"}
