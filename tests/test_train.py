"""Trainers: the book's return values and the defects d2lopt fixes."""
import math

import numpy as np
import pytest
import torch

import d2lopt as d2l
from d2lopt import train


def sgd(params, states, hyperparams):
    for p in params:
        p.data.sub_(hyperparams["lr"] * p.grad)
        p.grad.data.zero_()


def make_iter(n=300, batch_size=10, dim=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, dim, generator=g)
    y = X @ torch.arange(1.0, dim + 1) + 0.1 * torch.randn(n, generator=g)
    return d2l.load_array((X, y), batch_size, generator=torch.Generator().manual_seed(seed)), dim


@pytest.mark.parametrize("batch_size", [1, 7, 10, 100, 300])
def test_logging_independent_of_batch_size_and_last_point_logged(batch_size, capsys):
    data_iter, dim = make_iter(batch_size=batch_size)
    h = d2l.train_ch11(sgd, None, {"lr": 0.01}, data_iter, dim, num_epochs=2, log_every=100)
    # One point at the first update where another 100 examples have been seen, and the last.
    seen = np.cumsum([min(batch_size, 300 - i) for _ in range(2) for i in range(0, 300, batch_size)])
    expected = sorted({int(seen[np.argmax(seen >= m)]) for m in range(100, 601, 100)} | {600})
    assert h.examples == expected
    assert len(h.losses) == len(h.times) == len(h.epochs) == len(expected)
    assert h.epochs[-1] == pytest.approx(2.0)


def test_gd_batch_1500_single_epoch_does_not_crash(capsys):
    # The book's `n % 200 == 0` rule logs nothing for 1500 x 1 and then indexes an empty list.
    data_iter, dim = d2l.get_data_ch11(batch_size=1500)
    h = d2l.train_ch11(sgd, None, {"lr": 1.0}, data_iter, dim, num_epochs=1)
    assert len(h.losses) == 1 and h.updates == 1
    assert "loss: " in capsys.readouterr().out


def test_returns_unpack_like_the_book():
    data_iter, dim = make_iter()
    times, losses = d2l.train_ch11(sgd, None, {"lr": 0.01}, data_iter, dim)
    assert all(b >= a for a, b in zip(times, times[1:]))
    times, losses = d2l.train_concise_ch11(torch.optim.SGD, {"lr": 0.01}, data_iter)
    assert len(times) == len(losses) > 0


def test_scratch_and_concise_report_the_same_half_mse():
    data_iter, dim = make_iter()
    d2l.seed_everything(0)
    h1 = d2l.train_ch11(sgd, None, {"lr": 0.0}, data_iter, dim, num_epochs=1)
    X, y = data_iter.dataset.tensors
    # lr = 0: the loss stays at its initial value: 1/2 mean (X w + 0 - y)^2 with w ~ N(0, 0.01^2)
    assert h1.losses[0] == pytest.approx(0.5 * float((y ** 2).mean()), rel=0.05)


def test_divergence_is_reported(capsys):
    data_iter, dim = make_iter()
    h = d2l.train_ch11(sgd, None, {"lr": 100.0}, data_iter, dim, num_epochs=2)
    out = capsys.readouterr().out
    assert h.diverged and out.startswith("diverged: ") and out.count("\n") == 1
    assert not math.isfinite(h.losses[-1]) or h.losses[-1] > 100 * h.losses[0]
    assert h.updates < 2 * len(data_iter)


def blow_up_after(k, factor=1e4):
    """A book-style SGD step that multiplies the parameters by ``factor`` at its k-th call: a
    finite blow-up, such as minibatch 640 at lr 0.64 on airfoil (0.49 -> 2683)."""
    calls = []

    def step(params, states, hyperparams):
        calls.append(None)
        sgd(params, states, hyperparams)
        if len(calls) == k:
            with torch.no_grad():
                for p in params:
                    p.mul_(factor).add_(factor)
    return step


def test_finite_blow_up_is_divergence_and_stops_the_run(capsys):
    data_iter, dim = make_iter()     # 30 updates an epoch; log_every=100: a point every 10
    h = d2l.train_ch11(blow_up_after(12), None, {"lr": 0.01}, data_iter, dim, num_epochs=2,
                       log_every=100, plot=False)
    out = capsys.readouterr().out
    assert all(math.isfinite(v) for v in h.losses) and h.losses[-1] > 100 * h.losses[0]
    # Found at the next logged point (full-data losses, not noisy minibatch ones), then stopped.
    assert h.diverged and h.updates == 20 and h.examples == [100, 200]
    assert out.startswith("diverged: the loss reached ") and "after 20 updates" in out


