"""Tests of d2lopt.optim (Yogi) and d2lopt.schedulefree (schedule-free SGD/AdamW).

Expected values come from hand computations written out here, from an explicit x/y/z
reference written here from the published recursion, and from the numbers printed by
torch_optimizer 0.3.0 / optax 0.2.8 / schedulefree 1.4.1, recorded once from those packages
(they are not dependencies of the tests).
"""
import io
import math
import re

import numpy as np
import pytest
import torch

from d2lopt.optim import Yogi, yogi_update, init_yogi_state
from d2lopt.schedulefree import ScheduleFreeAdamW, ScheduleFreeSGD, evaluating

F64 = torch.float64


def quad_grad(x):
    """Gradient of f(x) = 0.1 x1^2 + 2 x2^2, the chapter's 2-D problem."""
    return torch.stack([0.2 * x[0], 4.0 * x[1]])


def run_2d(make_opt, steps=20, x0=(-5.0, -2.0), train=False):
    x = torch.tensor(x0, dtype=F64, requires_grad=True)
    opt = make_opt([x])
    if train:
        opt.train()
    for _ in range(steps):
        opt.zero_grad()
        (0.1 * x[0] ** 2 + 2 * x[1] ** 2).backward()
        opt.step()
    return x, opt


# ----------------------------------------------------------------------------- Yogi

def test_yogi_three_steps_by_hand():
    # torch_optimizer.Yogi / optax.yogi formulas, one coordinate at a time, plain floats.
    lr, b1, b2, eps, init = 0.1, 0.9, 0.999, 1e-3, 1e-6
    grads = [(2.0, -0.5), (0.01, 1.0), (-1.5, 0.0)]
    sign = lambda a: (a > 0) - (a < 0)
    expected = []
    for i, theta in enumerate([1.0, -2.0]):
        m = v = init
        for t, g in enumerate((gs[i] for gs in grads), start=1):
            m = b1 * m + (1 - b1) * g
            v = v - (1 - b2) * sign(v - g * g) * g * g
            theta -= lr / (1 - b1 ** t) * m / (math.sqrt(v) / math.sqrt(1 - b2 ** t) + eps)
        expected.append(theta)
    # coordinate 0 exercises Yogi's own branch: at step 2, v = 0.004 > g^2 = 1e-4 so v shrinks
    p = torch.tensor([1.0, -2.0], dtype=F64, requires_grad=True)
    opt = Yogi([p], lr=lr)
    for g in grads:
        p.grad = torch.tensor(g, dtype=F64)
        opt.step()
    torch.testing.assert_close(p.detach(), torch.tensor(expected, dtype=F64), rtol=1e-14, atol=1e-15)
    assert opt.state[p]["step"] == 3


@pytest.mark.parametrize("kwargs, expected", [
    (dict(lr=0.1), (-3.0674653, -0.22714589)),                          # torch_optimizer == optax
    (dict(lr=0.1, initial_accumulator=0.0), (-3.0672761, -0.22714297)),  # d2l's m0 = v0 = 0
])
def test_yogi_published_numbers(kwargs, expected):
    x, _ = run_2d(lambda ps: Yogi(ps, **kwargs))
    np.testing.assert_allclose(x.detach().numpy(), expected, rtol=1e-7)


def test_yogi_pure_update_does_not_mutate():
    g = torch.tensor([0.3, -0.7], dtype=F64)
    state = init_yogi_state(torch.zeros(2, dtype=F64))
    before = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in state.items()}
    delta, new = yogi_update(g, state, lr=0.01, beta1=0.9, beta2=0.999, eps=1e-3)
    assert new["step"] == 1 and state["step"] == 0
    torch.testing.assert_close(state["m"], before["m"])
    torch.testing.assert_close(state["v"], before["v"])
    # first step, g^2 >> v0: m_hat ~ g, v_hat ~ g^2, so delta ~ lr * sign(g) (up to eps, m0, v0)
    torch.testing.assert_close(delta, 0.01 * torch.sign(g), rtol=2e-2, atol=0)


