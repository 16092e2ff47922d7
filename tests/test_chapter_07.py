"""Chapter 07 (Adagrad): the claims of chapters/07-adagrad.md, recomputed with package code.

Each test recomputes a statement of the notebook's prose from d2lopt, torch and the data (never
from the notebook's stored output), so that a change in the package or the data that would make
the prose wrong fails here. The only pinned numbers come from outside the repository: the book's
printed 2-D results.
"""
import functools
import math

import numpy as np
import pytest
import torch

import d2lopt as d2l
from d2lopt import checks

F64 = torch.float64


# --- the notebook's from-scratch code, written out ----------------------------------------------

def fit_sparse(X, y, method, eta0=0.5):
    w, s, errors = torch.zeros(2, dtype=X.dtype), torch.zeros(2, dtype=X.dtype), []
    for t, (x, target) in enumerate(zip(X, y)):
        g = (x @ w - target) * x
        if method == "SGD":
            w = w - eta0 / math.sqrt(t + 1) * g
        else:
            s = s + g * g
            w = w - eta0 * g / (s.sqrt() + 1e-10)
        errors.append((w - 1).abs())
    return s, torch.stack(errors)


def sparse_data(T=5000, seed=0):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(T, 2, generator=gen, dtype=F64)
    active = torch.rand(T, generator=gen, dtype=F64) < 0.01
    X[:, 1] *= active
    return X, X.sum(dim=1), active


def precondition_diag(Q):
    d = Q.diagonal().rsqrt()
    return d[:, None] * Q * d[None, :]


def cond(Q):
    eig = torch.linalg.eigvalsh(Q)
    return (eig[-1] / eig[0]).item()


def f_2d(x1, x2):
    return 0.1 * x1 ** 2 + 2 * x2 ** 2


def f_rot(x1, x2):
    return 0.1 * ((x1 + x2) / math.sqrt(2)) ** 2 + 2 * ((x1 - x2) / math.sqrt(2)) ** 2


def f_rot_book(x1, x2):
    return 0.1 * (x1 + x2) ** 2 + 2 * (x1 - x2) ** 2


def adagrad_2d(x1, x2, s1, s2, eta=0.4):
    eps = 1e-6
    g1, g2 = 0.2 * x1, 4 * x2
    s1 += g1 ** 2
    s2 += g2 ** 2
    x1 -= eta / math.sqrt(s1 + eps) * g1
    x2 -= eta / math.sqrt(s2 + eps) * g2
    return x1, x2, s1, s2


def path_2d(eta):
    return torch.tensor(d2l.train_2d(functools.partial(adagrad_2d, eta=eta), verbose=False),
                        dtype=F64)


def init_adagrad_states(feature_dim):
    return (torch.zeros((feature_dim, 1)), torch.zeros(1))


def adagrad(params, states, hyperparams):
    eps = hyperparams.get("eps", 1e-10)
    for p, s in zip(params, states):
        with torch.no_grad():
            s[:] += torch.square(p.grad)
            p[:] -= hyperparams["lr"] * p.grad / (torch.sqrt(s) + eps)
        p.grad.zero_()


def adagrad_book(params, states, hyperparams):
    eps = 1e-6
    for p, s in zip(params, states):
        with torch.no_grad():
            s[:] += torch.square(p.grad)
            p[:] -= hyperparams["lr"] * p.grad / torch.sqrt(s + eps)
        p.grad.zero_()


def step_ratio(g, t=10, eps_in=1e-6, eps_out=1e-10):
    return (math.sqrt(t) * g + eps_out) / math.sqrt(t * g ** 2 + eps_in)


# --- sparse features ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sparse_runs():
    X, y, active = sparse_data()
    return {m: fit_sparse(X, y, m) for m in ["SGD", "Adagrad"]}, active


def test_sparse_feature_is_rare_and_adagrad_learns_it(sparse_runs):
    runs, active = sparse_runs
    assert int(active.sum()) == 50                              # "the 50 steps where ..."
    sgd_err, ada_err = runs["SGD"][1][-1], runs["Adagrad"][1][-1]
    assert 0.3 < sgd_err[1] < 0.7                               # "half-way to 1"
    assert sgd_err[0] < 0.005
    assert (ada_err < 5e-5).all()                               # "right to four decimals"


