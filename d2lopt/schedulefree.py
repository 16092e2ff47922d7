r"""Schedule-free SGD and AdamW (Defazio et al. 2024), following facebookresearch/schedule_free 1.4.1.

Schedule-free training keeps three sequences and needs no decaying learning-rate schedule:

* z, the base-optimizer sequence:  z_{k+1} = z_k - gamma_k d_k;
* x, a weighted running average of z:  x_{k+1} = (1 - c_{k+1}) x_k + c_{k+1} z_{k+1},
  so x_{k+1} = sum_j w_j z_{j+1} / sum_j w_j; x is the point to evaluate and to save;
* y, where gradients are taken, between the two:  y_k = (1 - beta) z_k + beta x_k.

Only y (held in the parameter during training) and z (in the optimizer state) are stored;
x = (y - (1 - beta) z) / beta is recovered on demand. Substituting the three lines into each
other gives the update that never forms x:

    y_{k+1} = lerp(y_k, z_k, c_{k+1}) + gamma_k (beta (1 - c_{k+1}) - 1) d_k
    z_{k+1} = z_k - gamma_k d_k

with linear warmup built in and weights that favour steps taken at a large learning rate:

    gamma_k = lr * min(1, (k + 1) / warmup_steps)        (never 0; full lr at k = W - 1)
    w_k = (k + 1)^r * (max_{j<=k} gamma_j)^weight_lr_power,   c_{k+1} = w_k / sum_{j<=k} w_j

Symbols -> code: gamma_k = ``scheduled_lr``, beta = ``momentum`` (SGD) or ``betas[0]`` (AdamW),
lambda = ``weight_decay``, W = ``warmup_steps``, k = ``group["k"]``, c_{k+1} = ``c``,
sum w = ``group["weight_sum"]``, max gamma = ``group["lr_max"]``, z = ``state["z"]``,
v = ``state["exp_avg_sq"]``, y = ``p`` in train mode, x = ``p`` in eval mode.

Modes. The parameters hold y in train mode and x in eval mode. An optimizer starts in eval
mode (y_0 = x_0 = z_0, so nothing moves); call ``optimizer.train()`` before the first
``step()`` and ``optimizer.eval()`` (or use ``with evaluating(optimizer):``) before
evaluating or saving a checkpoint. ``step()`` raises in eval mode.

BatchNorm. Running statistics are accumulated at y, not at x. Before evaluating a model
with BatchNorm, recompute them at x: ``optimizer.eval(); model.train()``, run ~50 training
batches forward under ``torch.no_grad()``, then ``model.eval()``.

Do not combine with a decaying lr scheduler or with base-optimizer momentum: the averaging
replaces both. The weight decay is evaluated at y, as in the original.
"""
import contextlib

import torch

from d2lopt.validate import CheckedGroups, check_betas, check_int, check_number

__all__ = ["ScheduleFreeSGD", "ScheduleFreeAdamW", "evaluating", "is_schedule_free",
           "schedule_free_coefficients", "schedule_free_update"]


def schedule_free_coefficients(k, *, lr, warmup_steps, r, weight_lr_power, lr_max, weight_sum):
    """Scalars for step k (0-based): returns ``(gamma_k, c_{k+1}, new_lr_max, new_weight_sum)``."""
    gamma = lr * min(1.0, (k + 1) / warmup_steps) if warmup_steps > 0 else lr
    lr_max = max(lr_max, gamma)
    weight = (k + 1) ** r * lr_max ** weight_lr_power
    weight_sum = weight_sum + weight
    c = weight / weight_sum if weight_sum > 0 else 0.0  # lr = 0: nothing to average
    return gamma, c, lr_max, weight_sum


def schedule_free_update(y, z, d, *, gamma, c, beta):
    """One step in the stored (y, z) form; returns new tensors ``(y_{k+1}, z_{k+1})``."""
    return torch.lerp(y, z, c) + gamma * (beta * (1 - c) - 1) * d, z - gamma * d


