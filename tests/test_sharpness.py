"""d2lopt.sharpness: Hessian-vector products and power iteration, pinned in float64 to the exact
Hessian from torch.autograd.functional.hessian, to quadratics with known spectra, and to the
argument checks (a TypeError/ValueError that names the argument)."""
import math

import pytest
import torch
from torch import nn

from d2lopt import sharpness

F64 = torch.float64


def small_net(seed=0, width=6):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, width), nn.Tanh(), nn.Linear(width, 1)).double()


def data(seed=1, n=30):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g, dtype=F64), torch.randn(n, generator=g, dtype=F64)


def loss_and_exact_hessian(net, X, y):
    """The closure of the half MSE and its exact Hessian w.r.t. the flat parameter vector."""
    names, shapes = zip(*[(n, p.shape) for n, p in net.named_parameters()])

    def loss_at(theta):
        chunks = theta.split([math.prod(s) for s in shapes])
        ps = {n: c.reshape(s) for n, c, s in zip(names, chunks, shapes)}
        return 0.5 * ((torch.func.functional_call(net, ps, (X,)).squeeze(-1) - y) ** 2).mean()

    theta = nn.utils.parameters_to_vector(net.parameters()).detach()
    H = torch.autograd.functional.hessian(loss_at, theta)
    return (lambda: 0.5 * ((net(X).squeeze(-1) - y) ** 2).mean()), H


def quadratic(eigenvalues, seed=0):
    """(loss_fn, [x], A, eigenvectors) for x^T A x / 2 with A = Q diag(eigenvalues) Q^T."""
    d = len(eigenvalues)
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=F64))
    A = q @ torch.diag(torch.tensor(eigenvalues, dtype=F64)) @ q.T
    x = torch.randn(d, generator=g, dtype=F64).requires_grad_()
    return (lambda: 0.5 * x @ A @ x), [x], A, q


