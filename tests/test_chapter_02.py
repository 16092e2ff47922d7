"""The claims of chapters/02-convexity.md, recomputed here, and its helpers checked.

Each test states one sentence of the chapter (prose, printout or figure) and checks it from
scratch in float64, never against a number copied from the stored outputs. The notebook's own
helper functions (`random_chords`, `proj_ball`, `png2x`, ...) are read from the .md source by
name, so a change to them that breaks a claim fails here and not only as an nbval diff.
"""
import io
import math

import matplotlib
import pytest
import torch
from PIL import Image
from torch.autograd.functional import hessian

from d2lopt import problems

from chapter_source import notebook_functions

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402

F64 = torch.float64


NB = notebook_functions("02-convexity",
                        {"torch": torch, "math": math, "BytesIO": io.BytesIO, "Image": Image})


def disk(cx, r):
    return lambda x1, x2: (x1 - cx) ** 2 + x2 ** 2 <= r ** 2


UNION = lambda x1, x2: disk(-0.5, 0.9)(x1, x2) | disk(0.5, 0.9)(x1, x2)          # noqa: E731
INTERSECTION = lambda x1, x2: disk(-0.5, 0.9)(x1, x2) & disk(0.5, 0.9)(x1, x2)   # noqa: E731
PACMAN = lambda x1, x2: disk(0.0, 1.0)(x1, x2) & (torch.atan2(x2, x1).abs() > math.pi / 5)  # noqa


def leaving_rate(member, n=4000, seed=0, box=1.6):
    a, b = NB["random_chords"](member, n=n, box=box, seed=seed)
    return (NB["outside_fraction"](member, a, b) > 0).double().mean().item()


# ---- convex sets ----------------------------------------------------------------------------

def test_random_chords_draw_inside_the_set_reproducibly_and_refuse_tiny_sets():
    a, b = NB["random_chords"](PACMAN, n=500, seed=3)
    assert a.shape == b.shape == (500, 2)
    assert bool(PACMAN(a[:, 0], a[:, 1]).all() and PACMAN(b[:, 0], b[:, 1]).all())
    a2, _ = NB["random_chords"](PACMAN, n=500, seed=3)
    assert torch.equal(a, a2)
    with pytest.raises(ValueError, match="fell in the set"):
        NB["random_chords"](disk(0.0, 0.01), n=100)


def test_outside_fraction_on_known_chords():
    a = torch.tensor([[-0.5, 0.85], [-0.5, 0.0]], dtype=F64)
    b = torch.tensor([[0.5, 0.85], [0.5, 0.0]], dtype=F64)
    out = NB["outside_fraction"](UNION, a, b)
    assert out[0] > 0          # the chord over the notch: its midpoint (0, 0.85) is in neither disk
    assert out[1] == 0         # through the middle: inside


def test_intersection_convex_union_and_pacman_not():
    for member in (disk(0.0, 1.0), INTERSECTION):
        assert leaving_rate(member, seed=1) == 0
    assert leaving_rate(PACMAN, seed=1) > 0.05
    union = leaving_rate(UNION, n=20000, seed=1)
    assert 0 < union < 0.01                             # "less than 1% of the chords"


def test_dented_set_has_a_straight_bottom_but_is_not_convex():
    top = lambda x: torch.sin(math.pi * x) * (1 - 0.8 * torch.exp(-(x - 0.5) ** 2 / 0.01))  # noqa
    dented = lambda x1, x2: (x1 >= 0) & (x1 <= 1) & (x2 >= 0) & (x2 <= top(x1))          # noqa
    corners = torch.tensor([[0.0, 0.0]], dtype=F64), torch.tensor([[1.0, 0.0]], dtype=F64)
    assert NB["outside_fraction"](dented, *corners).item() == 0
    assert leaving_rate(dented, box=1.0) > 0.1


