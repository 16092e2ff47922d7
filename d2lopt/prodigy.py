"""Prodigy (Mishchenko & Defazio 2023): Adam whose step size d is estimated as it goes.

A pure update function :func:`prodigy_update` plus a thin Optimizer shell :class:`Prodigy`,
pinned to the ``prodigyopt`` package (1.1.2); re-exported by :mod:`d2lopt.optim`.
"""
import math

import torch

from d2lopt import updates
from d2lopt.modern import run_step
from d2lopt.validate import CheckedGroups, check_betas, check_flag, check_number, optional

__all__ = ["Prodigy", "prodigy_update", "init_prodigy_state", "init_prodigy_shared"]

# Settings read once for all groups (as prodigyopt reads them from the first group).
SHARED_SETTINGS = ("betas", "beta3", "d0", "d_coef", "growth_rate")


def init_prodigy_state(param):
    """Fresh per-tensor state: step 0, the starting point p0, and m = v = s = 0."""
    zeros = lambda: torch.zeros_like(param, memory_format=torch.preserve_format)
    return {"step": 0, "p0": param.detach().clone(), "m": zeros(), "v": zeros(), "s": zeros()}


def init_prodigy_shared(d0):
    """Fresh shared state: the estimate d = d_max = d0, the numerator 0, k = 0 steps taken."""
    return {"d": d0, "d_max": d0, "d_numerator": 0.0, "k": 0}


def prodigy_update(params, grads, states, shared, settings, *, lr, beta1, beta2, beta3, d0,
                   d_coef=1.0, growth_rate=math.inf):
    r"""One Prodigy step for all tensors at once; returns ``(new_params, new_states, new_shared)``.

    ``settings[i]`` holds tensor i's ``eps``, ``weight_decay``, ``decouple`` and ``lr`` (its
    group's; an ``lr`` of 0 freezes its moments and its share of the d estimate). With
    the step size dlr = d lr (d: the current estimate) and g the gradient (plus lambda p when
    not ``decouple``), for every tensor::

        r  <- r beta3 + (d/d0) dlr <g, p0 - p>           (r: ``d_numerator``, one number)
        s  <- beta3 s + (d/d0) dlr g
        m  <- beta1 m + d (1 - beta1) g,    v <- beta2 v + d^2 (1 - beta2) g^2

    then (unless every s is 0: nothing is learned yet and only m, v, s change)::

        d_hat = d_coef r / sum ||s||_1,   d_max <- max(d_max, d_hat)
        d <- min(d_max, d growth_rate)    (d first rises to max(d0, d_hat) while d = d0)
        p <- p - lambda dlr p - dlr m / (sqrt(v) + d eps)     (dlr with the old d, eps with the new)

    d estimates the distance ||x0 - x*|| from how far the iterates have moved along the
    gradients; the moments carry d so that the step keeps Adam's scale-free form.

    Symbols -> code: d = ``shared["d"]``, r = ``shared["d_numerator"]``, beta_1..3 = ``beta1``,
    ``beta2``, ``beta3``, lambda = ``weight_decay``, m, v, s, p0 = ``states[i][...]``.
    """
    d = shared["d"]
    dlr = d * lr
    numerator = shared["d_numerator"] * beta3
    denominator = 0.0
    staged, grads = [], list(grads)
    for i, (p, g, state, opts) in enumerate(zip(params, grads, states, settings)):
        if opts["weight_decay"] != 0 and not opts["decouple"]:
            g = grads[i] = g + opts["weight_decay"] * p
        m, v, s = state["m"], state["v"], state["s"]
        if opts["lr"] > 0:
            numerator += (d / d0) * dlr * torch.dot(g.flatten(), (state["p0"] - p).flatten()).item()
            m = updates.ema(m, d * g, beta1)
            v = updates.ema(v, d * d * g * g, beta2)
            s = beta3 * s + ((d / d0) * dlr) * g
            denominator += s.abs().sum().item()
        staged.append({**state, "m": m, "v": v, "s": s})
    if denominator == 0:
        return list(params), staged, dict(shared)

    d_hat = d_coef * numerator / denominator
    new_d = max(d, d_hat) if d == d0 else d
    d_max = max(shared["d_max"], d_hat)
    new_d = min(d_max, new_d * growth_rate)
    new_params = []
    for p, g, state, opts in zip(params, grads, staged, settings):
        if opts["weight_decay"] != 0 and opts["decouple"]:
            p = p - (opts["weight_decay"] * dlr) * p
        direction = state["m"] if beta1 > 0 else new_d * g
        new_params.append(p - dlr * direction / updates.rms(state["v"], new_d * opts["eps"]))
        state["step"] += 1
    new_shared = {"d": new_d, "d_max": d_max, "d_numerator": numerator, "k": shared["k"] + 1}
    return new_params, staged, new_shared


def only(value):
    """A check that accepts just ``value`` (an option of prodigyopt this class leaves out)."""
    def check(name, given):
        if given != value:
            raise ValueError(f"{name}={given!r} is not implemented here (only {name}={value!r},"
                             " prodigyopt's default); use prodigyopt.Prodigy for it")
        return given
    return check


