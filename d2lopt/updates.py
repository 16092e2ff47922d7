"""The update cores of the chapter's optimizers, written once and shared.

Every function here is pure: it takes the gradient ``g`` and the old state tensors, and returns
the step ``delta`` (the caller applies ``theta <- theta - delta``) with the new state tensors;
nothing is modified in place. Names, defaults and eps placement are torch.optim's, so each core
with its defaults gives torch's numbers; the book's variants and the usual mistakes are keyword
arguments, so that each is the reference with one switch flipped:

* ``adam(..., second_moment="yogi")`` is Yogi (`d2lopt.optim.Yogi`): Adam with one line changed;
* ``adam(..., lr=1.0, bias_correction=False)`` is LAMB's direction (`d2lopt.modern.Lamb`);
* ``adagrad(..., eps_inside=True, eps=1e-6)`` is the book's AdaGrad;
* `d2lopt.mistakes` models a known-wrong update as a core with a flag: bias correction off or
  on one moment only, eps inside the square root, eps added before the bias correction, a
  moving average without its (1 - beta), no square root at all.

The step counter ``t`` counts updates including this one: t = 1 on the first.
"""
import math

import torch

__all__ = ["ema", "debias", "step_correction", "rms", "sgd_momentum", "adagrad", "rmsprop",
           "adadelta", "adam"]

SECOND_MOMENTS = ("adam", "yogi")


def ema(avg, x, beta, *, average=True):
    """The moving average ``beta avg + (1 - beta) x``.

    ``average=False`` drops the (1 - beta) and gives ``beta avg + x``: a running sum that settles
    near x / (1 - beta), not near x (in RMSProp, Adadelta or Adam, a mistake).
    """
    return beta * avg + ((1 - beta) if average else 1.0) * x


def debias(avg, beta, t):
    """``avg / (1 - beta**t)``: an average started at 0, after t updates, rescaled so that it no
    longer leans towards its zero start (t >= 1; t = 0 divides by zero)."""
    return avg / (1 - beta ** t)


def step_correction(beta1, beta2, t):
    """``sqrt(1 - beta2**t) / (1 - beta1**t)``: both bias corrections of Adam folded into one
    factor of the step, for rules that add eps to the uncorrected sqrt(v)."""
    return math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)


def rms(s, eps, *, eps_inside=False, root=True):
    """The denominator of an adaptive step: ``sqrt(s) + eps`` (torch.optim's Adagrad, RMSprop,
    Adam), ``sqrt(s + eps)`` with ``eps_inside`` (the book's AdaGrad and RMSProp, optax, and
    Adadelta everywhere), or ``s + eps`` with ``root=False`` (a mistake)."""
    if not root:
        return s + eps
    return (s + eps).sqrt() if eps_inside else s.sqrt() + eps


def sgd_momentum(g, b, *, lr, momentum, dampening=0.0, nesterov=False):
    r"""SGD with momentum as torch.optim.SGD has it; returns ``(delta, b)``.

    ::

        b = g                              on the first step (pass b=None)
        b = mu b + (1 - tau) g             afterwards
        delta = lr (g + mu b) if nesterov else lr b

    Symbols -> code: eta = ``lr``, mu = ``momentum``, tau = ``dampening``, b = ``b`` (torch's
    ``momentum_buffer``; the book's v). The book starts from v = 0, which gives the same
    numbers when tau = 0; from ``b = zeros`` with tau = mu, b is the moving average
    ``ema(b, g, mu)`` instead, 1 - mu times smaller (a mistake the checks name).
    """
    b = g.clone() if b is None else momentum * b + (1 - dampening) * g
    return lr * (g + momentum * b if nesterov else b), b


def adagrad(g, s, *, lr=1e-2, eps=1e-10, eps_inside=False, root=True):
    r"""AdaGrad as torch.optim.Adagrad has it (no lr_decay); returns ``(delta, s)``.

    ::

        s = s + g^2                        (s_0 = initial_accumulator_value, default 0)
        delta = lr g / (sqrt(s) + eps)     (eps_inside: sqrt(s + eps), the book's form)

    Symbols -> code: eta = ``lr``, epsilon = ``eps``, s = ``s`` (torch's ``sum``). The book's
    AdaGrad is ``eps_inside=True, eps=1e-6``; ``root=False`` is the mistake g / (s + eps).
    """
    s = s + g * g
    return lr * g / rms(s, eps, eps_inside=eps_inside, root=root), s


