"""Chapter 10 (Adam): the notebook's claims, recomputed with package code.

The update cores themselves are pinned to torch.optim in test_updates.py and d2lopt.optim.Yogi in
test_optim.py; this file adds what chapters/10-adam.md relies on beyond those: a book-style update
built on the core `updates.adam` (the notebook's `adam_core`) is Adam and Yogi at once, the book's
eps is one hyperparameter away from torch's, end points recorded with the published packages, and
the conclusions the notebook draws from its runs.
"""
import math

import numpy as np
import pytest
import torch

import d2lopt as d2l
from d2lopt import checks, problems, updates
from d2lopt.optim import Yogi

pytestmark = pytest.mark.xdist_group("chapter10")

F64 = torch.float64


def adam_core(params, states, hyperparams, **switches):
    """The notebook's book-style update on the pure core updates.adam."""
    for p, (v, s) in zip(params, states):
        with torch.no_grad():
            delta, v[:], s[:], _ = updates.adam(p.grad, v, s, hyperparams['t'],
                                                lr=hyperparams['lr'], **switches)
            p -= delta
        p.grad.zero_()
    hyperparams['t'] += 1


def init_adam_states(feature_dim):
    return ((torch.zeros((feature_dim, 1)), torch.zeros((feature_dim, 1))),
            (torch.zeros(1), torch.zeros(1)))


def yogi(params, states, hp):
    return adam_core(params, states, hp, second_moment='yogi', eps=1e-3)


def book_adam(params, states, hp):
    return adam_core(params, states, hp, eps=1e-6)


# --- the algorithm --------------------------------------------------------------------------------

def test_first_adam_step_is_lr_whatever_the_gradient_size():
    x = torch.tensor([1.0, -2.0, 3.0], dtype=F64, requires_grad=True)
    opt = torch.optim.Adam([x], lr=0.01)
    x.grad = torch.tensor([1e-3, 5.0, -2e4], dtype=F64)
    opt.step()
    step = x.detach() - torch.tensor([1.0, -2.0, 3.0], dtype=F64)
    torch.testing.assert_close(step, torch.tensor([-0.01, -0.01, 0.01], dtype=F64), rtol=1e-4, atol=0)


def test_leaky_averages_have_expectation_one_minus_beta_t_times_the_target():
    n, T, mu, b1, b2 = 20000, 200, 0.5, 0.9, 0.999
    g = mu + torch.randn(n, T, dtype=F64, generator=torch.Generator().manual_seed(0))
    v = s = torch.zeros(n, dtype=F64)
    vs, ss = [], []
    for t in range(T):
        v, s = updates.ema(v, g[:, t], b1), updates.ema(s, g[:, t] ** 2, b2)
        vs.append(v), ss.append(s)
    vs, ss = torch.stack(vs, 1), torch.stack(ss, 1)
    t = torch.arange(1, T + 1)
    z_v = ((vs.mean(0) - (1 - b1 ** t) * mu) / (vs.std(0) / n ** 0.5)).abs().max()
    z_s = ((ss.mean(0) - (1 - b2 ** t) * (mu ** 2 + 1)) / (ss.std(0) / n ** 0.5)).abs().max()
    assert z_v < 5 and z_s < 5
    # and the corrected averages are unbiased: their mean is on the target at every t
    assert (updates.debias(vs, b1, t).mean(0) - mu).abs().max() < 0.05
    # the uncorrected/corrected step factor the notebook prints: largest near t = 10
    factors = [(1 - b1 ** t) / math.sqrt(1 - b2 ** t) for t in (1, 10, 100, 1000)]
    assert factors == pytest.approx([3.16, 6.53, 3.24, 1.26], abs=0.005)


# --- the core as a book-style update --------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_book_style_update_on_the_core_is_torch_adam(dtype):
    r = checks.check_optimizer(adam_core, init_adam_states, torch.optim.Adam, {'lr': 0.01, 't': 1},
                               dtype=dtype)
    assert r.passed, r


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_yogi_switch_is_the_book_yogi_with_zero_start(dtype):
    r = checks.check_optimizer(yogi, init_adam_states, Yogi, {'lr': 0.01, 't': 1},
                               reference_hyperparams={'lr': 0.01, 'initial_accumulator': 0.0},
                               dtype=dtype)
    assert r.passed, r


def test_published_yogi_start_differs_only_in_the_tiny_gradient_phase():
    full = checks.check_optimizer(yogi, init_adam_states, Yogi, {'lr': 0.01, 't': 1},
                                  reference_hyperparams={'lr': 0.01}, dtype=F64)
    big = checks.check_optimizer(yogi, init_adam_states, Yogi, {'lr': 0.01, 't': 1},
                                 reference_hyperparams={'lr': 0.01}, dtype=F64, probe_scale=1.0)
    assert not full.passed and 1e-3 < full.gap < 1e-2
    assert big.gap < 0.1 * full.gap


