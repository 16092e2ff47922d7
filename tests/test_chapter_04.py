"""Chapter 04 (SGD): the claims the notebook makes, recomputed here independently of its cells.

Each test states one sentence of chapters/04-sgd.md (prose, summary or exercise answer) and checks
it from scratch with float64 torch and d2lopt, never from the notebook's stored output, so a change
to the package or to the notebook's setup that would make the prose wrong fails here.
"""
import functools
import math

import pytest
import torch

import d2lopt as d2l
from d2lopt import checks, problems, schedules

F64 = torch.float64
SCALE = torch.tensor([2.0, 4.0], dtype=F64)   # grad of x1^2 + 2 x2^2 is SCALE * x


def constant_lr(t):
    return 1.0


def exponential_lr(t, lam=0.1):
    return math.exp(-lam * t)


def polynomial_lr(t, alpha=0.5, beta=0.1):
    return (beta * t + 1) ** (-alpha)


def chains(lr, eta=0.1, steps=200, n=4000, seed=0, x0=(-5.0, -2.0)):
    """n independent noisy-gradient SGD runs on x1^2 + 2 x2^2; (distances (steps+1, n), final x)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.tensor(x0, dtype=F64).repeat(n, 1)
    dist = [x.norm(dim=1)]
    for t in range(steps):
        x = x - eta * lr(t) * (SCALE * x + torch.randn(n, 2, dtype=F64, generator=gen))
        dist.append(x.norm(dim=1))
    return torch.stack(dist), x


def stationary_sd(eta, a):
    return eta / math.sqrt(1 - (1 - 2 * a * eta) ** 2)


def noisy_path(lr, steps, eta=0.1, seed=0, x0=(-5.0, -2.0)):
    """The notebook's sgd through d2l.train_2d, noise from a seeded generator."""
    gen = torch.Generator().manual_seed(seed)

    def sgd(x1, x2, t, s2, f_grad):
        g1, g2 = f_grad(x1, x2)
        xi1, xi2 = torch.randn(2, dtype=F64, generator=gen).tolist()
        eta_t = eta * lr(t)
        return x1 - eta_t * (g1 + xi1), x2 - eta_t * (g2 + xi2), t + 1, s2
    return d2l.train_2d(sgd, steps=steps, f_grad=problems.quadratic.grad, x0=x0, verbose=False)


def test_minibatch_gradient_is_unbiased():
    gen = torch.Generator().manual_seed(3)
    X, y = torch.randn(100, 3, dtype=F64, generator=gen), torch.randn(100, dtype=F64, generator=gen)
    w = torch.randn(3, dtype=F64, generator=gen, requires_grad=True)
    ((X @ w - y) ** 2 / 2).mean().backward()
    per_example = (X @ w.detach() - y).unsqueeze(1) * X
    torch.testing.assert_close(per_example.mean(0), w.grad, rtol=1e-12, atol=1e-12)
    picks = torch.randint(100, (20000,), generator=gen)
    std_err = per_example.std(0, correction=0) / math.sqrt(len(picks))
    assert ((per_example[picks].mean(0) - w.grad).abs() < 4 * std_err).all()


def test_toy_objective_is_problems_quadratic():
    for p in [(-5.0, -2.0), (0.3, 1.7), (2.0, -0.5)]:
        assert problems.quadratic.f(*p) == p[0] ** 2 + 2 * p[1] ** 2
        assert problems.quadratic.grad(*p) == (2 * p[0], 4 * p[1])


def test_constant_rate_keeps_jittering():
    path = noisy_path(constant_lr, steps=200)
    late = torch.tensor(path[50:])
    assert late.norm(dim=1).max() < 1.0            # it reached the neighbourhood of the minimum
    assert late.std(0).min() > 0.05                 # ... and does not settle


@pytest.mark.parametrize("a", [1.0, 2.0])
def test_stationary_sd_formula(a):
    for eta in [0.0125, 0.05, 0.1, 0.2]:             # the two closed forms are the same
        assert stationary_sd(eta, a) == pytest.approx(math.sqrt(eta / (4 * a * (1 - a * eta))))
    assert round(stationary_sd(0.1, a), 3) == {1.0: 0.167, 2.0: 0.125}[a]
    _, x = chains(constant_lr, seed=1)
    k = int(a) - 1
    assert x[:, k].std().item() == pytest.approx(stationary_sd(0.1, a), rel=0.05)
    assert abs(x[:, k].mean().item()) < 4 * stationary_sd(0.1, a) / math.sqrt(4000)