# --- against the exact Hessian -----------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hvp_matches_the_exact_hessian(seed):
    net = small_net(seed)
    loss_fn, H = loss_and_exact_hessian(net, *data(seed))
    g = torch.Generator().manual_seed(seed)
    for _ in range(3):
        v = torch.randn(H.shape[0], generator=g, dtype=F64)
        torch.testing.assert_close(sharpness.hvp(loss_fn, net.parameters(), v), H @ v,
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_power_iteration_matches_the_exact_top_eigenvalue(seed):
    net = small_net(seed)
    loss_fn, H = loss_and_exact_hessian(net, *data(seed))
    eigs, vecs = torch.linalg.eigh(H)
    assert eigs[-1] > eigs[0].abs()          # the top eigenvalue is the largest in magnitude
    lam, v = sharpness.top_eigenvalue(loss_fn, list(net.parameters()), iters=2000, tol=1e-15)
    assert abs(lam - eigs[-1].item()) <= 1e-8 * eigs[-1].item()
    assert abs(v.norm().item() - 1) < 1e-12 and abs(v @ vecs[:, -1]).item() > 1 - 1e-6


def test_the_network_leaves_no_gradient_behind():
    net = small_net()
    loss_fn, _ = loss_and_exact_hessian(net, *data())
    sharpness.top_eigenvalue(loss_fn, net.parameters(), iters=5)
    sharpness.hvp(loss_fn, net.parameters(), torch.ones(31, dtype=F64))
    assert all(p.grad is None for p in net.parameters())


# --- quadratics with known eigenvalues -----------------------------------------------------------

@pytest.mark.parametrize("eigenvalues", [[5.0, 2.0, 1.0, 0.5], [3.0, -1.0, 0.2], [10.0, 9.0, 1.0]])
def test_quadratic_with_known_eigenvalues(eigenvalues):
    loss_fn, params, A, q = quadratic(eigenvalues)
    lam, v = sharpness.top_eigenvalue(loss_fn, params, iters=500, tol=1e-15)
    assert lam == pytest.approx(eigenvalues[0], rel=1e-10)
    assert abs(v @ q[:, 0]).item() == pytest.approx(1.0, abs=1e-8)
    u = torch.randn(len(eigenvalues), dtype=F64, generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(sharpness.hvp(loss_fn, params, u), A @ u, rtol=1e-13, atol=1e-13)


def test_it_finds_the_largest_magnitude_with_its_sign():
    loss_fn, params, _, _ = quadratic([-4.0, 2.0, 1.0])
    lam, _ = sharpness.top_eigenvalue(loss_fn, params, iters=300, tol=1e-15)
    assert lam == pytest.approx(-4.0, rel=1e-10)


def test_iters_and_warm_start():
    loss_fn, params, _, q = quadratic([2.0, 1.0, 0.5])
    lam1, v1 = sharpness.top_eigenvalue(loss_fn, params, iters=1, v0=q[:, 1] + 1e-3 * q[:, 0])
    assert lam1 == pytest.approx(1.0, abs=1e-5)   # one product: the start's Rayleigh quotient
    lam, v = sharpness.top_eigenvalue(loss_fn, params, iters=3, v0=q[:, 0] * 7.0)
    assert lam == pytest.approx(2.0, rel=1e-14)           # a converged start stays converged
    torch.testing.assert_close(v.abs(), q[:, 0].abs(), rtol=0, atol=1e-14)
    a = sharpness.top_eigenvalue(loss_fn, params, iters=7, seed=3)
    b = sharpness.top_eigenvalue(loss_fn, params, iters=7, seed=3)
    assert a[0] == b[0] and torch.equal(a[1], b[1])        # seeded: the same numbers


def test_tol_stops_early_and_zero_curvature(monkeypatch):
    loss_fn, params, _, _ = quadratic([3.0, 0.1])
    products = []
    product = sharpness._product
    monkeypatch.setattr(sharpness, "_product", lambda *args: products.append(1) or product(*args))
    lam, _ = sharpness.top_eigenvalue(loss_fn, params, iters=1000, tol=1e-12)
    assert lam == pytest.approx(3.0, rel=1e-11) and 3 < len(products) < 30
    w = torch.ones(3, dtype=F64, requires_grad=True)
    linear = lambda: (w * torch.tensor([1.0, 2.0, 3.0], dtype=F64)).sum()
    assert sharpness.top_eigenvalue(linear, [w])[0] == 0.0
    zeros = torch.zeros(3, dtype=F64)
    assert torch.equal(sharpness.hvp(linear, [w], torch.ones(3, dtype=F64)), zeros)


def test_float32_parameters_and_a_single_tensor():
    x = torch.tensor([1.0, -2.0], requires_grad=True)
    A = torch.tensor([[3.0, 1.0], [1.0, 2.0]])
    lam, v = sharpness.top_eigenvalue(lambda: 0.5 * x @ A @ x, x, iters=200)
    assert v.dtype == torch.float32
    assert lam == pytest.approx(torch.linalg.eigvalsh(A.double())[-1].item(), rel=1e-5)


# --- bad inputs ----------------------------------------------------------------------------------

def test_bad_inputs_name_the_argument():
    loss_fn, params, _, _ = quadratic([2.0, 1.0])
    v = torch.ones(2, dtype=F64)
    hvp = lambda *args: lambda: sharpness.hvp(*args)
    top = lambda *args, **kwargs: lambda: sharpness.top_eigenvalue(*args, **kwargs)
    cases = [
        (TypeError, "loss_fn must be a callable", hvp(3.0, params, v)),
        (ValueError, "loss_fn must return a scalar tensor, got a tensor of shape",
         hvp(lambda: params[0] * 2, params, v)),
        (ValueError, "loss_fn must return a scalar tensor, got float", hvp(lambda: 1.0, params, v)),
        (ValueError, "loss_fn returned a non-finite loss",
         top(lambda: loss_fn() * math.nan, params)),
        (ValueError, "params must hold at least one tensor", hvp(loss_fn, [], v)),
        (TypeError, "params must be an iterable of tensors", hvp(loss_fn, 3, v)),
        (TypeError, r"params\[1\] must be a tensor", hvp(loss_fn, [params[0], 1.0], v)),
        (ValueError, r"params\[0\] must be a floating tensor with requires_grad=True",
         hvp(loss_fn, [torch.ones(2)], v)),
        (TypeError, "v must be a tensor", hvp(loss_fn, params, [1.0, 1.0])),
        (ValueError, "v must be a 1-D tensor of length 2", hvp(loss_fn, params, torch.ones(3))),
        (ValueError, "v must be a 1-D tensor of length 2", hvp(loss_fn, params, torch.ones(1, 2))),
        (ValueError, "v must hold finite", hvp(loss_fn, params, torch.tensor([1.0, math.inf]))),
        (ValueError, "iters must be an int >= 1", top(loss_fn, params, 0)),
        (TypeError, "iters must be an int >= 1", top(loss_fn, params, 2.5)),
        (TypeError, "iters must be an int >= 1", top(loss_fn, params, True)),
        (ValueError, "tol must be a finite number >= 0", top(loss_fn, params, tol=-1e-3)),
        (ValueError, "seed must be an int >= 0", top(loss_fn, params, seed=-1)),
        (ValueError, "v0 must not be the zero vector", top(loss_fn, params, v0=torch.zeros(2))),
        (ValueError, "v0 must be a 1-D tensor of length 2", top(loss_fn, params, v0=torch.ones(5))),
    ]
    for error, message, call in cases:
        with pytest.raises(error, match=message):
            call()
