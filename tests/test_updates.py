"""Tests of d2lopt.updates, the shared update cores.

Each core with its defaults is pinned in float64 to its torch.optim twin, with the same
injected gradients, over 50 steps. Yogi and the book's variants are pinned to numbers recorded
once from torch 2.13, torch_optimizer 0.3.0 / optax 0.2.8 (Yogi) and transcriptions of the
book's and tf-addons' rules (they are not dependencies of the tests), and every switch to a
first step computed here by hand with plain floats.
"""
import math

import numpy as np
import pytest
import torch

from d2lopt import updates

F64 = torch.float64
STEPS = 50
G1 = (2.0, -0.5, 1e-4)        # a first gradient: large, small, and one where eps dominates


def make_run(seed=0, shape=(4, 3)):
    gen = torch.Generator().manual_seed(seed)
    start = torch.randn(shape, dtype=F64, generator=gen)
    return start, [torch.randn(shape, dtype=F64, generator=gen) for _ in range(STEPS)]


def torch_run(cls, kw, start, grads):
    p = start.clone().requires_grad_()
    opt = cls([p], **kw)
    for g in grads:
        p.grad = g.clone()
        opt.step()
    return p.detach()


def core_run(core, states, start, grads, *, counter=False, **kw):
    """theta_t = theta_{t-1} - delta_t with ``core(g, *states[, t], **kw)``; states are the
    tensors (or None) the core takes after g, in order."""
    p = start.clone()
    for t, g in enumerate(grads, start=1):
        delta, *new = core(g, *states, *((t,) if counter else ()), **kw)
        states, p = new[:len(states)], p - delta
    return p


def zeros(start, n):
    return [torch.zeros_like(start) for _ in range(n)]


# (torch class, its keywords, core, number of state tensors, whether it takes t, core keywords)
PINS = [
    (torch.optim.SGD, dict(lr=0.05, momentum=0.9), updates.sgd_momentum, None, False,
     dict(lr=0.05, momentum=0.9)),
    (torch.optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.3), updates.sgd_momentum, None,
     False, dict(lr=0.05, momentum=0.9, dampening=0.3)),
    (torch.optim.SGD, dict(lr=0.05, momentum=0.8, nesterov=True), updates.sgd_momentum, None,
     False, dict(lr=0.05, momentum=0.8, nesterov=True)),
    (torch.optim.Adagrad, dict(lr=0.1), updates.adagrad, 1, False, dict(lr=0.1)),
    (torch.optim.Adagrad, dict(lr=0.1, eps=1e-3), updates.adagrad, 1, False, dict(lr=0.1, eps=1e-3)),
    (torch.optim.RMSprop, dict(lr=0.01), updates.rmsprop, 1, False, dict(lr=0.01)),
    (torch.optim.RMSprop, dict(lr=0.01, alpha=0.9, eps=1e-3), updates.rmsprop, 1, False,
     dict(lr=0.01, alpha=0.9, eps=1e-3)),
    (torch.optim.Adadelta, dict(), updates.adadelta, 2, False, dict()),
    (torch.optim.Adadelta, dict(lr=0.5, rho=0.95, eps=1e-3), updates.adadelta, 2, False,
     dict(lr=0.5, rho=0.95, eps=1e-3)),
    (torch.optim.Adam, dict(lr=0.01), updates.adam, 2, True, dict(lr=0.01)),
    (torch.optim.Adam, dict(lr=0.01, betas=(0.5, 0.9), eps=1e-3), updates.adam, 2, True,
     dict(lr=0.01, beta1=0.5, beta2=0.9, eps=1e-3)),
]


@pytest.mark.parametrize("cls, kw, core, n, counter, core_kw", PINS,
                         ids=[f"{pin[0].__name__}-{i}" for i, pin in enumerate(PINS)])
def test_core_matches_torch_optim(cls, kw, core, n, counter, core_kw):
    start, grads = make_run()
    expected = torch_run(cls, kw, start, grads)
    states = [None] if n is None else zeros(start, n)
    got = core_run(core, states, start, grads, counter=counter, **core_kw)
    assert (got - expected).abs().max() <= 1e-12
    assert (got - start).abs().max() > 1e-2          # and it moved


