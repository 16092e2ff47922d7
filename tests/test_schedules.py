"""Schedules as pure lr(t): pinned to torch.optim.lr_scheduler step by step, to hand computations
(optax's alpha, the book's CosineScheduler), and to properties (continuity, monotonicity, clamping,
purity, validation). The adapter is checked by reading the lr each update actually used."""
import dataclasses
import io
import math
import random
import warnings

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as L

from d2lopt import schedules as S


def torch_lrs(make_sched, steps, lr=1.0):
    """The lr torch uses for updates 0..steps-1, driven the normal way: opt.step(); sched.step()."""
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr)
    sched = make_sched(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        p.grad = torch.zeros_like(p)
        opt.step()
        sched.step()
    return lrs


def same(ours, ref):
    assert ours == pytest.approx(ref, rel=1e-12, abs=1e-15)


# --- pinned to torch ------------------------------------------------------------------------------

@pytest.mark.parametrize("milestones", [[3, 7], [5], [2, 2, 6], [0, 4], [7, 3]])
@pytest.mark.parametrize("gamma", [0.5, 0.1])
def test_multi_step_matches_torch(milestones, gamma):
    ref = torch_lrs(lambda o: L.MultiStepLR(o, milestones, gamma), 12, lr=0.3)
    same(S.values(S.multi_step(0.3, milestones, gamma), 12), ref)


@pytest.mark.parametrize("gamma", [0.9, 0.5, 1.0])
def test_exponential_matches_torch(gamma):
    ref = torch_lrs(lambda o: L.ExponentialLR(o, gamma), 25, lr=0.2)
    same(S.values(S.exponential(0.2, gamma), 25), ref)


@pytest.mark.parametrize("total", [1, 5, 10])
@pytest.mark.parametrize("power", [1.0, 2.0, 0.5])
def test_polynomial_matches_torch_including_after_the_end(total, power):
    ref = torch_lrs(lambda o: L.PolynomialLR(o, total_iters=total, power=power), total + 8, lr=0.4)
    same(S.values(S.polynomial(0.4, total, power=power), total + 8), ref)


@pytest.mark.parametrize("t_max", [5, 10, 17])
@pytest.mark.parametrize("eta_min", [0.0, 0.01])
def test_cosine_matches_torch_up_to_t_max_then_is_clamped_where_torch_rises(t_max, eta_min):
    ref = torch_lrs(lambda o: L.CosineAnnealingLR(o, T_max=t_max, eta_min=eta_min), 2 * t_max,
                    lr=0.1)
    ours = S.values(S.cosine(0.1, t_max, final_lr=eta_min), 2 * t_max)
    same(ours[:t_max + 1], ref[:t_max + 1])
    assert all(lr == eta_min for lr in ours[t_max:])
    assert all(ref[t] > ref[t - 1] for t in range(t_max + 1, 2 * t_max))  # torch: period 2*T_max
    assert ref[-1] > eta_min + 0.5 * (0.1 - eta_min)


@pytest.mark.parametrize("t_0", [3, 5])
@pytest.mark.parametrize("t_mult", [1, 2, 3])
@pytest.mark.parametrize("eta_min", [0.0, 0.001])
def test_cosine_restarts_matches_torch(t_0, t_mult, eta_min):
    ref = torch_lrs(lambda o: L.CosineAnnealingWarmRestarts(o, t_0, t_mult, eta_min), 80, lr=0.1)
    same(S.values(S.cosine_restarts(0.1, t_0, t_mult, final_lr=eta_min), 80), ref)


@pytest.mark.parametrize("up, down", [(4, None), (3, 5), (5, 2), (1, 1)])
def test_triangular_matches_torch_cyclic_lr(up, down):
    ref = torch_lrs(lambda o: L.CyclicLR(o, 0.01, 0.1, step_size_up=up, step_size_down=down,
                                         cycle_momentum=False), 40, lr=0.5)
    same(S.values(S.triangular(0.01, 0.1, up, down), 40), ref)


@pytest.mark.parametrize("total", [20, 37, 100])
@pytest.mark.parametrize("pct", [0.25, 0.3, 0.5])
@pytest.mark.parametrize("div, final_div", [(25.0, 1e4), (10.0, 100.0)])
def test_one_cycle_matches_torch_before_the_end(total, pct, div, final_div):
    ref = torch_lrs(lambda o: L.OneCycleLR(o, 0.8, total_steps=total, pct_start=pct, div_factor=div,
                                           final_div_factor=final_div, cycle_momentum=False), total)
    same(S.values(S.one_cycle(0.8, total, pct, div, final_div), total), ref)


def test_one_cycle_peak_and_final_value_by_hand():
    s = S.one_cycle(1.0, 20, pct_start=0.25)        # peak at t = 0.25 * 20 - 1 = 4, as torch
    assert s(0) == pytest.approx(1.0 / 25.0, rel=1e-15)
    assert s(4) == pytest.approx(1.0, rel=1e-15)
    assert s(3) < 1.0 and s(5) < 1.0
    assert s(19) == pytest.approx(1.0 / 25.0 / 1e4, rel=1e-12)
    assert all(s(19 + k) == s(19) for k in range(1, 30))   # held where torch raises


@pytest.mark.parametrize("start, end, total", [(1 / 3, 1.0, 5), (1.0, 0.1, 8), (0.5, 0.0, 4)])
def test_linear_matches_torch_linear_lr(start, end, total):
    ref = torch_lrs(lambda o: L.LinearLR(o, start, end, total_iters=total), total + 6, lr=0.2)
    same(S.values(S.linear(0.2 * start, 0.2 * end, total), total + 6), ref)


def test_square_root_matches_torch_lambda_lr():
    ref = torch_lrs(lambda o: L.LambdaLR(o, lambda t: (t + 1) ** -0.5), 30, lr=0.1)
    same(S.values(S.square_root(0.1), 30), ref)


# --- hand computations ----------------------------------------------------------------------------

def test_constant_and_factor_by_hand():
    assert S.values(S.constant(0.3), 3) == [0.3, 0.3, 0.3]
    # max(0.01, 0.1 * 0.5**t): 0.1, 0.05, 0.025, 0.0125, then the floor
    same(S.values(S.factor(0.1, 0.5, min_lr=0.01), 6), [0.1, 0.05, 0.025, 0.0125, 0.01, 0.01])


def test_optax_alpha_is_a_fraction_of_init_value():
    # optax cosine_decay_schedule(init_value=0.2, decay_steps=10, alpha=0.1):
    # 0.2 * ((1 - 0.1) * (1 + cos(pi * min(t, 10) / 10)) / 2 + 0.1); at t = 5: 0.2 * (0.45 + 0.1)
    s = S.cosine(0.2, 10, final_lr=0.1 * 0.2)
    same([s(0), s(5), s(10), s(15)], [0.2, 0.11, 0.02, 0.02])


def test_given_warmup_begin_matches_the_books_cosine_scheduler():
    # d2l CosineScheduler(max_update=15, base_lr=0.3, final_lr=0.01, warmup_steps=5,
    # warmup_begin_lr=0): t < 5: 0.3 * t / 5; then 0.01 + 0.29 * (1 + cos(pi * (t - 5) / 10)) / 2
    s = S.cosine(0.3, 15, final_lr=0.01, warmup_steps=5, warmup_begin_lr=0.0)
    same([s(0), s(2), s(5), s(10), s(15), s(40)], [0.0, 0.12, 0.3, 0.155, 0.01, 0.01])


def test_default_warmup_ramp_by_hand():
    s = S.cosine(0.3, 15, warmup_steps=3)   # 0.3 * (t + 1) / 3, full rate at t = 2 and 3
    same([s(0), s(1), s(2), s(3)], [0.1, 0.2, 0.3, 0.3])


# --- properties -----------------------------------------------------------------------------------

def catalogue():
    """One of every schedule, with the step T after which each is constant (None: never)."""
    return [(S.constant(0.1), 0), (S.square_root(0.1), None), (S.factor(0.1, 0.7, 1e-3), None),
            (S.multi_step(0.1, [4, 9], 0.3), 9), (S.exponential(0.1, 0.8), None),
            (S.polynomial(0.1, 12, power=2.0, final_lr=1e-3), 12),
            (S.cosine(0.1, 20, final_lr=1e-3, warmup_steps=4), 20),
            (S.triangular(0.01, 0.1, 3, 5), None), (S.cosine_restarts(0.1, 3, 2), None),
            (S.one_cycle(0.1, 30), 29), (S.linear(0.1, 0.02, 10), 10),
            (S.warmup(S.cosine(0.1, 16), 4, begin_lr=0.01), 20)]


DECAYING = [S.square_root(0.1), S.factor(0.1, 0.7, 1e-3), S.multi_step(0.1, [4, 9], 0.3),
            S.exponential(0.1, 0.8), S.polynomial(0.1, 12, power=0.5, final_lr=1e-3),
            S.linear(0.1, 0.02, 10), S.one_cycle(0.1, 30)]


def test_continuous_at_the_end_of_the_warmup():
    for w in [1, 2, 5, 10]:
        for total in [w + 1, w + 7, 3 * w + 20]:
            for begin in [None, 0.0, 0.05]:
                s = S.cosine(0.1, total, final_lr=0.001, warmup_steps=w, warmup_begin_lr=begin)
                ramp = 0.0 if begin is None else (0.1 - begin) / w   # one ramp step at most
                assert abs(s(w) - s(w - 1)) <= ramp + 1e-12 * 0.1, (w, total, begin)
                for inner in [S.cosine(0.1, total), S.exponential(0.1, 0.9), S.one_cycle(0.1, 40),
                              S.constant(0.1), S.linear(0.1, 0.0, total)]:
                    peak, u = inner(0), S.warmup(inner, w, begin_lr=begin)
                    ramp = 0.0 if begin is None else abs(peak - begin) / w
                    assert abs(u(w) - u(w - 1)) <= ramp + 1e-12 * 0.1, (inner, w, begin)
                    assert u(w) == inner(0)


def test_monotone_non_increasing_after_the_warmup():
    for w in [1, 3, 8]:
        scheds = [S.cosine(0.1, w + 12, final_lr=1e-3, warmup_steps=w)]
        scheds += [S.cosine(0.1, w + 12, warmup_steps=w, warmup_begin_lr=0.0)]
        scheds += [S.warmup(s, w) for s in DECAYING[:-1]]
        for s in scheds:
            lrs = S.values(s, w + 60)[w:]
            assert all(b <= a for a, b in zip(lrs, lrs[1:])), s
    for s in DECAYING[:-1]:
        lrs = S.values(s, 60)
        assert all(b <= a for a, b in zip(lrs, lrs[1:])), s
    lrs = S.values(DECAYING[-1], 60)[8:]        # one_cycle: from its peak at 0.3 * 30 - 1 = 8
    assert all(b <= a for a, b in zip(lrs, lrs[1:]))


def test_clamped_after_the_end():
    for s, end in catalogue():
        if end is not None:
            assert all(s(end + k) == s(end) for k in range(1, 50)), s
    for total, w in [(1, 0), (2, 1), (30, 29)]:
        s = S.cosine(0.1, total, final_lr=0.004, warmup_steps=w)
        assert s(total) == 0.004 and s(total + 1000) == 0.004


def test_pure_calls_in_any_order_give_the_same_values():
    rng = random.Random(0)
    for s, _ in catalogue():
        ts = list(range(80)) * 2
        rng.shuffle(ts)
        shuffled = {t: s(t) for t in ts}
        assert [shuffled[t] for t in range(80)] == S.values(s, 80) == S.values(s, 80), s


def test_first_update_is_not_zero_unless_asked():
    for w in [1, 2, 5, 50]:
        for total in [w + 1, 10 * w]:
            assert S.cosine(0.1, total, warmup_steps=w)(0) > 0
            assert S.cosine(0.1, total, warmup_steps=w, warmup_begin_lr=0.0)(0) == 0.0
            assert S.warmup(S.cosine(0.1, total), w)(0) > 0
            assert S.warmup(S.cosine(0.1, total), w, begin_lr=0.0)(0) == 0.0


def test_warmup_wrapper_equals_cosine_with_warmup():
    for w, total in [(1, 2), (4, 20), (10, 11)]:
        for final in [0.0, 0.01]:
            a = S.warmup(S.cosine(0.1, total - w, final_lr=final), w)
            b = S.cosine(0.1, total, final_lr=final, warmup_steps=w)
            same(S.values(a, total + 5), S.values(b, total + 5))


BAD = [
    (lambda: S.constant(-0.1), ValueError, "base_lr"),
    (lambda: S.constant(float("inf")), ValueError, "base_lr"),
    (lambda: S.constant("0.1"), TypeError, "base_lr"),
    (lambda: S.constant(True), TypeError, "base_lr"),
    (lambda: S.square_root(float("nan")), ValueError, "base_lr"),
    (lambda: S.factor(0.1, 0.0), ValueError, "factor"),
    (lambda: S.factor(0.1, 1.5), ValueError, "factor"),
    (lambda: S.factor(0.1, 0.5, min_lr=-1e-3), ValueError, "min_lr"),
    (lambda: S.multi_step(0.1, [3, -1], 0.5), ValueError, "milestones"),
    (lambda: S.multi_step(0.1, 3, 0.5), TypeError, "milestones"),
    (lambda: S.multi_step(0.1, [2.5], 0.5), TypeError, "milestones"),
    (lambda: S.multi_step(0.1, [3], 0.0), ValueError, "gamma"),
    (lambda: S.exponential(0.1, 1.01), ValueError, "gamma"),
    (lambda: S.polynomial(0.1, 0), ValueError, "total_steps"),
    (lambda: S.polynomial(0.1, 5.0), TypeError, "total_steps"),
    (lambda: S.polynomial(0.1, 5, power=0.0), ValueError, "power"),
    (lambda: S.polynomial(0.1, 5, final_lr=-1.0), ValueError, "final_lr"),
    (lambda: S.cosine(0.1, 0), ValueError, "total_steps"),
    (lambda: S.cosine(0.1, 10, warmup_steps=10), ValueError, "warmup_steps"),
    (lambda: S.cosine(0.1, 10, warmup_steps=-1), ValueError, "warmup_steps"),
    (lambda: S.cosine(0.1, 10, warmup_steps=2, warmup_begin_lr=-1), ValueError, "warmup_begin_lr"),
    (lambda: S.triangular(0.01, 0.1, 0), ValueError, "step_size_up"),
    (lambda: S.triangular(0.01, 0.1, 2, step_size_down=0), ValueError, "step_size_down"),
    (lambda: S.triangular(0.01, -0.1, 2), ValueError, "max_lr"),
    (lambda: S.cosine_restarts(0.1, 0), ValueError, "T_0"),
    (lambda: S.cosine_restarts(0.1, 3, T_mult=0), ValueError, "T_mult"),
    (lambda: S.cosine_restarts(0.1, 3, T_mult=1.5), TypeError, "T_mult"),
    (lambda: S.one_cycle(0.1, 10, pct_start=1.5), ValueError, "pct_start"),
    (lambda: S.one_cycle(0.1, 10, pct_start=0.1), ValueError, "pct_start"),
    (lambda: S.one_cycle(0.1, 10, div_factor=0.0), ValueError, "div_factor"),
    (lambda: S.one_cycle(0.1, 10, final_div_factor=-1.0), ValueError, "final_div_factor"),
    (lambda: S.warmup(S.constant(0.1), 0), ValueError, "warmup_steps"),
    (lambda: S.warmup(0.1, 5), TypeError, "schedule"),
    (lambda: S.warmup(S.constant(0.1), 5, begin_lr=-1.0), ValueError, "begin_lr"),
    (lambda: S.linear(0.1, -0.1, 5), ValueError, "end_lr"),
    (lambda: S.values(S.constant(0.1), -1), ValueError, "steps"),
    (lambda: S.constant(0.1)(-1), ValueError, "t"),
    (lambda: S.cosine(0.1, 10)(1.5), TypeError, "t"),
    (lambda: S.cosine(0.1, 10)(True), TypeError, "t"),
]


@pytest.mark.parametrize("make, exc, name", BAD)
def test_validation_errors_name_the_argument_and_range(make, exc, name):
    with pytest.raises(exc, match=rf"^{name} must .*, got "):
        make()


def test_repr_rebuilds_the_schedule_and_has_no_address():
    for s, _ in catalogue():
        assert " at 0x" not in repr(s) and repr(s).startswith(type(s).__name__ + "(")
        assert eval(repr(s), vars(S)) == s
    with pytest.raises(dataclasses.FrozenInstanceError):
        S.constant(0.1).base_lr = 1.0


def test_numpy_steps_and_numbers_are_accepted():
    s = S.cosine(np.float64(0.1), np.int64(10), warmup_steps=np.int32(2))
    assert s(np.int64(3)) == s(3) and isinstance(s(3), float) and type(s.total_steps) is int


def train(opt_lrs, schedule, steps, *, start=None, stop_after=None):
    """Train a float64 linear model with SGD; return (lr read before each update, lr the update
    actually applied, recovered from the parameter change), plus the optimizer and scheduler."""
    torch.manual_seed(0)
    X, y = torch.randn(32, 3, dtype=torch.float64), torch.randn(32, dtype=torch.float64)
    ws = [torch.zeros(3, dtype=torch.float64, requires_grad=True) for _ in opt_lrs]
    opt = torch.optim.SGD([{"params": [w], "lr": lr} for w, lr in zip(ws, opt_lrs)])
    sched = S.attach(opt, schedule)
    if start is not None:
        opt.load_state_dict(start[0])
        sched.load_state_dict(start[1])
    read, used = [], []
    for _ in range(steps):
        read.append([g["lr"] for g in opt.param_groups])
        opt.zero_grad()
        loss = ((X @ sum(ws) - y) ** 2).mean()
        loss.backward()
        before = [w.detach().clone() for w in ws]
        opt.step()
        used.append([((b - w.detach()) / w.grad).mean().item() for b, w in zip(before, ws)])
        sched.step()
    return read, used, opt, sched


def test_adapter_update_t_uses_exactly_s_of_t():
    s = S.cosine(0.1, 12, final_lr=0.01, warmup_steps=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                # no "scheduler before optimizer" warning
        warnings.simplefilter("ignore", ResourceWarning)  # others' kernels' sockets
        warnings.simplefilter("ignore", pytest.PytestUnraisableExceptionWarning)
        read, used, opt, sched = train([0.5], s, 16)  # built on an optimizer with another lr
    assert [r[0] for r in read] == S.values(s, 16)
    assert [u[0] for u in used] == pytest.approx(S.values(s, 16), rel=1e-9)
    assert sched.get_last_lr() == [s(16)] and isinstance(sched, L.LRScheduler)
    assert isinstance(sched, S.ScheduleLR)


def test_adapter_with_several_param_groups():
    s1, s2 = S.cosine(0.1, 8), S.exponential(0.05, 0.9)
    read, used, _, _ = train([1.0, 2.0], [s1, s2], 10)
    assert read == [[s1(t), s2(t)] for t in range(10)]
    assert sum(used, []) == pytest.approx(sum(read, []), rel=1e-9)
    read, _, _, _ = train([1.0, 2.0], s2, 5)          # one schedule drives every group
    assert read == [[s2(t), s2(t)] for t in range(5)]
    for bad in [[s1], [s1, 0.1], 0.1]:
        with pytest.raises(ValueError, match="^schedule must be one callable or 2 callables"):
            train([1.0, 2.0], bad, 1)


def test_adapter_state_dict_round_trip_resumes_at_the_right_step():
    s = S.one_cycle(0.2, 20)
    first, _, opt, sched = train([0.3], s, 7)
    state = sched.state_dict()
    assert state["last_epoch"] == 7 and "schedules" not in state
    buf = io.BytesIO()
    torch.save((opt.state_dict(), state), buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    second, used, _, sched2 = train([9.9], s, 13, start=saved)
    assert [r[0] for r in first + second] == S.values(s, 20)
    assert [u[0] for u in used] == pytest.approx(S.values(s, 20)[7:], rel=1e-9)
    assert sched2.last_epoch == 20


def test_adapter_never_compounds_a_hand_edited_lr():
    s = S.cosine(0.1, 10)
    torch_cos = L.CosineAnnealingLR                    # recursive: an edit leaks into later steps
    for make, expect_exact in [(lambda o: S.attach(o, s), True),
                               (lambda o: torch_cos(o, T_max=10), False)]:
        p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.SGD([p], lr=0.1)
        sched = make(opt)
        for t in range(8):
            if t == 4:
                opt.param_groups[0]["lr"] = 123.0
            p.grad = torch.zeros_like(p)
            opt.step()
            sched.step()
        assert math.isclose(opt.param_groups[0]["lr"], s(8), rel_tol=1e-12) is expect_exact