def test_sparse_rates_at_the_end(sparse_runs):
    runs, _ = sparse_runs
    s_end = runs["Adagrad"][0]
    rate_common, rate_rare = (0.5 / s_end.sqrt()).tolist()
    assert 3.5 < rate_rare / rate_common < 4.5                 # "about four times"
    assert 45 < rate_rare / (0.5 / math.sqrt(5000)) < 55       # "about fifty times"


def test_sgd_rare_error_moves_only_when_the_feature_is_active(sparse_runs):
    runs, active = sparse_runs
    err = runs["SGD"][1][:, 1]
    moved = torch.cat([err[:1] != 1.0, err[1:] != err[:-1]])
    assert torch.equal(moved, active)
    common = runs["Adagrad"][1][:, 0]                         # the jumps of the common error
    jumps = torch.nonzero(common[1:] > 100 * common[:-1] + 1e-12).flatten() + 1
    assert len(jumps) > 0 and active[jumps].all()


# --- preconditioning ----------------------------------------------------------------------------

def make_q(seed=0):
    gen = torch.Generator().manual_seed(seed)
    A = torch.randn(6, 6, generator=gen, dtype=F64)
    M = A @ A.T / 6 + 0.1 * torch.eye(6, dtype=F64)
    scales = 10 ** (3 * torch.rand(6, generator=gen, dtype=F64) - 1.5)
    return scales[:, None] * M * scales[None, :], M


def test_rescaling_removes_the_scales():
    Q, M = make_q()
    assert cond(Q) > 1e4 and cond(precondition_diag(Q)) < 10       # "helps enormously"
    assert cond(precondition_diag(Q)) < cond(M)                   # "even below M's own"
    torch.testing.assert_close(precondition_diag(Q), precondition_diag(M), rtol=0, atol=1e-12)
    torch.testing.assert_close(precondition_diag(Q).diagonal(), torch.ones(6, dtype=F64))
    for seed in range(1, 5):
        Q, M = make_q(seed)
        assert cond(precondition_diag(Q)) == pytest.approx(cond(precondition_diag(M)), rel=1e-9)


@pytest.mark.parametrize("curvatures", [(0.2, 4.0), (1e-3, 50.0)])  # up to eps
def test_first_adagrad_step_is_eta_in_every_coordinate(curvatures):
    a, b = curvatures
    path = d2l.trajectory_2d(lambda x1, x2: a / 2 * x1 ** 2 + b / 2 * x2 ** 2,
                             torch.optim.Adagrad, lr=0.4, steps=1)
    eps_effect = 0.4 * 1e-10 / (5 * a)                         # lr eps / |g| of the flat one
    torch.testing.assert_close(path[1] - path[0], torch.tensor([0.4, 0.4], dtype=F64),
                               rtol=0, atol=1.01 * eps_effect)


# --- how fast the rate decays -------------------------------------------------------------------

def rate(g, eta=0.4):
    return eta / torch.cumsum(g ** 2, 0).sqrt()


def test_bounded_gradients_give_a_lower_bound_only():
    eta, n = 0.4, 1000
    t = torch.arange(1, n + 1, dtype=F64)
    bound = eta / t.sqrt()
    torch.testing.assert_close(rate(torch.ones(n, dtype=F64)), bound, rtol=1e-12, atol=0)
    for seed in range(5):
        g = 2 * torch.rand(n, generator=torch.Generator().manual_seed(seed), dtype=F64) - 1
        assert (rate(g) >= bound * (1 - 1e-12)).all()
        assert rate(g)[-1] / bound[-1] == pytest.approx(math.sqrt(3), rel=0.1)   # s_t ~ t/3
    shrinking = rate(0.9 ** t)                                 # sum of g^2 converges: no decay
    assert (shrinking >= bound * (1 - 1e-12)).all()
    limit = eta / math.sqrt(0.81 / 0.19)
    assert shrinking[-1].item() == pytest.approx(limit, rel=1e-9) and round(limit, 2) == 0.19
    assert shrinking[99].item() == pytest.approx(limit, rel=1e-6)