def rmsprop(g, s, *, lr=1e-2, alpha=0.99, eps=1e-8, eps_inside=False, root=True, average=True):
    r"""RMSProp as torch.optim.RMSprop has it (not centered, no momentum); returns ``(delta, s)``.

    ::

        s = alpha s + (1 - alpha) g^2
        delta = lr g / (sqrt(s) + eps)     (eps_inside: sqrt(s + eps), the book's form)

    Symbols -> code: eta = ``lr``, the book's gamma = ``alpha``, epsilon = ``eps``,
    s = ``s`` (torch's ``square_avg``). The book uses alpha = 0.9 and ``eps_inside=True,
    eps=1e-6``; ``average=False`` is the mistake s = alpha s + g^2 (see :func:`ema`).
    """
    s = ema(s, g * g, alpha, average=average)
    return lr * g / rms(s, eps, eps_inside=eps_inside, root=root), s


def adadelta(g, v, u, *, lr=1.0, rho=0.9, eps=1e-6, eps_inside=True, average=True):
    r"""Adadelta as torch.optim.Adadelta has it; returns ``(delta, v, u)``.

    ::

        v = rho v + (1 - rho) g^2
        d = sqrt(u + eps) / sqrt(v + eps) g
        u = rho u + (1 - rho) d^2          (the unscaled d: lr multiplies only the step)
        delta = lr d

    Symbols -> code: rho = ``rho``, epsilon = ``eps``, v = ``v`` (torch's ``square_avg``, the
    book's s), u = ``u`` (torch's ``acc_delta``, the book's delta). The book has no lr (lr = 1)
    and eps = 1e-5. ``eps_inside=False`` puts eps outside both roots and ``average`` (one flag,
    or a pair for v and u) drops a (1 - rho): mistakes.
    """
    avg_v, avg_u = (average, average) if isinstance(average, bool) else average
    v = ema(v, g * g, rho, average=avg_v)
    d = rms(u, eps, eps_inside=eps_inside) / rms(v, eps, eps_inside=eps_inside) * g
    return lr * d, v, ema(u, d * d, rho, average=avg_u)


def adam(g, m, v, t, *, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, second_moment="adam",
         v_max=None, bias_correction=True, eps_inside=False, correct_step=False, average=True):
    r"""Adam as torch.optim.Adam has it, and its relatives; returns ``(delta, m, v, v_max)``.

    With t the number of this update (1 on the first)::

        m = beta1 m + (1 - beta1) g
        v = beta2 v + (1 - beta2) g^2                         second_moment="adam"
        v = v - (1 - beta2) sign(v - g^2) g^2                 second_moment="yogi"
        v_max = max(v_max, v), used in place of v             AMSGrad: pass v_max (0 at first;
                                                          otherwise v_max stays None)
        m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)
        delta = lr m_hat / (sqrt(v_hat) + eps)

    Adam's v moves a fraction (1 - beta2) of its gap to g^2: when the gradients turn small, v
    decays geometrically and the effective rate lr / sqrt(v) grows fast. Yogi's moves by
    (1 - beta2) g^2 towards g^2, far less when g^2 << v, so the rate grows slowly.

    Switches (the defaults are torch's): ``bias_correction`` False, or a pair (for m, for v),
    leaves m or v uncorrected; ``eps_inside`` uses sqrt(v_hat + eps); ``correct_step`` adds
    eps to the uncorrected sqrt(v) and moves both corrections into the step,
    ``lr`` * :func:`step_correction` (tf-addons' Yogi, LAMB with debias); ``average`` False (or
    a pair) drops a (1 - beta) (a mistake); the caller's t may be off by one (a mistake).

    Symbols -> code: eta = ``lr``, beta_1, beta_2 = ``beta1``, ``beta2``, epsilon = ``eps``,
    m = ``m`` (torch's ``exp_avg``, the book's v), v = ``v`` (``exp_avg_sq``, the book's s),
    v_max = ``v_max`` (``max_exp_avg_sq``). The book's Adam is the default with eps = 1e-6.
    """
    if second_moment not in SECOND_MOMENTS:
        raise ValueError(f"second_moment must be one of {SECOND_MOMENTS}, got {second_moment!r}")
    avg_m, avg_v = (average, average) if isinstance(average, bool) else average
    fix_m, fix_v = ((bias_correction, bias_correction) if isinstance(bias_correction, bool)
                    else bias_correction)
    g2 = g * g
    m = ema(m, g, beta1, average=avg_m)
    if second_moment == "adam":
        v = ema(v, g2, beta2, average=avg_v)
    else:
        v = v - ((1 - beta2) if avg_v else 1.0) * torch.sign(v - g2) * g2
    if v_max is not None:
        v_max = torch.maximum(v_max, v)
    v_used = v if v_max is None else v_max
    if correct_step:    # a beta of 0 in step_correction leaves its moment uncorrected
        scale = lr * step_correction(beta1 if fix_m else 0.0, beta2 if fix_v else 0.0, t)
        delta = scale * m / rms(v_used, eps, eps_inside=eps_inside)
    else:
        m_hat = debias(m, beta1, t) if fix_m else m
        v_hat = debias(v_used, beta2, t) if fix_v else v_used
        delta = lr * m_hat / rms(v_hat, eps, eps_inside=eps_inside)
    return delta, m, v, v_max