def test_spread_scales_like_sqrt_eta_variance_and_excess_loss_like_eta():
    """The issue's point: sd ~ sqrt(eta) (a quarter of the rate halves it), not eta."""
    etas = [0.0125, 0.025, 0.05, 0.1, 0.2]
    sds = torch.stack([chains(constant_lr, eta=e, steps=400, seed=2)[1].std(0) for e in etas])
    for k, a in enumerate([1.0, 2.0]):
        for e, sd in zip(etas, sds[:, k].tolist()):
            assert sd == pytest.approx(stationary_sd(e, a), rel=0.06)
        assert 1.9 < sds[3, k] / sds[1, k] < 2.4                     # quarter rate: about half
        for e0, e1 in zip(etas, etas[1:]):                            # doubling: about sqrt(2)
            assert 1.35 < stationary_sd(e1, a) / stationary_sd(e0, a) < 1.65
    # small eta: sd -> sqrt(eta / 4a), excess loss a sd^2 -> eta / 4 per coordinate
    for a in [1.0, 2.0]:
        e = 1e-4
        assert stationary_sd(e, a) / math.sqrt(e / (4 * a)) == pytest.approx(1, abs=1e-3)
        assert a * stationary_sd(e, a) ** 2 / (e / 4) == pytest.approx(1, abs=1e-3)


def test_schedules_match_the_package():
    checks.assert_passes(checks.check_function(
        exponential_lr, schedules.exponential(1.0, math.exp(-0.1)), range(1000),
        rtol=1e-12, atol=1e-15))
    checks.assert_passes(checks.check_function(
        functools.partial(polynomial_lr, alpha=0.5, beta=1.0), schedules.square_root(1.0),
        range(1000), rtol=1e-12, atol=1e-15))
    assert exponential_lr(0) == 1.0 and polynomial_lr(0) == 1.0   # the first update at full rate


def test_exponential_decay_stops_short():
    etas = [0.1 * exponential_lr(t) for t in range(1000)]
    book = [0.1 * exponential_lr(t + 2) for t in range(1000)]
    assert sum(etas) == pytest.approx(0.1 / (1 - math.exp(-0.1)), rel=1e-12)
    assert round(sum(etas), 2) == 1.05 and round(sum(book), 2) == 0.86
    x1_lim = -5 * math.prod(1 - 2 * e for e in etas)
    x1_book = -5 * math.prod(1 - 2 * e for e in book)
    assert -0.6 < x1_lim < -0.5 and x1_book < x1_lim - 0.2    # the book's stalls further out
    _, x = chains(exponential_lr, steps=1000, n=1000, seed=3)
    assert x[:, 0].mean().item() == pytest.approx(x1_lim, abs=0.02)
    assert x[:, 0].std().item() < 0.1
    # the book's printed x1 = -0.769652 is within the noise of its own end point
    assert abs(-0.769652 - x1_book) < 2 * x[:, 0].std().item()


def test_polynomial_decay_gets_close_in_50_steps():
    dist_poly, _ = chains(polynomial_lr, steps=50, n=2000, seed=4)
    dist_const, _ = chains(constant_lr, steps=50, n=2000, seed=4)
    assert dist_poly[-1].mean() < 0.15 < dist_const[-1].mean()


def test_torch_sgd_with_attach_retraces_the_scratch_path():
    for lr, schedule in [(exponential_lr, schedules.exponential(0.1, math.exp(-0.1))),
                         (polynomial_lr, lambda t: 0.1 * polynomial_lr(t))]:
        ours = noisy_path(lr, steps=50, seed=5)
        gen = torch.Generator().manual_seed(5)
        x = torch.tensor([-5.0, -2.0], dtype=F64, requires_grad=True)
        opt = torch.optim.SGD([x], lr=schedule(0))
        sched = schedules.attach(opt, schedule)
        for t in range(50):
            opt.zero_grad()
            problems.quadratic.f(x[0], x[1]).backward()
            x.grad += torch.randn(2, dtype=F64, generator=gen)
            opt.step()
            sched.step()
            assert x.tolist() == pytest.approx(list(ours[t + 1]), abs=1e-12)


def test_convex_bound_holds_with_room_to_spare():
    gen = torch.Generator().manual_seed(0)
    runs = 200
    z = torch.randn(101, 2, dtype=F64, generator=gen) * torch.tensor([1.0, 3.0], dtype=F64)

    def R(x):
        return (x.unsqueeze(-2) - z).abs().sum(-1).mean(-1)
    x_star = z.median(dim=0).values
    r_star = R(x_star).item()
    assert all(R(x_star + 0.01 * v).item() > r_star for v in torch.randn(50, 2, dtype=F64))
    x_1 = torch.tensor([4.0, -6.0], dtype=F64)
    r, L = (x_1 - x_star).norm().item(), math.sqrt(2)
    gaps = []
    for T in [10, 100, 1000, 10000]:
        eta = r / (L * math.sqrt(T))
        x, x_sum = x_1.repeat(runs, 1), torch.zeros(runs, 2, dtype=F64)
        for _ in range(T):
            x_sum += x
            x = x - eta * torch.sign(x - z[torch.randint(101, (runs,), generator=gen)])
        gaps.append((R(x_sum / T) - r_star).mean().item())
        assert 3 < r * L / math.sqrt(T) / gaps[-1] < 120           # below, by 4 to 90 or so
    assert gaps[0] / gaps[1] > 3.5 and gaps[1] / gaps[2] > 3.5      # faster than T^-1/2 at first
    assert 2.5 < gaps[2] / gaps[3] < 4.0                            # then about parallel