@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.9, 0.9)])
def test_adam_amsgrad_matches_torch_optim(betas):
    start, grads = make_run(seed=1)
    grads = [g * (3.0 if t % 10 == 0 else 0.3) for t, g in enumerate(grads)]   # v must fall
    expected = torch_run(torch.optim.Adam, dict(lr=0.01, betas=betas, amsgrad=True), start, grads)
    plain = torch_run(torch.optim.Adam, dict(lr=0.01, betas=betas), start, grads)
    p, m, v, v_max = start.clone(), *zeros(start, 3)
    for t, g in enumerate(grads, start=1):
        delta, m, v, v_max = updates.adam(g, m, v, t, lr=0.01, beta1=betas[0], beta2=betas[1],
                                          v_max=v_max)
        p = p - delta
    assert (p - expected).abs().max() <= 1e-12
    assert (plain - expected).abs().max() > 1e-4      # the running max made a difference
    assert torch.equal(v_max, torch.maximum(v_max, v)) and (v_max > v).any()


# ----------------------------------------------------------------- the 2-D problem of the book

def quad_run(step, steps=20):
    """20 steps on f = 0.1 x1^2 + 2 x2^2 from (-5, -2); ``step(g, t)`` returns delta."""
    x = torch.tensor([-5.0, -2.0], dtype=F64)
    for t in range(1, steps + 1):
        x = x - step(torch.stack([0.2 * x[0], 4.0 * x[1]]), t)
    return x.numpy()


def adam_2d(m0=0.0, v0=0.0, **kw):
    state = {"m": torch.full((2,), m0, dtype=F64), "v": torch.full((2,), v0, dtype=F64)}

    def step(g, t):
        delta, state["m"], state["v"], _ = updates.adam(g, state["m"], state["v"], t, **kw)
        return delta
    return step


def one_state_2d(core, **kw):
    state = {"s": torch.zeros(2, dtype=F64)}

    def step(g, t):
        delta, state["s"] = core(g, state["s"], **kw)
        return delta
    return step


@pytest.mark.parametrize("step, expected", [
    # Yogi: torch_optimizer.Yogi(lr=0.1) == optax.yogi(0.1): m0 = v0 = 1e-6
    (adam_2d(1e-6, 1e-6, lr=0.1, eps=1e-3, second_moment="yogi"), (-3.0674653, -0.22714589)),
    # the book's yogi: m0 = v0 = 0
    (adam_2d(lr=0.1, eps=1e-3, second_moment="yogi"), (-3.0672761, -0.22714297)),
    # tf-addons' Yogi: m0 = 0, v0 = 1e-6, eps added to the uncorrected sqrt(v)
    (adam_2d(0.0, 1e-6, lr=0.1, eps=1e-3, second_moment="yogi", correct_step=True),
     (-3.0892166, -0.22950498)),
    # the paper's Algorithm 2 read literally: no bias correction
    (adam_2d(lr=0.1, eps=1e-3, second_moment="yogi", bias_correction=False), (1.5858, -0.61280173)),
    (adam_2d(lr=0.1), (-3.0603389, -0.22245243)),                           # torch Adam lr=0.1
    (adam_2d(lr=0.1, eps=1e-6), (-3.0603409, -0.22245266)),                 # the book's adam
    (adam_2d(lr=0.1, bias_correction=False), (1.574551, -0.61546697)),     # the bug: no correction
    (one_state_2d(updates.adagrad, lr=0.4), (-2.3825624, -0.15859055)),     # torch Adagrad
    (one_state_2d(updates.adagrad, lr=0.4, eps=1e-6, eps_inside=True),      # the book's adagrad
     (-2.3825628, -0.15859055)),
    (one_state_2d(updates.rmsprop, lr=0.4, alpha=0.9), (-0.010597978, 1.0362089e-14)),
    (one_state_2d(updates.rmsprop, lr=0.4, alpha=0.9, eps=1e-6, eps_inside=True),  # the book's
     (-0.010598672, 1.0362121e-14)),
], ids=["yogi", "yogi-book", "yogi-tf-addons", "yogi-paper", "adam", "adam-book", "adam-no-bias",
        "adagrad", "adagrad-book", "rmsprop", "rmsprop-book"])
def test_recorded_numbers_on_the_2d_problem(step, expected):
    np.testing.assert_allclose(quad_run(step), expected, rtol=1e-7, atol=1e-20)