def test_p_balls_convex_for_p_at_least_one():
    def p_norm(x1, x2, p):
        return torch.maximum(x1.abs(), x2.abs()) if p == math.inf else \
            (x1.abs() ** p + x2.abs() ** p) ** (1 / p)
    half = torch.tensor(0.5, dtype=F64)
    assert p_norm(half, half, 0.5).item() == pytest.approx(2.0, abs=1e-12)
    assert leaving_rate(lambda x1, x2: p_norm(x1, x2, 0.5) <= 1, box=1.0) > 0.01
    for p in (1, 1.5, 2, 4, math.inf):
        assert leaving_rate(lambda x1, x2, p=p: p_norm(x1, x2, p) <= 1, box=1.0) == 0


# ---- convex functions -----------------------------------------------------------------------

F = {"0.5 x^2": lambda x: 0.5 * x ** 2, "cos(pi x)": lambda x: torch.cos(math.pi * x),
     "exp(0.5 x)": lambda x: torch.exp(0.5 * x)}


def test_height_above_the_chord():
    assert NB["height_above_chord"](F["0.5 x^2"], -1.5, 1.0) <= 0
    assert NB["height_above_chord"](F["exp(0.5 x)"], -1.5, 1.0) <= 0
    # cos(pi x) at 0 is 1, the chord from (-1.5, 0) to (1, -1) is at -0.6 there
    assert NB["height_above_chord"](F["cos(pi x)"], -1.5, 1.0) >= 1.6
    # sqrt|x|: max_t (sqrt t - t) = 1/4 at t = 1/4, on the 101-point grid (t = 0.25 is on it)
    assert NB["height_above_chord"](lambda x: x.abs().sqrt(), 0.0, 1.0) == pytest.approx(0.25, abs=1e-12)


def test_chord_grid_finds_nonconvexity_only_where_it_is():
    ends = torch.linspace(-2, 2, 41, dtype=F64)
    a, b, lam = torch.cartesian_prod(ends, ends, torch.linspace(0, 1, 11, dtype=F64)).T
    rate = {name: NB["chord_violation_rate"](fn, a, b, lam) for name, fn in F.items()}
    assert rate["0.5 x^2"] == 0 == rate["exp(0.5 x)"] and rate["cos(pi x)"] > 0.1
    fa, fb = (lambda x: (x - 1) ** 2), (lambda x: (x + 1) ** 2)
    assert NB["chord_violation_rate"](lambda x: torch.maximum(fa(x), fb(x)), a, b, lam) == 0
    assert NB["chord_violation_rate"](lambda x: torch.minimum(fa(x), fb(x)), a, b, lam) > 0.1


def test_jensen_holds_exactly_on_samples_and_the_x2_gap_is_the_biased_variance():
    gen = torch.Generator().manual_seed(5)
    for _ in range(5):
        x = torch.randn(1000, dtype=F64, generator=gen) * 2 + 0.3
        for fn in (lambda v: v ** 2, torch.exp, torch.abs, torch.nn.functional.softplus):
            assert fn(x).mean() >= fn(x.mean())
        gap = (x ** 2).mean() - x.mean() ** 2
        assert abs(gap - x.var(correction=0)) < 1e-12


def test_latent_variable_bound():
    gen = torch.Generator().manual_seed(2)
    for _ in range(20):
        p_y = torch.softmax(torch.randn(4, dtype=F64, generator=gen), 0)
        p_x_given_y = torch.softmax(torch.randn(4, 5, dtype=F64, generator=gen), 1)
        bound = -(p_y[:, None] * torch.log(p_x_given_y)).sum(0)
        assert bool((bound >= -torch.log(p_y @ p_x_given_y)).all())


# ---- properties -----------------------------------------------------------------------------

def _bisect(fn, lo, hi, steps=200):
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if fn(lo) * fn(mid) > 0 else (lo, mid)
    return (lo + hi) / 2