def test_books_eps_is_caught_by_the_small_gradient_phase_only():
    hp = {'lr': 0.01, 't': 1}
    r = checks.check_optimizer(book_adam, init_adam_states, torch.optim.Adam, hp,
                               reference_hyperparams={'lr': 0.01}, dtype=F64)
    assert not r.passed and 'eps' in r.diagnosis
    gaps = {scale: checks.check_optimizer(book_adam, init_adam_states, torch.optim.Adam, hp,
                                          reference_hyperparams={'lr': 0.01}, grad_scale=scale,
                                          probe_scale=1.0, dtype=F64).gap for scale in (1.0, 1e-4)}
    assert gaps[1.0] < 1e-6
    assert 1e-3 < gaps[1e-4] < 3e-3


# --- two dimensions --------------------------------------------------------------------------------

# End points after 20 steps at lr = 0.1 from (-5, -2) on 0.1 x1^2 + 2 x2^2, recorded with
# torch.optim.Adam and with torch_optimizer.Yogi from the torch-optimizer package, version 0.3.0
# (initial accumulator 1e-6); the zero start is a transcription of the book's yogi.
RECORDED_2D = [(torch.optim.Adam, {}, (-3.0603389, -0.22245243)),
               (Yogi, {}, (-3.0674653, -0.22714589)),
               (Yogi, {'initial_accumulator': 0.0}, (-3.0672761, -0.22714297))]


@pytest.mark.parametrize("cls, kw, expected", RECORDED_2D)
def test_2d_end_points_match_the_published_implementations(cls, kw, expected):
    end = d2l.trajectory_2d(problems.ill_conditioned.f, cls, lr=0.1, **kw)[-1]
    torch.testing.assert_close(end, torch.tensor(expected, dtype=F64), rtol=1e-6, atol=0)


def all_optimizers(r):
    return {'SGD': (torch.optim.SGD, dict(lr=r['sgd'])),
            'momentum': (torch.optim.SGD, dict(lr=r['momentum'], momentum=r['beta'])),
            'Adagrad': (torch.optim.Adagrad, dict(lr=r['adagrad'])),
            'RMSprop': (torch.optim.RMSprop, dict(lr=r['rmsprop'], alpha=0.9)),
            'Adadelta': (torch.optim.Adadelta, dict(rho=0.9)),
            'Adam': (torch.optim.Adam, dict(lr=r['adam'])), 'Yogi': (Yogi, dict(lr=r['adam']))}


def final_values(prob, steps, rates):
    return {name: prob.f(*d2l.trajectory_2d(prob, cls, steps=steps, **kw)[-1]).item()
            for name, (cls, kw) in all_optimizers(rates).items()}


def test_2d_quadratic_claims():
    f = final_values(problems.ill_conditioned, 20, dict(sgd=0.4, momentum=0.4, beta=0.5,
                                                        adagrad=2.0, rmsprop=0.4, adam=0.5))
    assert f['Adagrad'] < 1e-4 and f['RMSprop'] < 1e-4
    assert f['Adam'] > f['Yogi'] > f['momentum'] and f['Adam'] - f['Yogi'] < 0.05
    assert f['Adadelta'] == max(f.values())
    # Adadelta's first step: about sqrt(eps / (1 - rho)) per coordinate
    path = d2l.trajectory_2d(problems.ill_conditioned, torch.optim.Adadelta, steps=1, rho=0.9)
    assert (path[1] - path[0]).abs().max().item() == pytest.approx(math.sqrt(1e-6 / 0.1), rel=0.01)


def test_2d_rosenbrock_claims():
    f = final_values(problems.rosenbrock, 500, dict(sgd=1.5e-3, momentum=5e-4, beta=0.9,
                                                    adagrad=1.0, rmsprop=0.02, adam=0.1))
    ranked = sorted(f, key=f.get)
    assert set(ranked[:3]) == {'Adam', 'Yogi', 'momentum'}
    assert ranked[-1] == 'Adadelta'
    assert f['RMSprop'] < f['SGD'] < f['Adagrad']


# --- the airfoil runs ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data_iter():
    return d2l.get_data_ch11(batch_size=10, seed=0)[0]


RUN = dict(seed=0, dtype=F64, plot=False, verbose=False)


