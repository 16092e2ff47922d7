"""Sharpness: the largest eigenvalue of a loss's Hessian with respect to a model's parameters.

Gradient descent on a quadratic with Hessian H is stable only for lr < 2 / lambda_max(H)
(sections 11.3 and 11.5). For a network, lambda_max of the training loss's Hessian, its
*sharpness*, moves during training; under full-batch gradient descent it typically rises to
2 / lr and hovers there (Cohen et al., "Gradient Descent on Neural Networks Typically Occurs at
the Edge of Stability", ICLR 2021). Both functions below see the parameters as one flat vector,
in the order of ``params`` (the order of ``torch.nn.utils.parameters_to_vector``).

* ``hvp(loss_fn, params, v)``: H v without forming H (Pearlmutter, 1994): H v is the gradient
  of g(theta) . v, where g is the gradient built with ``create_graph=True``.
* ``top_eigenvalue(loss_fn, params, iters=20, v0=None, *, tol=0.0, seed=0)``: power iteration
  v <- H v / ||H v||; returns ``(lam, v)``, the Rayleigh quotient v^T H v (a float) and the unit
  vector v. It finds the eigenvalue of largest *magnitude*: lambda_max for the losses of the
  notebooks, where the negative eigenvalues are smaller in size. Warm-start it from the
  previous ``v`` when tracking the sharpness during training: a few iterations then suffice.

Neither function touches ``.grad`` (they use ``torch.autograd.grad``), so they can run between
``loss.backward()`` and ``optimizer.step()``.

Symbols: H = Hessian of ``loss_fn()`` with respect to ``params``, v = ``v``, lambda = ``lam``.

>>> loss_fn = lambda: 0.5 * ((net(X).squeeze(-1) - y) ** 2).mean()
>>> lam, v = top_eigenvalue(loss_fn, list(net.parameters()), iters=50)
>>> lam, v = top_eigenvalue(loss_fn, list(net.parameters()), v0=v)   # later, warm-started
"""
import math

import torch

from d2lopt.validate import check_callable, check_int, check_number

__all__ = ["hvp", "top_eigenvalue"]


def _params(params):
    """``params`` as a non-empty list of floating tensors that require grad."""
    if isinstance(params, torch.Tensor):
        params = [params]
    try:
        params = list(params)
    except TypeError:
        raise TypeError(f"params must be an iterable of tensors (e.g. net.parameters()), "
                        f"got {type(params).__name__}") from None
    if not params:
        raise ValueError("params must hold at least one tensor, got an empty sequence")
    for i, p in enumerate(params):
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"params[{i}] must be a tensor, got {type(p).__name__}")
        if not (p.is_floating_point() and p.requires_grad):
            raise ValueError(f"params[{i}] must be a floating tensor with requires_grad=True")
    return params


def _flat_grad(loss_fn, params):
    """The gradient of ``loss_fn()`` as one flat vector, with its graph (for H v)."""
    check_callable("loss_fn", loss_fn, "a callable with no arguments that returns the loss")
    with torch.enable_grad():
        loss = loss_fn()
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            what = f"a tensor of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) \
                else type(loss).__name__
            raise ValueError(f"loss_fn must return a scalar tensor, got {what}")
        if not torch.isfinite(loss.detach()).all():
            raise ValueError(f"loss_fn returned a non-finite loss ({loss.item()})")
        grads = torch.autograd.grad(loss.reshape(()), params, create_graph=True,
                                    allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                      for g, p in zip(grads, params)])


def _vector(name, v, n, like):
    """``v`` as a flat tensor of length ``n`` with the dtype and device of ``like``."""
    if not isinstance(v, torch.Tensor):
        raise TypeError(f"{name} must be a tensor, got {type(v).__name__}")
    if v.dim() != 1 or v.numel() != n:
        raise ValueError(f"{name} must be a 1-D tensor of length {n} (the number of parameters), "
                         f"got shape {tuple(v.shape)}")
    if not v.is_floating_point() or not torch.isfinite(v).all():
        raise ValueError(f"{name} must hold finite floating-point numbers")
    return v.detach().to(dtype=like.dtype, device=like.device)


def _product(g, params, v):
    """H v from the flat gradient ``g`` (with its graph); the graph is kept for the next one."""
    gv = g @ v
    if not gv.requires_grad:            # the gradient does not depend on the parameters: H = 0
        return torch.zeros_like(g).detach()
    hv = torch.autograd.grad(gv, params, retain_graph=True, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if h is None else h).reshape(-1)
                      for h, p in zip(hv, params)]).detach()


def hvp(loss_fn, params, v):
    """The Hessian-vector product H v of ``loss_fn()`` with respect to ``params`` (flattened).

    Args: loss_fn: a callable with no arguments returning the scalar loss; params: the tensors
    (requires_grad=True); v: a 1-D tensor with one entry per parameter. Returns H v, detached.
    """
    params = _params(params)
    g = _flat_grad(loss_fn, params)
    return _product(g, params, _vector("v", v, g.numel(), g))


def top_eigenvalue(loss_fn, params, iters=20, v0=None, *, tol=0.0, seed=0):
    """Power iteration on the Hessian of ``loss_fn()``: ``(lam, v)`` with lam = v^T H v.

    Args: loss_fn, params: as in :func:`hvp`; iters (20): the number of products H v;
    v0: the start (any non-zero 1-D tensor, e.g. the ``v`` of the previous call), or None for
    a random one drawn with ``seed``; tol (0.0): stop early once the estimate changes by at
    most ``tol * |lam|`` between two iterations. The graph of the gradient is built once and
    reused by every product. Returns lam, the Rayleigh quotient of the last vector multiplied,
    as a float, and v = H v / ||H v||, the next iterate (a unit vector, for a warm start).
    """
    params = _params(params)
    iters = check_int("iters", iters, low=1)
    tol = check_number("tol", tol, low=0.0)
    seed = check_int("seed", seed, low=0)
    g = _flat_grad(loss_fn, params)
    if v0 is None:
        v = torch.randn(g.numel(), generator=torch.Generator().manual_seed(seed),
                        dtype=torch.float64).to(dtype=g.dtype, device=g.device)
    else:
        v = _vector("v0", v0, g.numel(), g)
    norm = v.norm()
    if norm == 0:
        raise ValueError("v0 must not be the zero vector")
    v, lam = v / norm, math.nan
    for _ in range(iters):
        hv = _product(g, params, v)
        previous, lam = lam, (v @ hv).item()
        norm = hv.norm()
        if norm == 0:                   # v is in the null space of H: lam = 0 is exact
            return 0.0, v
        v = hv / norm
        if abs(lam - previous) <= tol * abs(lam):
            break
    return lam, v
