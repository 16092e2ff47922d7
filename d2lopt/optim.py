"""Optimizers that torch.optim lacks, each a pure update function plus a thin Optimizer shell.

* :class:`Yogi` (Zaheer et al. 2018), here.
* :class:`ScheduleFreeSGD`, :class:`ScheduleFreeAdamW`, :func:`evaluating` and
  :func:`is_schedule_free` (Defazio et al. 2024) live in :mod:`d2lopt.schedulefree`; they are
  re-exported here, so ``d2lopt.optim.ScheduleFreeSGD`` etc. work too.
* :class:`Lion`, :class:`Lamb` (:mod:`d2lopt.modern`) and :class:`Prodigy`
  (:mod:`d2lopt.prodigy`), re-exported here the same way.

Hyperparameters are validated by `d2lopt.validate` (messages name the argument and the
allowed range).
"""
import torch

from d2lopt import updates
from d2lopt.modern import Lamb, Lion, run_step
from d2lopt.prodigy import Prodigy
from d2lopt.schedulefree import ScheduleFreeAdamW, ScheduleFreeSGD, evaluating, is_schedule_free
from d2lopt.validate import CheckedGroups, check_betas, check_number

__all__ = ["Yogi", "yogi_update", "init_yogi_state",
           "ScheduleFreeSGD", "ScheduleFreeAdamW", "evaluating", "is_schedule_free",
           "Lion", "Lamb", "Prodigy"]


def init_yogi_state(param, initial_accumulator=1e-6):
    """Fresh Yogi state for ``param``: step 0 and m0 = v0 = ``initial_accumulator``."""
    return {"step": 0,
            "m": torch.full_like(param, initial_accumulator, memory_format=torch.preserve_format),
            "v": torch.full_like(param, initial_accumulator, memory_format=torch.preserve_format)}


def yogi_update(g, state, *, lr, beta1, beta2, eps):
    r"""One Yogi step; returns ``(delta, new_state)`` and leaves ``g`` and ``state`` untouched.

    Yogi is Adam with one line changed: its second moment moves by a step of fixed size
    (1 - beta2) g^2 towards g^2, ``v_t = v_{t-1} - (1 - beta2) sign(v_{t-1} - g^2) g^2``,
    where Adam's moves a fraction (1 - beta2) of the way. The whole rule, with its symbol map,
    is :func:`d2lopt.updates.adam` with ``second_moment="yogi"``; here t = ``state["step"] + 1``,
    m = ``state["m"]``, v = ``state["v"]``, and the caller applies ``theta <- theta - delta``.
    """
    t = state["step"] + 1
    delta, m, v, _ = updates.adam(g, state["m"], state["v"], t, lr=lr, beta1=beta1, beta2=beta2,
                                  eps=eps, second_moment="yogi")
    return delta, {"step": t, "m": m, "v": v}


class Yogi(CheckedGroups, torch.optim.Optimizer):
    r"""Yogi (Zaheer et al., NeurIPS 2018) with torch.optim's interface.

    Convention: that of the published implementations ``torch_optimizer.Yogi`` and
    ``optax.yogi``, which agree to the last digit: both moments start at
    m0 = v0 = ``initial_accumulator`` (1e-6), Adam-style bias correction with one step
    counter, eps = 1e-3 (the paper's value, not Adam's 1e-8) added *outside* the square
    root after bias-correcting v, and coupled L2 weight decay (g <- g + lambda theta before
    the moments). The math is in :func:`yogi_update`. The book's from-scratch ``yogi``
    starts from m0 = v0 = 0 instead; ``Yogi(..., initial_accumulator=0)`` reproduces it.

    Args:
        params: iterable of tensors or of dicts defining parameter groups.
        lr: learning rate eta, finite and >= 0 (default 1e-2).
        betas: (beta1, beta2), each in [0, 1) (default (0.9, 0.999)).
        eps: added to the denominator, > 0 (default 1e-3).
        initial_accumulator: m0 = v0, >= 0 (default 1e-6).
        weight_decay: coupled L2 coefficient lambda, >= 0 (default 0).

    A param group's own settings (``[{'params': ..., 'lr': ...}]`` or ``add_param_group``) get
    the same checks.
    """
    _group_checks = {
        "lr": lambda name, v: check_number(name, v, low=0.0),
        "betas": lambda name, v: check_betas(v, name=name),
        "eps": lambda name, v: check_number(name, v, low=0.0, low_open=True),
        "initial_accumulator": lambda name, v: check_number(name, v, low=0.0),
        "weight_decay": lambda name, v: check_number(name, v, low=0.0)}

    def __init__(self, params, lr=1e-2, betas=(0.9, 0.999), eps=1e-3,
                 initial_accumulator=1e-6, weight_decay=0.0):
        given = dict(lr=lr, betas=betas, eps=eps, initial_accumulator=initial_accumulator,
                     weight_decay=weight_decay)
        defaults = {key: self._group_checks[key](key, value) for key, value in given.items()}
        super().__init__(params, defaults)

    def _update(self, p, group):
        g = p.grad
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * p
        state = self.state[p]
        if not state:
            state.update(init_yogi_state(p, group["initial_accumulator"]))
        beta1, beta2 = group["betas"]
        delta, new_state = yogi_update(g, state, lr=group["lr"], beta1=beta1, beta2=beta2,
                                       eps=group["eps"])
        state.update(new_state)
        p.sub_(delta)

    @torch.no_grad()
    def step(self, closure=None):
        """Apply one update to every parameter that has a gradient; return ``closure()``'s loss."""
        return run_step(self, closure, self._update)
