"""A small classifier trainer (the book's `train` of the scheduler section), with the lr rule fixed.

The book sets the learning rate for epoch e at the *end* of epoch e-1, so its custom schedules
run one epoch late (warmup trains epoch 0 at the full rate and epoch 1 at 0). Here one rule holds:
the rate for update t is set *before* update t, and the rate every update actually used is
recorded, read from the optimizer at the moment of ``trainer.step()``.
"""
import contextlib

import torch

from d2lopt.animator import Animator
from d2lopt.history import ClassifierHistory
from d2lopt.schedulefree import evaluating, is_schedule_free
from d2lopt.utils import Accumulator, Divergence, seed_run
from d2lopt.validate import check_callable, check_int, check_schedule

__all__ = ["accuracy", "evaluate_accuracy_gpu", "train"]


def accuracy(y_hat, y):
    """Number of correct predictions, as a float (argmax over classes if ``y_hat`` is 2-D)."""
    if y_hat.ndim > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(dim=1)
    cmp = y_hat.type(y.dtype) == y
    return float(cmp.type(y.dtype).sum())


def _device_of(net):
    param = next(iter(net.parameters()), None)
    return param.device if param is not None else torch.device("cpu")


@torch.no_grad()
def evaluate_accuracy_gpu(net, data_iter, device=None):
    """Accuracy of ``net`` over ``data_iter`` in eval mode, on ``device`` (default: the net's).

    The previous train/eval mode of ``net`` is restored afterwards.
    """
    device = _device_of(net) if device is None else torch.device(device)
    was_training = net.training
    net.eval()
    try:
        correct, count = 0.0, 0
        for X, y in data_iter:
            X, y = X.to(device), y.to(device)
            correct += accuracy(net(X), y)
            count += y.numel()
    finally:
        net.train(was_training)
    return correct / count if count else float("nan")


def _is_torch_scheduler(schedule):
    return isinstance(schedule, (torch.optim.lr_scheduler.LRScheduler,
                                 torch.optim.lr_scheduler.ReduceLROnPlateau))


def _check_schedule(schedule):
    if isinstance(schedule, torch.optim.lr_scheduler.ReduceLROnPlateau):
        raise TypeError("schedule: ReduceLROnPlateau needs a metric; step it yourself outside train")
    if not _is_torch_scheduler(schedule):
        check_schedule(schedule, "schedule (None, a callable lr = s(t) or a torch LRScheduler)")


def train(net, train_iter, test_iter, num_epochs, loss, trainer, device, schedule=None, *,
          seed=None, evaluate=None, plot=True, animate=None, verbose=True):
    """Train a classifier with minibatch updates; return a `d2lopt.history.ClassifierHistory`.

    The book's positional arguments, with its ``scheduler`` renamed ``schedule``:

    - a callable ``s`` (e.g. from d2lopt.schedules): every param group's lr is set to ``s(t)``
      right before update t, where t counts the updates already made (for a rule per epoch, wrap
      it: ``schedules.per_epoch(s, len(train_iter))``);
    - a torch ``LRScheduler``: ``schedule.step()`` once per epoch, after it (the book's use);
    - ``None``: the optimizer's own lr throughout.

    ``loss`` must return the mean over the batch (like ``nn.CrossEntropyLoss()``). A schedule-free
    optimizer (`d2lopt.optim.is_schedule_free`) is put in train mode for the updates; test
    accuracy is measured at its average x (``test_acc``) and at y (``test_acc_at_y``); models with
    BatchNorm also need their running statistics recomputed at x (see d2lopt.schedulefree).
    Keywords as in ``train_ch11``: ``seed`` (the loader's shuffling and the global generators;
    the net arrives built, so seed its initial weights when you build it), ``evaluate``
    (``f(net)`` after every epoch, at x for schedule-free, into ``history.evals``), ``plot``
    and ``animate`` (loss and accuracies per epoch), ``verbose``. A minibatch loss that is
    non-finite or over 100 times the first one (`d2lopt.utils.Divergence`) stops training before
    its update, with ``history.diverged = True`` and, if verbose, the message every trainer prints.
    """
    num_epochs = check_int("num_epochs", num_epochs, low=1)
    _check_schedule(schedule)
    if evaluate is not None:
        check_callable("evaluate", evaluate, "None or a callable evaluate(net) -> float or dict")
    device = torch.device(device)
    seed_run(seed, train_iter)
    net.to(device)
    schedule_free = is_schedule_free(trainer)   # gradients at y, evaluation at x
    if schedule_free:
        trainer.train()
    history, divergence = ClassifierHistory(), Divergence()
    animator = Animator(xlabel="epoch", xlim=[0, num_epochs],
                        legend=["train loss", "train acc", "test acc"],
                        live=None if animate is None else bool(animate)) if plot else None
    for epoch in range(num_epochs):
        metric = Accumulator(3)  # sum of loss * batch size, number correct, number of examples
        net.train()
        for i, (X, y) in enumerate(train_iter):
            if schedule is not None and not _is_torch_scheduler(schedule):
                for group in trainer.param_groups:
                    group["lr"] = schedule(history.updates)
            X, y = X.to(device), y.to(device)
            trainer.zero_grad()
            y_hat = net(X)
            l = loss(y_hat, y)
            l_value = l.item()
            if divergence.check(l_value):
                history.diverged = True
                if verbose:
                    per_epoch = len(train_iter) if hasattr(train_iter, "__len__") else 0
                    print(divergence.message(history.updates,
                                             epoch + (i / per_epoch if per_epoch else 0)))
                return history
            l.backward()
            history.record_update(trainer.param_groups[0]["lr"], l_value)
            trainer.step()
            with torch.no_grad():
                metric.add(l_value * y.numel(), accuracy(y_hat, y), y.numel())
        if _is_torch_scheduler(schedule):
            schedule.step()
        history.train_loss.append(metric[0] / metric[2])
        history.train_acc.append(metric[1] / metric[2])
        if schedule_free:
            history.test_acc_at_y.append(evaluate_accuracy_gpu(net, test_iter, device))
        with evaluating(trainer) if schedule_free else contextlib.nullcontext():
            history.test_acc.append(evaluate_accuracy_gpu(net, test_iter, device))
            if evaluate is not None:
                history.evals.append(evaluate(net))
        history.epochs = epoch + 1
        if animator is not None:
            animator.add(epoch + 1, (history.train_loss[-1], history.train_acc[-1], history.test_acc[-1]))
    if animator is not None and animator.live:
        animator.show()
    if verbose:
        print(f"train loss {history.train_loss[-1]:.3f}, train acc {history.train_acc[-1]:.3f}, "
              f"test acc {history.test_acc[-1]:.3f}")
    return history
