"""The book's `Animator`: a loss curve that grows while training runs.

Live in Jupyter: one display handle, redrawn at most every ``interval`` seconds and once more when
the cell ends (the book's display + clear_output per point flickers). Static, one figure drawn
at the end, under tests (``D2L_NO_ANIMATION=1``), in scripts and outside IPython.
"""
import os
import time
import weakref

import numpy as np
from matplotlib import pyplot as plt

from d2lopt.plotting import DEFAULT_FMTS, set_axes

__all__ = ["Animator"]


def _animation_wanted():
    if os.environ.get("D2L_NO_ANIMATION"):
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


_LIVE = weakref.WeakSet()  # live animators with a redraw pending at the end of the cell


def _flush_live(*_):
    for anim in list(_LIVE):
        anim.show()
    _LIVE.clear()


class Animator:
    """Plot data incrementally: ``animator.add(x, (y1, y2))``; ``None`` values are skipped.

    Live in Jupyter: one display handle, redrawn at most every ``interval`` seconds and once
    more when the cell ends. Static (a single figure shown once) under tests, in scripts and
    when ``D2L_NO_ANIMATION`` is set, or when ``live=False``.
    """

    def __init__(self, xlabel=None, ylabel=None, legend=None, xlim=None, ylim=None,
                 xscale="linear", yscale="linear", fmts=DEFAULT_FMTS, nrows=1, ncols=1,
                 figsize=(3.5, 2.5), live=None, interval=0.5):
        self.fig, axes = plt.subplots(nrows, ncols, figsize=figsize)
        self.axes = np.atleast_1d(axes).ravel()
        self.legend, self.fmts = legend, fmts
        self.X, self.Y, self._lines = None, None, None
        set_axes(self.axes[0], xlabel, ylabel, xlim, ylim, xscale, yscale, None)
        self._ylim = ylim
        self.live = _animation_wanted() if live is None else live
        self.interval, self._last_draw, self._handle = interval, 0.0, None
        if self.live:  # the display handle owns the figure; pyplot must not show it again
            plt.close(self.fig)
            self._last_draw = time.perf_counter()  # a run shorter than `interval` draws once
            self._register_flush()

    def _register_flush(self):
        from IPython import get_ipython
        shell = get_ipython()
        if shell is not None and _flush_live not in shell.events.callbacks["post_run_cell"]:
            shell.events.register("post_run_cell", _flush_live)

    def add(self, x, y):
        if not hasattr(y, "__len__"):
            y = [y]
        n = len(y)
        if not hasattr(x, "__len__"):
            x = [x] * n
        if self.X is None:
            self.X, self.Y = [[] for _ in range(n)], [[] for _ in range(n)]
            ax = self.axes[0]
            self._lines = [ax.plot([], [], fmt)[0]
                           for fmt, _ in zip(self.fmts * (n // len(self.fmts) + 1), range(n))]
            if self.legend:
                for line, label in zip(self._lines, self.legend):
                    line.set_label(label)
                ax.legend()
        for i, (a, b) in enumerate(zip(x, y)):
            if a is not None and b is not None:
                self.X[i].append(float(a))
                self.Y[i].append(float(b))
        for line, xs, ys in zip(self._lines, self.X, self.Y):
            line.set_data(xs, ys)
        ax = self.axes[0]
        ax.relim()
        ax.autoscale_view(scalex=ax.get_autoscalex_on(), scaley=self._ylim is None)
        if self.live:
            _LIVE.add(self)
            if time.perf_counter() - self._last_draw >= self.interval:
                self.show()

    def show(self):
        """Redraw now (live mode); in static mode pyplot shows the figure at the end of the cell."""
        if not self.live:
            return
        from IPython.display import display
        if self._handle is None:
            self._handle = display(self.fig, display_id=True)
        else:
            self._handle.update(self.fig)
        self._last_draw = time.perf_counter()
