"""The book's call patterns for this chapter run with `import d2lopt as d2l`.

Each test replays how a section's code calls the helpers (names, positional arguments, return
values, the globals it mutates) with our own small functions, warnings turned into errors.
"""
import warnings

import matplotlib
import numpy as np
import pytest
import torch
from torch import nn

import d2lopt as d2l

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def strict_warnings():
    with warnings.catch_warnings():
        for category in (UserWarning, DeprecationWarning, FutureWarning, RuntimeWarning):
            warnings.simplefilter("error", category)
        # Sockets left by other tests' kernels may be collected during these tests: not ours.
        warnings.simplefilter("ignore", ResourceWarning)
        warnings.simplefilter("ignore", pytest.PytestUnraisableExceptionWarning)
        yield
    d2l.plt.close("all")


def test_intro_and_convexity_plots():
    x = d2l.arange(0.5, 1.5, 0.01)
    d2l.set_figsize((4.5, 2.5))
    d2l.plot(x, [x * d2l.cos(np.pi * x), x ** 2], "x", "risk")
    d2l.annotate("a label", (1.0, -1.2), (0.5, -1.1))
    x, y = d2l.meshgrid(d2l.linspace(-1.0, 1.0, 11), d2l.linspace(-1.0, 1.0, 11))
    assert x.shape == (11, 11) and d2l.tanh(d2l.tensor(0.0)).item() == 0.0
    d2l.use_svg_display()
    _, axes = d2l.plt.subplots(1, 3, figsize=(9, 3))
    segment = d2l.tensor([-1.5, 1])
    for ax, func in zip(axes, [lambda u: 0.5 * u ** 2, lambda u: d2l.cos(np.pi * u),
                               lambda u: d2l.exp(0.5 * u)]):
        d2l.plot([x[0], segment], [func(x[0]), func(segment)], axes=ax)
    d2l.set_figsize()


def test_gd_call_patterns(capsys):
    eta = 0.1

    def f_2d_grad(x1, x2):
        return (2 * x1, 4 * x2)

    def gd_2d(x1, x2, s1, s2, f_grad):
        g1, g2 = f_grad(x1, x2)
        return (x1 - eta * g1, x2 - eta * g2, 0, 0)

    results = d2l.train_2d(gd_2d, f_grad=f_2d_grad)
    d2l.show_trace_2d(lambda x1, x2: x1 ** 2 + 2 * x2 ** 2, results)
    assert capsys.readouterr().out == "epoch 20, x1: -0.057646, x2: -0.000073\n"
    c = d2l.tensor(0.15 * np.pi)
    f_line = d2l.arange(-10, 10, 0.5)
    d2l.plot([f_line, [1.0, 2.0]], [[float(v * d2l.cos(c * v)) for v in f_line], [0, 1]],
             "x", "f(x)", fmts=["-", "-o"])


def test_sgd_call_patterns(capsys):
    def sgd(x1, x2, s1, s2, f_grad):
        g1, g2 = f_grad(x1, x2)
        g1 += torch.normal(0.0, 1, (1,)).item()
        g2 += torch.normal(0.0, 1, (1,)).item()
        return (x1 - 0.1 * g1, x2 - 0.1 * g2, 0, 0)

    d2l.show_trace_2d(lambda x1, x2: x1 ** 2 + 2 * x2 ** 2,
                      d2l.train_2d(sgd, steps=50, f_grad=lambda a, b: (2 * a, 4 * b)))
    assert capsys.readouterr().out.startswith("epoch 50, x1: ")


def test_minibatch_call_patterns(capsys):
    timer = d2l.Timer()
    A = torch.zeros(8, 8)
    A[:] = torch.mm(torch.randn(8, 8), torch.randn(8, 8))
    assert timer.stop() >= 0
    d2l.DATA_HUB["airfoil"] = (d2l.DATA_URL + "airfoil_self_noise.dat",
                               "76e5be1548fd8222e5074cf0faae75edff8cf93f")
    data = np.genfromtxt(d2l.download("airfoil"), dtype=np.float32, delimiter="\t")
    data = torch.from_numpy((data - data.mean(axis=0)) / data.std(axis=0))
    data_iter = d2l.load_array((data[:1500, :-1], data[:1500, -1]), 10, is_train=True)
    assert data.shape == (1503, 6) and len(data_iter) == 150

    def sgd(params, states, hyperparams):
        for p in params:
            p.data.sub_(hyperparams["lr"] * p.grad)
            p.grad.data.zero_()

    data_iter, feature_dim = d2l.get_data_ch11(1500)
    gd_res = d2l.train_ch11(sgd, None, {"lr": 1}, data_iter, feature_dim, 2)
    data_iter, feature_dim = d2l.get_data_ch11(100)
    mini_res = d2l.train_ch11(sgd, None, {"lr": 0.4}, data_iter, feature_dim)
    d2l.set_figsize([6, 3])
    d2l.plot(*list(map(list, zip(gd_res, mini_res))), "time (sec)", "loss", xlim=[1e-2, 10],
             legend=["gd", "batch size=100"])
    d2l.plt.gca().set_xscale("log")
    d2l.train_concise_ch11(torch.optim.SGD, {"lr": 0.01}, data_iter)
    out = capsys.readouterr().out
    assert out.count("loss: ") == 3 and out.count("sec/epoch") == 3