def test_gd_reaches_the_global_minimum_only_on_the_convex_function():
    starts = torch.linspace(-1, 2, 7, dtype=F64)
    convex = lambda x: torch.nn.functional.softplus(x) + 0.5 * (x - 1) ** 2      # noqa: E731
    wavy = lambda x: x * torch.cos(math.pi * x)                                  # noqa: E731
    # c'(x) = sigmoid(x) + x - 1 = 0 has one root
    root = _bisect(lambda v: 1 / (1 + math.exp(-v)) + v - 1, -1.0, 2.0)
    assert NB["gd_1d"](convex, starts).tolist() == pytest.approx([root] * 7, abs=1e-9)
    # the minima of x cos(pi x): zeros of cos(pi x) - pi x sin(pi x)
    d = lambda v: math.cos(math.pi * v) - math.pi * v * math.sin(math.pi * v)   # noqa: E731
    local, best = _bisect(d, -0.5, 0.0), _bisect(d, 0.9, 1.3)
    end = NB["gd_1d"](wavy, starts).tolist()
    assert end == pytest.approx([local] * 3 + [best] * 4, abs=1e-9)          # the 3 starts <= 0
    assert wavy(torch.tensor(local)) > wavy(torch.tensor(best)) + 0.8
    # the printout rounds to 3 decimals: no end point sits near a rounding boundary
    for v in (root, local, best):
        assert abs(v * 1000 - math.floor(v * 1000) - 0.5) > 0.05


def test_below_sets():
    # x1^2 + x1 x2 + x2^2 has the Hessian [[2, 1], [1, 2]] (eigenvalues 1, 3): convex
    assert torch.linalg.eigvalsh(torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=F64)).min() > 0
    well = lambda x1, x2: (x1 ** 2 - 1) ** 2 + x2 ** 2 <= 0.5                     # noqa: E731
    t = torch.tensor
    assert well(t(-1.0), t(0.0)) and well(t(1.0), t(0.0)) and not well(t(0.0), t(0.0))
    # two pieces: on every horizontal line, the set misses the whole band |x1| < 0.54
    x1 = torch.linspace(-0.54, 0.54, 101, dtype=F64)
    for x2 in torch.linspace(-1, 1, 41, dtype=F64):
        assert not well(x1, x2).any()