def test_adam_step_counter_off_by_one_is_the_recorded_bug():
    step = adam_2d(lr=0.1)
    np.testing.assert_allclose(quad_run(lambda g, t: step(g, t + 1)), (-3.1186299, -0.26741704),
                               rtol=1e-7)


# ----------------------------------------------------------------- first steps by hand

def first_adam(**kw):
    g = torch.tensor(G1, dtype=F64)
    delta, m, v, _ = updates.adam(g, torch.zeros(3, dtype=F64), torch.zeros(3, dtype=F64), 1,
                                  lr=0.1, beta1=0.9, beta2=0.99, eps=1e-3, **kw)
    return delta.tolist(), m.tolist(), v.tolist()


def by_hand(f):
    return [f(g) for g in G1]


@pytest.mark.parametrize("kw, expected", [
    # m_hat = g, v_hat = g^2 on the first step
    (dict(), lambda g: 0.1 * g / (abs(g) + 1e-3)),
    (dict(eps_inside=True), lambda g: 0.1 * g / math.sqrt(g * g + 1e-3)),
    (dict(bias_correction=False), lambda g: 0.1 * 0.1 * g / (math.sqrt(0.01) * abs(g) + 1e-3)),
    (dict(bias_correction=(True, False)), lambda g: 0.1 * g / (math.sqrt(0.01) * abs(g) + 1e-3)),
    (dict(bias_correction=(False, True)), lambda g: 0.1 * 0.1 * g / (abs(g) + 1e-3)),
    (dict(correct_step=True),          # eps added to sqrt(v) = 0.1 |g|, before the correction
     lambda g: 0.1 * math.sqrt(0.01) / 0.1 * (0.1 * g) / (math.sqrt(0.01) * abs(g) + 1e-3)),
    (dict(correct_step=True, bias_correction=(True, False)),
     lambda g: 0.1 / 0.1 * (0.1 * g) / (math.sqrt(0.01) * abs(g) + 1e-3)),
    (dict(average=False), lambda g: 0.1 * (g / 0.1) / (math.sqrt(g * g / 0.01) + 1e-3)),
    (dict(average=(False, True)), lambda g: 0.1 * (g / 0.1) / (abs(g) + 1e-3)),
    (dict(average=(True, False)), lambda g: 0.1 * g / (math.sqrt(g * g / 0.01) + 1e-3)),
    (dict(second_moment="yogi"), lambda g: 0.1 * g / (abs(g) + 1e-3)),   # from v = 0: Adam's
], ids=lambda x: str(x) if isinstance(x, dict) else "by-hand")
def test_adam_switches_first_step_by_hand(kw, expected):
    delta, _, _ = first_adam(**kw)
    np.testing.assert_allclose(delta, by_hand(expected), rtol=1e-13, atol=0)


def test_adam_moments_by_hand():
    _, m, v = first_adam()
    np.testing.assert_allclose(m, by_hand(lambda g: 0.1 * g), rtol=1e-15)
    np.testing.assert_allclose(v, by_hand(lambda g: 0.01 * g * g), rtol=1e-15)
    _, m, v = first_adam(average=False)
    assert m == list(G1) and v == by_hand(lambda g: g * g)


def test_yogi_second_moment_moves_by_a_fixed_step():
    # v = 0.04 against g^2 = 0.01 (v shrinks) and 0.25 (v grows): v -/+ (1 - beta2) g^2;
    # Adam's v would move a fraction (1 - beta2) of the gap instead.
    g, v = torch.tensor([0.1, 0.5], dtype=F64), torch.full((2,), 0.04, dtype=F64)
    m = torch.zeros(2, dtype=F64)
    _, _, v_yogi, _ = updates.adam(g, m, v, 3, beta2=0.9, second_moment="yogi")
    _, _, v_adam, _ = updates.adam(g, m, v, 3, beta2=0.9)
    np.testing.assert_allclose(v_yogi.tolist(), [0.04 - 0.1 * 0.01, 0.04 + 0.1 * 0.25], rtol=1e-15)
    np.testing.assert_allclose(v_adam.tolist(), [0.9 * 0.04 + 0.1 * 0.01, 0.9 * 0.04 + 0.1 * 0.25],
                               rtol=1e-15)
    _, _, v_sum, _ = updates.adam(g, m, v, 3, beta2=0.9, second_moment="yogi", average=False)
    np.testing.assert_allclose(v_sum.tolist(), [0.04 - 0.01, 0.04 + 0.25], rtol=1e-15)


