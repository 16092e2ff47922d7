"""Chapter 05 (minibatch SGD): the claims the notebook makes, recomputed with package code.

Each test recomputes a statement of chapters/05-minibatch-sgd.md from the data and d2lopt (never
from the notebook's stored output), so that a change in the package or the data that would make
the prose wrong fails here.
"""
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils import data

import d2lopt as d2l
from d2lopt import airfoil, checks, schedules

F64 = torch.float64


def sgd(params, states, hyperparams):
    """The notebook's from-scratch minibatch SGD."""
    with torch.no_grad():
        for p in params:
            p -= hyperparams["lr"] * p.grad
            p.grad.zero_()


def book_get_data(batch_size=10, n=1500):
    """The notebook's (and the book's) loader, written out."""
    table = np.genfromtxt(d2l.download("airfoil"), dtype=np.float32, delimiter="\t")
    table = (table - table.mean(axis=0)) / table.std(axis=0)
    X, y = torch.from_numpy(table[:n, :-1]), torch.from_numpy(table[:n, -1])
    return d2l.load_array((X, y), batch_size, is_train=True), X.shape[1]


def book_train(trainer_fn, states, hyperparams, data_iter, feature_dim, num_epochs=2):
    """The notebook's bare train_ch11 loop: the book's, logging when n % 200 == 0."""
    w = torch.normal(0.0, 0.01, size=(feature_dim, 1), requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    net, loss = (lambda X: d2l.linreg(X, w, b)), d2l.squared_loss
    all_data = [data_iter.dataset.tensors]
    n, losses, seen = 0, [], []
    for _ in range(num_epochs):
        for X, y in data_iter:
            loss(net(X), y).mean().backward()
            trainer_fn([w, b], states, hyperparams)
            n += X.shape[0]
            if n % 200 == 0:
                losses.append(d2l.evaluate_loss(net, all_data, loss))
                seen.append(n)
    return losses, seen


def train_sgd(lr, batch_size, num_epochs=2, **kwargs):
    data_iter, feature_dim = d2l.get_data_ch11(batch_size)
    return d2l.train_ch11(sgd, None, {"lr": lr}, data_iter, feature_dim, num_epochs, seed=0,
                          plot=False, verbose=False, **kwargs)


@pytest.fixture(scope="module")
def airfoil_data():
    data_iter, _ = d2l.get_data_ch11(10)
    X, y = data_iter.dataset.tensors
    geo = airfoil.geometry(d2l.load_airfoil())
    return X, y, geo


# --- vectorization ---------------------------------------------------------------------------

def test_four_ways_of_multiplying_agree():
    g = torch.Generator().manual_seed(0)
    B, C = torch.randn(256, 256, generator=g), torch.randn(256, 256, generator=g)
    full = torch.mm(B, C)
    element = torch.stack([torch.stack([torch.dot(B[i], C[:, j]) for j in range(16)])
                           for i in range(16)])
    column = torch.stack([torch.mv(B, C[:, j]) for j in range(256)], dim=1)
    block = torch.cat([torch.mm(B, C[:, j:j + 64]) for j in range(0, 256, 64)], dim=1)
    for P in (element, column, block):
        assert (P - full[:P.shape[0], :P.shape[1]]).abs().max() < 1e-3


def test_gflop_count_and_the_books_rounding():
    assert 2 * 256 ** 3 == 33_554_432
    assert 1 - 0.03 / (2 * 256 ** 3 / 1e9) == pytest.approx(0.106, abs=0.005)   # "about 11%"


# --- the data --------------------------------------------------------------------------------

def test_book_loader_matches_get_data_ch11():
    ours, dim = book_get_data(10)
    ref, ref_dim = d2l.get_data_ch11(10)
    assert dim == ref_dim == 5 and len(ours) == len(ref) == 150
    for a, b in zip(ours.dataset.tensors, ref.dataset.tensors):
        assert a.shape == b.shape and (a - b).abs().max() < 1e-6


def test_whitening_uses_all_1503_rows():
    table = d2l.load_airfoil()
    assert table.shape == (1503, 6)
    white = airfoil.whiten(table).astype(np.float64)          # computed in float32
    assert np.abs(white.mean(axis=0)).max() < 1e-4
    assert np.abs(white.std(axis=0) - 1).max() < 1e-4
    assert np.abs(white[:1500].mean(axis=0)).max() > 1e-3     # the kept rows: close, not exact


# --- minibatch noise -------------------------------------------------------------------------

def _noise_setup(X, y):
    A = torch.cat([X.double(), torch.ones(len(X), 1, dtype=F64)], dim=1)
    yd = y.double()
    theta = torch.linalg.lstsq(A, yd[:, None]).solution[:, 0]
    per_example = (A @ theta - yd)[:, None] * A              # closed form, not autograd
    return A, yd, theta, per_example


def test_full_gradient_vanishes_at_least_squares_optimum(airfoil_data):
    X, y, _ = airfoil_data
    *_, per_example = _noise_setup(X, y)
    assert per_example.mean(0).norm() < 1e-12


def test_autograd_minibatch_gradients_match_closed_form(airfoil_data):
    X, y, _ = airfoil_data
    A, yd, theta, per_example = _noise_setup(X, y)
    idx = torch.randint(len(X), (50, 7), generator=torch.Generator().manual_seed(1))
    thetas = theta.expand(50, -1).clone().requires_grad_()
    residual = (A[idx] * thetas[:, None, :]).sum(-1) - yd[idx]
    (0.5 * residual ** 2).mean(dim=1).sum().backward()
    assert (thetas.grad - per_example[idx].mean(1)).abs().max() < 1e-12


@pytest.mark.parametrize("b", [1, 10, 100])
@pytest.mark.parametrize("replace", [True, False])
def test_minibatch_noise_is_sigma_over_sqrt_b(airfoil_data, b, replace):
    X, y, _ = airfoil_data
    *_, per_example = _noise_setup(X, y)
    n, g_full = len(X), per_example.mean(0)
    sigma = (per_example - g_full).pow(2).sum(1).mean().sqrt().item()
    gen = torch.Generator().manual_seed(2)
    if replace:
        idx = torch.randint(n, (4000, b), generator=gen)
    else:
        idx = torch.rand(4000, n, generator=gen, dtype=F64).topk(b).indices
        assert all(len(set(row.tolist())) == b for row in idx[:50])
    measured = (per_example[idx].mean(1) - g_full).pow(2).sum(1).mean().sqrt().item()
    predicted = sigma / math.sqrt(b) * (1 if replace else math.sqrt((n - b) / (n - 1)))
    assert measured == pytest.approx(predicted, rel=0.1)


def test_finite_population_factor_at_b_100():
    assert math.sqrt((1500 - 100) / 1499) == pytest.approx(0.97, abs=0.005)


# --- the from-scratch update and loop ----------------------------------------------------------

def test_scratch_sgd_matches_torch_sgd_and_a_broken_one_does_not():
    assert checks.check_optimizer(sgd, None, torch.optim.SGD, {"lr": 0.05}, dtype=F64).passed

    def no_zero_grad(params, states, hyperparams):
        with torch.no_grad():
            for p in params:
                p -= hyperparams["lr"] * p.grad
    assert not checks.check_optimizer(no_zero_grad, None, torch.optim.SGD, {"lr": 0.05},
                                      dtype=F64).passed


@pytest.mark.parametrize("batch_size, lr", [(10, 0.05), (100, 0.4)])
def test_book_loop_logs_the_same_losses_as_train_ch11(batch_size, lr):
    d2l.seed_everything(0)
    ours, _ = book_train(sgd, None, {"lr": lr}, *book_get_data(batch_size))
    ref = d2l.train_ch11(sgd, None, {"lr": lr}, *d2l.get_data_ch11(batch_size), seed=0,
                         plot=False, verbose=False)
    assert len(ours) == len(ref.losses) == 15
    assert max(abs(a - b) for a, b in zip(ours, ref.losses)) < 1e-6


def test_full_batch_logging_book_five_points_ours_ten():
    d2l.seed_everything(0)
    ours, seen = book_train(sgd, None, {"lr": 1}, *book_get_data(1500), num_epochs=10)
    ref = train_sgd(1, 1500, 10)
    assert seen == [3000, 6000, 9000, 12000, 15000] and len(ref.losses) == ref.updates == 10
    common = [ref.losses[ref.examples.index(s)] for s in seen]
    assert max(abs(a - b) for a, b in zip(ours, common)) < 1e-6


def test_one_epoch_of_gradient_descent_logs_one_point():
    assert len(train_sgd(1, 1500, 1).losses) == 1


# --- the runs --------------------------------------------------------------------------------

def test_stochastic_runs_end_near_the_optimum_and_gd_above_its_minimum(airfoil_data):
    *_, geo = airfoil_data
    for lr, batch_size in [(0.005, 1), (0.4, 100), (0.05, 10)]:
        h = train_sgd(lr, batch_size)
        assert not h.diverged and h.losses[-1] - geo["opt_loss"] < 0.005
    gd = train_sgd(1, 1500, 10)
    assert gd.updates == 10 and gd.losses[-1] > min(gd.losses) + 1e-3
    assert gd.losses[-1] - geo["opt_loss"] > 0.003


def test_updates_per_run():
    assert [train_sgd(lr, bs).updates for lr, bs in [(0.4, 100), (0.05, 10)]] == [30, 300]


# --- gradient descent at lr 1 ----------------------------------------------------------------

def test_spectrum_and_stability_threshold(airfoil_data):
    X, _, geo = airfoil_data
    A = torch.cat([X.double(), torch.ones(len(X), 1, dtype=F64)], dim=1)
    eig = torch.linalg.eigvalsh(A.T @ A / len(X))
    assert np.allclose(eig.numpy(), geo["eigenvalues"], atol=1e-5)
    lam = geo["lambda_max"]
    assert 0.9 < 2 / lam < 1.0                     # lr 1 unstable, lr 0.9 stable
    assert 1 - lam == pytest.approx(-1.09, abs=0.005)   # "grows by about 9% per step"
    assert 10 < geo["condition"] < 13


def test_top_eigen_component_grows_by_one_minus_lambda_max(airfoil_data):
    X, y, geo = airfoil_data
    A = torch.cat([X.double(), torch.ones(len(X), 1, dtype=F64)], dim=1)
    yd = y.double()
    theta_star = torch.linalg.lstsq(A, yd[:, None]).solution[:, 0]
    top = torch.linalg.eigh(A.T @ A / len(X)).eigenvectors[:, -1]
    theta, comps = torch.zeros(A.shape[1], dtype=F64), []
    for _ in range(31):
        comps.append((top @ (theta - theta_star)).item())
        theta = theta - A.T @ (A @ theta - yd) / len(X)
    ratios = [comps[k + 1] / comps[k] for k in range(30)]
    assert max(abs(r - (1 - geo["lambda_max"])) for r in ratios) < 1e-8


def _train_gd(X, y, lr, num_epochs):
    return d2l.train_ch11(sgd, None, {"lr": lr}, [(X, y)], num_epochs=num_epochs, seed=0,
                          dtype=F64, plot=False, verbose=False)


def test_gd_at_lr_1_dips_then_diverges_and_at_0_9_converges(airfoil_data):
    X, y, geo = airfoil_data
    gd_1, gd_09 = _train_gd(X, y, 1, 100), _train_gd(X, y, 0.9, 60)
    k_min = int(np.argmin(gd_1.losses)) + 1
    assert 3 <= k_min <= 7 and gd_1.losses[29] > min(gd_1.losses) + 0.1
    assert gd_1.diverged and 40 < gd_1.updates < 80
    assert not gd_09.diverged and gd_09.losses[-1] - geo["opt_loss"] < 1e-9
    excess = np.array(gd_1.losses[20:]) - geo["opt_loss"]     # the straight line of the figure
    assert np.allclose(excess[1:] / excess[:-1], (1 - geo["lambda_max"]) ** 2, rtol=1e-3)


def test_full_batch_list_gives_the_loaders_run(airfoil_data):
    X, y, _ = airfoil_data
    gd = train_sgd(1, 1500, 10, dtype=F64)
    assert max(abs(a - b) for a, b in zip(gd.losses, _train_gd(X, y, 1, 10).losses)) < 1e-12


def test_exercise_6_check_runs_below_and_above_the_threshold(airfoil_data):
    X, y, geo = airfoil_data
    lr = 2 / geo["lambda_max"]
    assert [_train_gd(X, y, f * lr, 400).diverged for f in (0.98, 1.02)] == [False, True]


# --- concise ---------------------------------------------------------------------------------

def test_mseloss_at_lr_equals_half_squared_error_at_twice_lr():
    data_iter, dim = d2l.get_data_ch11(10)
    Xb, yb = (t.double() for t in next(iter(data_iter)))
    net = nn.Linear(dim, 1).double()
    w = net.weight.detach().T.clone().requires_grad_()
    b = net.bias.detach().clone().requires_grad_()
    d2l.squared_loss(d2l.linreg(Xb, w, b), yb).mean().backward()
    sgd([w, b], None, {"lr": 0.02})
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    nn.MSELoss()(net(Xb), yb.reshape(-1, 1)).backward()
    opt.step()
    assert (w.T - net.weight).abs().max() < 1e-12 and (b - net.bias).abs().max() < 1e-12


def test_concise_run_ends_near_the_optimum(airfoil_data):
    *_, geo = airfoil_data
    data_iter, _ = d2l.get_data_ch11(10)
    h = d2l.train_concise_ch11(torch.optim.SGD, {"lr": 0.01}, data_iter, seed=0, plot=False,
                               verbose=False)
    assert not h.diverged and h.losses[-1] - geo["opt_loss"] < 0.005


# --- exercises -------------------------------------------------------------------------------

def test_exercise_1_linear_scaling_and_where_it_stops(airfoil_data):
    *_, geo = airfoil_data
    runs = {(lr, bs): train_sgd(lr, bs, dtype=F64) for lr, bs in
            [(0.02, 5), (0.2, 50), (2.0, 500), (0.9, 500)]}
    small, mid = runs[0.02, 5].losses[-1], runs[0.2, 50].losses[-1]
    assert abs(small - mid) < 0.003 and small - geo["opt_loss"] < 0.005
    assert runs[2.0, 500].diverged and runs[2.0, 500].updates < 6
    capped = runs[0.9, 500]
    assert not capped.diverged and capped.updates == 6 and capped.losses[-1] > mid + 0.003


def test_exercise_2_decay_settles_below_the_constant_rate(airfoil_data):
    *_, geo = airfoil_data
    data_iter, _ = d2l.get_data_ch11(10)
    decay = schedules.per_epoch(schedules.exponential(0.05, 0.1), len(data_iter))
    runs = [d2l.train_concise_ch11(torch.optim.SGD, {"lr": 0.05}, data_iter, 4, schedule=s,
                                   seed=0, dtype=F64, log_every=1500, plot=False, verbose=False)
            for s in (None, decay)]
    constant, decayed = runs
    assert decayed.lr[::150] == pytest.approx([0.05, 0.005, 0.0005, 0.00005])
    assert len(decayed.losses) == 4 and decayed.examples == [1500, 3000, 4500, 6000]
    assert decayed.losses[-1] - geo["opt_loss"] < 0.001
    assert min(constant.losses[1:]) > decayed.losses[-1] + 0.003
    # torch's ExponentialLR stepped once per epoch gives the same rates
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.05)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.1)
    rates = []
    for _ in range(4):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates == pytest.approx(decayed.lr[::150])


