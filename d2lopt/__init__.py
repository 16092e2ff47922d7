"""d2lopt: helpers for the Optimization Algorithms chapter of Dive into Deep Learning.

``import d2lopt as d2l`` stands in for ``from d2l import torch as d2l`` in the chapter's code:
the book's helper names and signatures are kept, improvements are keyword arguments.
Submodules (``d2l.schedules`` and the like load on first use):

* data, airfoil: the airfoil(-like) regression data; images: synthetic Fashion-MNIST-like images.
* train: the book's trainers; classify: the scheduler section's classifier trainer; history:
  what they return (one `History` family).
* plotting: the book's figure helpers; animator: the live loss curve (`Animator`).
* problems: 2-D test functions; updates: the pure update cores the optimizers share; optim:
  Yogi, plus the optimizers of schedulefree, modern (Lion, Lamb) and prodigy (Prodigy).
* sharpness: Hessian-vector products and power iteration for the top Hessian eigenvalue.
* schedules: lr schedules as pure functions s(t); lr_scheduler: their torch adapter (`attach`).
* checks: "does my update match the reference?"; mistakes: the known-wrong models behind its
  hints; exercises: the assignment check helpers.
* utils: devices, timing, seeding, the divergence rule; validate: argument checks.

Environment: ``D2L_DEVICE`` (force a device), ``D2L_NO_ANIMATION`` (static figures),
``D2L_CACHE`` (where the synthetic data is rebuilt if absent), ``D2L_GRADE_LOG`` (a file the
exercise checks append to).
"""
import importlib

import torch

from d2lopt.animator import Animator
from d2lopt.data import DATA_HUB, DATA_URL, download, get_data_ch11, load_airfoil, load_array
from d2lopt.plotting import (annotate, plot, plot_histories, plt, set_axes, set_figsize,
                             show_paths, show_trace, show_trace_2d, use_svg_display)
from d2lopt.history import ClassifierHistory, History, LossHistory
from d2lopt.train import (evaluate_loss, linreg, squared_loss, train_2d, train_ch11,
                          train_concise_ch11, trajectory_2d)
from d2lopt.utils import (Accumulator, Timer, cpu, format_seconds, gpu, num_gpus,
                          seed_everything, seed_run, try_gpu)

__version__ = "0.1.0"

# Tensor aliases the book's code uses (d2l.arange, d2l.cos, ...).
arange = torch.arange
linspace = torch.linspace
tensor = torch.tensor
zeros = torch.zeros
ones = torch.ones
cos = torch.cos
sin = torch.sin
cosh = torch.cosh
sinh = torch.sinh
tanh = torch.tanh
exp = torch.exp
log = torch.log
normal = torch.normal
matmul = torch.matmul
rand = torch.rand
randn = torch.randn
float32 = torch.float32


def meshgrid(*tensors, indexing="ij"):
    """torch.meshgrid with the book's (matrix, 'ij') indexing made explicit: no warning."""
    return torch.meshgrid(*tensors, indexing=indexing)


def numpy(x, *args, **kwargs):
    return x.detach().cpu().numpy(*args, **kwargs)


def _method(name, method):
    """The book's function-style alias ``d2l.<name>(x, ...)`` for ``x.<method>(...)``."""
    def alias(x, *args, **kwargs):
        return getattr(x, method)(*args, **kwargs)
    alias.__name__ = alias.__qualname__ = name
    alias.__doc__ = f"``x.{method}(*args, **kwargs)``."
    return alias


size, reshape, to = _method("size", "numel"), _method("reshape", "reshape"), _method("to", "to")
reduce_sum, argmax = _method("reduce_sum", "sum"), _method("argmax", "argmax")
astype = _method("astype", "type")


# Names that live in heavier or optional submodules, imported on first use.
_LAZY = {
    "load_data_fashion_mnist": "images", "get_fashion_mnist_labels": "images", "lenet": "images",
    "softmax_regression": "images", "show_gap": "checks",
    "accuracy": "classify", "evaluate_accuracy_gpu": "classify",
}
_SUBMODULES = {"utils", "validate", "plotting", "animator", "data", "airfoil", "history", "train",
               "problems", "updates", "optim", "schedulefree", "modern", "prodigy", "schedules",
               "lr_scheduler", "checks", "mistakes", "images", "classify", "exercises", "sharpness"}


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"d2lopt.{name}")
    if name in _LAZY:
        return getattr(importlib.import_module(f"d2lopt.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'd2lopt' has no attribute {name!r}")