class Prodigy(CheckedGroups, torch.optim.Optimizer):
    r"""Prodigy (Mishchenko & Defazio, 2023) with torch.optim's interface.

    Convention: ``prodigyopt.Prodigy`` 1.1.2's default path, to the last digit: no bias
    correction, no safeguard warmup, slice_p = 1, decoupled weight decay scaled by d lr, eps
    outside sqrt(v) and scaled by d, beta3 = sqrt(beta2) when None. The math is in
    :func:`prodigy_update`. ``use_bias_correction``, ``safeguard_warmup`` and ``slice_p`` accept
    only their defaults. The estimate is shared by all groups: betas, beta3, d0, d_coef and
    growth_rate must be the same in every group, and each group's lr must be the largest lr or 0.
    ``param_groups[i]["d"]`` is the current estimate (the effective rate is d lr).

    Args:
        params: iterable of tensors or of dicts defining parameter groups.
        lr: multiplier of the estimated rate, >= 0 (default 1: leave it unless unstable).
        betas: (beta1, beta2), each in [0, 1) (default (0.9, 0.999)).
        beta3: decay of the d estimate's sums, in [0, 1), or None for sqrt(beta2).
        eps: added to sqrt(v) (times d), > 0 (default 1e-8).
        weight_decay: lambda, >= 0 (default 0); ``decouple`` (default True) as in AdamW,
            else coupled L2 added to the gradient.
        d0: initial estimate, > 0 (default 1e-6). d_coef: multiplier of the estimate, > 0.
        growth_rate: the most d may grow per step, >= 1 (default inf, unlimited).
    """
    _group_checks = {
        "lr": lambda name, v: check_number(name, v, low=0.0),
        "betas": lambda name, v: check_betas(v, name=name),
        "beta3": optional(lambda name, v: check_number(name, v, low=0.0, high=1.0,
                                                        high_open=True)),
        "eps": lambda name, v: check_number(name, v, low=0.0, low_open=True),
        "weight_decay": lambda name, v: check_number(name, v, low=0.0),
        "decouple": check_flag,
        "d0": lambda name, v: check_number(name, v, low=0.0, low_open=True),
        "d_coef": lambda name, v: check_number(name, v, low=0.0, low_open=True),
        "growth_rate": lambda name, v: (v if v == math.inf else check_number(name, v, low=1.0)),
        "use_bias_correction": only(False), "safeguard_warmup": only(False), "slice_p": only(1)}

    def __init__(self, params, lr=1.0, betas=(0.9, 0.999), beta3=None, eps=1e-8,
                 weight_decay=0.0, decouple=True, d0=1e-6, d_coef=1.0, growth_rate=math.inf,
                 use_bias_correction=False, safeguard_warmup=False, slice_p=1):
        given = dict(lr=lr, betas=betas, beta3=beta3, eps=eps, weight_decay=weight_decay,
                     decouple=decouple, d0=d0, d_coef=d_coef, growth_rate=growth_rate,
                     use_bias_correction=use_bias_correction, safeguard_warmup=safeguard_warmup,
                     slice_p=slice_p)
        defaults = {key: self._group_checks[key](key, value) for key, value in given.items()}
        super().__init__(params, defaults)

    def add_param_group(self, param_group):
        super().add_param_group(param_group)
        first, new = self.param_groups[0], self.param_groups[-1]
        for key in SHARED_SETTINGS:
            if new[key] != first[key]:
                self.param_groups.pop()
                raise ValueError(f"param_groups[{len(self.param_groups)}][{key!r}] must equal "
                                 f"param_groups[0][{key!r}] = {first[key]!r} (Prodigy shares "
                                 f"one estimate across groups), got {new[key]!r}")
        for key, value in init_prodigy_shared(first["d0"]).items():
            new.setdefault(key, first.get(key, value))

    @torch.no_grad()
    def step(self, closure=None):
        """Apply one update to every parameter that has a gradient; return ``closure()``'s loss."""
        tensors = []
        loss = run_step(self, closure, lambda p, group: tensors.append((p, group)))
        lr = max(group["lr"] for group in self.param_groups)
        for group in self.param_groups:
            if group["lr"] not in (lr, 0.0):
                raise ValueError(f"every param group's lr must be {lr} (the largest) or 0, "
                                 f"got {group['lr']}: Prodigy shares one estimate of the rate")
        if not tensors:
            return loss
        first = self.param_groups[0]
        beta1, beta2 = first["betas"]
        beta3 = math.sqrt(beta2) if first["beta3"] is None else first["beta3"]
        for p, _ in tensors:
            if not self.state[p]:
                self.state[p].update(init_prodigy_state(p))
        new_params, new_states, shared = prodigy_update(
            [p for p, _ in tensors], [p.grad for p, _ in tensors],
            [self.state[p] for p, _ in tensors], {k: first[k] for k in ("d", "d_max",
                                                                          "d_numerator", "k")},
            [group for _, group in tensors], lr=lr, beta1=beta1, beta2=beta2, beta3=beta3,
            d0=first["d0"], d_coef=first["d_coef"], growth_rate=first["growth_rate"])
        for (p, _), new_p, new_state in zip(tensors, new_params, new_states):
            self.state[p].update(new_state)
            p.copy_(new_p)
        for group in self.param_groups:
            group.update(shared)
        return loss
