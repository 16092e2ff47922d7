"""Chapter 06 (momentum): the claims of chapters/06-momentum.md, recomputed with package code.

Each test recomputes a statement of the notebook's prose from d2lopt, torch and the data (never
from the notebook's stored output), so that a change in the package or the data that would make
the prose wrong fails here. The only pinned numbers come from outside the repository: the book's
printed 2-D results and torch's points in the optimizer conventions.
"""
import functools
import math

import numpy as np
import pytest
import torch

import d2lopt as d2l
from d2lopt import checks, problems

F64 = torch.float64


# --- the notebook's from-scratch code, written out ----------------------------------------------

def f_2d(x1, x2):
    return 0.1 * x1 ** 2 + 2 * x2 ** 2


def gd_2d(x1, x2, s1, s2, eta=0.4):
    return (x1 - eta * 0.2 * x1, x2 - eta * 4 * x2, 0, 0)


def momentum_2d(x1, x2, v1, v2, eta=0.6, beta=0.5):
    v1 = beta * v1 + 0.2 * x1
    v2 = beta * v2 + 4 * x2
    return x1 - eta * v1, x2 - eta * v2, v1, v2


def path_2d(trainer, steps=20, **kw):
    return torch.tensor(d2l.train_2d(functools.partial(trainer, **kw), steps=steps, verbose=False),
                        dtype=F64)


def init_momentum_states(feature_dim):
    return (torch.zeros((feature_dim, 1)), torch.zeros(1))


def sgd_momentum(params, states, hyperparams):
    for p, v in zip(params, states):
        with torch.no_grad():
            v[:] = hyperparams["momentum"] * v + p.grad
            p[:] -= hyperparams["lr"] * v
        p.grad.zero_()


def heavy_ball_matrix(eta_lam, beta):
    return torch.tensor([[beta, 1.0], [-eta_lam * beta, 1 - eta_lam]], dtype=F64)


def nesterov_matrix(eta_lam, beta):
    return torch.tensor([[beta, 1.0], [-eta_lam * beta ** 2, 1 - eta_lam * (1 + beta)]], dtype=F64)


def radius(matrix):
    return torch.linalg.eigvals(matrix).abs().max().item()


# --- basics: the 2-D problem --------------------------------------------------------------------

def test_f_2d_is_the_shared_ill_conditioned_problem():
    for p in [(-5.0, -2.0), (1.5, 0.3), (0.0, 0.0)]:
        assert problems.ill_conditioned.f(*p) == f_2d(*p)
        assert problems.ill_conditioned.grad(*p) == pytest.approx((0.2 * p[0], 4 * p[1]))


