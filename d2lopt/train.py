"""Trainers with the book's names: `train_2d`, `train_ch11`, `train_concise_ch11`.

They return data (a `d2lopt.history.LossHistory`) and leave drawing to `d2lopt.plotting`. Fixes over the book:
logging every ``log_every`` examples whatever the batch size, the last point always logged,
evaluation under ``torch.no_grad()``, ``device=``, the feature count read from the data, and a
diverging run reported as such (the rule is `d2lopt.utils.Divergence`: a non-finite loss, or one
above 100 times the first logged loss, stops the run).
"""
import contextlib
import math

import torch
from torch import nn
from torch.utils.data import TensorDataset

from d2lopt.animator import Animator
from d2lopt.history import LossHistory
from d2lopt.problems import Problem
from d2lopt.schedulefree import evaluating, is_schedule_free
from d2lopt.utils import Divergence, Timer, format_seconds, seed_run, try_gpu
from d2lopt.validate import (check_callable, check_dtype, check_int, check_mapping, check_number,
                             check_returned, check_schedule)

__all__ = ["linreg", "squared_loss", "evaluate_loss", "train_2d", "trajectory_2d", "train_ch11",
           "train_concise_ch11"]


def linreg(X, w, b):
    """The linear regression model ``X @ w + b``."""
    return torch.matmul(X, w) + b


def squared_loss(y_hat, y):
    """Half squared error per example, ``(y_hat - y)^2 / 2``."""
    return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2


def evaluate_loss(net, data_iter, loss):
    """Mean of ``loss`` over a data iterator, without building autograd graphs."""
    total, count = 0.0, 0
    with torch.no_grad():
        for X, y in data_iter:
            out = net(X)
            l = loss(out, y.reshape(out.shape))
            total += float(l.sum())
            count += l.numel()
    return total / count


def train_2d(trainer, steps=20, f_grad=None, x0=(-5.0, -2.0), verbose=True):
    """Run a 2-D optimizer written as ``trainer(x1, x2, s1, s2[, f_grad]) -> (x1, x2, s1, s2)``.

    Starts at ``x0`` (the book's (-5, -2)), prints the final point like the book and returns the
    list of the ``steps + 1`` points visited.
    """
    steps = check_int("steps", steps, low=1)
    check_callable("trainer", trainer)
    x1, x2, s1, s2 = float(x0[0]), float(x0[1]), 0, 0
    results = [(x1, x2)]
    for i in range(steps):
        out = trainer(x1, x2, s1, s2, f_grad) if f_grad else trainer(x1, x2, s1, s2)
        x1, x2, s1, s2 = check_returned("trainer", out, ("x1", "x2", "s1", "s2"))
        results.append((x1, x2))
    if verbose:
        print(f"epoch {i + 1}, x1: {float(x1):f}, x2: {float(x2):f}")
    return results


def trajectory_2d(f, trainer, x0=None, steps=20, dtype=torch.float64, states=None,
                  **hyperparams):
    """The path of an optimizer on ``f(x1, x2)``; autograd supplies the gradient.

    ``f`` is a function or a `d2lopt.problems.Problem` (whose start point is then the default
    ``x0``; otherwise the book's (-5, -2)). ``trainer`` is either a ``torch.optim.Optimizer``
    subclass (Adam, d2lopt.optim.Yogi, ...), built as ``trainer([x], **hyperparams)``, or a
    from-scratch book-style update ``fn(params, states, hyperparams)`` that updates ``x`` in
    place and zeroes its gradient (pass its ``states``; ``hyperparams`` go in as a dict).
    Returns a ``(steps + 1, 2)`` tensor of the points visited; a run that overflows keeps its
    non-finite points so the caller can see it diverged.
    """
    steps = check_int("steps", steps, low=1)
    if isinstance(f, Problem):
        x0 = f.x0 if x0 is None else x0
        f = f.f
    x0 = (-5.0, -2.0) if x0 is None else x0
    is_torch = isinstance(trainer, type) and issubclass(trainer, torch.optim.Optimizer)
    if not (is_torch or (callable(trainer) and not isinstance(trainer, type))):
        raise TypeError("trainer must be a torch.optim.Optimizer subclass or a book-style "
                        f"update fn(params, states, hyperparams), got {trainer!r}")
    x = torch.tensor([float(v) for v in x0], dtype=dtype, requires_grad=True)
    opt = trainer([x], **hyperparams) if is_torch else None
    path = [x.detach().clone()]
    for _ in range(steps):
        if is_torch:
            opt.zero_grad()
        f(x[0], x[1]).backward()
        if is_torch:
            opt.step()
        else:
            trainer([x], states, hyperparams)
        path.append(x.detach().clone())
    return torch.stack(path)


