"""Tests of d2lopt.modern (Lion, Lamb) and d2lopt.prodigy (Prodigy).

Each optimizer is pinned in float64, with injected gradients, to its published implementation
(the `refs` extra: lion-pytorch 0.2.5, torch-optimizer 0.3.0, prodigyopt 1.1.2), and
independently to first steps computed here by hand with plain floats.
"""
import contextlib
import io
import math

import pytest
import torch

from d2lopt import modern, prodigy
from d2lopt.optim import Lamb, Lion, Prodigy

F64 = torch.float64
SHAPES = [(3, 4), (5,), (2, 3, 2)]
STEPS = 60


def make_run(shapes=SHAPES, steps=STEPS, seed=0):
    gen = torch.Generator().manual_seed(seed)
    start = [torch.randn(s, dtype=F64, generator=gen) for s in shapes]
    grads = [[0.3 * torch.randn(s, dtype=F64, generator=gen) for s in shapes] for _ in range(steps)]
    return start, grads


def run(make_opt, start, grads, groups=None):
    """Params after ``len(grads)`` steps of the optimizer ``make_opt`` builds on copies of
    ``start``, on f(p) = ||p - 1||^2 / 2 with the noise ``grads[t]`` added to its gradient
    (None leaves a grad unset); ``groups``: [(indices, settings)]."""
    ps = [p.clone().requires_grad_() for p in start]
    arg = ps if groups is None else [dict(params=[ps[i] for i in idx], **kw) for idx, kw in groups]
    with contextlib.redirect_stdout(io.StringIO()):  # prodigyopt prints on weight decay
        opt = make_opt(arg)
    for step in grads:
        for p, g in zip(ps, step):
            p.grad = None if g is None else p.detach() - 1 + g
        opt.step()
    return [p.detach() for p in ps], opt


def gap(a, b):
    return max((x - y).abs().max().item() for x, y in zip(a, b))


def reference(name):
    module = pytest.importorskip(name, reason="the `refs` extra: pip install -e '.[refs]'")
    return {"lion_pytorch": "Lion", "torch_optimizer": "Lamb", "prodigyopt": "Prodigy"}[name], module


CASES = [  # (ours, reference package, settings, groups)
    (Lion, "lion_pytorch", dict(lr=1e-2), None),
    (Lion, "lion_pytorch", dict(lr=1e-2, betas=(0.8, 0.95), weight_decay=0.5), None),
    (Lion, "lion_pytorch", dict(lr=1e-2), [([0], dict(weight_decay=1.0)), ([1, 2], dict(lr=3e-2, betas=(0.5, 0.9)))]),
    (Lamb, "torch_optimizer", dict(lr=1e-2), None),
    (Lamb, "torch_optimizer", dict(lr=1e-2, weight_decay=0.1, eps=1e-3), None),
    (Lamb, "torch_optimizer", dict(lr=1e-2, weight_decay=0.1, debias=True, clamp_value=1.0), None),
    (Lamb, "torch_optimizer", dict(lr=1e-2), [([0], dict(weight_decay=0.3)), ([1, 2], dict(lr=5e-2, betas=(0.5, 0.9)))]),
    (Prodigy, "prodigyopt", dict(), None),
    (Prodigy, "prodigyopt", dict(weight_decay=0.1, d_coef=2.0, growth_rate=1.05, beta3=0.9), None),
    (Prodigy, "prodigyopt", dict(weight_decay=0.1, decouple=False, betas=(0.0, 0.99)), None),
    (Prodigy, "prodigyopt", dict(lr=0.5), [([0, 1], dict(weight_decay=0.1, eps=1e-6)), ([2], dict(lr=0.0))]),
]


@pytest.mark.parametrize("ours, package, kw, groups", CASES)
def test_matches_reference_implementation(ours, package, kw, groups):
    name, module = reference(package)
    start, grads = make_run()
    expected, ref = run(lambda a: getattr(module, name)(a, **kw), start, grads, groups)
    got, opt = run(lambda a: ours(a, **kw), start, grads, groups)
    assert gap(got, expected) <= 1e-12
    assert gap(got, start) > 1e-3  # and it moved
    if ours is Prodigy:  # the estimate itself, which grew from d0 = 1e-6
        assert opt.param_groups[0]["d"] == pytest.approx(ref.param_groups[0]["d"], rel=1e-12)
        assert opt.param_groups[0]["d"] > 10 * 1e-6


def test_grad_none_is_skipped_like_the_reference():
    start, grads = make_run()
    for step in grads:
        step[1] = None
    for ours, package in [(Lion, "lion_pytorch"), (Lamb, "torch_optimizer"), (Prodigy, "prodigyopt")]:
        name, module = reference(package)
        expected, _ = run(lambda a: getattr(module, name)(a), start, grads)
        got, opt = run(ours, start, grads)
        assert gap(got, expected) <= 1e-12
        assert torch.equal(got[1], start[1])
        assert len(opt.state) == 2


# -------------------------------------------------- mutations the pinned comparison catches