def test_losses_below_the_divergence_factor_are_not_divergence(capsys):
    data_iter, dim = make_iter()
    h = d2l.train_ch11(blow_up_after(12, factor=3.0), None, {"lr": 0.01}, data_iter, dim,
                       num_epochs=1, log_every=100, plot=False)
    assert not h.diverged and h.updates == 30 and h.losses[-1] < 100 * h.losses[0]
    assert capsys.readouterr().out.startswith("loss: ")


def test_non_finite_loss_is_divergence_with_the_same_wording(capsys):
    def nan_step(params, states, hyperparams):
        with torch.no_grad():
            for p in params:
                p.fill_(float("nan"))
    data_iter, dim = make_iter()
    h = d2l.train_ch11(nan_step, None, {"lr": 0.01}, data_iter, dim, plot=False)
    out = capsys.readouterr().out
    assert h.diverged and h.updates == 2 and math.isnan(h.losses[-1])
    assert out == ("diverged: the loss became nan after 2 updates (epoch 0.07); training "
                   "stopped: try a smaller learning rate\n")


def test_concise_trainer_reports_a_finite_blow_up_the_same_way(capsys):
    # MSELoss on standard-normal features: Hessian ~ 2I, so SGD at lr 1.5 is past the limit 1
    d2l.seed_everything(0)
    h = d2l.train_concise_ch11(torch.optim.SGD, {"lr": 1.5}, make_iter(batch_size=100)[0],
                               num_epochs=20, log_every=100, plot=False)
    out = capsys.readouterr().out
    assert h.diverged and h.updates < 60 and all(math.isfinite(v) for v in h.losses)
    assert out.startswith("diverged: the loss reached ") and "training stopped" in out


def test_schedule_leaves_the_callers_hyperparams_alone():
    data_iter, dim = make_iter()
    seen = []

    def recording_sgd(params, states, hyperparams):
        seen.append(hyperparams["lr"])
        sgd(params, states, hyperparams)
    hp = {"lr": 0.05}
    d2l.train_ch11(recording_sgd, None, hp, data_iter, dim, num_epochs=1, plot=False,
                   verbose=False, schedule=lambda t: 0.01 / (t + 1))
    assert hp == {"lr": 0.05}
    assert seen == [0.01 / (t + 1) for t in range(len(data_iter))]


def test_evaluate_loss_builds_no_graph():
    w = torch.ones(3, 1, requires_grad=True)
    data_iter, _ = make_iter()
    before = torch.is_grad_enabled()
    value = d2l.evaluate_loss(lambda X: X @ w, data_iter, d2l.squared_loss)
    assert isinstance(value, float) and torch.is_grad_enabled() == before
    assert w.grad is None


def test_feature_dim_from_data_and_mismatch_error():
    data_iter, dim = make_iter(dim=4)
    h = d2l.train_concise_ch11(torch.optim.SGD, {"lr": 0.01}, data_iter, num_epochs=1)
    assert len(h.losses) > 0
    with pytest.raises(ValueError, match="feature_dim"):
        d2l.train_ch11(sgd, None, {"lr": 0.01}, data_iter, 5)


@pytest.mark.parametrize("lr", [-0.1, float("nan"), float("inf")])
def test_bad_learning_rate(lr):
    data_iter, dim = make_iter()
    with pytest.raises(ValueError, match="lr"):
        d2l.train_ch11(sgd, None, {"lr": lr}, data_iter, dim)
    with pytest.raises(ValueError, match="lr"):
        d2l.train_concise_ch11(torch.optim.SGD, {"lr": lr}, data_iter)


def test_trainer_must_be_callable():
    data_iter, dim = make_iter()
    with pytest.raises(TypeError, match="trainer must be callable"):
        d2l.train_ch11("sgd", None, {"lr": 0.1}, data_iter, dim)
    with pytest.raises(TypeError, match="trainer must be callable"):
        d2l.train_concise_ch11(None, {"lr": 0.1}, data_iter)