def _check_args(trainer, hyperparams, data_iter, num_epochs, log_every, schedule, evaluate):
    """The arguments both trainers share, in the order a reader would fix them."""
    check_callable("trainer", trainer)
    check_mapping("hyperparams", hyperparams)
    for key in ("lr", "learning_rate"):
        if key in hyperparams:
            check_number(f"hyperparams['{key}']", hyperparams[key], low=0.0)
    if len(data_iter) == 0:
        raise ValueError("data_iter is empty")
    check_int("num_epochs", num_epochs, low=1)
    check_int("log_every", log_every, low=1)
    check_schedule(schedule)
    if evaluate is not None:
        check_callable("evaluate", evaluate, "None or a callable evaluate(net) -> float or dict")


def _full_data(data_iter, device, dtype):
    """All examples at once when the loader wraps tensors (one forward pass, no shuffling)."""
    dataset = getattr(data_iter, "dataset", None)
    batches = [dataset.tensors] if isinstance(dataset, TensorDataset) else data_iter
    return [tuple(_cast(t, device, dtype) for t in batch) for batch in batches]


def _cast(t, device, dtype):
    return t.to(device=device, dtype=dtype if dtype is not None and t.is_floating_point() else None)


def _num_features(data_iter):
    """Feature count, read from the first batch (as the book's trainers draw one)."""
    return next(iter(data_iter))[0].shape[1]