def test_adam_later_step_by_hand():
    # t = 3 with given moments: both corrections, with the powers of step 3
    g, m, v = (torch.tensor([x], dtype=F64) for x in (0.5, 0.2, 0.3))
    delta, m3, v3, _ = updates.adam(g, m, v, 3, lr=0.1, beta1=0.8, beta2=0.9, eps=1e-2)
    m_, v_ = 0.8 * 0.2 + 0.2 * 0.5, 0.9 * 0.3 + 0.1 * 0.25
    expected = 0.1 * (m_ / (1 - 0.8 ** 3)) / (math.sqrt(v_ / (1 - 0.9 ** 3)) + 1e-2)
    assert delta.item() == pytest.approx(expected, rel=1e-14)
    assert (m3.item(), v3.item()) == pytest.approx((m_, v_), rel=1e-15)
    assert updates.step_correction(0.8, 0.9, 3) == pytest.approx(
        math.sqrt(1 - 0.9 ** 3) / (1 - 0.8 ** 3), rel=1e-15)
    assert updates.debias(torch.tensor(0.2, dtype=F64), 0.8, 3).item() == pytest.approx(
        0.2 / (1 - 0.8 ** 3), rel=1e-15)


@pytest.mark.parametrize("kw, expected", [
    # from s0 = 0.5 (initial_accumulator_value): s = 0.5 + g^2
    (dict(), lambda g: 0.1 * g / (math.sqrt(0.5 + g * g) + 1e-3)),
    (dict(eps_inside=True), lambda g: 0.1 * g / math.sqrt(0.5 + g * g + 1e-3)),
    (dict(root=False), lambda g: 0.1 * g / (0.5 + g * g + 1e-3)),
], ids=lambda x: str(x) if isinstance(x, dict) else "by-hand")
def test_adagrad_first_step_by_hand(kw, expected):
    delta, s = updates.adagrad(torch.tensor(G1, dtype=F64), torch.full((3,), 0.5, dtype=F64),
                               lr=0.1, eps=1e-3, **kw)
    np.testing.assert_allclose(delta.tolist(), by_hand(expected), rtol=1e-13, atol=0)
    np.testing.assert_allclose(s.tolist(), by_hand(lambda g: 0.5 + g * g), rtol=1e-15)


@pytest.mark.parametrize("kw, expected", [
    # from s0 = 0: s = 0.1 g^2 (alpha = 0.9)
    (dict(), lambda g: 0.1 * g / (math.sqrt(0.1 * g * g) + 1e-3)),
    (dict(eps_inside=True), lambda g: 0.1 * g / math.sqrt(0.1 * g * g + 1e-3)),
    (dict(average=False), lambda g: 0.1 * g / (abs(g) + 1e-3)),
    (dict(root=False), lambda g: 0.1 * g / (0.1 * g * g + 1e-3)),
], ids=lambda x: str(x) if isinstance(x, dict) else "by-hand")
def test_rmsprop_first_step_by_hand(kw, expected):
    delta, _ = updates.rmsprop(torch.tensor(G1, dtype=F64), torch.zeros(3, dtype=F64), lr=0.1,
                               alpha=0.9, eps=1e-3, **kw)
    np.testing.assert_allclose(delta.tolist(), by_hand(expected), rtol=1e-13, atol=0)


@pytest.mark.parametrize("kw, expected", [
    # v = 0.1 g^2, d = sqrt(0 + eps) / sqrt(v + eps) g, u = 0.1 d^2, delta = lr d
    (dict(), lambda g: math.sqrt(1e-3) / math.sqrt(0.1 * g * g + 1e-3) * g),
    (dict(eps_inside=False), lambda g: 1e-3 / (math.sqrt(0.1 * g * g) + 1e-3) * g),
    (dict(average=(False, True)), lambda g: math.sqrt(1e-3) / math.sqrt(g * g + 1e-3) * g),
], ids=lambda x: str(x) if isinstance(x, dict) else "by-hand")
def test_adadelta_first_step_by_hand(kw, expected):
    g, z = torch.tensor(G1, dtype=F64), torch.zeros(3, dtype=F64)
    delta, v, u = updates.adadelta(g, z, z, lr=0.5, rho=0.9, eps=1e-3, **kw)
    d = by_hand(expected)
    np.testing.assert_allclose(delta.tolist(), [0.5 * x for x in d], rtol=1e-13, atol=0)
    np.testing.assert_allclose(u.tolist(), [0.1 * x * x for x in d], rtol=1e-13, atol=0)
    if "average" not in kw:           # without u's (1 - rho): u = d^2
        _, _, u_sum = updates.adadelta(g, z, z, lr=0.5, rho=0.9, eps=1e-3, average=(True, False),
                                       **kw)
        np.testing.assert_allclose(u_sum.tolist(), [x * x for x in d], rtol=1e-13, atol=0)