def test_second_derivatives_match_the_closed_forms():
    x = torch.arange(-2, 2, 0.01, dtype=F64)
    second = NB["second_derivative"]
    torch.testing.assert_close(second(F["0.5 x^2"], x), torch.ones_like(x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(second(F["cos(pi x)"], x), -math.pi ** 2 * torch.cos(math.pi * x),
                               rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(second(F["exp(0.5 x)"], x), torch.exp(0.5 * x) / 4, rtol=1e-12, atol=1e-12)
    assert second(F["cos(pi x)"], x).min().item() == pytest.approx(-math.pi ** 2, rel=1e-9)
    assert second(F["exp(0.5 x)"], x).min().item() == pytest.approx(math.exp(-1) / 4, rel=1e-12)


def test_logistic_loss_hessian_is_psd_and_the_line_restriction_obeys_the_chain_rule():
    gen = torch.Generator().manual_seed(4)
    X = torch.randn(30, 4, dtype=F64, generator=gen)
    y = torch.sign(torch.randn(30, dtype=F64, generator=gen))
    loss = lambda w: torch.nn.functional.softplus(-y * (X @ w)).mean()          # noqa: E731
    for _ in range(10):
        w = torch.randn(4, dtype=F64, generator=gen) * 2
        H = hessian(loss, w)
        m = y * (X @ w)
        s = torch.sigmoid(m) * torch.sigmoid(-m)
        torch.testing.assert_close(H, (X * s[:, None]).T @ X / len(y), rtol=1e-10, atol=1e-14)
        assert torch.linalg.eigvalsh(H).min() > 0
    xv, yv = torch.randn(4, dtype=F64, generator=gen), torch.randn(4, dtype=F64, generator=gen)
    z = torch.tensor(0.3, dtype=F64)
    d2g = NB["second_derivative"](lambda t: loss(t * xv + (1 - t) * yv), z)
    quad = (xv - yv) @ hessian(loss, z * xv + (1 - z) * yv) @ (xv - yv)
    assert d2g.item() == pytest.approx(quad.item(), rel=1e-10)


def test_rosenbrock_is_not_convex():
    rosen = lambda v: problems.rosenbrock.f(v[0], v[1])                           # noqa: E731
    eig = torch.linalg.eigvalsh(hessian(rosen, torch.tensor([0.0, 1.0], dtype=F64)))
    assert eig.tolist() == pytest.approx([-398.0, 200.0], abs=1e-9)


def test_log_sum_exp_hessian_is_a_covariance():
    gen = torch.Generator().manual_seed(7)
    lse = lambda v: torch.logsumexp(v, dim=-1)                                   # noqa: E731
    for _ in range(10):
        x = torch.randn(5, dtype=F64, generator=gen) * 3
        p = torch.softmax(x, 0)
        H = hessian(lse, x)
        torch.testing.assert_close(H, torch.diag(p) - torch.outer(p, p), rtol=1e-10, atol=1e-14)
        eig = torch.linalg.eigvalsh(H)
        assert abs(eig[0]) < 1e-12 and eig.min() > -1e-12          # 0 along (1, ..., 1)
        assert (H @ torch.ones(5, dtype=F64)).abs().max() < 1e-12


# ---- constraints ----------------------------------------------------------------------------

def test_gradient_descent_ascent_finds_the_saddle_point():
    xc, alpha, lr = 0.0, 0.0, 0.05
    for _ in range(2000):
        dx, dalpha = 2 * (xc - 2) + alpha, xc - 1
        xc, alpha = xc - lr * dx, max(0.0, alpha + lr * dalpha)
    assert abs(xc - 1) < 1e-9 and abs(alpha - 2) < 1e-9 and abs(alpha * (xc - 1)) < 1e-12


def test_ridge_equals_projected_gradient_descent_in_the_ball():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(50, 5, dtype=F64, generator=gen)
    y = X @ torch.tensor([3.0, -2.0, 1.0, 0.5, 4.0], dtype=F64) + torch.randn(50, dtype=F64, generator=gen)
    for lam in (1.0, 20.0, 200.0):
        w_ridge = torch.linalg.solve(X.T @ X + lam * torch.eye(5, dtype=F64), X.T @ y)
        r, step = w_ridge.norm().item(), 1 / torch.linalg.eigvalsh(X.T @ X).max().item()
        w = torch.zeros(5, dtype=F64)
        for _ in range(500):
            w = NB["proj_ball"](w - step * X.T @ (X @ w - y), r)
        assert (w - w_ridge).abs().max() < 1e-12       # printed as "< 1e-10": far from the edge
        assert r < torch.linalg.lstsq(X, y[:, None]).solution.norm()


def test_projections_satisfy_the_optimality_condition_and_are_never_beaten():
    gen = torch.Generator().manual_seed(8)
    lo, hi = torch.tensor([-1.0, -0.6], dtype=F64), torch.tensor([1.0, 0.6], dtype=F64)
    x = torch.randn(200, 2, dtype=F64, generator=gen) * 2
    for proj in (lambda p: NB["proj_ball"](p, 1.0), lambda p: NB["proj_box"](p, lo, hi)):
        p = proj(x)
        assert (proj(p) - p).abs().max() < 1e-15                     # idempotent: p is in the set
        q = proj(torch.randn(300, 2, dtype=F64, generator=gen) * 2)  # other points of the set
        # (x_i - p_i)^T (q_j - p_i) <= 0 for every q_j in the set
        assert ((x - p)[:, None, :] * (q[None, :, :] - p[:, None, :])).sum(-1).max() <= 1e-12
        assert ((x[:, None] - q[None]).norm(dim=-1).min(1).values >= (x - p).norm(dim=1) - 1e-12).all()


def test_projections_onto_convex_sets_are_non_expansive_and_onto_a_circle_not():
    gen = torch.Generator().manual_seed(9)
    lo, hi = torch.tensor([-1.0, -0.6], dtype=F64), torch.tensor([1.0, 0.6], dtype=F64)
    xa, xb = torch.randn(2, 5000, 2, dtype=F64, generator=gen) * 2
    for proj in (lambda p: NB["proj_ball"](p, 1.0), lambda p: NB["proj_box"](p, lo, hi)):
        ratio = (proj(xa) - proj(xb)).norm(dim=-1) / (xa - xb).norm(dim=-1)
        assert ratio.max() <= 1 + 1e-12
    circle = lambda p: p / p.norm(dim=-1, keepdim=True)                          # noqa: E731
    near = torch.tensor([[0.01, 0.0], [-0.01, 0.0]], dtype=F64)
    assert (circle(near[:1]) - circle(near[1:])).norm().item() == pytest.approx(2.0)


def test_clip_grad_norm_is_the_projection_with_1e6_added_to_the_norm():
    gen = torch.Generator().manual_seed(1)
    for scale in (0.01, 1.0, 30.0):
        g = torch.randn(3, 4, dtype=F64, generator=gen) * scale
        p = torch.zeros_like(g, requires_grad=True)
        p.grad = g.clone()
        total = torch.nn.utils.clip_grad_norm_([p], max_norm=1.0)
        assert total.item() == pytest.approx(g.norm().item(), rel=1e-12)
        exact = NB["proj_ball"](g.flatten(), 1.0).reshape(g.shape)
        with_eps = g * min(1.0, 1.0 / (g.norm().item() + 1e-6))
        assert (p.grad - with_eps).abs().max() < 1e-15
        if g.norm() > 1:             # when it clips, smaller by the relative 1e-6 / ||g||
            rel = 1 - p.grad.norm() / exact.norm()
            assert rel.item() == pytest.approx(1e-6 / (g.norm().item() + 1e-6), rel=1e-6)
        else:
            assert torch.equal(p.grad, g)


def test_taylor_remainder_point_tends_to_a_third_of_eps():
    for eps in (1.0, 0.1, 0.01, 0.001):
        remainder = math.exp(0.3 + eps) - math.exp(0.3) - eps * math.exp(0.3)
        xi = math.log(2 * remainder / eps ** 2) - 0.3
        assert 0 <= xi <= eps
        assert xi / eps == pytest.approx(1 / 3, abs=eps)


def test_affine_set_mixes_stay_in_the_set():
    gen = torch.Generator().manual_seed(5)
    W, b = torch.randn(2, 4, dtype=F64, generator=gen), torch.randn(2, dtype=F64, generator=gen)
    x_part = torch.linalg.lstsq(W, b[:, None]).solution.squeeze(1)
    null = torch.linalg.svd(W).Vh[2:]
    sols = x_part + torch.randn(400, 2, dtype=F64, generator=gen) @ null
    lam = torch.rand(200, 1, dtype=F64, generator=gen)
    assert ((lam * sols[:200] + (1 - lam) * sols[200:]) @ W.T - b).abs().max() < 1e-12


# ---- the figures ----------------------------------------------------------------------------

def test_png2x_is_twice_the_pixels_shown_at_the_usual_size_and_smaller_than_a_plain_png():
    grid = torch.linspace(-1.6, 1.6, 641, dtype=F64)
    gx, gy = torch.meshgrid(grid, grid, indexing="ij")
    fig, axes = plt.subplots(1, 2, figsize=(7, 3), dpi=72)
    for ax, member in zip(axes, (PACMAN, UNION)):
        ax.contourf(gx.numpy(), gy.numpy(), member(gx, gy).double().numpy(), levels=[0.5, 1.5],
                    colors=["#9ecae1"])
        ax.plot([-1, 1], [0.5, -0.5], "o-", color="#d62728")
        ax.set(xlabel="$x_1$", ylabel="$x_2$", title="$x_1^2 + x_2^2 \\leq 1$")
    data, meta = NB["png2x"](fig)
    plain = io.BytesIO()
    fig.savefig(plain, format="png", bbox_inches="tight")
    plt.close(fig)
    img, ref = Image.open(io.BytesIO(data)), Image.open(plain)
    assert (img.width, img.height) == (2 * meta["width"] + img.width % 2, 2 * meta["height"] + img.height % 2)
    assert abs(meta["width"] - ref.width) <= 1 and abs(meta["height"] - ref.height) <= 1
    assert len(img.getcolors(256) or []) <= 64
    assert len(data) < plain.getbuffer().nbytes

