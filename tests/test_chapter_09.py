"""The claims of chapters/09-adadelta.md, recomputed here, and its from-scratch code checked.

The notebook's functions (`adadelta`, `adadelta_book`, `adadelta_scaled_delta`, `adadelta_1d`,
`my_adadelta`, ...) are read from the .md source by name, so a change that breaks a claim
fails here and not only as an nbval diff. No number is copied from the stored outputs: each
test recomputes what a sentence of the chapter says.
"""
import math

import numpy as np
import pytest
import torch

import d2lopt as d2l
from d2lopt import checks, problems

from chapter_source import notebook_functions

pytestmark = pytest.mark.xdist_group("chapter09")   # the airfoil runs below are shared

F64 = torch.float64


NB = notebook_functions("09-adadelta", {"torch": torch, "math": math, "np": np}, graded=True)
INIT = NB["init_adadelta_states"]
F_2D = problems.ill_conditioned.f


# ---- the algorithm -----------------------------------------------------------------------------

def test_leaky_weights_halve_after_6_6_steps_and_sum_to_1_over_1_minus_rho():
    rho = 0.9
    half = math.log(0.5) / math.log(rho)
    assert rho ** half == pytest.approx(0.5, abs=1e-12) and round(half, 2) == 6.58
    assert (rho ** torch.arange(400, dtype=F64)).sum().item() == pytest.approx(1 / (1 - rho), abs=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("hp", [{"rho": 0.9}, {"rho": 0.9, "lr": 0.5}, {"rho": 0.95, "eps": 1e-5}])
def test_scratch_adadelta_matches_torch(hp, dtype):
    checks.assert_passes(checks.check_optimizer(NB["adadelta"], INIT, torch.optim.Adadelta, hp,
                                                dtype=dtype))


def test_lr_inside_the_accumulator_shows_only_when_lr_is_not_1():
    for lr, ok in [(1.0, True), (0.5, False)]:
        r = checks.check_optimizer(NB["adadelta_scaled_delta"], INIT, torch.optim.Adadelta,
                                   {"rho": 0.9, "lr": lr}, dtype=F64)
        assert r.passed == ok


def test_book_variant_is_torch_with_eps_1e_5_and_the_checker_names_eps():
    r = checks.check_optimizer(NB["adadelta_book"], INIT, torch.optim.Adadelta, {"rho": 0.9},
                               dtype=F64)
    assert not r.passed and "eps" in r.diagnosis
    checks.assert_passes(checks.check_optimizer(NB["adadelta_book"], INIT, torch.optim.Adadelta,
                                                {"rho": 0.9}, {"rho": 0.9, "eps": 1e-5}, dtype=F64))


def test_first_step_closed_form_and_the_sqrt10_ratio_on_the_quadratic():
    g1 = torch.tensor([0.2 * -5.0, 4 * -2.0], dtype=F64)
    steps = {}
    for eps in (1e-6, 1e-5):
        path = d2l.trajectory_2d(F_2D, torch.optim.Adadelta, rho=0.9, eps=eps)
        steps[eps] = path.diff(dim=0).abs()
        closed = math.sqrt(eps) * g1.abs() / torch.sqrt(0.1 * g1 ** 2 + eps)
        torch.testing.assert_close(steps[eps][0], closed, rtol=1e-12, atol=0)
        # both coordinates take (almost) the same first step, sqrt(eps / (1 - rho))
        assert steps[eps][0].tolist() == pytest.approx([math.sqrt(eps / 0.1)] * 2, rel=1e-3)
    ratio = steps[1e-5] / steps[1e-6]
    assert ratio.min() > 2.9 and ratio.max() < math.sqrt(10) + 1e-9    # "stays near sqrt(10)"


def test_2d_paths_after_300_steps():
    book = d2l.trajectory_2d(F_2D, torch.optim.Adadelta, steps=300, rho=0.9, eps=1e-5)[-1]
    tch = d2l.trajectory_2d(F_2D, torch.optim.Adadelta, steps=300, rho=0.9)[-1]
    rms = d2l.trajectory_2d(F_2D, torch.optim.RMSprop, lr=0.4, alpha=0.9)[-1]
    start = torch.tensor([-5.0, -2.0], dtype=F64)
    covered = 1 - tch.norm() / start.norm()
    assert 0.25 < covered < 0.4                                      # "about a third of the way"
    assert abs(book[1]) < 1e-3 and 1.4 < book.norm() < 1.6           # valley floor, 1.5 away
    assert rms.norm() < 0.02                                         # RMSProp: at the minimum


# ---- airfoil ------------------------------------------------------------------------------------

KW = dict(seed=0, dtype=F64, plot=False, verbose=False)


@pytest.fixture(scope="module")
def data():
    return d2l.get_data_ch11(batch_size=10)


def _scratch(fn, data, rho=0.9):
    data_iter, dim = data
    return d2l.train_ch11(fn, INIT(dim), {"rho": rho}, data_iter, dim, **KW)


def test_book_eps_starts_lower_and_ends_lower_than_torch_eps(data):
    ours, book = _scratch(NB["adadelta"], data), _scratch(NB["adadelta_book"], data)
    concise = d2l.train_concise_ch11(torch.optim.Adadelta, {"rho": 0.9}, data[0], **KW)
    assert book.losses[0] < min(ours.losses[0], concise.losses[0])
    assert book.losses[-1] < ours.losses[-1] - 0.005
    assert concise.losses[-1] < ours.losses[-1]          # 4 epochs get where the book's 2 do
    assert abs(concise.losses[-1] - book.losses[-1]) < 0.003


def test_exercise1_larger_rho_ahead_early_and_0_99_ends_lowest(data):
    h = {r: _scratch(NB["adadelta"], data, rho=r) for r in (0.5, 0.9, 0.99, 0.999)}
    at_600 = {r: x.losses[x.examples.index(600)] for r, x in h.items()}
    assert at_600[0.999] < at_600[0.99] < at_600[0.9] < at_600[0.5]
    final = {r: x.losses[-1] for r, x in h.items()}
    assert min(final, key=final.get) == 0.99 and final[0.999] > final[0.99]
    assert final[0.5] > 0.26                              # well above the optimum (~0.24)


def test_exercise4_adadelta_needs_2_epochs_for_what_the_others_reach_early(data):
    kw = dict(num_epochs=2, **KW)
    ada = d2l.train_concise_ch11(torch.optim.Adagrad, {"lr": 0.1}, data[0], **kw)
    rms = d2l.train_concise_ch11(torch.optim.RMSprop, {"lr": 0.01, "alpha": 0.9}, data[0], **kw)
    dd = d2l.train_concise_ch11(torch.optim.Adadelta, {"rho": 0.9}, data[0], **kw)
    assert dd.losses[0] > max(ada.losses[0], rms.losses[0])
    reached = lambda h: next(e for e, l in zip(h.examples, h.losses) if l <= dd.losses[-1] + 0.005)
    assert reached(ada) <= 200 and reached(rms) <= 800
    assert min(dd.losses[:-1]) > dd.losses[-1]


# ---- exercises 2 and 3 --------------------------------------------------------------------------

def test_exercise2_fused_form_keeps_the_same_state_and_matches_torch():
    """'The fused form saves no parameter-sized buffer': both forms keep exactly (s, delta)."""
    for fn in (NB["my_adadelta"], NB["adadelta"]):
        checks.assert_passes(checks.check_optimizer(fn, INIT, torch.optim.Adadelta,
                                                    {"rho": 0.9, "lr": 0.5, "eps": 1e-6}, dtype=F64))
    runs = []
    for fn in (NB["my_adadelta"], NB["adadelta"]):
        w = torch.zeros(3, 1, dtype=F64, requires_grad=True)
        b = torch.zeros(1, dtype=F64, requires_grad=True)
        states = tuple(tuple(t.to(F64) for t in pair) for pair in INIT(3))
        g = torch.Generator().manual_seed(1)
        for _ in range(10):
            w.grad, b.grad = torch.randn(3, 1, generator=g, dtype=F64), torch.randn(1, generator=g, dtype=F64)
            fn([w, b], states, {"rho": 0.9, "lr": 1.0, "eps": 1e-6})
        runs.append(states)
    (a, b_) = runs
    assert [t.shape for pair in a for t in pair] == [t.shape for pair in b_ for t in pair]
    for pa, pb in zip(a, b_):
        for ta, tb in zip(pa, pb):
            torch.testing.assert_close(ta, tb, rtol=1e-12, atol=1e-15)


def test_exercise3_numpy_loop_matches_torch_and_counts_depend_on_d_over_sqrt_eps():
    D = np.array([1.0, 10.0, 100.0, 1.0, 10.0, 100.0])
    eps = np.array([1e-6] * 3 + [1e-4] * 3)
    xs = NB["adadelta_1d"](D, eps, 10000)
    x = torch.zeros(3, dtype=F64, requires_grad=True)
    opt = torch.optim.Adadelta([x], rho=0.9)
    for _ in range(300):
        x.grad = x.detach() - torch.tensor(D[:3])
        opt.step()
    assert np.abs(x.detach().numpy() - xs[299, :3]).max() < 1e-12
    assert (np.abs(xs[-1] - D) < 0.01 * D).all()
    k = [int(np.argmax(np.abs(xs[:, i] - D[i]) < 0.01 * D[i])) + 1 for i in range(6)]
    assert k[0] == k[4] and k[1] == k[5]                 # same D / sqrt(eps), same count
    for a, b in [(k[0], k[1]), (k[1], k[2]), (k[3], k[4])]:
        assert 4.6 < b / a < 5.2                         # "about 5 times", toward 10^(2/3)
    assert 4.4 < k[2] / k[1] < 4.9


def test_leaky_average_stats_solution():
    h, w = NB["leaky_average_stats"](0.9)
    assert 0.9 ** h == pytest.approx(0.5) and w == pytest.approx(10.0)
