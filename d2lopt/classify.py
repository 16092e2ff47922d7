"""A small classifier trainer (the book's `train` of the scheduler section), with the lr rule fixed.

The book sets the learning rate for epoch e at the *end* of epoch e-1, so its custom schedules
run one epoch late (warmup trains epoch 0 at the full rate and epoch 1 at 0). Here one rule holds:
the rate for update t is set *before* update t, and the rate every update actually used is
recorded, read from the optimizer at the moment of ``trainer.step()``.
"""
import dataclasses

import torch

from d2lopt.animator import Animator
from d2lopt.schedulefree import evaluating, is_schedule_free
from d2lopt.utils import Accumulator, Divergence
from d2lopt.validate import check_int

__all__ = ["accuracy", "evaluate_accuracy_gpu", "History", "train"]


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


@dataclasses.dataclass(repr=False)
class History:
    """What `train` measured. Per epoch: ``train_loss``, ``train_acc`` (running averages over the
    epoch's updates), ``test_acc``; per update: ``lr``, the rate that update used. ``epochs`` is the
    number of completed epochs; ``diverged`` is True if training stopped because the loss
    diverged (`d2lopt.utils.Divergence`: non-finite, or over 100 times the first loss)."""
    train_loss: list = dataclasses.field(default_factory=list)
    train_acc: list = dataclasses.field(default_factory=list)
    test_acc: list = dataclasses.field(default_factory=list)
    lr: list = dataclasses.field(default_factory=list)
    epochs: int = 0
    diverged: bool = False

    def __getitem__(self, key):  # history["test_acc"] works like a dict
        return getattr(self, key)

    def __repr__(self):  # short, so that a cell ending in train(...) shows one line
        return f"History(epochs={self.epochs}, updates={len(self.lr)}, diverged={self.diverged})"


def _is_torch_scheduler(scheduler):
    base = getattr(torch.optim.lr_scheduler, "LRScheduler", None) or torch.optim.lr_scheduler._LRScheduler
    return isinstance(scheduler, (base, torch.optim.lr_scheduler.ReduceLROnPlateau))


def train(net, train_iter, test_iter, num_epochs, loss, trainer, device, scheduler=None, *,
          step_scheduler="epoch", animate=None, verbose=True):
    """Train a classifier with minibatch updates; return a `History`.

    Learning-rate rule, with t counting the updates already made (``step_scheduler='update'``) or
    the epochs already completed (``'epoch'``):

    - ``scheduler`` a callable ``s`` (e.g. a d2lopt.schedules object): every param group's lr is
      set to ``s(t)`` right before the update that uses it, so update/epoch 0 runs at ``s(0)``;
    - ``scheduler`` a torch ``LRScheduler``: ``scheduler.step()`` is called after
      ``trainer.step()`` (torch's order) once per update or once per epoch;
    - ``None``: the optimizer's own lr throughout.

    A schedule-free optimizer (``d2lopt.optim.ScheduleFreeAdamW``/``ScheduleFreeSGD``) is put in
    train mode for the updates and test accuracy is measured at its average x (models with
    BatchNorm also need their running statistics recomputed at x; see d2lopt.schedulefree).
    ``loss`` must return the mean over the batch (like ``nn.CrossEntropyLoss()``). ``animate``:
    if truthy, a live ``d2lopt.animator.Animator`` of loss and accuracies per epoch. Prints one
    summary line unless ``verbose=False``. A minibatch loss that is non-finite or over 100 times
    the first one (`d2lopt.utils.Divergence`) stops training before its update, with
    ``history.diverged = True`` and, if verbose, the message every trainer prints.
    """
    num_epochs = check_int("num_epochs", num_epochs, low=1)
    if step_scheduler not in ("epoch", "update"):
        raise ValueError(f"step_scheduler must be 'epoch' or 'update', got {step_scheduler!r}")
    is_torch = _is_torch_scheduler(scheduler)
    if scheduler is not None and not is_torch and not callable(scheduler):
        raise TypeError(f"scheduler must be None, a torch LRScheduler or a callable lr = s(t), "
                        f"got {type(scheduler).__name__}")
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        raise TypeError("scheduler: ReduceLROnPlateau needs a metric; step it yourself outside train")
    device = torch.device(device)
    net.to(device)
    # Schedule-free optimizers take gradients at y but are evaluated at x (see d2lopt.schedulefree).
    schedule_free = is_schedule_free(trainer)
    if schedule_free:
        trainer.train()
    history, animator, divergence = History(), None, Divergence()
    if animate:
        animator = Animator(xlabel="epoch", xlim=[0, num_epochs],
                            legend=["train loss", "train acc", "test acc"])
    updates = 0
    for epoch in range(num_epochs):
        metric = Accumulator(3)  # sum of loss * batch size, number correct, number of examples
        net.train()
        for i, (X, y) in enumerate(train_iter):
            if callable(scheduler) and not is_torch:
                lr = scheduler(updates if step_scheduler == "update" else epoch)
                for group in trainer.param_groups:
                    group["lr"] = lr
            X, y = X.to(device), y.to(device)
            trainer.zero_grad()
            y_hat = net(X)
            l = loss(y_hat, y)
            l_value = l.item()
            if divergence.check(l_value):
                history.diverged = True
                if verbose:
                    per_epoch = len(train_iter) if hasattr(train_iter, "__len__") else 0
                    print(divergence.message(updates, epoch + (i / per_epoch if per_epoch else 0)))
                return history
            l.backward()
            history.lr.append(float(trainer.param_groups[0]["lr"]))
            trainer.step()
            updates += 1
            if is_torch and step_scheduler == "update":
                scheduler.step()
            with torch.no_grad():
                metric.add(l_value * y.numel(), accuracy(y_hat, y), y.numel())
        if is_torch and step_scheduler == "epoch":
            scheduler.step()
        history.train_loss.append(metric[0] / metric[2])
        history.train_acc.append(metric[1] / metric[2])
        if schedule_free:
            with evaluating(trainer):
                history.test_acc.append(evaluate_accuracy_gpu(net, test_iter, device))
        else:
            history.test_acc.append(evaluate_accuracy_gpu(net, test_iter, device))
        history.epochs = epoch + 1
        if animator is not None:
            animator.add(epoch + 1, (history.train_loss[-1], history.train_acc[-1], history.test_acc[-1]))
    if verbose:
        print(f"train loss {history.train_loss[-1]:.3f}, train acc {history.train_acc[-1]:.3f}, "
              f"test acc {history.test_acc[-1]:.3f}")
    return history