def test_exercise_3_sampling_with_replacement_sees_about_63_percent(airfoil_data):
    X, y, geo = airfoil_data
    n = len(X)
    sampler = data.RandomSampler(range(n), replacement=True, num_samples=n,
                                 generator=torch.Generator().manual_seed(0))
    assert len(set(sampler)) / n == pytest.approx(1 - (1 - 1 / n) ** n, abs=0.02)
    loader = data.DataLoader(data.TensorDataset(X, y), batch_size=10, sampler=sampler)
    h = d2l.train_ch11(sgd, None, {"lr": 0.05}, loader, seed=0, plot=False, verbose=False)
    assert h.losses[-1] - geo["opt_loss"] < 0.01


def test_exercise_4_duplicated_data(airfoil_data):
    X, y, _ = airfoil_data
    X2, y2 = torch.cat([X, X]), torch.cat([y, y])
    gd = train_sgd(1, 1500, 10)
    gd2 = d2l.train_ch11(sgd, None, {"lr": 1}, [(X2, y2)], num_epochs=10, seed=0, plot=False,
                         verbose=False)
    assert max(abs(a - b) for a, b in zip(gd.losses, gd2.losses)) < 1e-5
    doubled = d2l.train_ch11(sgd, None, {"lr": 0.05}, d2l.load_array((X2, y2), 10),
                             num_epochs=1, seed=0, plot=False, verbose=False)
    original = train_sgd(0.05, 10)
    assert doubled.updates == original.updates == 300
    assert abs(doubled.losses[-1] - original.losses[-1]) < 0.005