def test_sampling_with_replacement_probabilities():
    n = 1000
    draws = torch.randint(n, (200, n), generator=torch.Generator().manual_seed(6))
    counts = torch.zeros(200, n).scatter_add_(1, draws, torch.ones(200, n))
    assert (counts >= 1).double().mean().item() == pytest.approx(1 - (1 - 1 / n) ** n, abs=0.005)
    assert (counts == 1).double().mean().item() == pytest.approx((1 - 1 / n) ** (n - 1), abs=0.005)
    assert 1 - (1 - 1 / n) ** n == pytest.approx(1 - math.exp(-1), abs=1e-3)
    assert round(math.exp(-1), 2) == 0.37                           # "about 37 % unused"


def test_exercise_1_ordering_of_schedules():
    final = {}
    for name, lr in [("constant", constant_lr), ("exponential", exponential_lr),
                     ("poly 0.5", polynomial_lr), ("poly 1", functools.partial(polynomial_lr, alpha=1.0))]:
        dist, _ = chains(lr, steps=1000, n=200, seed=7)
        mean = dist.mean(dim=1)
        final[name] = (mean[100].item(), mean[1000].item())
    assert final["constant"][1] == pytest.approx(final["constant"][0], rel=0.15)       # levels off
    assert final["exponential"][1] == pytest.approx(final["exponential"][0], rel=0.01)  # frozen
    assert final["exponential"][1] > final["constant"][1] > final["poly 0.5"][1] > final["poly 1"][1]
    assert final["poly 0.5"][1] < 0.7 * final["poly 0.5"][0]                            # improving


def test_exercise_2_noise_is_a_moving_minimizer():
    xi = torch.randn(100, 2, dtype=F64, generator=torch.Generator().manual_seed(8)).tolist()
    a, b = [-5.0, -2.0], [-5.0, -2.0]
    for xi1, xi2 in xi:
        a = [a[0] - 0.1 * (2 * a[0] + xi1), a[1] - 0.1 * (4 * a[1] + xi2)]
        x = torch.tensor(b, dtype=F64, requires_grad=True)
        ((x[0] + xi1 / 2) ** 2 + 2 * (x[1] + xi2 / 4) ** 2).backward()
        b = (x.detach() - 0.1 * x.grad).tolist()
        assert a == pytest.approx(b, abs=1e-12)


def test_exercise_3_without_replacement_floor_is_lower_and_falls_faster():
    gen = torch.Generator().manual_seed(0)
    n, d, runs, epochs, lrs = 64, 5, 50, 25, [0.04, 0.02, 0.01]
    X = torch.randn(n, d, dtype=F64, generator=gen)
    y = X @ torch.randn(d, dtype=F64, generator=gen) + 0.5 * torch.randn(n, dtype=F64, generator=gen)
    w_star = torch.linalg.lstsq(X, y.unsqueeze(1)).solution.squeeze(1)

    def loss(w):
        return ((w @ X.T - y) ** 2).mean(-1) / 2

    def floors(replacement):
        g = torch.Generator().manual_seed(1)
        lr = torch.tensor(lrs, dtype=F64).repeat_interleave(runs).unsqueeze(1)
        w, excess = torch.zeros(len(lr), d, dtype=F64), []
        for _ in range(epochs):
            order = (torch.randint(n, (len(lr), n), generator=g) if replacement
                     else torch.rand(len(lr), n, dtype=F64, generator=g).argsort(dim=1))
            for i in order.T:
                w = w - lr * ((w * X[i]).sum(1) - y[i]).unsqueeze(1) * X[i]
            excess.append((loss(w) - loss(w_star)).view(len(lrs), runs).mean(1))
        return torch.stack(excess)[-5:].mean(0).tolist()
    with_r, without_r = floors(True), floors(False)
    assert all(b < a for a, b in zip(with_r, without_r))
    assert with_r[2] / without_r[2] > with_r[0] / without_r[0]          # the gap widens
    for k in range(2):
        assert 1.6 < with_r[k] / with_r[k + 1] < 2.9                       # roughly halves
        assert 4.5 < without_r[k] / without_r[k + 1] < 9                   # about 5, then 8
    assert without_r[1] / without_r[2] > without_r[0] / without_r[1]      # towards 8 (eta^3)


def test_exercise_5_minima_of_x2_one_plus_sin():
    x = torch.linspace(-20.0, 20.0, 400001, dtype=F64)
    v = x ** 2 * (1 + torch.sin(x))
    is_min = (v[1:-1] < v[:-2]) & (v[1:-1] <= v[2:])
    found = x[1:-1][is_min].tolist()
    expected = [0.0] + [-math.pi / 2 + 2 * math.pi * k for k in range(-3, 4)
                        if -20 < -math.pi / 2 + 2 * math.pi * k < 20]
    assert len(found) == len(expected) == 7
    assert all(min(abs(f - e) for e in expected) < 1e-3 for f in found)
