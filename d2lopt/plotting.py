"""Figure helpers with the book's names (`plot`, `annotate`, `show_trace_2d`, ...); the live
`Animator` is in `d2lopt.animator`.

Differences from the book, on purpose: `plot` honours the figure size you set; every helper
takes ``ax=None`` (`plot` also the book's ``axes=``), returns the Axes it drew on, and sets no
global state besides what its name says; `plot` clears only the Axes it picked itself (the
current one, as the book does), never one you passed; contour bounds follow the trajectories.
"""
import math

import matplotlib
import numpy as np
import torch
from matplotlib import pyplot as plt

from d2lopt.validate import check_points_2d, check_some_finite

__all__ = ["plt", "use_svg_display", "set_figsize", "set_axes", "plot", "annotate", "show_trace",
           "show_trace_2d", "show_paths", "plot_histories"]

DEFAULT_FMTS = ("-", "m--", "g-.", "r:", "c-", "y--", "k-.", "b:")


def use_svg_display():
    """Draw inline figures as SVG, byte-for-byte reproducible (no date, fixed id salt)."""
    matplotlib.rcParams["svg.hashsalt"] = "d2lopt"
    matplotlib.rcParams["svg.fonttype"] = "none"
    try:
        from matplotlib_inline import backend_inline
        backend_inline.set_matplotlib_formats("svg", metadata={"Date": None})
    except ImportError:  # outside Jupyter there is nothing to configure
        pass


def set_figsize(figsize=(3.5, 2.5)):
    """Set the default figure size for the figures drawn after this call."""
    matplotlib.rcParams["figure.figsize"] = figsize


def set_axes(axes, xlabel, ylabel, xlim, ylim, xscale, yscale, legend):
    """Label, scale and limit an Axes (the book's argument order); returns ``axes``."""
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_xscale(xscale)
    axes.set_yscale(yscale)
    if xlim is not None:
        axes.set_xlim(xlim)
    if ylim is not None:
        axes.set_ylim(ylim)
    if legend:
        axes.legend(legend)
    axes.grid(True)
    return axes


def _to_numpy(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x, dtype=float)


def _new_axes(figsize=None):
    if figsize is not None:
        plt.figure(figsize=figsize)
    return plt.gca()


