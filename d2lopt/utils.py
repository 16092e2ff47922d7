"""Devices, timing, running sums and seeding: the small utilities every section uses."""
import math
import os
import random
import time

import numpy as np
import torch

from d2lopt.validate import check_int

__all__ = ["cpu", "gpu", "num_gpus", "try_gpu", "Timer", "Accumulator", "seed_everything", "seed_run",
           "format_seconds", "DIVERGENCE_FACTOR", "Divergence"]


def cpu():
    """The CPU device."""
    return torch.device("cpu")


def gpu(i=0):
    """The i-th CUDA device (it need not exist; see `try_gpu`)."""
    return torch.device(f"cuda:{i}")


def num_gpus():
    """Number of visible CUDA devices (0 on a CPU-only machine)."""
    return torch.cuda.device_count()


def try_gpu(i=0):
    """Return ``gpu(i)`` if it exists, otherwise ``cpu()``.

    Setting the environment variable ``D2L_DEVICE`` (e.g. ``cpu``) overrides the choice, which is
    how the regression tests pin every notebook to the CPU.
    """
    forced = os.environ.get("D2L_DEVICE")
    if forced:
        return torch.device(forced)
    if num_gpus() >= i + 1:
        return gpu(i)
    return cpu()


def format_seconds(seconds):
    """The one format used for every printed timing: ``'0.012 sec'`` (masked by nbval_sanitize.cfg)."""
    return f"{seconds:.3f} sec"


class Timer:
    """Record several wall-clock intervals. The timer starts on construction, like the book's."""

    def __init__(self):
        self.times = []
        self.start()

    def start(self):
        """Start (or restart) the timer."""
        self.tik = time.perf_counter()

    def stop(self):
        """Stop the timer, record the interval and return it in seconds."""
        self.times.append(time.perf_counter() - self.tik)
        return self.times[-1]

    def avg(self):
        """Mean of the recorded intervals."""
        return sum(self.times) / len(self.times) if self.times else 0.0

    def sum(self):
        """Sum of the recorded intervals."""
        return sum(self.times)

    def cumsum(self):
        """Running total of the recorded intervals, as a list."""
        return np.array(self.times).cumsum().tolist()

    def __repr__(self):
        return f"Timer({len(self.times)} intervals, total {format_seconds(self.sum())})"


class Accumulator:
    """Running sums over ``n`` variables: ``acc.add(loss, correct, count)``; ``acc[i]``."""

    def __init__(self, n):
        self.data = [0.0] * check_int("n", n, low=1)

    def add(self, *args):
        if len(args) != len(self.data):
            raise ValueError(f"Accumulator.add expects {len(self.data)} values, got {len(args)}")
        self.data = [a + float(b) for a, b in zip(self.data, args)]

    def reset(self):
        self.data = [0.0] * len(self.data)

    def __getitem__(self, idx):
        return self.data[idx]

    def __repr__(self):
        return f"Accumulator({self.data})"


def seed_everything(seed=0):
    """Seed Python's, NumPy's and torch's global generators (CUDA too). Returns None on purpose,
    so that a cell ending in ``seed_everything(0)`` prints nothing (torch.manual_seed returns a
    Generator whose repr holds a memory address)."""
    seed = check_int("seed", seed, low=0)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def seed_run(seed, *loaders):
    """Make a run reproducible from ``seed`` (None: leave every generator as it is).

    Seeds the global generators (`seed_everything`: the model's initial weights) and the
    shuffling generator of each DataLoader that has its own, so one loader object yields the
    same batch order on every run that passes the same seed.
    """
    if seed is None:
        return
    seed_everything(seed)
    for loader in loaders:
        generator = getattr(loader, "generator", None)
        if isinstance(generator, torch.Generator):
            generator.manual_seed(seed)


DIVERGENCE_FACTOR = 100


class Divergence:
    """The one rule by which every trainer declares a run diverged, and the line it prints.

    A run has diverged when a loss it observes is NaN or infinite, or exceeds
    ``DIVERGENCE_FACTOR`` (100) times the first loss it observed. For a loss >= 0, a hundredfold
    rise is no bumpy start: the step size is past the stability limit (airfoil at minibatch 640
    and lr 0.64: 0.49 -> 2683). ``check(loss)`` records the first finite loss as the reference
    and returns whether the run has diverged (once it has, it stays so; ``loss`` is then the
    value that decided it); ``message(updates, epoch)`` is what a verbose trainer prints.
    """

    def __init__(self, factor=DIVERGENCE_FACTOR):
        self.factor, self.first, self.loss, self.diverged = factor, None, None, False

    def check(self, loss):
        if self.diverged:
            return True
        loss = float(loss)
        if self.first is None and math.isfinite(loss):
            self.first = loss
        if not math.isfinite(loss) or 0 < self.first * self.factor < loss:
            self.diverged, self.loss = True, loss
        return self.diverged

    def message(self, updates, epoch):
        """``diverged: the loss ... after <updates> updates (epoch <epoch>); training stopped ...``"""
        if math.isfinite(self.loss):
            what = (f"the loss reached {self.loss:.4g}, over {self.factor:g} times its first "
                    f"value {self.first:.4g},")
        else:
            what = f"the loss became {self.loss}"
        return (f"diverged: {what} after {updates} updates (epoch {epoch:.2f}); training "
                "stopped: try a smaller learning rate")