@contextlib.contextmanager
def evaluating(optimizer):
    """Hold the parameters at x inside the block, then restore the mode they were in::

        opt.train()
        for X, y in batches:
            ...                                # forward, backward
            opt.step()
        with evaluating(opt):
            test_loss = evaluate(model, data)  # at x, the averaged point
        # back at y, in train mode: training can go on

    If the optimizer was already in eval mode, it stays there on exit.
    """
    was_training = optimizer.train_mode
    optimizer.eval()
    try:
        yield optimizer
    finally:
        if was_training:
            optimizer.train()


def is_schedule_free(optimizer):
    """Does ``optimizer`` follow the schedule-free protocol: a ``train_mode`` flag and
    ``train()``/``eval()`` methods that move the parameters between y and x?

    Duck-typed, so an optimizer from facebookresearch/schedule_free with the same protocol counts
    too. The trainers use it to switch such an optimizer to train mode and to evaluate at x.
    """
    return hasattr(optimizer, "train_mode") and callable(getattr(optimizer, "eval", None))


def _at_least_0(name, value):
    return check_number(name, value, low=0.0)


def _above_0(name, value):
    return check_number(name, value, low=0.0, low_open=True)


class _ScheduleFree(CheckedGroups, torch.optim.Optimizer):
    """Shared shell: group scalars, train/eval switching, the (y, z) step.

    Subclasses provide ``_beta(group)``, ``_init_state(p, state)`` and
    ``_direction(g, y, state, group, k)`` (the base-optimizer direction d_k), and extend
    ``_group_checks``, which validate the constructor's arguments and every param group's own.
    """
    _group_checks = {"lr": _at_least_0, "weight_decay": _at_least_0,
                     "warmup_steps": lambda name, v: check_int(name, v, low=0),
                     "r": _at_least_0, "weight_lr_power": _at_least_0}

    def __init__(self, params, lr, weight_decay, warmup_steps, r, weight_lr_power, extra):
        given = dict(lr=lr, weight_decay=weight_decay, warmup_steps=warmup_steps, r=r,
                     weight_lr_power=weight_lr_power)
        defaults = {key: self._group_checks[key](key, value) for key, value in given.items()}
        defaults.update(k=0, lr_max=0.0, weight_sum=0.0, scheduled_lr=0.0, train_mode=False,
                        **extra)
        super().__init__(params, defaults)

    @property
    def train_mode(self):
        """True when the parameters hold y (after ``train()``), False when they hold x."""
        return all(group["train_mode"] for group in self.param_groups)

    def _lerp_to_z(self, group, weight):
        for p in group["params"]:
            z = self.state[p].get("z")
            if z is not None:  # a parameter never stepped has x = y = z
                p.lerp_(z.to(p.device), weight)

    @torch.no_grad()
    def eval(self):
        """Switch parameters from y to x = lerp(y, z, 1 - 1/beta). No-op if already in eval mode."""
        for group in self.param_groups:
            if group["train_mode"]:
                self._lerp_to_z(group, 1 - 1 / self._beta(group))
                group["train_mode"] = False

    @torch.no_grad()
    def train(self):
        """Switch parameters from x to y = lerp(x, z, 1 - beta). No-op if already in train mode."""
        for group in self.param_groups:
            if not group["train_mode"]:
                self._lerp_to_z(group, 1 - self._beta(group))
                group["train_mode"] = True

    @torch.no_grad()
    def step(self, closure=None):
        """One schedule-free update of every parameter with a gradient; return the closure's loss."""
        if not self.train_mode:
            raise RuntimeError(
                f"{type(self).__name__}.step() was called in eval mode: call optimizer.train() "
                "before training steps, and optimizer.eval() (or `with evaluating(optimizer):`) "
                "before evaluating or saving a checkpoint")
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            k = group["k"]
            gamma, c, group["lr_max"], group["weight_sum"] = schedule_free_coefficients(
                k, lr=group["lr"], warmup_steps=group["warmup_steps"], r=group["r"],
                weight_lr_power=group["weight_lr_power"], lr_max=group["lr_max"],
                weight_sum=group["weight_sum"])
            group["scheduled_lr"] = gamma
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
                state = self.state[p]
                if "z" not in state:
                    state["z"] = p.clone(memory_format=torch.preserve_format)
                    self._init_state(p, state)
                d = self._direction(p.grad, p, state, group, k)
                y, state["z"] = schedule_free_update(p, state["z"], d, gamma=gamma, c=c,
                                                     beta=self._beta(group))
                p.copy_(y)
            group["k"] = k + 1
        return loss