def test_every_optimizer_but_adadelta_reaches_the_optimum_in_two_epochs(data_iter):
    settings = {'SGD': (torch.optim.SGD, {'lr': 0.01}),
                'momentum': (torch.optim.SGD, {'lr': 0.005, 'momentum': 0.9}),
                'Adagrad': (torch.optim.Adagrad, {'lr': 0.1}),
                'RMSprop': (torch.optim.RMSprop, {'lr': 0.01, 'alpha': 0.9}),
                'Adadelta': (torch.optim.Adadelta, {'rho': 0.9}),
                'Adam': (torch.optim.Adam, {'lr': 0.01}), 'Yogi': (Yogi, {'lr': 0.01})}
    final = {name: d2l.train_concise_ch11(cls, hp, data_iter, num_epochs=2, **RUN).losses[-1]
             for name, (cls, hp) in settings.items()}
    assert final.pop('Adadelta') > 0.25
    assert all(0.235 < v < 0.245 for v in final.values()), final


def test_from_scratch_style_runs_reach_the_optimum(data_iter):
    for fn in (adam_core, yogi):
        h = d2l.train_ch11(fn, init_adam_states(5), {'lr': 0.01, 't': 1}, data_iter, **RUN)
        assert h.losses[-1] < 0.245


def test_learning_rate_exercise_claims(data_iter):
    hs = {lr: d2l.train_concise_ch11(torch.optim.Adam, {'lr': lr}, data_iter, num_epochs=2, **RUN)
          for lr in (0.001, 0.01, 0.1, 1.0)}
    last = {lr: max(h.losses[len(h.losses) // 2:]) for lr, h in hs.items()}
    assert hs[0.001].losses[-1] > 0.3 and hs[0.001].losses[-1] < hs[0.001].losses[len(hs[0.001].losses) // 2]
    assert hs[0.01].losses[-1] < 0.245 and last[0.01] < 0.25
    assert hs[0.1].losses[0] < hs[0.01].losses[0] < hs[0.001].losses[0]     # fastest at first
    assert last[0.1] > 0.3 and last[1.0] > last[0.1]
    decayed = d2l.train_concise_ch11(torch.optim.Adam, {'lr': 0.1}, data_iter, num_epochs=2,
                                     schedule=lambda t: 0.1 / (1 + t / 100), **RUN)
    assert max(decayed.losses[len(decayed.losses) // 2:]) < 0.8 * last[0.1]
    assert decayed.losses[-1] < hs[0.1].losses[-1]


# --- optional: weight decay and clipping -----------------------------------------------------------

def least_squares():
    gen = torch.Generator().manual_seed(0)
    scales = torch.tensor([0.1, 1.0, 10.0], dtype=F64)
    X = torch.randn(200, 3, dtype=F64, generator=gen) * scales
    y = X @ (1 / scales) + 0.1 * torch.randn(200, dtype=F64, generator=gen)
    return X.T @ X / 200, X.T @ y / 200


def run_least_squares(H, b, opt_cls, steps=2000, **hp):
    w = torch.zeros(3, dtype=F64, requires_grad=True)
    opt = opt_cls([w], **hp)
    for _ in range(steps):
        w.grad = H @ w.detach() - b
        opt.step()
    return w.detach()


def test_adam_l2_ends_on_ridge_and_adamw_bounds_the_weights_by_one_over_lambda():
    lam = 0.2
    H, b = least_squares()
    w_lsq = torch.linalg.solve(H, b)
    w_ridge = torch.linalg.solve(H + lam * torch.eye(3, dtype=F64), b)
    w_l2 = run_least_squares(H, b, torch.optim.Adam, lr=0.05, weight_decay=lam)
    w_w = run_least_squares(H, b, torch.optim.AdamW, lr=0.05, weight_decay=lam)
    assert (w_l2 - w_ridge).abs().max() < 1e-6
    assert w_lsq[0] > 9.5 and w_ridge[0] < 0.5 and abs(w_ridge[2] - w_lsq[2]) < 0.01
    assert abs(w_w[0] - 1 / lam) < 0.5 and (w_w[1:] - w_lsq[1:]).abs().max() < 0.05


def test_adamw_from_scratch_is_one_line_in_front_of_adam():
    def adamw(params, states, hp):
        with torch.no_grad():
            for p in params:
                p.mul_(1 - hp['lr'] * hp['weight_decay'])
        adam_core(params, states, hp)
    for dtype in (torch.float32, F64):
        r = checks.check_optimizer(adamw, init_adam_states, torch.optim.AdamW,
                                   {'lr': 0.01, 't': 1, 'weight_decay': 0.1}, dtype=dtype)
        assert r.passed, r


def test_l2_is_invisible_to_adam_on_a_diagonal_quadratic():
    q = problems.ill_conditioned
    base = d2l.trajectory_2d(q, torch.optim.Adam, lr=0.1)
    gap_l2 = (d2l.trajectory_2d(q, torch.optim.Adam, lr=0.1, weight_decay=0.1) - base).abs().max()
    gap_w = (d2l.trajectory_2d(q, torch.optim.AdamW, lr=0.1, weight_decay=0.1) - base).abs().max()
    assert gap_l2 < 1e-6 < 0.5 < gap_w


def test_clip_grad_norm_is_the_projection_up_to_its_added_1e_6():
    gen = torch.Generator().manual_seed(0)
    for norm in torch.logspace(-3, 3, 61, dtype=F64).tolist():
        g = torch.randn(10, dtype=F64, generator=gen)
        g = g / g.norm() * norm
        p = torch.zeros(10, dtype=F64, requires_grad=True)
        p.grad = g.clone()
        torch.nn.utils.clip_grad_norm_([p], max_norm=1.0)
        projection = g * min(1.0, 1.0 / norm)
        assert ((p.grad - projection).norm() / norm).item() < 2e-6
        torch.testing.assert_close(p.grad, g * min(1.0, 1.0 / (norm + 1e-6)), rtol=0, atol=1e-12)


# --- optional: the spike problem (book exercise 4) -------------------------------------------------

K, C, PERIODS, LR = 3000, 6000.0, 8, 0.02


def spike_grads(periods=PERIODS):
    return torch.where(torch.arange(K * periods) % K == 0, C, -1.0).to(F64)


def unit_steps(grads, **switches):
    m = v = torch.zeros(1, dtype=F64)
    steps = []
    for t, g in enumerate(grads.unsqueeze(1), 1):
        delta, m, v, _ = updates.adam(g, m, v, t, lr=1.0, **switches)
        steps.append(delta)
    return torch.cat(steps).numpy()


@pytest.mark.parametrize("cls, kw, switches", [(torch.optim.Adam, {}, {}),
                                               (Yogi, {'initial_accumulator': 0.0},
                                                {'second_moment': 'yogi', 'eps': 1e-3})])
def test_core_steps_on_the_spike_sequence_are_the_optimizers(cls, kw, switches):
    grads = spike_grads(1)[:2000]
    x = torch.zeros(1, dtype=F64, requires_grad=True)
    opt = cls([x], lr=LR, **({'eps': 1e-3} if cls is Yogi else {}), **kw)
    for g in grads:
        x.grad = g.reshape(1).clone()
        opt.step()
    assert abs(x.item() + LR * unit_steps(grads, **switches).sum()) < 1e-12


@pytest.fixture(scope="module")
def spike_runs():
    g = spike_grads()
    return {'Adam': LR * unit_steps(g), 'Yogi': LR * unit_steps(g, second_moment='yogi', eps=1e-3)}


def project(steps, x=0.0):
    xs = []
    for d in steps:
        x = min(1.0, max(-1.0, x - d))
        xs.append(x)
    return np.array(xs)


def test_adam_ends_at_the_worst_point_and_yogi_near_the_best(spike_runs):
    a_bar = (C - (K - 1)) / K
    xa, xy = project(spike_runs['Adam']), project(spike_runs['Yogi'])
    assert xa[-1] == 1.0 and xa[-K:].mean() > 0.5
    assert abs(xy[-1] + 1) < 0.15 and a_bar * (xy[-K:].mean() + 1) < 0.1


def test_without_the_projection_adam_rises_steadily_and_yogi_falls_ever_more_slowly(spike_runs):
    ends = {name: -np.cumsum(st)[K - 1::K] for name, st in spike_runs.items()}
    rise = np.diff(ends['Adam'])
    assert (rise > 0.08).all() and (rise < 0.12).all() and ends['Adam'][-1] > 1.1
    fall = np.diff(ends['Yogi'])
    assert (fall < 0).all() and (np.diff(fall) > 0).all()


def test_adam_s_hat_falls_about_twentyfold_between_spikes_and_yogi_s_barely_moves():
    g = spike_grads(3)
    for rule, lo, hi in [('adam', 15, 25), ('yogi', 1.0, 1.05)]:
        m = v = torch.zeros(1, dtype=F64)
        s_hat = []
        for t, gt in enumerate(g.unsqueeze(1), 1):
            _, m, v, _ = updates.adam(gt, m, v, t, second_moment=rule)
            s_hat.append(updates.debias(v, 0.999, t).item())
        ratio = s_hat[2 * K] / s_hat[3 * K - 1]      # just after the third spike / just before the next
        assert lo < ratio < hi, (rule, ratio)