def flipped_lion(p, g, state, *, lr, beta1, beta2, weight_decay):
    c = beta1 * state["m"] + (1 - beta1) * g
    return p * (1 - lr * weight_decay) + lr * torch.sign(c), {"m": beta2 * state["m"] + (1 - beta2) * g}


def trustless_lamb(p, g, state, *, lr, beta1, beta2, eps, weight_decay, clamp_value, debias):
    m = beta1 * state["m"] + (1 - beta1) * g
    v = beta2 * state["v"] + (1 - beta2) * g * g
    r = m / (v.sqrt() + eps) + weight_decay * p
    return p - lr * r, {"step": state["step"] + 1, "m": m, "v": v}


def frozen_d(original):
    def update(*args, **kw):
        new_params, states, shared = original(*args, **kw)
        return new_params, states, {**shared, "d": args[3]["d"], "d_max": args[3]["d_max"]}
    return update


@pytest.mark.parametrize("ours, package, module, name, mutant", [
    (Lion, "lion_pytorch", modern, "lion_update", lambda f: flipped_lion),
    (Lamb, "torch_optimizer", modern, "lamb_update", lambda f: trustless_lamb),
    (Prodigy, "prodigyopt", prodigy, "prodigy_update", frozen_d)])
def test_reference_comparison_catches_a_broken_key_line(ours, package, module, name, mutant,
                                                       monkeypatch):
    ref_name, ref_module = reference(package)
    start, grads = make_run()
    expected, _ = run(lambda a: getattr(ref_module, ref_name)(a, lr=1e-2 if ours is not Prodigy else 1.0), start, grads)
    monkeypatch.setattr(module, name, mutant(getattr(module, name)))
    got, _ = run(lambda a: ours(a, lr=1e-2 if ours is not Prodigy else 1.0), start, grads)
    assert gap(got, expected) > 1e-3


# -------------------------------------------------- first steps by hand, no package needed

GRADS_2 = [(2.0, -0.5), (0.01, 1.0), (-1.5, 0.0)]
START_2 = (1.0, -2.0)


def feed(opt_cls, kw, grads=GRADS_2):
    p = torch.tensor(START_2, dtype=F64, requires_grad=True)
    opt = opt_cls([p], **kw)
    for g in grads:
        p.grad = torch.tensor(g, dtype=F64)
        opt.step()
    return p.detach(), opt


def test_lion_by_hand():
    lr, b1, b2, wd = 0.1, 0.9, 0.99, 0.5
    sign = lambda a: (a > 0) - (a < 0)
    expected = []
    for i, theta in enumerate(START_2):
        m = 0.0
        for gs in GRADS_2:
            g = gs[i]
            theta = theta * (1 - lr * wd) - lr * sign(b1 * m + (1 - b1) * g)
            m = b2 * m + (1 - b2) * g
        expected.append(theta)
    got, _ = feed(Lion, dict(lr=lr, betas=(b1, b2), weight_decay=wd))
    torch.testing.assert_close(got, torch.tensor(expected, dtype=F64), rtol=0, atol=1e-15)


@pytest.mark.parametrize("debias", [False, True])
def test_lamb_by_hand(debias):
    lr, b1, b2, eps, wd = 0.1, 0.9, 0.999, 1e-6, 0.01
    theta, m, v = list(START_2), [0.0, 0.0], [0.0, 0.0]
    for t, g in enumerate(GRADS_2, start=1):
        m = [b1 * a + (1 - b1) * b for a, b in zip(m, g)]
        v = [b2 * a + (1 - b2) * b * b for a, b in zip(v, g)]
        r = [a / (math.sqrt(b) + eps) + wd * x for a, b, x in zip(m, v, theta)]
        trust = min(math.hypot(*theta), 10.0) / math.hypot(*r)
        c = math.sqrt(1 - b2 ** t) / (1 - b1 ** t) if debias else 1.0
        theta = [x - lr * c * trust * y for x, y in zip(theta, r)]
    got, opt = feed(Lamb, dict(lr=lr, eps=eps, weight_decay=wd, debias=debias))
    torch.testing.assert_close(got, torch.tensor(theta, dtype=F64), rtol=1e-13, atol=1e-15)


def test_prodigy_by_hand():
    b1, b2, eps, d0 = 0.9, 0.999, 1e-8, 1e-6
    b3 = math.sqrt(b2)
    theta, p0 = list(START_2), list(START_2)
    m, v, s = [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]
    d, d_max, num = d0, d0, 0.0
    for _ in range(5):
        g = list(theta)  # the gradient of ||theta||^2 / 2
        dlr = d  # lr = 1
        num = num * b3 + (d / d0) * dlr * sum(a * (b - c) for a, b, c in zip(g, p0, theta))
        m = [b1 * a + d * (1 - b1) * b for a, b in zip(m, g)]
        v = [b2 * a + d * d * (1 - b2) * b * b for a, b in zip(v, g)]
        s = [b3 * a + (d / d0) * dlr * b for a, b in zip(s, g)]
        d_hat = num / sum(abs(a) for a in s)
        new_d = max(d, d_hat) if d == d0 else d
        d_max = max(d_max, d_hat)
        new_d = min(d_max, new_d * math.inf)  # growth_rate = inf: d follows d_max
        theta = [x - dlr * a / (math.sqrt(b) + new_d * eps) for x, a, b in zip(theta, m, v)]
        d = new_d
    p = torch.tensor(START_2, dtype=F64, requires_grad=True)
    opt = Prodigy([p])
    for _ in range(5):
        p.grad = p.detach().clone()
        opt.step()
    got = p.detach()
    torch.testing.assert_close(got, torch.tensor(theta, dtype=F64), rtol=1e-13, atol=1e-15)
    assert opt.param_groups[0]["d"] == pytest.approx(d, rel=1e-13) and d > d0  # it grew