@pytest.mark.parametrize("eta", [0.4, 0.6])
def test_gradient_descent_follows_its_closed_form(eta):
    k = torch.arange(21, dtype=F64)
    closed = torch.stack([-5 * (1 - 0.2 * eta) ** k, -2 * (1 - 4 * eta) ** k], dim=1)
    torch.testing.assert_close(path_2d(gd_2d, eta=eta), closed, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(d2l.trajectory_2d(f_2d, torch.optim.SGD, lr=eta), closed,
                               rtol=1e-12, atol=1e-15)


def test_gd_numbers_of_the_prose_and_the_book():
    x1, x2 = path_2d(gd_2d)[-1].tolist()                  # book: x1 -0.943467, x2 -0.000073
    assert (x1, x2) == pytest.approx((-0.943467, -0.000073), abs=1e-6)
    assert 5 * 0.92 ** 20 == pytest.approx(-x1)
    x1, x2 = path_2d(gd_2d, eta=0.6)[-1].tolist()         # book: x1 -0.387814, x2 -1673.365109
    assert (x1, x2) == pytest.approx((-0.387814, -1673.365109), abs=1e-6)
    assert abs(x2) == pytest.approx(2 * 1.4 ** 20) and round(abs(x2)) == 1673


def test_momentum_2d_matches_torch_sgd_and_reduces_to_gd():
    for eta, beta in [(0.6, 0.5), (0.6, 0.25), (0.4, 0.0), (0.1, 0.9)]:
        ours = path_2d(momentum_2d, eta=eta, beta=beta)
        ref = d2l.trajectory_2d(f_2d, torch.optim.SGD, lr=eta, momentum=beta)
        assert (ours - ref).abs().max() < 1e-12
    torch.testing.assert_close(path_2d(momentum_2d, eta=0.4, beta=0.0), path_2d(gd_2d),
                               rtol=1e-14, atol=1e-15)


def test_momentum_2d_book_numbers_and_the_beta_025_rates():
    assert path_2d(momentum_2d)[-1].tolist() == pytest.approx([0.007188, 0.002553], abs=1e-6)
    assert path_2d(momentum_2d, beta=0.25)[-1].tolist() == pytest.approx([-0.126340, -0.186632],
                                                                          abs=1e-6)
    # prose: x2 shrinks by about 0.86 per step (0.71 with beta 0.5), x1 by 0.83 (0.71)
    assert radius(heavy_ball_matrix(2.4, 0.25)) == pytest.approx(0.86, abs=0.005)
    assert radius(heavy_ball_matrix(2.4, 0.5)) == pytest.approx(math.sqrt(0.5), abs=1e-9)
    assert radius(heavy_ball_matrix(0.12, 0.25)) == pytest.approx(0.83, abs=0.005)
    assert radius(heavy_ball_matrix(0.12, 0.5)) == pytest.approx(math.sqrt(0.5), abs=1e-9)
    # beta = 0.25 ends much further from the optimum than beta = 0.5
    assert path_2d(momentum_2d, beta=0.25)[-1].norm() > 10 * path_2d(momentum_2d)[-1].norm()


def test_weights_sum_to_one_over_one_minus_beta():
    for beta in [0.95, 0.9, 0.6, 0.0]:
        total = (beta ** torch.arange(2000, dtype=F64)).sum().item()
        assert total == pytest.approx(1 / (1 - beta), abs=1e-9)


@pytest.mark.parametrize("lr, beta", [(0.02, 0.5), (0.01, 0.9), (0.005, 0.9)])
def test_step_on_a_slope_approaches_lr_over_one_minus_beta(lr, beta):
    path = d2l.trajectory_2d(lambda x1, x2: x1, torch.optim.SGD, x0=(0.0, 0.0), steps=200, lr=lr,
                             momentum=beta)
    sizes = path[:, 0].diff().abs()
    t = torch.arange(1, 201, dtype=F64)
    torch.testing.assert_close(sizes, lr * (1 - beta ** t) / (1 - beta), rtol=1e-12, atol=1e-14)
    assert sizes[-1].item() == pytest.approx(lr / (1 - beta), abs=1e-6)
    assert 0.9 ** 22 == pytest.approx(0.1, abs=0.01)      # "the ramp takes tens of steps"


# --- the from-scratch update --------------------------------------------------------------------

def test_sgd_momentum_matches_torch_and_a_wrong_one_does_not():
    hp = {"lr": 0.01, "momentum": 0.9}
    for dtype in (torch.float32, torch.float64):
        checks.assert_passes(checks.check_optimizer(sgd_momentum, init_momentum_states,
                                                    torch.optim.SGD, hp, dtype=dtype))
    checks.assert_passes(checks.check_optimizer(sgd_momentum, init_momentum_states,
                                                torch.optim.SGD, {"lr": 0.03, "momentum": 0.0},
                                                dtype=F64))

    def dampened(params, states, hyperparams):       # v = beta v + (1 - beta) g: another lr
        for p, v in zip(params, states):
            with torch.no_grad():
                v[:] = hyperparams["momentum"] * v + (1 - hyperparams["momentum"]) * p.grad
                p[:] -= hyperparams["lr"] * v
            p.grad.zero_()
    assert not checks.check_optimizer(dampened, init_momentum_states, torch.optim.SGD, hp,
                                      dtype=F64).passed


# --- the airfoil runs ---------------------------------------------------------------------------

SETTINGS = [(0.02, 0.5), (0.01, 0.9), (0.005, 0.9), (0.05, 0.0), (0.025, 0.5), (0.05, 0.9)]
SEEDS = range(5)


@pytest.fixture(scope="module")
def airfoil():
    data_iter, feature_dim = d2l.get_data_ch11(batch_size=10)
    X, y = (t.double() for t in data_iter.dataset.tensors)
    A = torch.cat([X, torch.ones(len(X), 1, dtype=F64)], dim=1)
    best = ((A @ torch.linalg.lstsq(A, y[:, None]).solution - y[:, None]) ** 2 / 2).mean().item()
    kw = dict(plot=False, verbose=False, dtype=F64, log_every=50)
    runs = {(s, lr, m): d2l.train_ch11(sgd_momentum, init_momentum_states(feature_dim),
                                       {"lr": lr, "momentum": m}, data_iter, feature_dim, 2,
                                       seed=s, **kw)
            for s in SEEDS for lr, m in SETTINGS}
    concise = d2l.train_concise_ch11(torch.optim.SGD, {"lr": 0.005, "momentum": 0.9}, data_iter,
                                     seed=0, **kw)
    return best, runs, concise


def excess(history, best):
    last = [l for l, e in zip(history.losses, history.epochs) if e > history.epochs[-1] - 1]
    return sum(last) / len(last) - best


def test_least_squares_loss(airfoil):
    best, _, _ = airfoil
    assert 0.235 < best < 0.245                        # DESIGN: optimum of half MSE about 0.24


def test_effective_step_orders_the_noise_floor_for_every_seed(airfoil):
    best, runs, _ = airfoil
    finals = []
    for s in SEEDS:
        ex = {(lr, m): excess(runs[s, lr, m], best) for lr, m in SETTINGS}
        # the book's runs: 0.04 < 0.05 < 0.1 in eta/(1 - beta), same order in the excess
        assert ex[0.02, 0.5] < ex[0.005, 0.9] < ex[0.01, 0.9]
        same = [ex[0.05, 0.0], ex[0.025, 0.5], ex[0.005, 0.9]]
        assert max(same) < 1.3 * min(same)              # "about equally close"
        assert ex[0.05, 0.9] > 7 * max(same)            # "more than seven times theirs"
        finals.append(np.argsort([runs[s, lr, m].losses[-1] for lr, m in SETTINGS[:3]]).tolist())
    assert any(f != finals[0] for f in finals)         # the final losses alone change order


def test_seed_0_excess_tracks_the_effective_step(airfoil):
    best, runs, concise = airfoil
    ex = {(lr, m): excess(runs[0, lr, m], best) for lr, m in SETTINGS}
    assert ex[0.01, 0.9] == pytest.approx(3 * ex[0.02, 0.5], rel=0.2)      # "about three times"
    per_step = [ex[lr, m] / (lr / (1 - m)) for lr, m in SETTINGS]
    assert max(per_step) < 1.5 * min(per_step)          # "roughly in proportion"
    assert excess(concise, best) == pytest.approx(ex[0.01, 0.9], rel=0.3)   # lr 0.005 x 2


# --- theory -------------------------------------------------------------------------------------

def random_quadratic(n=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    M = torch.randn(n, n, generator=gen, dtype=F64)
    Q = M @ M.T + 0.5 * torch.eye(n, dtype=F64)
    return Q, torch.randn(n, generator=gen, dtype=F64), 1.5, gen


def test_quadratic_minimum_and_the_books_sign_slip():
    Q, c, b, gen = random_quadratic()

    def h(x):
        return 0.5 * x @ Q @ x + x @ c + b
    Qinv_c = torch.linalg.solve(Q, c)
    x_star, h_min = -Qinv_c, b - 0.5 * c @ Qinv_c
    x = x_star.clone().requires_grad_(True)
    h(x).backward()
    assert x.grad.norm() < 1e-12 and abs(h(x_star) - h_min) < 1e-12
    assert all(h(x_star + 0.1 * u) > h(x_star) for u in torch.randn(20, 5, generator=gen, dtype=F64))
    for x in torch.randn(10, 5, generator=gen, dtype=F64):
        right = 0.5 * (x + Qinv_c) @ Q @ (x + Qinv_c) + h_min
        book = 0.5 * (x - Qinv_c) @ Q @ (x - Qinv_c) + h_min
        assert abs(h(x) - right) < 1e-10 and abs(h(x) - book) > 1e-3
        # the book's form is h with -c in place of c
        assert abs(book - (0.5 * x @ Q @ x - x @ c + b)) < 1e-10


def test_momentum_decouples_in_eigen_coordinates():
    Q, c, b, _ = random_quadratic()
    lam, V = torch.linalg.eigh(Q)
    x_star = -torch.linalg.solve(Q, c)
    eta, beta = 1.0 / lam.max().item(), 0.7
    x = torch.zeros(5, dtype=F64, requires_grad=True)
    opt = torch.optim.SGD([x], lr=eta, momentum=beta)
    z, u = V.T @ (x.detach() - x_star), torch.zeros(5, dtype=F64)
    for _ in range(50):
        opt.zero_grad()
        (0.5 * x @ Q @ x + x @ c + b).backward()
        opt.step()
        u, z = beta * u + lam * z, z - eta * (beta * u + lam * z)
        assert (V.T @ (x.detach() - x_star) - z).abs().max() < 1e-10


def test_scalar_gradient_descent_factors():
    factors = {lam: 1 - 0.1 * lam for lam in [0.1, 1, 10, 19]}
    assert factors == pytest.approx({0.1: 0.99, 1: 0.9, 10: 0.0, 19: -0.9})
    for lam, r in factors.items():
        path = d2l.trajectory_2d(lambda x1, x2: lam / 2 * x1 ** 2, torch.optim.SGD, x0=(1.0, 0.0),
                                 steps=19, lr=0.1)
        torch.testing.assert_close(path[:, 0], r ** torch.arange(20, dtype=F64), rtol=1e-12,
                                   atol=1e-15)


def test_momentum_matrix_reproduces_torch_and_has_trace_and_det():
    for eta, beta, lam in [(0.6, 0.5, 4.0), (0.6, 0.25, 4.0), (0.1, 0.9, 0.2), (1.3, 0.7, 2.0)]:
        R = torch.tensor([[beta, lam], [-eta * beta, 1 - eta * lam]], dtype=F64)
        assert torch.trace(R).item() == pytest.approx(1 + beta - eta * lam)
        assert torch.linalg.det(R).item() == pytest.approx(beta)
        path = d2l.trajectory_2d(lambda x1, x2: lam / 2 * x1 ** 2, torch.optim.SGD,
                                 x0=(-2.0, 0.0), steps=20, lr=eta, momentum=beta)
        state = torch.tensor([0.0, -2.0], dtype=F64)
        for t in range(1, 21):
            state = R @ state
            assert abs(state[1] - path[t, 0]) < 1e-12


def test_nesterov_matrix_is_torchs_nesterov():
    for eta, beta, lam in [(0.1, 0.9, 4.0), (0.3, 0.5, 1.0)]:
        path = d2l.trajectory_2d(lambda x1, x2: lam / 2 * x1 ** 2, torch.optim.SGD,
                                 x0=(-2.0, 0.0), steps=20, lr=eta, momentum=beta, nesterov=True)
        N = nesterov_matrix(eta * lam, beta) * torch.tensor([[1.0, lam], [1 / lam, 1.0]], dtype=F64)
        state = torch.tensor([0.0, -2.0], dtype=F64)
        for t in range(1, 21):
            state = N @ state
            assert abs(state[1] - path[t, 0]) < 1e-12
        eta_lam = eta * lam
        assert torch.trace(N).item() == pytest.approx((1 + beta) * (1 - eta_lam))
        assert torch.linalg.det(N).item() == pytest.approx(beta * (1 - eta_lam))


@pytest.mark.parametrize("build, boundary", [
    (heavy_ball_matrix, lambda b: 2 + 2 * b),
    (nesterov_matrix, lambda b: (2 + 2 * b) / (1 + 2 * b))])
def test_convergence_regions(build, boundary):
    for eta_lam in np.linspace(0.01, 4.5, 46):
        for beta in np.linspace(0.0, 0.99, 12):
            if abs(eta_lam - boundary(beta)) > 0.02:
                assert (radius(build(eta_lam, beta)) < 1) == (eta_lam < boundary(beta))
    assert all(boundary(b) < 2 for b in (0.1, 0.5, 0.9)) == (build is nesterov_matrix)


def test_floor_is_sqrt_beta_where_roots_are_complex():
    for beta in (0.25, 0.5, 0.81):
        for eta_lam in np.linspace((1 - beta ** 0.5) ** 2 + 1e-3, (1 + beta ** 0.5) ** 2 - 1e-3, 7):
            assert radius(heavy_ball_matrix(eta_lam, beta)) == pytest.approx(beta ** 0.5)
        assert radius(heavy_ball_matrix(0.5 * (1 - beta ** 0.5) ** 2, beta)) > beta ** 0.5


# --- Nesterov (optional section) ----------------------------------------------------------------

def test_sutskever_nag_is_torch_nesterov_and_published_points():
    lr, momentum = 0.1, 0.9
    x, v = torch.tensor([-5.0, -2.0], dtype=F64), torch.zeros(2, dtype=F64)
    points = [x.clone()]
    for _ in range(60):
        v = momentum * v - lr * torch.tensor([0.2, 4.0], dtype=F64) * (x + momentum * v)
        x = x + v
        points.append(x + momentum * v)
    nag = d2l.trajectory_2d(f_2d, torch.optim.SGD, steps=60, lr=lr, momentum=momentum, nesterov=True)
    assert (torch.stack(points) - nag).abs().max() < 1e-12
    hb = d2l.trajectory_2d(f_2d, torch.optim.SGD, steps=60, lr=lr, momentum=momentum)
    # torch 2.13 points after 20 steps (optimizer conventions: float32 runs, 8 digits)
    assert hb[20].tolist() == pytest.approx([1.3533567, -0.4658126], abs=1e-6)
    assert nag[20].tolist() == pytest.approx([1.0735372, 0.00073038806], abs=1e-6)
    # Nesterov damps the swings along the steep axis
    assert nag[20:, 1].abs().max() < 0.1 * hb[20:, 1].abs().max()


def test_predicted_rates_match_measured():
    curvatures = (0.2, 4.0)
    for lr, beta, nest in [(0.4, 0.0, False), (0.1, 0.9, False), (0.1, 0.9, True),
                           (0.6, 0.5, False)]:
        build = nesterov_matrix if nest else heavy_ball_matrix
        rate = max(radius(build(lr * lam, beta)) for lam in curvatures)
        dist = d2l.trajectory_2d(f_2d, torch.optim.SGD, steps=300, lr=lr, momentum=beta,
                                 nesterov=nest).norm(dim=1)
        measured = ((dist[250:300].max() / dist[50:100].max()) ** (1 / 200)).item()
        assert abs(measured - rate) < 0.005
        expected = {(0.4, 0.0, False): 0.92, (0.1, 0.9, False): math.sqrt(0.9),
                    (0.1, 0.9, True): math.sqrt(0.9 * 0.98), (0.6, 0.5, False): math.sqrt(0.5)}
        assert rate == pytest.approx(expected[lr, beta, nest], abs=1e-9)
    assert (4.2 - 0.2 * 2) / 4.2 == pytest.approx(19 / 21)   # best fixed eta = 2/(0.2 + 4)


# --- exercises ----------------------------------------------------------------------------------

def test_exercise_1_table():
    start = math.hypot(5, 2)
    best = (math.inf, None)
    for eta in [0.2, 0.4, 0.6, 0.8, 1.0]:
        for beta in [0.0, 0.25, 0.5, 0.75, 0.9]:
            path = path_2d(momentum_2d, steps=200, eta=eta, beta=beta)
            d20, d200 = path[20].norm().item(), path[200].norm().item()
            if 4 * eta >= 2 + 2 * beta:
                assert d20 > start and d200 > 1e3
            else:
                assert d20 < start and d200 < 1e-2
                best = min(best, (d20, (eta, beta)))
                if beta == 0.9:
                    assert 1.4 < d20 < 1.8                  # "stuck near 1.6"
    assert best[1] == (0.6, 0.5)
    for lam in (0.2, 4.0):                                   # both complex, rate sqrt(0.5)
        assert radius(heavy_ball_matrix(0.6 * lam, 0.5)) == pytest.approx(math.sqrt(0.5))


def test_exercise_2_polyak_tuning():
    lams = 2.0 ** -torch.arange(1, 11, dtype=F64)
    L, mu = lams.max().item(), lams.min().item()
    rate_hb = (math.sqrt(L / mu) - 1) / (math.sqrt(L / mu) + 1)
    eta, beta = 4 / (math.sqrt(L) + math.sqrt(mu)) ** 2, rate_hb ** 2
    assert rate_hb == pytest.approx(0.915, abs=5e-4) and (L / mu - 1) / (L / mu + 1) > 0.996

    def run(eta, beta, steps=300):
        x, v, xs = torch.ones_like(lams), torch.zeros_like(lams), []
        for _ in range(steps + 1):
            xs.append(x)
            v = beta * v + lams * x
            x = x - eta * v
        return torch.stack(xs)
    f = {k: 0.5 * (lams * run(*p) ** 2).sum(dim=1) for k, p in
         {"gd": (2.0, 0.0), "m": (2.0, 0.9), "polyak": (eta, beta)}.items()}
    assert f["polyak"][-1] < f["m"][-1] < 1e-4 * f["gd"][-1]
    assert all(radius(heavy_ball_matrix(eta * lam, beta)) < rate_hb + 1e-6 for lam in lams.tolist())
    xs = run(eta, beta)
    assert 7.5 < xs[:, 0].abs().max() < 9 and 9 <= xs[:, 0].abs().argmax() <= 13
    assert 15 < f["polyak"].max() < 20 and f["polyak"][0] == pytest.approx(0.4995, abs=1e-4)
    assert (xs[1:30, 0] * xs[:29, 0] < 0).all()             # x_1 flips sign every step


@pytest.mark.parametrize("eta, beta, batch", [(0.1, 0.0, 1), (0.05, 0.5, 1), (0.01, 0.9, 1),
                                              (0.05, 0.9, 1), (0.01, 0.9, 10)])
def test_exercise_4_noise_floor(eta, beta, batch):
    gen = torch.Generator().manual_seed(0)
    x = v = torch.zeros(5000, dtype=F64)
    acc = []
    for t in range(400):
        g = x + torch.randn(5000, generator=gen, dtype=F64) / math.sqrt(batch)
        v = beta * v + g
        x = x - eta * v
        if t >= 100:
            acc.append((x ** 2).mean())
    sim = torch.stack(acc).mean().item()
    pred = eta / batch * (1 + beta) / ((1 - beta) * (2 * (1 + beta) - eta))
    assert sim == pytest.approx(pred, rel=0.01)             # "within 1 % in every row"
    assert pred == pytest.approx(eta / (1 - beta) / (2 * batch), rel=0.1)
