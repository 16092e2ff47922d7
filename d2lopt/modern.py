"""Optimizers from after the book, each a pure update function plus a thin Optimizer shell.

* :class:`Lion` (Chen et al. 2023), pinned to ``lion-pytorch`` 0.2.5.
* :class:`Lamb` (You et al. 2020), pinned to ``torch-optimizer`` 0.3.0's ``Lamb``.
* :class:`Prodigy` (Mishchenko & Defazio 2023) lives in :mod:`d2lopt.prodigy`.

All three are re-exported by :mod:`d2lopt.optim` (``from d2lopt.optim import Lion, Lamb,
Prodigy``). Hyperparameters are validated by `d2lopt.validate`.
"""
import torch

from d2lopt import updates
from d2lopt.validate import CheckedGroups, check_betas, check_flag, check_number

__all__ = ["Lion", "lion_update", "init_lion_state", "Lamb", "lamb_update", "init_lamb_state",
           "run_step"]


def run_step(optimizer, closure, update_param):
    """The shared body of ``step``: ``closure()`` under grad, then ``update_param(p, group)``
    for each parameter with a dense gradient; returns the closure's loss."""
    loss = None
    if closure is not None:
        with torch.enable_grad():
            loss = closure()
    for group in optimizer.param_groups:
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError(f"{type(optimizer).__name__} does not support sparse "
                                   "gradients; use dense gradients")
            update_param(p, group)
    return loss


# ----------------------------------------------------------------------------- Lion

def init_lion_state(param):
    """Fresh Lion state for ``param``: the momentum m0 = 0."""
    return {"m": torch.zeros_like(param, memory_format=torch.preserve_format)}


def lion_update(p, g, state, *, lr, beta1, beta2, weight_decay):
    r"""One Lion step; returns ``(new_p, new_state)`` and leaves its arguments untouched.

    ::

        c     = beta1 m + (1 - beta1) g          (the direction's interpolation)
        p    <- p (1 - lr lambda) - lr sign(c)   (decoupled decay first, then the sign step)
        m    <- beta2 m + (1 - beta2) g          (the momentum, with another beta)

    Every coordinate moves by exactly lr (plus the decay), whatever the gradient's size: hence
    a rate 3-10x smaller and a decay 3-10x larger than AdamW's.

    Symbols -> code: eta = ``lr``, beta_1 = ``beta1``, beta_2 = ``beta2``,
    lambda = ``weight_decay``, m = ``state["m"]``.
    """
    m = state["m"]
    c = updates.ema(m, g, beta1)
    new_p = p * (1 - lr * weight_decay) - lr * torch.sign(c)
    return new_p, {"m": updates.ema(m, g, beta2)}


class Lion(CheckedGroups, torch.optim.Optimizer):
    r"""Lion, "EvoLved Sign Momentum" (Chen et al., 2023), with torch.optim's interface.

    Convention: the authors' rule as in ``lion_pytorch.Lion`` 0.2.5 (and ``optax.lion``):
    m0 = 0, no bias correction, and decoupled weight decay ``p *= 1 - lr * weight_decay``
    applied before the sign step with the current (scheduled) lr. The math is in
    :func:`lion_update`.

    Args:
        params: iterable of tensors or of dicts defining parameter groups.
        lr: learning rate eta, finite and >= 0 (default 1e-4).
        betas: (beta1, beta2), each in [0, 1) (default (0.9, 0.99)).
        weight_decay: decoupled decay lambda, >= 0 (default 0).

    A param group's own settings get the same checks.
    """
    _group_checks = {
        "lr": lambda name, v: check_number(name, v, low=0.0),
        "betas": lambda name, v: check_betas(v, name=name),
        "weight_decay": lambda name, v: check_number(name, v, low=0.0)}

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
        given = dict(lr=lr, betas=betas, weight_decay=weight_decay)
        defaults = {key: self._group_checks[key](key, value) for key, value in given.items()}
        super().__init__(params, defaults)

    def _update(self, p, group):
        state = self.state[p]
        if not state:
            state.update(init_lion_state(p))
        beta1, beta2 = group["betas"]
        new_p, new_state = lion_update(p, p.grad, state, lr=group["lr"], beta1=beta1,
                                       beta2=beta2, weight_decay=group["weight_decay"])
        state.update(new_state)
        p.copy_(new_p)

    @torch.no_grad()
    def step(self, closure=None):
        """Apply one update to every parameter that has a gradient; return ``closure()``'s loss."""
        return run_step(self, closure, self._update)


# ----------------------------------------------------------------------------- LAMB