class ScheduleFreeSGD(_ScheduleFree):
    r"""Schedule-free SGD: the base direction is d_k = g_k + lambda y_k, with g_k = grad f(y_k).

    See the module docstring for the y/z/x recursion, warmup, weights and modes.

    Args:
        params: iterable of tensors or of dicts defining parameter groups.
        lr: peak learning rate, finite and >= 0 (default 1.0).
        momentum: interpolation beta in (0, 1) (default 0.9); 0 would make x unrecoverable.
        weight_decay: L2 coefficient lambda, applied at y, >= 0 (default 0).
        warmup_steps: int W >= 0 for the built-in linear warmup (default 0).
        r: polynomial weighting power of the average, >= 0 (default 0).
        weight_lr_power: power of max lr in the weights, >= 0 (default 2).
    """
    _group_checks = {**_ScheduleFree._group_checks,
                     "momentum": lambda name, v: check_number(name, v, low=0.0, high=1.0,
                                                              low_open=True, high_open=True)}

    def __init__(self, params, lr=1.0, momentum=0.9, weight_decay=0.0, warmup_steps=0,
                 r=0.0, weight_lr_power=2.0):
        momentum = self._group_checks["momentum"]("momentum", momentum)
        super().__init__(params, lr, weight_decay, warmup_steps, r, weight_lr_power,
                         dict(momentum=momentum))

    def _beta(self, group):
        return group["momentum"]

    def _init_state(self, p, state):
        pass

    def _direction(self, g, y, state, group, k):
        return g + group["weight_decay"] * y if group["weight_decay"] != 0 else g


class ScheduleFreeAdamW(_ScheduleFree):
    r"""Schedule-free AdamW: d_k = g_k / (sqrt(v_k / (1 - beta2^{k+1})) + eps) + lambda y_k.

    v_k = beta2 v_{k-1} + (1 - beta2) g_k^2 with v = 0 initially; there is no first moment
    (beta1 is the y interpolation weight, playing momentum's role). The bias correction is
    inside d, not in gamma_k, as in schedule_free >= 1.3 (the older ``AdamWScheduleFreePaper``
    put it into gamma_k and hence into the weights). See the module docstring for the rest.

    Args:
        params: iterable of tensors or of dicts defining parameter groups.
        lr: peak learning rate, finite and >= 0 (default 0.0025).
        betas: (beta1, beta2) with beta1 in (0, 1), beta2 in [0, 1) (default (0.9, 0.999)).
        eps: added to the denominator, > 0 (default 1e-8).
        weight_decay: decoupled coefficient lambda, applied at y, >= 0 (default 0).
        warmup_steps: int W >= 0 for the built-in linear warmup (default 0).
        r: polynomial weighting power of the average, >= 0 (default 0).
        weight_lr_power: power of max lr in the weights, >= 0 (default 2).
    """
    _group_checks = {**_ScheduleFree._group_checks, "eps": _above_0,
                     "betas": lambda name, v: check_betas(v, name=name, beta1_low_open=True)}

    def __init__(self, params, lr=0.0025, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 warmup_steps=0, r=0.0, weight_lr_power=2.0):
        extra = dict(betas=self._group_checks["betas"]("betas", betas),
                     eps=self._group_checks["eps"]("eps", eps))
        super().__init__(params, lr, weight_decay, warmup_steps, r, weight_lr_power, extra)

    def _beta(self, group):
        return group["betas"][0]

    def _init_state(self, p, state):
        state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _direction(self, g, y, state, group, k):
        beta2 = group["betas"][1]
        v = beta2 * state["exp_avg_sq"] + (1 - beta2) * g * g
        state["exp_avg_sq"] = v
        d = g / ((v / (1 - beta2 ** (k + 1))).sqrt() + group["eps"])
        return d + group["weight_decay"] * y if group["weight_decay"] != 0 else d
