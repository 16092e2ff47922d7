"""d2lopt: helpers for the Optimization Algorithms chapter of Dive into Deep Learning.

``import d2lopt as d2l`` stands in for ``from d2l import torch as d2l`` in the chapter's code:
the book's helper names and signatures are kept, improvements are keyword arguments.
Submodules: utils, plotting, data, airfoil, train, problems, optim, schedules, checks, images,
classify, exercises.
"""
import importlib

import torch

from d2lopt.data import DATA_HUB, DATA_URL, download, get_data_ch11, load_airfoil, load_array
from d2lopt.plotting import (Animator, annotate, plot, plot_histories, plt, set_axes, set_figsize,
                         show_paths, show_trace, show_trace_2d, use_svg_display)
from d2lopt.train import (History, evaluate_loss, linreg, squared_loss, train_2d, train_ch11,
                          train_concise_ch11, trajectory_2d)
from d2lopt.utils import (Accumulator, Timer, cpu, format_seconds, gpu, num_gpus,
                          seed_everything, try_gpu)

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


def size(x, *args, **kwargs):
    return x.numel(*args, **kwargs)


def reshape(x, *args, **kwargs):
    return x.reshape(*args, **kwargs)


def to(x, *args, **kwargs):
    return x.to(*args, **kwargs)


def reduce_sum(x, *args, **kwargs):
    return x.sum(*args, **kwargs)


def argmax(x, *args, **kwargs):
    return x.argmax(*args, **kwargs)


def astype(x, *args, **kwargs):
    return x.type(*args, **kwargs)


# Names that live in heavier or optional submodules, imported on first use.
_LAZY = {
    "load_data_fashion_mnist": "images", "get_fashion_mnist_labels": "images", "lenet": "images",
    "softmax_regression": "images", "show_gap": "checks",
    "accuracy": "classify", "evaluate_accuracy_gpu": "classify",
}
_SUBMODULES = {"utils", "plotting", "data", "airfoil", "train", "problems", "optim", "schedules",
               "checks", "images", "classify", "exercises"}


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"d2lopt.{name}")
    if name in _LAZY:
        return getattr(importlib.import_module(f"d2lopt.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'd2lopt' has no attribute {name!r}")