def test_gradients_bounded_below_give_the_upper_bound_too():
    eta, n, c, G = 0.4, 1000, 0.3, 1.0
    t = torch.arange(1, n + 1, dtype=F64)
    gen = torch.Generator().manual_seed(0)
    sign = torch.where(torch.rand(n, generator=gen, dtype=F64) < 0.5, -1.0, 1.0)
    g = sign * (c + (G - c) * torch.rand(n, generator=gen, dtype=F64))
    r = rate(g, eta)
    assert ((eta / (G * t.sqrt()) <= r * (1 + 1e-12)) & (r <= eta / (c * t.sqrt()) * (1 + 1e-12))).all()


# --- the two-dimensional problem ----------------------------------------------------------------

def test_book_numbers_on_the_2d_problem():
    assert path_2d(0.4)[-1].tolist() == pytest.approx([-2.382563, -0.158591], abs=1e-6)
    assert path_2d(2.0)[-1].tolist() == pytest.approx([-0.002295, 0.0], abs=1e-6)


@pytest.mark.parametrize("eta", [0.4, 2.0])
def test_book_style_2d_path_follows_torch_within_1e_5(eta):
    gap = (path_2d(eta) - d2l.trajectory_2d(f_2d, torch.optim.Adagrad, lr=eta)).abs().max()
    assert 1e-9 < gap < 1e-5                                  # the eps convention, not zero


def test_no_gradient_descent_rate_does_what_adagrad_does():
    for eta in np.linspace(0.05, 0.49, 12):
        end = d2l.trajectory_2d(f_2d, torch.optim.SGD, lr=float(eta))[-1]
        assert abs(end[0]) >= 5 * 0.9 ** 20 - 1e-12
    for eta in [0.5, 0.6, 1.0, 2.0]:
        assert abs(d2l.trajectory_2d(f_2d, torch.optim.SGD, lr=eta)[-1, 1]) >= 2 - 1e-9
    assert round(5 * 0.9 ** 20, 2) == 0.61
    gd_04 = d2l.trajectory_2d(f_2d, torch.optim.SGD, lr=0.4)[-1]
    assert gd_04[0].item() == pytest.approx(-0.943467, abs=1e-6)   # the book's GD number
    assert abs(gd_04[0]) < abs(path_2d(0.4)[-1, 0])           # GD ahead of Adagrad at eta 0.4
    assert path_2d(2.0)[-1].abs().max() < 0.003               # Adagrad at eta 2 converges


# --- the from-scratch update and the book's variant ---------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_scratch_adagrad_matches_torch(dtype):
    checks.assert_passes(checks.check_optimizer(adagrad, init_adagrad_states, torch.optim.Adagrad,
                                                {"lr": 0.1, "eps": 1e-10}, dtype=dtype))


def test_book_variant_fails_the_check_and_the_checker_names_eps():
    result = checks.check_optimizer(adagrad_book, init_adagrad_states, torch.optim.Adagrad,
                                    {"lr": 0.1})
    assert not result.passed
    assert "eps" in result.diagnosis and "square root" in result.diagnosis


def test_scratch_updates_match_the_package_cores():
    from d2lopt import updates
    gen = torch.Generator().manual_seed(0)
    for fn, kw in [(adagrad, {}), (adagrad_book, {"eps_inside": True, "eps": 1e-6})]:
        p = torch.randn(3, generator=gen, dtype=F64).requires_grad_()
        s, s_ref, p_ref = torch.zeros(3, dtype=F64), torch.zeros(3, dtype=F64), p.detach().clone()
        for _ in range(30):
            g = torch.randn(3, generator=gen, dtype=F64) * 1e-3
            p.grad = g.clone()
            fn([p], [s], {"lr": 0.1})
            delta, s_ref = updates.adagrad(g, s_ref, lr=0.1, **kw)
            p_ref = p_ref - delta
        torch.testing.assert_close(p.detach(), p_ref, rtol=1e-14, atol=1e-15)