def test_sgd_momentum_by_hand():
    g1, g2 = torch.tensor([1.0, -2.0], dtype=F64), torch.tensor([0.5, 0.5], dtype=F64)
    delta, b = updates.sgd_momentum(g1, None, lr=0.1, momentum=0.9, dampening=0.5)
    assert b.tolist() == [1.0, -2.0] and delta.tolist() == pytest.approx([0.1, -0.2])
    assert b is not g1                       # a copy: the caller may reuse g's storage
    delta, b = updates.sgd_momentum(g2, b, lr=0.1, momentum=0.9, dampening=0.5)
    assert b.tolist() == pytest.approx([0.9 + 0.25, -1.8 + 0.25], rel=1e-15)
    delta, b = updates.sgd_momentum(g2, b, lr=0.1, momentum=0.9, nesterov=True)
    b_ = [0.9 * 1.15 + 0.5, 0.9 * -1.55 + 0.5]
    assert delta.tolist() == pytest.approx([0.1 * (0.5 + 0.9 * x) for x in b_], rel=1e-15)
    # the book's v = 0 start with tau = mu: the moving average, (1 - mu) g on the first step
    _, b = updates.sgd_momentum(g1, torch.zeros(2, dtype=F64), lr=0.1, momentum=0.9, dampening=0.9)
    assert b.tolist() == pytest.approx([0.1, -0.2], rel=1e-14)


# ----------------------------------------------------------------- shape of the cores

def test_ema_and_rms():
    a, x = torch.tensor([1.0], dtype=F64), torch.tensor([3.0], dtype=F64)
    assert updates.ema(a, x, 0.75).item() == 1.5
    assert updates.ema(a, x, 0.75, average=False).item() == 3.75
    s = torch.tensor([4.0], dtype=F64)
    assert updates.rms(s, 0.5).item() == 2.5
    assert updates.rms(s, 5.0, eps_inside=True).item() == 3.0
    assert updates.rms(s, 0.5, root=False).item() == 4.5


def test_beta1_zero_without_correction_is_rmsprop():
    start, grads = make_run(seed=2)
    rms_run = core_run(updates.rmsprop, zeros(start, 1), start, grads, lr=0.01, alpha=0.95)
    adam_run = core_run(updates.adam, zeros(start, 2), start, grads, counter=True, lr=0.01,
                        beta1=0.0, beta2=0.95, eps=1e-8, bias_correction=False)
    assert (rms_run - adam_run).abs().max() <= 1e-14


@pytest.mark.parametrize("core, n, counter", [
    (updates.sgd_momentum, 1, False), (updates.adagrad, 1, False), (updates.rmsprop, 1, False),
    (updates.adadelta, 2, False), (updates.adam, 3, True)])
def test_cores_are_pure(core, n, counter):
    gen = torch.Generator().manual_seed(3)
    g = torch.randn(5, dtype=F64, generator=gen)
    states = [torch.rand(5, dtype=F64, generator=gen) for _ in range(n)]
    before = [g.clone()] + [s.clone() for s in states]
    kw = dict(lr=0.1, momentum=0.9) if core is updates.sgd_momentum else dict(lr=0.1)
    if core is updates.adam:
        args, kw = (g, states[0], states[1], 2), dict(kw, v_max=states[2])
    else:
        args = (g, *states)
    out = core(*args, **kw)
    assert all(torch.equal(a, b) for a, b in zip([g] + states, before))
    assert all(o is None or not any(o is s for s in [g] + states) for o in out)


def test_unknown_second_moment_is_refused():
    z = torch.zeros(2, dtype=F64)
    with pytest.raises(ValueError, match="second_moment"):
        updates.adam(z, z, z, 1, second_moment="adamw")
