"""Chapter 11 (learning-rate scheduling): the notebook's claims, recomputed with package code.

The schedules themselves are pinned to torch.optim.lr_scheduler in test_schedules.py and the
trainer's lr rule in test_classify.py; this file adds what the notebook relies on beyond those:
the torch twins it names that test_schedules.py does not cover, the torch behaviours it shows
(the book's pre-stepped MultiStepLR, step order, cyclical momentum), classify.train against the
book-style loop it writes out, and the conclusions it draws from its runs.
"""
import math
import warnings

import pytest
import torch
from torch import nn
from torch.optim import lr_scheduler as L

import d2lopt as d2l
from d2lopt import classify, schedules as S

pytestmark = pytest.mark.xdist_group("chapter11")   # the training runs below are shared

EPOCHS, PEAK = 10, 0.3


def torch_rates(make_scheduler, steps, lr, scheduler_first=False):
    """Rate of update t = 0..steps-1 for SGD(lr) driven by make_scheduler(optimizer)."""
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr)
    sched, used = make_scheduler(opt), []
    for _ in range(steps):
        if scheduler_first:
            sched.step()
        used.append(opt.param_groups[0]["lr"])
        p.grad = torch.zeros_like(p)
        opt.step()
        if not scheduler_first:
            sched.step()
    return used


# --- torch twins and torch behaviours the notebook names ------------------------------------------

@pytest.mark.parametrize("warmup, total", [(5, 20), (1, 10), (3, 4), (7, 30)])
def test_cosine_with_warmup_matches_torch_sequential_lr_up_to_the_end(warmup, total):
    ref = torch_rates(lambda o: L.SequentialLR(o, [
        L.LinearLR(o, start_factor=1 / warmup, end_factor=1.0, total_iters=warmup - 1),
        L.CosineAnnealingLR(o, T_max=total - warmup, eta_min=0.01)], milestones=[warmup]),
        total + 1, 0.3)
    ours = S.values(S.cosine(0.3, total, final_lr=0.01, warmup_steps=warmup), total + 1)
    assert ours == pytest.approx(ref, rel=1e-12, abs=1e-15)


def test_factor_is_exponential_lr_until_its_floor():
    ref = torch_rates(lambda o: L.ExponentialLR(o, 0.9), 50, 2.0)
    assert S.values(S.factor(2.0, 0.9), 50) == pytest.approx(ref, rel=1e-12)
    floored = S.values(S.factor(2.0, 0.9, min_lr=0.01), 60)
    assert floored[0] == 2.0 and floored[49] == pytest.approx(2.0 * 0.9 ** 49)   # 0.0115
    assert floored[49] > 0.01 and floored[59] == 0.01


def test_the_books_plotted_multisteplr_then_trains_at_a_constant_0125():
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.5)
    sched = L.MultiStepLR(opt, milestones=[15, 30], gamma=0.5)

    def get_lr():                      # the book's plotting helper, also what one epoch does
        lr = sched.get_last_lr()[0]
        opt.step()
        sched.step()
        return lr

    plotted = [get_lr() for _ in range(30)]
    trained = [get_lr() for _ in range(30)]
    assert plotted == [0.5] * 15 + [0.25] * 15
    assert trained == [0.125] * 30
    assert S.values(S.multi_step(0.5, [15, 30], 0.5), 30) == plotted