def constant_gradient_steps(g, t, book):
    """The t-th step of torch.optim.Adagrad or of the book's variant under a constant gradient."""
    x = torch.zeros(1, dtype=F64, requires_grad=True)
    s, before = [torch.zeros(1, dtype=F64)], None
    opt = None if book else torch.optim.Adagrad([x], lr=0.1)
    for _ in range(t):
        before = x.detach().clone()
        x.grad = torch.full((1,), g, dtype=F64)
        adagrad_book([x], s, {"lr": 0.1}) if book else opt.step()
    return (x.detach() - before).abs().item()


@pytest.mark.parametrize("g", [1.0, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6])
def test_step_ratio_formula_matches_the_two_algorithms(g):
    measured = constant_gradient_steps(g, 10, True) / constant_gradient_steps(g, 10, False)
    assert measured == pytest.approx(step_ratio(g), rel=1e-9)


def test_step_ratio_numbers_of_prose_and_summary():
    assert step_ratio(1.0) > 0.9995 and step_ratio(1e-2) >= 0.9995 - 5e-5
    assert round(step_ratio(1e-3), 2) == 0.95                  # "5 % shorter"
    assert round(step_ratio(1e-4), 2) == 0.30                  # "three times shorter"
    assert 25 < 1 / step_ratio(1e-5) < 35 and 250 < 1 / step_ratio(1e-6) < 350
    # "smaller by about sqrt(s_t) / sqrt(eps)" below 1e-4
    for g in [1e-5, 1e-6]:
        assert step_ratio(g) == pytest.approx(math.sqrt(10) * g / 1e-3, rel=0.01)


def test_float64_gap_at_gradients_of_order_one_is_the_eps_term():
    r = checks.check_optimizer(adagrad_book, init_adagrad_states, torch.optim.Adagrad,
                               {"lr": 0.1}, grad_scale=1.0, probe_scale=1.0, dtype=F64)
    assert 1e-7 < r.gap < 1e-5


# --- airfoil ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def airfoil_runs():
    data_iter, feature_dim = d2l.get_data_ch11(batch_size=10)
    kw = dict(seed=0, dtype=F64, plot=False, verbose=False)
    runs = {"scratch": d2l.train_ch11(adagrad, init_adagrad_states(feature_dim), {"lr": 0.1},
                                      data_iter, feature_dim, **kw),
            "book": d2l.train_ch11(adagrad_book, init_adagrad_states(feature_dim), {"lr": 0.1},
                                   data_iter, feature_dim, **kw),
            "torch": d2l.train_concise_ch11(torch.optim.Adagrad, {"lr": 0.1}, data_iter, **kw)}
    X, y = (t.double() for t in data_iter.dataset.tensors)
    A = torch.cat([X, torch.ones(len(X), 1, dtype=F64)], dim=1)
    best = ((A @ torch.linalg.lstsq(A, y[:, None]).solution - y[:, None]) ** 2 / 2).mean().item()
    return runs, best


def test_airfoil_runs_end_near_least_squares(airfoil_runs):
    runs, best = airfoil_runs
    for h in runs.values():
        assert not h.diverged
        assert 0 < h.losses[-1] - best < 1e-3
        assert round(h.losses[-1], 3) == 0.239
    diff = np.abs(np.array(runs["scratch"].losses) - np.array(runs["book"].losses))
    assert diff.max() < 1e-3                                   # "differ by less than 0.001"


def test_torch_run_still_bounces_in_its_last_two_epochs(airfoil_runs):
    runs, best = airfoil_runs
    h = runs["torch"]
    excess, epochs = np.array(h.losses) - best, np.array(h.epochs)
    late = excess[epochs > 2]
    assert 1e-4 < late.min() < 5e-4 and 3e-3 < late.max() < 8e-3   # "2e-4 .. 5e-3"
    assert (np.diff(late) > 0).sum() >= 4                     # up and down, not settling


# --- exercises ----------------------------------------------------------------------------------