def plot(X, Y=None, xlabel=None, ylabel=None, legend=None, xlim=None, ylim=None, xscale="linear",
         yscale="linear", fmts=DEFAULT_FMTS, figsize=None, axes=None, *, ax=None):
    """Plot one or several series on ``ax`` (or the book's ``axes=``); return that Axes.

    Without one, it draws on the current Axes, cleared first as in the book (a new figure of
    ``figsize`` if given; ``figsize=None`` keeps the size set by `set_figsize`). An Axes you pass
    is drawn on as it is, never cleared. Raises ValueError when there is nothing to draw (no
    data, or only NaN/inf).
    """
    if ax is not None and axes is not None and ax is not axes:
        raise TypeError("plot: give ax or its alias axes, not both")
    ax = ax if ax is not None else axes
    name = "X" if Y is None else "Y"
    if len(X) == 0 or (Y is not None and len(Y) == 0):  # has_one_axis would index x[0]
        check_some_finite("X" if len(X) == 0 else "Y", [])

    def has_one_axis(x):  # a flat list or 1-D array/tensor
        return (hasattr(x, "ndim") and x.ndim == 1) or (
            isinstance(x, list) and not hasattr(x[0], "__len__"))

    if has_one_axis(X):
        X = [X]
    if Y is None:
        X, Y = [[]] * len(X), X
    elif has_one_axis(Y):
        Y = [Y]
    if len(X) != len(Y):
        X = X * len(Y)
    check_some_finite(name, Y)
    if ax is None:
        ax = _new_axes(figsize)
        ax.cla()
    for x, y, fmt in zip(X, Y, fmts * (len(Y) // len(fmts) + 1)):
        if len(x):
            ax.plot(_to_numpy(x), _to_numpy(y), fmt)
        else:
            ax.plot(_to_numpy(y), fmt)
    return set_axes(ax, xlabel, ylabel, xlim, ylim, xscale, yscale, legend)


def annotate(text, xy, xytext, ax=None):
    """An arrow from ``xytext`` to ``xy`` labelled ``text``, on ``ax`` (default: the current
    Axes); returns the Axes."""
    ax = ax if ax is not None else plt.gca()
    ax.annotate(text, xy=xy, xytext=xytext, arrowprops=dict(arrowstyle="->"))
    return ax


def show_trace(results, f, ax=None, label=None):
    """Draw the 1-D function ``f`` and the iterates ``results`` of a 1-D optimizer on it, on
    ``ax`` (default: the current Axes); returns the Axes."""
    pts = np.array([float(r) for r in results])
    check_some_finite("results", [pts])
    finite = pts[np.isfinite(pts)]
    n = max(abs(finite.min()), abs(finite.max()))
    f_line = torch.arange(-n, n, 0.01 * max(1.0, n / 10))
    ax = ax if ax is not None else plt.gca()
    ax.plot(_to_numpy(f_line), _to_numpy(f(f_line)), "-", label="f(x)")
    ax.plot(finite, [float(f(torch.tensor(p))) for p in finite], "-o", label=label or "iterates")
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    if label:
        ax.legend()
    return ax


def _paths_as_dict(results, name="paths"):
    if isinstance(results, dict):
        if not results:
            raise ValueError(f"{name} must hold at least one path, got an empty dict")
        return {k: check_points_2d(f"{name}[{k!r}]", v) for k, v in results.items()}
    return {None: check_points_2d(name, results)}


def _bounds(points, pad=0.15, min_span=1.0):
    lo, hi = points.min(axis=0), points.max(axis=0)
    span = np.maximum(hi - lo, min_span)
    return lo - pad * span, hi + pad * span


def show_paths(f, paths, ax=None, levels=15, extra_points=(), title=None):
    """Contours of ``f(x1, x2)`` (or of a `d2lopt.problems.Problem`) with trajectories.

    ``paths``: a list of (x1, x2) points, or a dict ``{label: points}`` drawn with a legend.
    The contour window covers every finite point (and ``extra_points``, e.g. the minimum);
    a trajectory that leaves to infinity is cut at its last finite point and marked 'diverged'.
    """
    ax = ax if ax is not None else plt.gca()
    if hasattr(f, "f") and hasattr(f, "minimum"):  # a d2lopt.problems.Problem
        if all(math.isfinite(v) for v in f.minimum):
            extra_points = tuple(extra_points) + (f.minimum,)
        f = f.f
    paths = _paths_as_dict(paths)
    finite = [p[np.isfinite(p).all(axis=1)] for p in paths.values()]
    allpts = np.concatenate(finite + [np.asarray(extra_points, dtype=float).reshape(-1, 2)])
    check_some_finite("paths", [allpts])
    lo, hi = _bounds(allpts)
    x1, x2 = torch.meshgrid(torch.linspace(lo[0], hi[0], 120, dtype=torch.float64),
                            torch.linspace(lo[1], hi[1], 120, dtype=torch.float64), indexing="ij")
    z = _to_numpy(f(x1, x2))
    # Levels at quantiles of f over the window: the valley stays visible even when a
    # diverging path stretches the window (evenly spaced levels would all sit far out).
    finite_z = z[np.isfinite(z)]
    lv = np.unique(np.quantile(finite_z, np.linspace(0.01, 0.97, levels))) if isinstance(
        levels, int) else levels
    ax.contour(x1.numpy(), x2.numpy(), z, levels=lv, colors="#1f77b4", linewidths=0.6)
    colors = ["#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    for (label, pts), good, color in zip(paths.items(), finite, colors * 3):
        tag = label
        if len(good) < len(pts):
            tag = f"{label} (diverged)" if label else "diverged"
        # markers show the step sizes on short paths; on long ones they only hide the line
        ax.plot(good[:, 0], good[:, 1], "-o" if len(good) <= 60 else "-", color=color,
                markersize=3, linewidth=1, label=tag)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if any(label is not None for label in paths) or len(paths) > 1:
        ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return ax


def show_trace_2d(f, results, ax=None):
    """The book's helper: contours of ``f`` and the trajectory ``results`` (or a dict of them),
    drawn by `show_paths` on ``ax`` (default: the current Axes); returns the Axes."""
    _paths_as_dict(results, "results")  # so that an empty trajectory is named as `results`
    return show_paths(f, results, ax=ax)


def plot_histories(histories, x="time", ax=None, logx=None, title=None):
    """Loss curves of several training runs, one call: ``{label: history}``.

    ``x`` is 'time' (cumulative training seconds, log axis by default), 'examples' or 'epoch'.
    Diverged runs are drawn up to their last finite loss and marked in the legend.
    """
    if x not in ("time", "examples", "epoch"):
        raise ValueError(f"x must be 'time', 'examples' or 'epoch', got {x!r}")
    ax = ax if ax is not None else plt.gca()
    attr = {"time": "times", "examples": "examples", "epoch": "epochs"}[x]
    for (label, h), fmt in zip(histories.items(), DEFAULT_FMTS * 3):
        xs, ys = np.asarray(getattr(h, attr), float), np.asarray(h.losses, float)
        ok = np.isfinite(ys)
        ax.plot(xs[ok], ys[ok], fmt, label=f"{label} (diverged)" if h.diverged else label)
    ax.set_xlabel({"time": "time (sec)", "examples": "examples seen", "epoch": "epoch"}[x])
    ax.set_ylabel("loss")
    if logx if logx is not None else x == "time":
        ax.set_xscale("log")
    ax.grid(True)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return ax
