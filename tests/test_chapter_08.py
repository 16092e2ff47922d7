"""The claims of chapters/08-rmsprop.md, recomputed here, and its helpers checked.

Each test states one sentence of the chapter (prose, printout or figure) and checks it with
package code or from scratch in float64, never against a number copied from the stored
outputs. The notebook's own functions (`rmsprop`, `rmsprop_book`, `rmsprop_2d`, `step_ratio`,
`f_rot`, ...) are read from the .md source by name, so a change to them that breaks a claim
fails here and not only as an nbval diff.
"""
import functools
import math

import pytest
import torch

import d2lopt as d2l
from d2lopt import checks

from chapter_source import notebook_functions

F64 = torch.float64


NB = notebook_functions("08-rmsprop", {"torch": torch, "math": math, "d2l": d2l})
ROT = torch.tensor([[1.0, 1.0], [-1.0, 1.0]], dtype=F64) / math.sqrt(2)
X0_ROT = tuple((ROT.T @ torch.tensor([-5.0, -2.0], dtype=F64)).tolist())


# ---- the leaky average ------------------------------------------------------------------------

@pytest.mark.parametrize("gamma", [0.5, 0.9, 0.99])
def test_closed_form_of_the_leaky_average_equals_the_recursion(gamma):
    g_seq = torch.randn(60, 4, dtype=F64, generator=torch.Generator().manual_seed(1))
    s = torch.zeros(4, dtype=F64)
    for g in g_seq:
        s = gamma * s + (1 - gamma) * g ** 2
    w = (1 - gamma) * gamma ** torch.arange(60, dtype=F64)
    torch.testing.assert_close(s, (w[:, None] * g_seq.flip(0) ** 2).sum(0), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("gamma", [0.95, 0.9, 0.8, 0.7])
def test_weights_sum_to_one_start_biased_and_halve_at_the_half_life(gamma):
    w = (1 - gamma) * gamma ** torch.arange(10000, dtype=F64)
    assert abs(w.sum().item() - 1) < 1e-12
    assert abs(w[:20].sum().item() - (1 - gamma ** 20)) < 1e-12
    half = math.log(2) / math.log(1 / gamma)
    assert abs(gamma ** half - 0.5) < 1e-12


def test_book_half_life_wording_is_loose():
    # "gamma^-1 is about 1.1 steps for gamma = 0.9, the weights halve after about 6.6 steps"
    assert round(1 / 0.9, 1) == 1.1
    assert round(math.log(2) / math.log(1 / 0.9), 1) == 6.6


def test_rate_tends_to_eta_over_g_for_a_constant_gradient():
    # "for a gradient of constant size G the effective rate tends to eta / G"
    x = torch.zeros(1, dtype=F64, requires_grad=True)
    opt = torch.optim.RMSprop([x], lr=0.01, alpha=0.9)
    for _ in range(300):
        opt.zero_grad()
        (3.0 * x).sum().backward()
        before = x.detach().clone()
        opt.step()
    assert abs((before - x.detach()).item() - 0.01) < 1e-9


# ---- the two-dimensional problem --------------------------------------------------------------

def test_book_style_2d_path_matches_torch_and_beats_adagrad():
    path = torch.tensor(d2l.train_2d(NB["rmsprop_2d"], verbose=False), dtype=F64)
    torch_path = d2l.trajectory_2d(NB["f_2d"], torch.optim.RMSprop, lr=0.4, alpha=0.9)
    assert (path - torch_path).abs().max() < 1e-5                       # eps convention only
    assert abs(path[-1, 0].item() - (-0.010599)) < 5e-7                 # the book's printout
    adagrad = d2l.trajectory_2d(NB["f_2d"], torch.optim.Adagrad, lr=0.4)
    assert adagrad[-1, 0] < -2.3 and path[-1].norm() < 0.02             # "much closer"


def test_first_step_is_eta_over_sqrt_one_minus_gamma_in_both_coordinates():
    p = d2l.trajectory_2d(NB["f_2d"], torch.optim.RMSprop, steps=1, lr=0.4, alpha=0.9)
    torch.testing.assert_close(p[1] - p[0], torch.full((2,), 0.4 / math.sqrt(0.1), dtype=F64),
                               rtol=1e-6, atol=0)


def test_effective_rate_along_x2_hardly_changes_while_x2_settles():
    p = d2l.trajectory_2d(NB["f_2d"], torch.optim.RMSprop, lr=0.4, alpha=0.9)
    rate = (p[:-1, 1] - p[1:, 1]) / (4 * p[:-1, 1])
    assert 0.15 < rate[:6].min() and rate[:6].max() < 0.2            # "0.16 to 0.19"
    grad_ratio = (p[1:7, 1] / p[:6, 1]).abs()
    assert grad_ratio.max() < 0.4                                     # "shrink ~3x per step"
    assert (p[1:10, 1] < 0).all() and p[-1, 1].abs() < 1e-5           # no bouncing, settled


# ---- from scratch -----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_scratch_rmsprop_matches_torch(dtype):
    r = checks.check_optimizer(NB["rmsprop"], NB["init_rmsprop_states"], torch.optim.RMSprop,
                               {"lr": 0.01, "gamma": 0.9, "eps": 1e-8}, dtype=dtype)
    assert r.passed, r.diagnosis


def test_book_variant_fails_the_check_and_the_diagnosis_names_eps():
    r = checks.check_optimizer(NB["rmsprop_book"], NB["init_rmsprop_states"],
                               torch.optim.RMSprop, {"lr": 0.01, "gamma": 0.9})
    assert not r.passed and "eps" in r.diagnosis


def test_book_variant_gap_by_gradient_scale():
    def gap(scale):
        return checks.check_optimizer(NB["rmsprop_book"], NB["init_rmsprop_states"],
                                      torch.optim.RMSprop, {"lr": 0.01, "gamma": 0.9},
                                      grad_scale=scale, probe_scale=1.0, dtype=F64).gap
    assert 1e-6 < gap(1.0) < 1e-5                                  # "a few 1e-6"
    assert gap(1e-3) > 1e3 * gap(1.0)
    ratio = NB["step_ratio"]
    assert abs(ratio(1.0) - 1) < 1e-6 and abs(ratio(1e-3) - 1 / math.sqrt(2)) < 1e-4
    assert abs(ratio(1e-6) - 1e-3) < 1e-5                          # "a thousand times smaller"


# ---- airfoil ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def airfoil():
    data_iter, dim = d2l.get_data_ch11(batch_size=10)
    X, y = (t.double() for t in data_iter.dataset.tensors)
    A = torch.cat([X, torch.ones(len(X), 1, dtype=F64)], dim=1)
    best = ((A @ torch.linalg.lstsq(A, y[:, None]).solution - y[:, None]) ** 2 / 2).mean().item()
    return data_iter, dim, best


def _scratch(airfoil, gamma):
    data_iter, dim, _ = airfoil
    return d2l.train_ch11(NB["rmsprop"], NB["init_rmsprop_states"](dim),
                          {"lr": 0.01, "gamma": gamma}, data_iter, dim, seed=0,
                          dtype=F64, plot=False, verbose=False)


def test_airfoil_runs_end_near_least_squares_but_keep_bouncing(airfoil):
    data_iter, _, best = airfoil
    runs = [_scratch(airfoil, 0.9),
            d2l.train_concise_ch11(torch.optim.RMSprop, {"lr": 0.01, "alpha": 0.9}, data_iter,
                                   seed=0, dtype=F64, plot=False, verbose=False)]
    for h in runs:
        excess = [loss - best for loss, ep in zip(h.losses, h.epochs) if ep >= 1]
        assert min(excess) > 3e-4 and 5e-3 < max(excess) < 2e-2     # "5e-4 .. 1e-2"
        assert h.losses[-1] - best < 5e-3
    assert runs[0].losses[-1] == min(runs[0].losses)               # "its lowest"
    tail = [loss for loss, ep in zip(runs[1].losses, runs[1].epochs) if ep > 2]
    assert min(tail) >= min(l for l, e in zip(runs[1].losses, runs[1].epochs) if e <= 2) - 1e-4


def test_gamma_sweep_insensitive_at_the_end_faster_start_near_one(airfoil):
    sweep = {g: _scratch(airfoil, g) for g in [0.5, 0.9, 0.99, 0.999]}
    finals = [h.losses[-1] for h in sweep.values()]
    assert max(finals) - min(finals) < 0.005                          # "within 0.004"
    first = {g: h.losses[0] for g, h in sweep.items()}
    assert max(first[0.99], first[0.999]) < first[0.9] - 0.05 < first[0.5] - 0.05


# ---- exercises ---------------------------------------------------------------------------------

def test_gamma_one_is_gradient_descent_with_rate_eta_over_root_eps():
    path = d2l.train_2d(functools.partial(NB["rmsprop_2d"], gamma=1.0), verbose=False)
    assert math.isclose(path[1][1], -2 * (1 - 4 * 0.4 / math.sqrt(1e-6)), rel_tol=1e-12)
    first = d2l.trajectory_2d(NB["f_2d"], torch.optim.RMSprop, steps=1, lr=0.4, alpha=1.0)[-1]
    assert math.isclose(first[1].item(), -2 + 0.4 * 8 / 1e-8, rel_tol=1e-9)


def test_rotation_hurts_rmsprop_not_gd_and_book_factor_two_divides_out():
    f, f_rot = NB["f_2d"], NB["f_rot"]
    gd = [d2l.trajectory_2d(f, torch.optim.SGD, lr=0.4)[-1].norm(),
          d2l.trajectory_2d(f_rot, torch.optim.SGD, x0=X0_ROT, lr=0.4)[-1].norm()]
    assert abs(gd[0] - gd[1]) < 1e-12
    rms = [d2l.trajectory_2d(f, torch.optim.RMSprop, lr=0.4, alpha=0.9)[-1].norm(),
           d2l.trajectory_2d(f_rot, torch.optim.RMSprop, x0=X0_ROT, lr=0.4, alpha=0.9)]
    assert rms[1][-1].norm() > 50 * rms[0]                             # "much further"

    def f_book(x1, x2):
        return 0.1 * (x1 + x2) ** 2 + 2 * (x1 - x2) ** 2
    book = d2l.trajectory_2d(f_book, torch.optim.RMSprop, x0=X0_ROT, lr=0.4, alpha=0.9)
    assert (book - rms[1]).abs().max() < 1e-6                          # "up to eps"