# -------------------------------------------------- edge cases

def test_zero_gradient_first_step_leaves_params_alone():
    zero = [(0.0, 0.0)]
    for cls in (Lion, Lamb, Prodigy):
        got, opt = feed(cls, {}, zero)
        assert got.tolist() == list(START_2), cls
    _, opt = feed(Prodigy, {}, zero)  # nothing learned: as prodigyopt, no step counted
    assert opt.param_groups[0]["k"] == 0 and opt.param_groups[0]["d"] == 1e-6


def test_lion_decay_only_when_asked():
    got, _ = feed(Lion, dict(lr=0.1), [(0.0, 0.0)])
    assert got.tolist() == list(START_2)
    got, _ = feed(Lion, dict(lr=0.1, weight_decay=0.5), [(0.0, 0.0)])
    assert got.tolist() == [0.95, -1.9]


@pytest.mark.parametrize("cls, kw", [(Lion, dict(lr=1e-2, weight_decay=0.1)),
                                     (Lamb, dict(lr=1e-2, weight_decay=0.1)),
                                     (Prodigy, dict(weight_decay=0.1))])
def test_state_dict_round_trip(cls, kw):
    start, grads = make_run(steps=20)
    straight, _ = run(lambda a: cls(a, **kw), start, grads)
    half, opt = run(lambda a: cls(a, **kw), start, grads[:10])
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    ps = [p.clone().requires_grad_() for p in half]
    resumed = cls(ps)
    resumed.load_state_dict(torch.load(buf))
    for step in grads[10:]:
        for p, g in zip(ps, step):
            p.grad = p.detach() - 1 + g
        resumed.step()
    assert gap([p.detach() for p in ps], straight) == 0.0


def test_grad_is_not_modified_and_closure_loss_is_returned():
    for cls, kw in [(Lion, {}), (Lamb, dict(weight_decay=0.1)),
                    (Prodigy, dict(weight_decay=0.1, decouple=False))]:
        p = torch.tensor(START_2, dtype=F64, requires_grad=True)
        opt = cls([p], **kw)
        p.grad = torch.tensor((0.5, -1.0), dtype=F64)
        assert opt.step(lambda: 7.0) == 7.0
        assert p.grad.tolist() == [0.5, -1.0]


@pytest.mark.parametrize("cls, kw, name", [
    (Lion, dict(lr=-1.0), "lr"), (Lion, dict(betas=(1.0, 0.9)), r"betas\[0\]"),
    (Lion, dict(weight_decay=-0.1), "weight_decay"),
    (Lamb, dict(eps=0.0), "eps"), (Lamb, dict(betas=(0.9, 1.5)), r"betas\[1\]"),
    (Lamb, dict(clamp_value=0.0), "clamp_value"), (Lamb, dict(lr=math.nan), "lr"),
    (Prodigy, dict(d0=0.0), "d0"), (Prodigy, dict(d_coef=-1.0), "d_coef"),
    (Prodigy, dict(beta3=1.0), "beta3"), (Prodigy, dict(growth_rate=0.5), "growth_rate"),
    (Prodigy, dict(use_bias_correction=True), "use_bias_correction"),
    (Prodigy, dict(safeguard_warmup=True), "safeguard_warmup"), (Prodigy, dict(slice_p=11), "slice_p")])
def test_bad_arguments_raise_naming_the_argument(cls, kw, name):
    p = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match=name):
        cls([p], **kw)
    key = next(iter(kw))
    with pytest.raises(ValueError, match=rf"param_groups\[1\]\['{key}'\]"):
        cls([{"params": [p]}, {"params": [torch.zeros(1, requires_grad=True)], **kw}])


def test_flags_must_be_bools():
    with pytest.raises(TypeError, match="debias"):
        Lamb([torch.zeros(1, requires_grad=True)], debias="yes")
    with pytest.raises(TypeError, match="decouple"):
        Prodigy([torch.zeros(1, requires_grad=True)], decouple=1)


def test_prodigy_shares_one_estimate_across_groups():
    a, b = (torch.zeros(2, requires_grad=True) for _ in range(2))
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['d_coef'\] must equal"):
        Prodigy([{"params": [a]}, {"params": [b], "d_coef": 2.0}])
    opt = Prodigy([{"params": [a]}, {"params": [b], "lr": 0.5}])
    a.grad = b.grad = torch.ones(2)
    with pytest.raises(ValueError, match="lr must be 1.0"):
        opt.step()