def test_device_argument_places_model_and_states():
    data_iter, dim = make_iter()
    states = (torch.zeros(dim, 1), torch.zeros(1))

    def momentum(params, states, hp):
        for p, v in zip(params, states):
            assert p.device == v.device == torch.device("cpu")
            with torch.no_grad():
                v[:] = 0.5 * v + p.grad
                p[:] -= hp["lr"] * v
            p.grad.data.zero_()

    h = d2l.train_ch11(momentum, states, {"lr": 0.01}, data_iter, dim, num_epochs=1,
                       device=torch.device("cpu"))
    assert len(h.losses) > 0


def test_train_2d_book_numbers(capsys):
    eta = 0.1

    def gd_2d(x1, x2, s1, s2, f_grad):
        g1, g2 = f_grad(x1, x2)
        return x1 - eta * g1, x2 - eta * g2, 0, 0

    path = d2l.train_2d(gd_2d, steps=20, f_grad=lambda x1, x2: (2 * x1, 4 * x2))
    # closed form: x1 = -5 (1 - 2 eta)^20, x2 = -2 (1 - 4 eta)^20
    assert path[-1][0] == pytest.approx(-5 * 0.8 ** 20)
    assert path[-1][1] == pytest.approx(-2 * 0.6 ** 20)
    assert capsys.readouterr().out.strip() == "epoch 20, x1: -0.057646, x2: -0.000073"
    assert len(path) == 21


def test_train_2d_from_a_given_start():
    path = d2l.train_2d(lambda a, b, s1, s2: (a / 2, b / 2, s1, s2), steps=3, x0=(8, 4),
                        verbose=False)
    assert path == [(8.0, 4.0), (4.0, 2.0), (2.0, 1.0), (1.0, 0.5)]


def test_trajectory_2d_matches_hand_sgd():
    f = d2l.problems.ill_conditioned.f
    path = d2l.trajectory_2d(f, torch.optim.SGD, steps=20, lr=0.4)
    # GD on 0.1 x1^2 + 2 x2^2: x1 <- (1 - 0.2 lr) x1, x2 <- (1 - 4 lr) x2
    assert path[-1, 0].item() == pytest.approx(-5 * (1 - 0.08) ** 20)
    assert path[-1, 1].item() == pytest.approx(-2 * (1 - 1.6) ** 20)
    with pytest.raises(TypeError, match="trainer must be"):
        d2l.trajectory_2d(f, "adam")


def test_history_repr_has_no_address():
    h = d2l.LossHistory([0.1], [0.25], [1.0], [10])
    assert "0x" not in repr(h) and "0.250" in repr(h)


def test_concise_trainer_runs_schedule_free_and_logs_at_x():
    from d2lopt.optim import ScheduleFreeSGD
    data_iter, dim = make_iter()
    from d2lopt.schedulefree import evaluating
    made = []

    def make(params, **hp):
        params = list(params)
        made.append((params, ScheduleFreeSGD(params, **hp)))
        return made[-1][1]

    d2l.seed_everything(0)
    h = d2l.train_concise_ch11(make, {"lr": 0.05}, data_iter, num_epochs=1)
    (w, b), opt = made[0]
    X, y = data_iter.dataset.tensors
    with torch.no_grad():
        at_y = float(d2l.squared_loss(X @ w.T + b, y).mean())
        with evaluating(opt):
            at_x = float(d2l.squared_loss(X @ w.T + b, y).mean())
    assert not h.diverged and h.losses[-1] < h.losses[0]
    assert h.losses[-1] == pytest.approx(at_x, rel=1e-6) and at_x != pytest.approx(at_y, rel=1e-6)


def test_schedule_sets_the_rate_before_each_update(capsys):
    data_iter, dim = make_iter(n=40, batch_size=10)
    used = []

    def record(params, states, hp):
        used.append(hp["lr"])
        sgd(params, states, hp)

    d2l.train_ch11(record, None, {"lr": 0.5}, data_iter, dim, num_epochs=2,
                   schedule=lambda t: 0.1 / (t + 1), plot=False, verbose=False)
    assert used == [0.1 / (t + 1) for t in range(8)]
    assert capsys.readouterr().out == ""

    seen = []

    class Recording(torch.optim.SGD):
        def step(self, closure=None):
            seen.append(self.param_groups[0]["lr"])
            return super().step(closure)

    d2l.train_concise_ch11(Recording, {"lr": 0.5}, data_iter, num_epochs=1,
                           schedule=lambda t: 0.01 * (t + 1), plot=False, verbose=False)
    assert seen == [0.01 * (t + 1) for t in range(4)]
    with pytest.raises(TypeError, match="schedule"):
        d2l.train_ch11(sgd, None, {"lr": 0.1}, data_iter, dim, schedule=0.1)