def _fit(step, net, data_iter, num_epochs, *, log_every, device, dtype, animate, plot, verbose,
         evaluate, optimizer=None):
    """The loop both trainers share. ``step(X, y, t)`` makes update t, returns (lr, loss)."""
    animator = Animator(xlabel="epoch", ylabel="loss", xlim=[0, num_epochs],
                        live=None if animate is None else bool(animate)) if plot else None
    eval_data = _full_data(data_iter, device, dtype)
    schedule_free = is_schedule_free(optimizer)
    timer, n_batches = Timer(), len(data_iter)
    history, divergence = LossHistory(), Divergence()
    seen, next_log, elapsed = 0, log_every, 0.0

    def log(epoch_pos):
        nonlocal elapsed
        elapsed += timer.stop()
        with evaluating(optimizer) if schedule_free else contextlib.nullcontext():
            value = evaluate_loss(net, eval_data, squared_loss)
            if evaluate is not None:
                history.evals.append(evaluate(net))
        if schedule_free:
            history.losses_at_y.append(evaluate_loss(net, eval_data, squared_loss))
        history.times.append(elapsed)
        history.losses.append(value)
        history.epochs.append(epoch_pos)
        history.examples.append(seen)
        if animator is not None:
            animator.add(epoch_pos, (value,))
        timer.start()
        return value

    for epoch in range(num_epochs):
        for i, (X, y) in enumerate(data_iter):
            X, y = _cast(X, device, dtype), _cast(y, device, dtype)
            history.record_update(*step(X, y, history.updates))
            seen += X.shape[0]
            last = epoch == num_epochs - 1 and i == n_batches - 1
            if not math.isfinite(history.batch_loss[-1]):
                divergence.check(history.batch_loss[-1])
            if divergence.diverged or seen >= next_log or last:
                value = log(epoch + (i + 1) / n_batches)
                next_log = (seen // log_every + 1) * log_every
                divergence.check(value)
            if divergence.diverged:
                break
        if divergence.diverged:
            break
    if animator is not None and animator.live:
        animator.show()
    history.diverged = divergence.diverged
    if verbose and divergence.diverged:
        print(divergence.message(history.updates, history.epochs[-1]))
    elif verbose:
        print(f"loss: {history.losses[-1]:.3f}, {format_seconds(elapsed / num_epochs)}/epoch")
    return history


def train_ch11(trainer, states, hyperparams, data_iter, feature_dim=None, num_epochs=2, *,
               schedule=None, seed=None, evaluate=None, dtype=None, log_every=200, device=None,
               plot=True, animate=None, verbose=True):
    """Train linear regression with a from-scratch update ``trainer(params, states, hyperparams)``.

    The model is ``linreg`` with ``w ~ N(0, 0.01^2)`` and ``b = 0``; the loss is ``squared_loss``
    (half MSE). The full-data loss is logged every ``log_every`` examples and after the last
    update. ``feature_dim`` is read from the data (the argument is kept for the book's calls
    and checked against it). Returns a `d2lopt.history.LossHistory`
    (``times, losses = train_ch11(...)``).

    Keywords beyond the book, the same in every trainer:
    ``schedule``: a callable ``lr = s(t)`` (d2lopt.schedules); before update t the lr that
    ``trainer`` reads is ``s(t)``, in a copy of ``hyperparams`` (the caller's dict keeps its lr).
    ``seed``: seeds the initial weights and the loader's shuffling (`d2lopt.utils.seed_run`), so a
    run is reproducible in one line. ``evaluate``: ``f(net) -> float or dict``, called at every
    logged point, results in ``history.evals``. ``dtype``: e.g. ``torch.float64`` for the weights
    and the data. ``device``; ``plot=False`` draws nothing; ``animate`` (None: live in Jupyter
    unless D2L_NO_ANIMATION is set; False: one static figure); ``verbose=False`` prints nothing.
    """
    _check_args(trainer, hyperparams, data_iter, num_epochs, log_every, schedule, evaluate)
    device = device if device is not None else try_gpu()
    dim = _num_features(data_iter)
    if feature_dim is not None and check_int("feature_dim", feature_dim, low=1) != dim:
        raise ValueError(f"feature_dim is {feature_dim} but the data has {dim} features")
    if schedule is not None:            # it writes 'lr': never into the caller's dict (a
        hyperparams = dict(hyperparams)  # book-style update may keep its own counter there)
    seed_run(seed, data_iter)
    dtype = check_dtype(dtype)
    w = torch.normal(mean=0.0, std=0.01, size=(dim, 1)).to(device, dtype or torch.float32)
    b = torch.zeros(1, device=device, dtype=w.dtype)
    w.requires_grad_(), b.requires_grad_()
    states = _states_to(states, device, dtype)

    def net(X):
        return linreg(X, w, b)

    def step(X, y, t):
        if schedule is not None:
            hyperparams["lr"] = schedule(t)
        l = squared_loss(net(X), y).mean()
        l.backward()
        trainer([w, b], states, hyperparams)
        return hyperparams.get("lr", float("nan")), float(l.detach())

    return _fit(step, net, data_iter, num_epochs, log_every=log_every, device=device,
                dtype=dtype, animate=animate, plot=plot, verbose=verbose, evaluate=evaluate)


def _states_to(states, device, dtype=None):
    """Move (nested tuples/lists of) state tensors to ``device`` (and ``dtype``)."""
    if isinstance(states, torch.Tensor):
        return _cast(states, device, dtype)
    if isinstance(states, (tuple, list)):
        return type(states)(_states_to(s, device, dtype) for s in states)
    return states


def train_concise_ch11(trainer, hyperparams, data_iter, num_epochs=4, *, schedule=None,
                       seed=None, evaluate=None, dtype=None, log_every=200, device=None,
                       plot=True, animate=None, verbose=True):
    """Train the same linear model with a torch optimizer ``trainer(params, **hyperparams)``.

    The loss is ``nn.MSELoss`` (no 1/2, so gradients are twice the scratch version's, as in
    the book); the logged loss is halved so both trainers' curves compare. Unlike the book it
    returns a `d2lopt.history.LossHistory` (the book returned None) and sizes the layer from the
    data. A schedule-free optimizer updates at y and is logged at its average x (the loss at y
    goes to ``history.losses_at_y``). ``schedule`` sets every param group's lr to ``s(t)``
    before update t; the other keywords are as in `train_ch11`.
    """
    _check_args(trainer, hyperparams, data_iter, num_epochs, log_every, schedule, evaluate)
    device = device if device is not None else try_gpu()
    seed_run(seed, data_iter)
    dtype = check_dtype(dtype)
    net = nn.Sequential(nn.Linear(_num_features(data_iter), 1))
    nn.init.normal_(net[0].weight, std=0.01)
    net.to(device=device, dtype=dtype)
    optimizer = trainer(net.parameters(), **hyperparams)
    loss = nn.MSELoss(reduction="none")
    if is_schedule_free(optimizer):     # updates at y; _fit logs at the averaged x
        optimizer.train()

    def step(X, y, t):
        if schedule is not None:
            for group in optimizer.param_groups:
                group["lr"] = schedule(t)
        optimizer.zero_grad()
        out = net(X)
        l = loss(out, y.reshape(out.shape)).mean()
        l.backward()
        lr = float(optimizer.param_groups[0]["lr"])
        optimizer.step()
        return lr, float(l.detach())

    return _fit(step, net, data_iter, num_epochs, log_every=log_every, device=device,
                dtype=dtype, animate=animate, plot=plot, verbose=verbose, evaluate=evaluate,
                optimizer=optimizer)
