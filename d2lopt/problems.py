"""Two-dimensional test problems with their gradients, shared by the sections' pictures.

Each `Problem` holds ``f(x1, x2)`` (works on floats and tensors), its gradient, a start point
and the minimizer. The gradients are written by hand and checked against autograd in the tests.
"""
from dataclasses import dataclass
from typing import Callable, Tuple

import torch

__all__ = ["Problem", "quadratic", "ill_conditioned", "rosenbrock", "beale", "saddle", "PROBLEMS"]


@dataclass(frozen=True)
class Problem:
    name: str
    f: Callable
    grad: Callable
    x0: Tuple[float, float]
    minimum: Tuple[float, float]

    def __repr__(self):
        return f"Problem({self.name!r}, x0={self.x0}, minimum={self.minimum})"


def _quadratic(a, b):
    return Problem(f"{a:g}*x1^2 + {b:g}*x2^2",
                   lambda x1, x2: a * x1 ** 2 + b * x2 ** 2,
                   lambda x1, x2: (2 * a * x1, 2 * b * x2),
                   (-5.0, -2.0), (0.0, 0.0))


quadratic = _quadratic(1.0, 2.0)            # gradient descent section: x1^2 + 2 x2^2
ill_conditioned = _quadratic(0.1, 2.0)      # momentum/AdaGrad/RMSProp: condition number 20

rosenbrock = Problem(
    "rosenbrock",
    lambda x1, x2: (1 - x1) ** 2 + 100 * (x2 - x1 ** 2) ** 2,
    lambda x1, x2: (-2 * (1 - x1) - 400 * x1 * (x2 - x1 ** 2), 200 * (x2 - x1 ** 2)),
    (-1.5, 2.0), (1.0, 1.0))


def _beale_terms(x1, x2):
    return (1.5 - x1 + x1 * x2, 2.25 - x1 + x1 * x2 ** 2, 2.625 - x1 + x1 * x2 ** 3)


def _beale_grad(x1, x2):
    t1, t2, t3 = _beale_terms(x1, x2)
    g1 = 2 * t1 * (x2 - 1) + 2 * t2 * (x2 ** 2 - 1) + 2 * t3 * (x2 ** 3 - 1)
    g2 = 2 * t1 * x1 + 2 * t2 * 2 * x1 * x2 + 2 * t3 * 3 * x1 * x2 ** 2
    return g1, g2


beale = Problem("beale", lambda x1, x2: sum(t ** 2 for t in _beale_terms(x1, x2)),
                _beale_grad, (1.0, 1.5), (3.0, 0.5))

saddle = Problem("saddle x1^2 - x2^2", lambda x1, x2: x1 ** 2 - x2 ** 2,
                 lambda x1, x2: (2 * x1, -2 * x2), (-1.0, 1e-3), (float("nan"), float("nan")))

PROBLEMS = {p.name: p for p in (quadratic, ill_conditioned, rosenbrock, beale, saddle)}


def autograd_check(problem, point):
    """Gradient of ``problem.f`` at ``point`` by autograd, for tests and check cells."""
    x = torch.tensor(point, dtype=torch.float64, requires_grad=True)
    problem.f(x[0], x[1]).backward()
    return tuple(x.grad.tolist())