def init_lamb_state(param):
    """Fresh LAMB state for ``param``: step 0 and m0 = v0 = 0."""
    return {"step": 0,
            "m": torch.zeros_like(param, memory_format=torch.preserve_format),
            "v": torch.zeros_like(param, memory_format=torch.preserve_format)}


def lamb_update(p, g, state, *, lr, beta1, beta2, eps, weight_decay, clamp_value=10.0,
                debias=False):
    r"""One LAMB step for one parameter tensor; returns ``(new_p, new_state)``.

    With t incremented before use (t = 1 on the first update)::

        r  = m / (sqrt(v) + eps) + lambda p     Adam's direction with m, v not bias-corrected
                                                (updates.adam, lr = 1), then decoupled decay
        trust = min(||p||, clamp_value) / ||r||             (1 if either norm is 0)
        p <- p - lr c_t trust r,   c_t = sqrt(1 - beta2^t) / (1 - beta1^t) if debias else 1

    Norms are over the whole tensor (one trust ratio per layer's weight or bias), so every
    tensor moves by about lr ||p||: a step relative to its own size, whatever the batch.

    Symbols -> code: eta = ``lr``, beta_1, beta_2 = ``beta1``, ``beta2``, epsilon = ``eps``,
    lambda = ``weight_decay``, m, v, t = ``state["m"]``, ``state["v"]``, ``state["step"]``.
    """
    t = state["step"] + 1
    r, m, v, _ = updates.adam(g, state["m"], state["v"], t, lr=1.0, beta1=beta1, beta2=beta2,
                              eps=eps, bias_correction=False)
    correction = updates.step_correction(beta1, beta2, t) if debias else 1.0
    if weight_decay != 0:
        r = r + weight_decay * p
    p_norm = torch.linalg.vector_norm(p).clamp(0, clamp_value)
    r_norm = torch.linalg.vector_norm(r)
    trust = 1.0 if p_norm == 0 or r_norm == 0 else p_norm / r_norm
    new_p = p - (lr * correction * trust) * r
    return new_p, {"step": t, "m": m, "v": v, "trust_ratio": float(trust)}


class Lamb(CheckedGroups, torch.optim.Optimizer):
    r"""LAMB (You et al., ICLR 2020): Adam with a layer-wise trust ratio, torch.optim's interface.

    Convention: that of ``torch_optimizer.Lamb`` 0.3.0 (from cybertronai/pytorch-lamb), to the
    last digit: eps = 1e-6 added outside sqrt(v); **no** bias correction by default (the
    paper's v3 has none; ``debias=True`` multiplies the step by sqrt(1 - beta2^t)/(1 - beta1^t),
    as torch_optimizer does); the decay term lambda p joins the direction before the trust
    ratio; ||p|| is clamped to ``clamp_value`` (10) in the ratio. The math is in
    :func:`lamb_update`; ``state["trust_ratio"]`` keeps the last ratio, for plots.

    Args:
        params: iterable of tensors or of dicts defining parameter groups.
        lr: learning rate eta, finite and >= 0 (default 1e-3).
        betas: (beta1, beta2), each in [0, 1) (default (0.9, 0.999)).
        eps: added to sqrt(v), > 0 (default 1e-6).
        weight_decay: decoupled decay lambda, >= 0 (default 0).
        clamp_value: the largest ||p|| used in the trust ratio, > 0 (default 10).
        debias: Adam's bias correction of the step (default False).

    A param group's own settings get the same checks.
    """
    _group_checks = {
        "lr": lambda name, v: check_number(name, v, low=0.0),
        "betas": lambda name, v: check_betas(v, name=name),
        "eps": lambda name, v: check_number(name, v, low=0.0, low_open=True),
        "weight_decay": lambda name, v: check_number(name, v, low=0.0),
        "clamp_value": lambda name, v: check_number(name, v, low=0.0, low_open=True),
        "debias": check_flag}

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0,
                 clamp_value=10.0, debias=False):
        given = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                     clamp_value=clamp_value, debias=debias)
        defaults = {key: self._group_checks[key](key, value) for key, value in given.items()}
        super().__init__(params, defaults)

    def _update(self, p, group):
        state = self.state[p]
        if not state:
            state.update(init_lamb_state(p))
        beta1, beta2 = group["betas"]
        new_p, new_state = lamb_update(p, p.grad, state, lr=group["lr"], beta1=beta1,
                                       beta2=beta2, eps=group["eps"],
                                       weight_decay=group["weight_decay"],
                                       clamp_value=group["clamp_value"], debias=group["debias"])
        state.update(new_state)
        p.copy_(new_p)

    @torch.no_grad()
    def step(self, closure=None):
        """Apply one update to every parameter that has a gradient; return ``closure()``'s loss."""
        return run_step(self, closure, self._update)