def test_evaluate_loss_with_book_losses():
    data_iter, _ = d2l.get_data_ch11(10)
    net = nn.Sequential(nn.Linear(5, 1))
    half = d2l.evaluate_loss(net, data_iter, nn.MSELoss(reduction="none")) / 2
    w, b = net[0].weight.detach().T, net[0].bias.detach()
    assert half == pytest.approx(d2l.evaluate_loss(lambda X: d2l.linreg(X, w, b), data_iter,
                                                   d2l.squared_loss), rel=1e-5)


def test_optimizer_sections_call_patterns(capsys):
    def init_adam_states(feature_dim):
        v_w, v_b = d2l.zeros((feature_dim, 1)), d2l.zeros(1)
        s_w, s_b = d2l.zeros((feature_dim, 1)), d2l.zeros(1)
        return ((v_w, s_w), (v_b, s_b))

    def adam(params, states, hyperparams):
        beta1, beta2, eps = 0.9, 0.999, 1e-6
        for p, (v, s) in zip(params, states):
            with torch.no_grad():
                v[:] = beta1 * v + (1 - beta1) * p.grad
                s[:] = beta2 * s + (1 - beta2) * torch.square(p.grad)
                v_hat = v / (1 - beta1 ** hyperparams["t"])
                s_hat = s / (1 - beta2 ** hyperparams["t"])
                p[:] -= hyperparams["lr"] * v_hat / (torch.sqrt(s_hat) + eps)
            p.grad.data.zero_()
        hyperparams["t"] += 1

    data_iter, feature_dim = d2l.get_data_ch11(batch_size=10)
    hp = {"lr": 0.01, "t": 1}
    d2l.train_ch11(adam, init_adam_states(feature_dim), hp, data_iter, feature_dim)
    assert hp["t"] == 301  # the book's trainer lets the step counter live in hyperparams
    d2l.train_concise_ch11(torch.optim.Adam, {"lr": 0.01}, data_iter)
    gammas = [0.95, 0.9]
    d2l.set_figsize()
    for gamma in gammas:
        x = d2l.numpy(d2l.arange(40))
        d2l.plt.plot(x, (1 - gamma) * gamma ** x, label=f"gamma = {gamma:.2f}")
    d2l.plt.xlabel("time")
    assert capsys.readouterr().out.count("loss: ") == 2


def test_lr_scheduler_call_patterns(capsys):
    from torch.optim import lr_scheduler

    train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size=256)
    X, y = next(iter(train_iter))
    assert X.shape == (256, 1, 28, 28) and y.dtype == torch.int64
    device = d2l.try_gpu()
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10)).to(device)
    trainer = torch.optim.SGD(net.parameters(), lr=0.3)
    loss = nn.CrossEntropyLoss()
    scheduler = lr_scheduler.MultiStepLR(trainer, milestones=[15, 30], gamma=0.5)
    animator = d2l.Animator(xlabel="epoch", xlim=[0, 1],
                            legend=["train loss", "train acc", "test acc"])
    metric = d2l.Accumulator(3)
    for i, (X, y) in enumerate(train_iter):
        net.train()
        trainer.zero_grad()
        X, y = X.to(device), y.to(device)
        y_hat = net(X)
        l = loss(y_hat, y)
        l.backward()
        trainer.step()
        with torch.no_grad():
            metric.add(l * X.shape[0], d2l.accuracy(y_hat, y), X.shape[0])
        if (i + 1) % 10 == 0:
            animator.add(i / len(train_iter), (metric[0] / metric[2], metric[1] / metric[2], None))
    test_acc = d2l.evaluate_accuracy_gpu(net, test_iter)
    animator.add(1, (None, None, test_acc))
    assert scheduler.__module__ == lr_scheduler.__name__
    scheduler.step()
    assert 0.1 < test_acc <= 1.0
    trainer.param_groups[0]["lr"] = 0.1
    print(f'learning rate is now {trainer.param_groups[0]["lr"]:.2f}')
    d2l.plot(d2l.arange(30), [0.1 * (t + 1.0) ** -0.5 for t in range(30)])
    assert capsys.readouterr().out == "learning rate is now 0.10\n"