@pytest.mark.parametrize("kwargs, name", [
    (dict(lr=-0.1), "lr"), (dict(lr=float("nan")), "lr"), (dict(lr=float("inf")), "lr"),
    (dict(betas=(1.0, 0.999)), "betas[0]"), (dict(betas=(0.9, -0.1)), "betas[1]"),
    (dict(eps=0.0), "eps"), (dict(initial_accumulator=-1e-6), "initial_accumulator"),
    (dict(weight_decay=-0.1), "weight_decay"),
])
def test_yogi_validation(kwargs, name):
    with pytest.raises(ValueError, match="^" + re.escape(name) + " must be a finite number"):
        Yogi([torch.zeros(1, requires_grad=True)], **kwargs)


def test_yogi_validation_types():
    with pytest.raises(TypeError, match="lr"):
        Yogi([torch.zeros(1, requires_grad=True)], lr="0.1")
    with pytest.raises(TypeError, match="betas"):
        Yogi([torch.zeros(1, requires_grad=True)], betas=0.9)


def test_yogi_state_dict_round_trip_continues_like_uninterrupted():
    gen = torch.Generator().manual_seed(0)
    grads = [torch.randn(3, 2, dtype=F64, generator=gen) for _ in range(10)]
    w0 = torch.randn(3, 2, dtype=F64, generator=gen)

    a = w0.clone().requires_grad_()
    opt_a = Yogi([a], lr=0.05, weight_decay=0.01)
    for g in grads:
        a.grad = g.clone()
        opt_a.step()

    b = w0.clone().requires_grad_()
    opt_b = Yogi([b], lr=0.05, weight_decay=0.01)
    for g in grads[:5]:
        b.grad = g.clone()
        opt_b.step()
    buf = io.BytesIO()
    torch.save({"w": b.detach().clone(), "opt": opt_b.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf)
    c = ckpt["w"].clone().requires_grad_()
    opt_c = Yogi([c])  # hyperparameters come back from the state dict
    opt_c.load_state_dict(ckpt["opt"])
    assert opt_c.param_groups[0]["lr"] == 0.05 and opt_c.state[c]["step"] == 5
    for g in grads[5:]:
        c.grad = g.clone()
        opt_c.step()
    torch.testing.assert_close(c, a, rtol=0, atol=0)


def test_yogi_skips_params_without_grad_and_leaves_grad_alone():
    p = torch.tensor([1.0, 2.0], dtype=F64, requires_grad=True)
    q = torch.tensor([3.0], dtype=F64, requires_grad=True)
    opt = Yogi([p, q], lr=0.1, weight_decay=0.5)
    g = torch.tensor([0.5, -0.5], dtype=F64)
    p.grad = g.clone()
    opt.step()
    assert q.grad is None and len(opt.state[q]) == 0
    assert q.item() == 3.0  # weight decay must not move a param without gradient
    torch.testing.assert_close(p.grad, g, rtol=0, atol=0)


def test_yogi_coupled_weight_decay_is_l2_in_the_gradient():
    lam, w0 = 0.3, torch.tensor([1.5, -0.5], dtype=F64)
    gen = torch.Generator().manual_seed(1)
    a, b = w0.clone().requires_grad_(), w0.clone().requires_grad_()
    opt_a, opt_b = Yogi([a], lr=0.1, weight_decay=lam), Yogi([b], lr=0.1)
    for _ in range(5):
        g = torch.randn(2, dtype=F64, generator=gen)
        a.grad = g.clone()
        b.grad = g + lam * b.detach()
        opt_a.step()
        opt_b.step()
    torch.testing.assert_close(a, b, rtol=1e-14, atol=1e-15)


def test_yogi_param_groups_with_different_lr():
    gen = torch.Generator().manual_seed(2)
    w1, w2 = torch.randn(2, dtype=F64, generator=gen), torch.randn(3, dtype=F64, generator=gen)
    a1, a2 = w1.clone().requires_grad_(), w2.clone().requires_grad_()
    b1, b2 = w1.clone().requires_grad_(), w2.clone().requires_grad_()
    opt = Yogi([{"params": [a1]}, {"params": [a2], "lr": 0.2}], lr=0.01)
    ref1, ref2 = Yogi([b1], lr=0.01), Yogi([b2], lr=0.2)
    for _ in range(4):
        g1, g2 = torch.randn(2, dtype=F64, generator=gen), torch.randn(3, dtype=F64, generator=gen)
        a1.grad, b1.grad, a2.grad, b2.grad = g1.clone(), g1.clone(), g2.clone(), g2.clone()
        opt.step(); ref1.step(); ref2.step()
    torch.testing.assert_close(a1, b1, rtol=0, atol=0)
    torch.testing.assert_close(a2, b2, rtol=0, atol=0)
    assert (a2.detach() - w2).abs().max() > 10 * (a1.detach() - w1).abs().max()  # lr 0.2 vs 0.01


def test_yogi_closure_returns_loss():
    x = torch.tensor([1.0, -1.0], dtype=F64, requires_grad=True)
    opt = Yogi([x], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (x ** 2).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 2.0 and x.grad is not None
    assert opt.step() is None


def test_yogi_rejects_sparse_gradients():
    p = torch.zeros(3, dtype=F64, requires_grad=True)
    p.grad = torch.sparse_coo_tensor([[0]], torch.tensor([1.0], dtype=F64), (3,),
                                     check_invariants=True)
    with pytest.raises(RuntimeError, match="sparse"):
        Yogi([p]).step()


# ------------------------------------------------------------------ schedule-free

def sf_reference(grad_fn, theta0, steps, *, lr, beta, warmup=0, r=0.0, power=2.0, wd=0.0,
                 adam=None):
    """Explicit x/y/z form (schedulefree's *Reference classes) in numpy; returns ys and x."""
    x, y, z = theta0.copy(), theta0.copy(), theta0.copy()
    v = np.zeros_like(theta0)
    lr_max, wsum, ys = 0.0, 0.0, []
    for k in range(steps):
        gamma = lr * min(1.0, (k + 1) / warmup) if warmup else lr
        lr_max = max(lr_max, gamma)
        w = (k + 1) ** r * lr_max ** power
        wsum += w
        c = w / wsum
        g = grad_fn(y, k)
        if adam is None:
            d = g + wd * y
        else:
            beta2, eps = adam
            v = beta2 * v + (1 - beta2) * g * g
            d = g / (np.sqrt(v / (1 - beta2 ** (k + 1))) + eps) + wd * y
        z = z - gamma * d
        x = (1 - c) * x + c * z
        y = (1 - beta) * z + beta * x
        ys.append(y)
    return ys, x


def make_noisy_quadratic(seed, dim=4, steps=12):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(dim, dim))
    hess = a @ a.T / dim + 0.1 * np.eye(dim)
    noise = rng.normal(size=(steps, dim))
    return (lambda y, k: hess @ y - 1.0 + 0.3 * noise[k]), rng.normal(size=dim)


SF_CASES = [dict(), dict(warmup=3), dict(wd=0.1), dict(r=1.0), dict(power=0.0),
            dict(warmup=4, wd=0.05, r=0.5, power=1.0)]


@pytest.mark.parametrize("case", SF_CASES)
@pytest.mark.parametrize("kind", ["sgd", "adamw"])
def test_schedule_free_matches_xyz_reference_each_step(kind, case):
    steps = 12
    grad_fn, theta0 = make_noisy_quadratic(seed=3, steps=steps)
    kw = dict(warmup_steps=case.get("warmup", 0), r=case.get("r", 0.0),
              weight_lr_power=case.get("power", 2.0), weight_decay=case.get("wd", 0.0))
    if kind == "sgd":
        lr, beta, adam = 0.2, 0.8, None
        make = lambda ps: ScheduleFreeSGD(ps, lr=lr, momentum=beta, **kw)
    else:
        lr, beta, adam = 0.05, 0.85, (0.99, 1e-8)
        make = lambda ps: ScheduleFreeAdamW(ps, lr=lr, betas=(beta, 0.99), eps=1e-8, **kw)
    ys, x_ref = sf_reference(grad_fn, theta0, steps, lr=lr, beta=beta, adam=adam,
                             warmup=case.get("warmup", 0), r=case.get("r", 0.0),
                             power=case.get("power", 2.0), wd=case.get("wd", 0.0))
    p = torch.tensor(theta0, dtype=F64, requires_grad=True)
    opt = make([p])
    opt.train()
    for k in range(steps):
        p.grad = torch.from_numpy(grad_fn(p.detach().numpy(), k))
        opt.step()
        np.testing.assert_allclose(p.detach().numpy(), ys[k], rtol=1e-12, atol=1e-13)
    opt.eval()
    np.testing.assert_allclose(p.detach().numpy(), x_ref, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("make, y_exp, x_exp", [
    (lambda ps: ScheduleFreeSGD(ps, lr=0.1), (-3.9469792, 0.11415596), (-4.0283997, 0.12524509)),
    (lambda ps: ScheduleFreeSGD(ps, lr=0.1, warmup_steps=5),
     (-4.0138478, 0.10176507), (-4.0839357, 0.10650398)),
    (lambda ps: ScheduleFreeSGD(ps, lr=0.1, r=1.0),
     (-3.7191202, 0.014911177), (-3.7702988, 0.023721996)),
    (lambda ps: ScheduleFreeSGD(ps, lr=0.1, weight_decay=0.1),
     (-3.4849617, 0.10732119), (-3.597827, 0.12021772)),
    (lambda ps: ScheduleFreeAdamW(ps, lr=0.1), (-3.9022355, -0.98189363), (-3.9899289, -1.0568692)),
    (lambda ps: ScheduleFreeAdamW(ps, lr=0.1, warmup_steps=5),
     (-3.979953, -1.0582766), (-4.0546322, -1.1220333)),
    (lambda ps: ScheduleFreeAdamW(ps, lr=0.1, weight_decay=0.1),
     (-3.4229178, -0.8324621), (-3.5441734, -0.91455435)),
])
def test_schedule_free_published_numbers(make, y_exp, x_exp):
    x, opt = run_2d(make, train=True)
    np.testing.assert_allclose(x.detach().numpy(), y_exp, rtol=1e-7)
    opt.eval()
    np.testing.assert_allclose(x.detach().numpy(), x_exp, rtol=1e-7)


@pytest.mark.parametrize("cls", [ScheduleFreeSGD, ScheduleFreeAdamW])
def test_eval_train_round_trip_is_exact(cls):
    gen = torch.Generator().manual_seed(4)
    p = torch.randn(5, 3, dtype=F64, generator=gen).requires_grad_()
    opt = cls([p], lr=0.05)
    opt.train()
    for _ in range(7):
        p.grad = torch.randn(5, 3, dtype=F64, generator=gen)
        opt.step()
    y = p.detach().clone()
    z = opt.state[p]["z"].clone()
    beta = 0.9
    opt.eval()
    torch.testing.assert_close(p.detach(), (y - (1 - beta) * z) / beta, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(p.detach(), y)
    opt.eval()  # idempotent
    opt.train()
    torch.testing.assert_close(p.detach(), y, rtol=1e-12, atol=1e-12)
    opt.train()  # idempotent
    torch.testing.assert_close(p.detach(), y, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", [ScheduleFreeSGD, ScheduleFreeAdamW])
def test_step_in_eval_mode_raises_with_instructions(cls):
    p = torch.zeros(2, dtype=F64, requires_grad=True)
    p.grad = torch.ones(2, dtype=F64)
    opt = cls([p])
    assert not opt.train_mode
    with pytest.raises(RuntimeError, match=r"call optimizer\.train\(\)"):
        opt.step()
    opt.train()
    opt.step()
    opt.eval()
    with pytest.raises(RuntimeError, match="eval mode"):
        opt.step()


def test_evaluating_context_gives_x_and_restores_mode():
    p = torch.tensor([1.0, -1.0], dtype=F64, requires_grad=True)
    opt = ScheduleFreeSGD([p], lr=0.5)
    opt.train()
    for _ in range(3):
        p.grad = quad_grad(p.detach())
        opt.step()
    y = p.detach().clone()
    x_expected = (y - 0.1 * opt.state[p]["z"]) / 0.9
    with evaluating(opt) as same:
        assert same is opt and not opt.train_mode
        torch.testing.assert_close(p.detach(), x_expected, rtol=1e-12, atol=1e-12)
    assert opt.train_mode
    torch.testing.assert_close(p.detach(), y, rtol=1e-12, atol=1e-12)
    opt.eval()
    with evaluating(opt):
        pass
    assert not opt.train_mode  # was in eval mode before the block: stays there


@pytest.mark.parametrize("make", [lambda ps: ScheduleFreeSGD(ps, lr=0.5),
                                  lambda ps: ScheduleFreeAdamW(ps, lr=0.2)])
def test_forgetting_eval_evaluates_the_wrong_point(make):
    # Noisy least squares, 32 independent minibatch runs at once (one row of W each; both
    # optimizers act row by row). Gradients are taken at y, which jitters with the minibatch
    # noise; x averages it out. Averaged over the runs, the excess loss at x is clearly lower
    # (ratio 0.4-0.8 over 20 seeds checked while writing this test; seed fixed here).
    gen = torch.Generator().manual_seed(0)
    n, d, runs, batch = 256, 5, 32, 4
    A = torch.randn(n, d, dtype=F64, generator=gen)
    b = A @ torch.randn(d, dtype=F64, generator=gen) + torch.randn(n, dtype=F64, generator=gen)
    best = 0.5 * ((A @ torch.linalg.lstsq(A, b).solution - b) ** 2).mean()
    excess = lambda W: (0.5 * ((W @ A.T - b) ** 2).mean(1) - best).mean().item()
    W = torch.zeros(runs, d, dtype=F64, requires_grad=True)
    opt = make([W])
    opt.train()
    for _ in range(200):
        idx = torch.randint(0, n, (runs, batch), generator=gen)
        opt.zero_grad()
        residual = torch.einsum("rbd,rd->rb", A[idx], W) - b[idx]
        (0.5 * (residual ** 2).mean(1).sum()).backward()
        opt.step()
    with torch.no_grad():
        loss_y = excess(W)            # what you get if you forget opt.eval()
        with evaluating(opt):
            loss_x = excess(W)        # the point schedule-free's guarantees are about
    assert loss_x < 0.9 * loss_y


@pytest.mark.parametrize("cls", [ScheduleFreeSGD, ScheduleFreeAdamW])
def test_schedule_free_state_dict_round_trip(cls):
    gen = torch.Generator().manual_seed(5)
    grads = [torch.randn(4, dtype=F64, generator=gen) for _ in range(10)]
    w0 = torch.randn(4, dtype=F64, generator=gen)
    kw = dict(lr=0.05, warmup_steps=3, weight_decay=0.01)
    a = w0.clone().requires_grad_()
    opt_a = cls([a], **kw)
    opt_a.train()
    for g in grads:
        a.grad = g.clone()
        opt_a.step()

    b = w0.clone().requires_grad_()
    opt_b = cls([b], **kw)
    opt_b.train()
    for g in grads[:5]:
        b.grad = g.clone()
        opt_b.step()
    opt_b.eval()  # checkpoint at x, as schedule-free asks
    buf = io.BytesIO()
    torch.save({"w": b.detach().clone(), "opt": opt_b.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf)
    c = ckpt["w"].clone().requires_grad_()
    opt_c = cls([c])
    opt_c.load_state_dict(ckpt["opt"])
    assert opt_c.param_groups[0]["k"] == 5 and not opt_c.train_mode
    opt_c.train()
    for g in grads[5:]:
        c.grad = g.clone()
        opt_c.step()
    torch.testing.assert_close(c, a, rtol=1e-12, atol=1e-12)


def test_schedule_free_leaves_grad_and_gradless_params_alone():
    p = torch.tensor([1.0, 2.0], dtype=F64, requires_grad=True)
    q = torch.tensor([3.0], dtype=F64, requires_grad=True)
    opt = ScheduleFreeAdamW([p, q], lr=0.1, weight_decay=0.5)
    opt.train()
    g = torch.tensor([0.5, -0.5], dtype=F64)
    p.grad = g.clone()
    opt.step()
    torch.testing.assert_close(p.grad, g, rtol=0, atol=0)  # the original divides it in place
    assert len(opt.state[q]) == 0 and q.item() == 3.0
    opt.eval()
    assert q.item() == 3.0


def test_schedule_free_warmup_lr_is_never_zero():
    p = torch.zeros(1, dtype=F64, requires_grad=True)
    opt = ScheduleFreeSGD([p], lr=0.4, warmup_steps=4)
    opt.train()
    used = []
    for _ in range(6):
        p.grad = torch.ones(1, dtype=F64)
        opt.step()
        used.append(opt.param_groups[0]["scheduled_lr"])
    np.testing.assert_allclose(used, [0.1, 0.2, 0.3, 0.4, 0.4, 0.4], rtol=1e-15)


@pytest.mark.parametrize("cls, kwargs, name", [
    (ScheduleFreeSGD, dict(lr=-1.0), "lr"),
    (ScheduleFreeSGD, dict(momentum=0.0), "momentum"),
    (ScheduleFreeSGD, dict(momentum=1.0), "momentum"),
    (ScheduleFreeSGD, dict(weight_decay=-0.1), "weight_decay"),
    (ScheduleFreeSGD, dict(warmup_steps=-1), "warmup_steps"),
    (ScheduleFreeSGD, dict(r=-1.0), "r"),
    (ScheduleFreeSGD, dict(weight_lr_power=float("nan")), "weight_lr_power"),
    (ScheduleFreeAdamW, dict(betas=(0.0, 0.999)), r"betas\[0\]"),
    (ScheduleFreeAdamW, dict(betas=(0.9, 1.0)), r"betas\[1\]"),
    (ScheduleFreeAdamW, dict(eps=-1e-8), "eps"),
])
def test_schedule_free_validation(cls, kwargs, name):
    with pytest.raises(ValueError, match=r"^" + name + " must be"):
        cls([torch.zeros(1, requires_grad=True)], **kwargs)


@pytest.mark.parametrize("cls", [ScheduleFreeSGD, ScheduleFreeAdamW])
def test_schedule_free_warmup_steps_must_be_int(cls):
    with pytest.raises(TypeError, match="warmup_steps must be an int"):
        cls([torch.zeros(1, requires_grad=True)], warmup_steps=2.5)


def test_optim_module_reexports_schedule_free():
    from d2lopt import optim
    assert optim.ScheduleFreeAdamW is ScheduleFreeAdamW and optim.evaluating is evaluating


@pytest.mark.parametrize("cls", [ScheduleFreeSGD, ScheduleFreeAdamW])
def test_schedule_free_weights_use_the_running_max_lr_when_the_lr_drops(cls):
    # The average weights w_k = (max_{j<=k} gamma_j)^2 (r = 0): after an lr cut from 0.2 to 0.05
    # the max stays 0.2, so all three weights are equal and x is the plain mean of z_1..z_3.
    # SGD with g = 1 injected (d = g): z = 0 - 0.2, -0.4, -0.45, so x = -0.35 by hand. (With the
    # current lr instead of the max, the last weight would be 16x smaller: x = -0.3045.)
    # AdamW with a constant g has d = g / (|g| + eps) = 1 up to eps: the same z and x.
    p = torch.zeros(1, dtype=F64, requires_grad=True)
    opt = cls([p], lr=0.2)
    opt.train()
    for lr in [0.2, 0.2, 0.05]:
        opt.param_groups[0]["lr"] = lr
        p.grad = torch.ones(1, dtype=F64)
        opt.step()
    assert opt.param_groups[0]["lr_max"] == 0.2
    opt.eval()
    torch.testing.assert_close(p.detach(), torch.tensor([-0.35], dtype=F64), rtol=0, atol=1e-7)


def test_is_schedule_free_is_one_duck_typed_rule():
    from d2lopt import optim, schedulefree
    assert optim.is_schedule_free is schedulefree.is_schedule_free
    w = [torch.zeros(2, requires_grad=True)]
    assert all(optim.is_schedule_free(cls(w)) for cls in (ScheduleFreeSGD, ScheduleFreeAdamW))
    assert not any(optim.is_schedule_free(o) for o in (torch.optim.SGD(w, lr=0.1), optim.Yogi(w)))

    class Elsewhere(torch.optim.SGD):        # e.g. facebookresearch/schedule_free's optimizers
        train_mode = False

        def train(self):
            self.train_mode = True

        def eval(self):
            self.train_mode = False
    assert optim.is_schedule_free(Elsewhere(w, lr=0.1))
