"""Adapters of a schedule s(t): to a ``torch.optim`` optimizer, and from epochs to updates.

>>> sched = attach(opt, schedules.cosine(0.1, total_steps=100))
>>> for X, y in batches: ...; opt.step(); sched.step()     # update t runs at s(t)

`d2lopt.schedules` re-exports these names (``schedules.attach``), so a notebook needs one import.
"""
import dataclasses

from torch import Tensor
from torch.optim.lr_scheduler import LRScheduler

from d2lopt.validate import check_callable, check_int

__all__ = ["ScheduleLR", "attach", "per_epoch"]


@dataclasses.dataclass(frozen=True)
class per_epoch:
    """A rule per epoch as a rule per update: lr(t) = schedule(t // updates_per_epoch).

    Every trainer evaluates ``s(t)`` at the update count t; a schedule written in epochs (the
    book's ``SquareRootScheduler``, a step decay every 10 epochs) is wrapped by this, with
    ``updates_per_epoch = len(train_iter)``.
    """
    schedule: object
    updates_per_epoch: int

    def __post_init__(self):
        check_callable("schedule", self.schedule, "a callable lr = s(epoch)")
        check_int("updates_per_epoch", self.updates_per_epoch, low=1)

    def __call__(self, t):
        return float(self.schedule(check_int("t", t, low=0) // self.updates_per_epoch))


class ScheduleLR(LRScheduler):
    """A torch LR scheduler that sets each group's lr to s(t), in closed form.

    Construction sets every group's lr to s(0); the k-th ``step()`` sets s(k). So with
    ``opt.step(); sched.step()`` update t runs at s(t), and since nothing is multiplied,
    an lr edited by hand in between does not leak into later steps. ``state_dict()`` holds
    the step count only: rebuild with the same schedules, then ``load_state_dict``.
    """

    def __init__(self, optimizer, schedule, last_epoch=-1):
        n_groups = len(optimizer.param_groups)
        many = not callable(schedule) and hasattr(schedule, "__iter__")
        schedules = tuple(schedule) if many else (schedule,) * n_groups
        if len(schedules) != n_groups or not all(callable(s) for s in schedules):
            raise ValueError(f"schedule must be one callable or {n_groups} callables "
                             f"(one per param group), got {schedule!r}")
        self.schedules = schedules
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [float(s(self.last_epoch)) for s in self.schedules]

    _get_closed_form_lr = get_lr

    def state_dict(self):
        return {k: v for k, v in super().state_dict().items() if k != "schedules"}

    def load_state_dict(self, state_dict):
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "schedules"})
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            if isinstance(group["lr"], Tensor):
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr
        self._last_lr = self.get_lr()


def attach(optimizer, schedule):
    """Drive ``optimizer``'s learning rates by ``schedule``: returns a `ScheduleLR`.

    ``schedule`` is one schedule for every param group, or a sequence with one per group. The
    value is the group's rate itself, not a factor of its initial lr: to scale groups
    differently, pass one schedule per group (e.g. ``[cosine(1e-3, T), cosine(1e-2, T)]``).
    """
    return ScheduleLR(optimizer, schedule)