def test_plot_false_draws_no_figure():
    data_iter, dim = make_iter(n=40)
    d2l.plt.close("all")
    d2l.train_ch11(sgd, None, {"lr": 0.1}, data_iter, dim, plot=False, verbose=False)
    assert d2l.plt.get_fignums() == []
    d2l.train_ch11(sgd, None, {"lr": 0.1}, data_iter, dim, verbose=False)
    assert len(d2l.plt.get_fignums()) == 1
    d2l.plt.close("all")


def test_trajectory_2d_takes_a_problem_and_a_from_scratch_step():
    problem = d2l.problems.ill_conditioned

    def sgd_momentum(params, states, hp):
        for p, v in zip(params, states):
            with torch.no_grad():
                v[:] = hp["momentum"] * v + p.grad
                p[:] -= hp["lr"] * v
            p.grad.data.zero_()

    ours = d2l.trajectory_2d(problem, sgd_momentum, steps=15, states=[torch.zeros(2,
                             dtype=torch.float64)], lr=0.1, momentum=0.9)
    ref = d2l.trajectory_2d(problem, torch.optim.SGD, steps=15, lr=0.1, momentum=0.9)
    assert ours.shape == (16, 2) and tuple(ours[0].tolist()) == problem.x0
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    with pytest.raises(TypeError, match="trainer must be"):
        d2l.trajectory_2d(problem, torch.nn.Linear)


def test_show_paths_takes_a_problem_and_frames_its_minimum():
    fig, ax = d2l.plt.subplots()
    path = d2l.trajectory_2d(d2l.problems.rosenbrock, torch.optim.Adam, steps=5, lr=0.01)
    d2l.show_paths(d2l.problems.rosenbrock, {"adam": path}, ax=ax)
    assert ax.get_xlim()[1] >= 1.0 and ax.get_ylim()[1] >= 1.0  # the minimum (1, 1) is in view
    d2l.plt.close(fig)


def _scratch_sgd(params, states, hyperparams):
    for p in params:
        with torch.no_grad():
            p -= hyperparams["lr"] * p.grad
        p.grad.zero_()


@pytest.mark.parametrize("which", ["scratch", "concise"])
def test_seed_dtype_evaluate_and_per_update_records(which):
    data_iter, _ = d2l.get_data_ch11(batch_size=50, n=200, seed=1)
    seen = []

    def run(seed):
        kw = dict(seed=seed, dtype=torch.float64, plot=False, verbose=False,
                  evaluate=lambda net: seen.append(next(net.parameters()).dtype
                                                   if hasattr(net, "parameters") else None) or 1.5)
        if which == "scratch":
            return d2l.train_ch11(_scratch_sgd, None, {"lr": 0.05}, data_iter, num_epochs=2, **kw)
        return d2l.train_concise_ch11(torch.optim.SGD, {"lr": 0.05}, data_iter, num_epochs=2, **kw)

    a, b, c = run(0), run(0), run(1)
    assert a.batch_loss == b.batch_loss and a.losses == b.losses   # same seed, same loader object
    assert c.batch_loss != a.batch_loss
    assert a.updates == len(a.lr) == len(a.batch_loss) == 8 and a.lr == [0.05] * 8
    assert a.evals == [1.5] * len(a.losses)
    if which == "concise":
        assert set(seen) == {torch.float64}


def test_schedule_free_logs_at_x_and_keeps_the_loss_at_y():
    from d2lopt.optim import ScheduleFreeAdamW
    data_iter, _ = d2l.get_data_ch11(batch_size=10, n=200, seed=0)
    h = d2l.train_concise_ch11(ScheduleFreeAdamW, {"lr": 0.05}, data_iter, num_epochs=1, seed=0,
                               dtype=torch.float64, plot=False, verbose=False)
    assert len(h.losses_at_y) == len(h.losses) and h.losses_at_y != h.losses
    plain = d2l.train_concise_ch11(torch.optim.SGD, {"lr": 0.05}, data_iter, num_epochs=1,
                                   plot=False, verbose=False)
    assert plain.losses_at_y == []


def test_bad_dtype_is_named():
    data_iter, _ = d2l.get_data_ch11(batch_size=10, n=50)
    with pytest.raises(TypeError, match="dtype"):
        d2l.train_concise_ch11(torch.optim.SGD, {"lr": 0.1}, data_iter, dtype=torch.int64)