def test_scheduler_step_first_shifts_every_rate_by_one_and_warns_once():
    make = lambda o: L.MultiStepLR(o, milestones=[2], gamma=0.1)   # noqa: E731
    assert torch_rates(make, 6, 1.0) == pytest.approx([1, 1, 0.1, 0.1, 0.1, 0.1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        early = torch_rates(make, 6, 1.0, scheduler_first=True)
    assert early == pytest.approx([1, 0.1, 0.1, 0.1, 0.1, 0.1])
    assert sum("before `optimizer.step()`" in str(w.message) for w in caught) == 1
    warm = lambda o: S.attach(o, S.warmup(S.constant(0.3), 5))   # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        skipped = torch_rates(warm, 6, 1.0, scheduler_first=True)
    assert torch_rates(warm, 6, 1.0) == pytest.approx([0.06, 0.12, 0.18, 0.24, 0.3, 0.3])
    assert skipped == pytest.approx([0.12, 0.18, 0.24, 0.3, 0.3, 0.3])


@pytest.mark.parametrize("make, momentum", [
    (lambda o: L.CyclicLR(o, 0.01, 0.3, step_size_up=5), 0.9),
    (lambda o: L.OneCycleLR(o, 0.3, total_steps=40), 0.95)])
def test_cyclical_torch_schedulers_turn_on_momentum_unless_told_not_to(make, momentum):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.3)
    make(opt)
    assert opt.param_groups[0]["momentum"] == momentum


# --- the chapter's runs ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data():
    train_iter, test_iter = d2l.load_data_fashion_mnist(32, n_train=1500, n_test=500)
    return train_iter, test_iter


def run(data, lr, schedule=None, num_epochs=EPOCHS, nudge=0.0):
    """The notebook's run(): seeded softmax regression, SGD(lr), classify.train with seed=0.
    ``nudge`` adds nudge * N(0, 1) to the initial weights. Returns (history, final weights)."""
    train_iter, test_iter = data
    torch.manual_seed(0)
    net = d2l.softmax_regression()
    if nudge:
        g = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for p in net.parameters():
                p.add_(nudge * torch.randn(p.shape, generator=g, dtype=p.dtype))
    trainer = torch.optim.SGD(net.parameters(), lr=lr)
    h = classify.train(net, train_iter, test_iter, num_epochs, nn.CrossEntropyLoss(), trainer,
                       "cpu", schedule, seed=0, plot=False, verbose=False)
    return h, torch.cat([p.detach().flatten() for p in net.parameters()])


def cosine(data):
    return S.per_epoch(S.cosine(PEAK, 7, final_lr=0.01), len(data[0]))


def with_warmup(s, warmup_steps):
    return lambda t: min(s(t), s(0) * (t + 1) / warmup_steps)


@pytest.fixture(scope="module")
def runs(data):
    n = len(data[0])
    scheds = {"constant": None, "square root": S.per_epoch(S.square_root(PEAK), n),
              "multi-step": S.per_epoch(S.multi_step(PEAK, [5, 8], 0.5), n),
              "cosine": cosine(data)}
    for w in (24, 94, 235):
        scheds[f"warmup {w}"] = with_warmup(cosine(data), w)
    return {name: run(data, PEAK, s) for name, s in scheds.items()}


def test_classify_train_matches_the_book_style_loop(data):
    """The notebook's check: its written-out loop and classify.train agree epoch by epoch."""
    train_iter, test_iter = data
    s, loss = cosine(data), nn.CrossEntropyLoss()
    torch.manual_seed(0)
    net = d2l.softmax_regression()
    trainer = torch.optim.SGD(net.parameters(), lr=PEAK)
    d2l.seed_run(0, train_iter)
    ours = []
    for epoch in range(3):
        metric = d2l.Accumulator(3)
        for i, (X, y) in enumerate(train_iter):
            for group in trainer.param_groups:
                group["lr"] = s(epoch * len(train_iter) + i)
            trainer.zero_grad()
            y_hat = net(X)
            l = loss(y_hat, y)
            l.backward()
            trainer.step()
            metric.add(l.item() * y.numel(), d2l.accuracy(y_hat, y), y.numel())
        ours.append((metric[0] / metric[2], metric[1] / metric[2],
                     d2l.evaluate_accuracy_gpu(net, test_iter)))
    h, _ = run(data, PEAK, s, num_epochs=3)
    assert ours == [tuple(r) for r in zip(h.train_loss, h.train_acc, h.test_acc)]


def test_decay_ends_above_the_best_epoch_of_the_constant_rate(runs):
    const = runs["constant"][0]
    assert max(const.test_acc) - const.test_acc[-1] > 0.03      # it bounces
    for name in ("square root", "multi-step", "cosine"):
        h = runs[name][0]
        assert h.test_acc[-1] > max(const.test_acc), name
        assert h.train_loss[-1] < const.train_loss[-1] - 0.1, name


def test_warmup_tames_the_start_and_then_costs_progress(runs):
    cos, warm = runs["cosine"][0], runs["warmup 94"][0]
    first = cos.batch_loss[0]
    assert abs(first - math.log(10)) < 0.2                   # nearly uniform predictions
    assert max(cos.batch_loss[:5]) > 2.5 * first              # overshoot without warmup
    assert cos.train_loss[0] > first                          # epoch 1 averages above the start
    assert warm.train_loss[0] < first and max(warm.batch_loss) < 1.5 * first
    assert warm.lr[2 * 47:] == cos.lr[2 * 47:]                # same decay after the ramp
    assert warm.train_loss[-1] > cos.train_loss[-1] + 0.02
    assert warm.test_acc[-1] < cos.test_acc[-1]


def test_longer_warmup_smaller_overshoot_higher_final_loss(runs):
    hs = [runs["cosine"][0]] + [runs[f"warmup {w}"][0] for w in (24, 94, 235)]
    peaks = [max(h.batch_loss) for h in hs]
    finals = [h.train_loss[-1] for h in hs]
    assert peaks == sorted(peaks, reverse=True)
    assert finals == sorted(finals)
    accs = [h.test_acc[-1] for h in hs]
    assert max(accs) - min(accs) < 0.015 and accs[0] == max(accs)


def test_rate_03_amplifies_round_off_boundedly_and_05_chaotically(data, runs):
    """Why the notebook keeps float64 and rates <= 0.3: a 1e-14 nudge of the initial weights."""
    base, w0 = runs["constant"]
    nudged, w1 = run(data, 0.3, nudge=1e-14)
    assert (w1 - w0).abs().max() < 1e-5                     # measured about 2e-7
    assert nudged.test_acc == base.test_acc
    assert max(abs(a - b) for a, b in zip(nudged.train_loss, base.train_loss)) < 1e-6
    h5, v0 = run(data, 0.5)
    h5n, v1 = run(data, 0.5, nudge=1e-14)
    assert not h5.diverged and (v1 - v0).abs().max() > 1e-3   # measured about 0.2


def test_linear_scaling_works_up_to_the_stability_limit_and_warmup_cannot_save_640():
    hist, loaders = {}, {}
    for bs in (10, 40, 160, 640):
        loaders[bs] = d2l.get_data_ch11(batch_size=bs, seed=0)[0]
        lr = 0.01 * bs / 10
        for warm in (False, True):
            sched = S.warmup(S.constant(lr), len(loaders[bs])) if warm else None
            hist[bs, warm] = d2l.train_concise_ch11(
                torch.optim.SGD, {"lr": lr}, loaders[bs], schedule=sched, seed=0,
                dtype=torch.float64, plot=False, verbose=False)
    X, _ = loaders[640].dataset.tensors
    X1 = torch.cat([X, torch.ones(len(X), 1)], dim=1).double()
    limit = 2 / torch.linalg.eigvalsh(2 * X1.T @ X1 / len(X1)).max().item()
    assert 0.16 < limit < 0.64 * 0.8                        # 0.478: 640's rate is well past it
    small = hist[10, False].losses[-1]
    for bs in (40, 160):
        for warm in (False, True):
            assert not hist[bs, warm].diverged
            assert abs(hist[bs, warm].losses[-1] - small) < 0.005
        assert abs(hist[bs, True].losses[-1] - hist[bs, False].losses[-1]) < 5e-4
    assert hist[640, False].diverged and hist[640, True].diverged
    assert hist[640, True].updates > hist[640, False].updates   # warmup only delays it
    capped = d2l.train_concise_ch11(torch.optim.SGD, {"lr": 0.9 * limit}, loaders[640], seed=0,
                                    dtype=torch.float64, plot=False, verbose=False)
    assert not capped.diverged and capped.losses[-1] < small + 0.01