def test_orthogonal_matrices_preserve_lengths():
    gen = torch.Generator().manual_seed(0)
    U, _ = torch.linalg.qr(torch.randn(8, 8, generator=gen, dtype=F64))
    delta = torch.randn(8, generator=gen, dtype=F64)
    assert (U @ delta).norm().item() == pytest.approx(delta.norm().item(), rel=1e-14)


def test_adagrad_is_not_rotation_invariant_but_gd_is():
    R = torch.tensor([[1.0, 1.0], [-1.0, 1.0]], dtype=F64) / math.sqrt(2)
    x0_rot = tuple((R.T @ torch.tensor([-5.0, -2.0], dtype=F64)).tolist())
    gap = (d2l.trajectory_2d(f_rot_book, torch.optim.Adagrad, x0=x0_rot, lr=2.0)
           - d2l.trajectory_2d(f_rot, torch.optim.Adagrad, x0=x0_rot, lr=2.0)).abs().max()
    assert gap < 1e-9
    gd = d2l.trajectory_2d(f_2d, torch.optim.SGD, lr=0.4)
    gd_rot = d2l.trajectory_2d(f_rot, torch.optim.SGD, x0=x0_rot, lr=0.4)
    torch.testing.assert_close(gd_rot, gd @ R, rtol=0, atol=1e-12)   # the rotated path
    for lr in [0.4, 2.0]:
        d_axis = d2l.trajectory_2d(f_2d, torch.optim.Adagrad, lr=lr)[-1].norm()
        d_rot = d2l.trajectory_2d(f_rot, torch.optim.Adagrad, x0=x0_rot, lr=lr)[-1].norm()
        assert d_rot > 1.5 * d_axis
    assert d_rot > 100 * d_axis                               # eta = 2: converges vs creeps


def test_gerschgorin():
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        M = torch.randn(6, 6, generator=gen, dtype=F64) * 10 ** (2 * torch.rand(1, generator=gen).item() - 1)
        centers, radii = M.diagonal(), M.abs().sum(dim=1) - M.diagonal().abs()
        eig = torch.linalg.eigvals(M)
        assert ((eig[:, None] - centers[None, :].to(eig.dtype)).abs()
                <= radii[None, :] + 1e-10).any(dim=1).all()
    gen = torch.Generator().manual_seed(1)
    B = 0.3 * torch.randn(5, 5, generator=gen, dtype=F64) / 5
    B = (B + B.T) / 2 + torch.eye(5, dtype=F64)
    scales = torch.tensor([1e-2, 1e-1, 1.0, 10.0, 100.0], dtype=F64)
    M_pre = precondition_diag(scales[:, None] * B * scales[None, :])
    r = (M_pre.abs().sum(dim=1) - 1).max().item()
    eig = torch.linalg.eigvalsh(M_pre)
    assert r < 1 and eig[0] >= 1 - r and eig[-1] <= 1 + r
    assert cond(M_pre) <= (1 + r) / (1 - r) and cond(scales[:, None] * B * scales[None, :]) > 1e6


def test_remedies_for_the_decay():
    gamma, s0, g1 = 0.9, 10.0, 1.0
    runs = {"plain": (torch.optim.Adagrad, dict(lr=0.4)),
            "s0": (torch.optim.Adagrad, dict(lr=0.4 * math.sqrt(s0 + g1 ** 2) / g1,
                                             initial_accumulator_value=s0)),
            "rmsprop": (torch.optim.RMSprop, dict(lr=0.4 * math.sqrt(1 - gamma), alpha=gamma))}
    f_end = {}
    for name, (cls, kw) in runs.items():
        path = d2l.trajectory_2d(f_2d, cls, **kw)
        assert (path[1, 0] - path[0, 0]).item() == pytest.approx(0.4, abs=1e-6)
        f_end[name] = f_2d(*path[-1]).item()
    assert f_end["s0"] < f_end["rmsprop"] < f_end["plain"]
    assert [round(f_end[k], 2) for k in ["s0", "rmsprop", "plain"]] == [0.14, 0.37, 0.62]
