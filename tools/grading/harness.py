"""Sandbox harness (untrusted side): run a student's notebook cells, then call what the
exercises ask for on inputs the grader chose, and write the raw results as JSON lines to the file descriptor RESULT_FD.

    python -s harness.py job.json RESULT_FD

Runs inside the sandbox, in the same interpreter as the student's code, so nothing here is
trusted: a student can make this process report anything. The grader therefore only accepts
plain numbers from it and compares them with reference values it computes itself, on probe
inputs drawn afresh for each grading run. Student output (stdout, stderr, figures) is discarded.
"""
import json
import math
import numbers
import os
import signal
import sys

RESULTS = os.fdopen(int(sys.argv[2]), "w", encoding="utf-8", closefd=True)
_devnull = os.open(os.devnull, os.O_WRONLY)
os.dup2(_devnull, 1)
os.dup2(_devnull, 2)

import numpy as np  # noqa: E402

MAX_NUMBERS = 200_000
torch = None   # imported when a probe needs it (a notebook without torch starts faster)


def _torch():
    global torch
    if torch is None:
        import torch as module
        torch = module
    return torch


class GraderTimeout(BaseException):
    """Raised by the interval timer when a cell or a probe runs past its time limit."""


def _alarm(signum, frame):
    raise GraderTimeout()


def emit(record):
    RESULTS.write(json.dumps(record) + "\n")
    RESULTS.flush()


def encode(x, budget=None):
    """Plain JSON data from a result: numbers, lists, {"shape", "data"} for arrays and tensors,
    {"type": name} for anything else."""
    budget = budget if budget is not None else [MAX_NUMBERS]
    tensor_type = getattr(sys.modules.get("torch"), "Tensor", ())
    if isinstance(x, tensor_type):
        if x.is_complex() or x.numel() > budget[0]:
            return {"type": "Tensor"}
        budget[0] -= x.numel()
        return {"shape": list(x.shape), "data": x.detach().cpu().double().flatten().tolist()}
    if isinstance(x, np.ndarray) and x.dtype.kind in "biuf":
        if x.size > budget[0]:
            return {"type": "ndarray"}
        budget[0] -= x.size
        return {"shape": list(x.shape), "data": x.astype(np.float64).ravel().tolist()}
    if isinstance(x, (bool, np.bool_)):
        return float(x)
    if isinstance(x, numbers.Real):
        return float(x)
    if isinstance(x, (list, tuple)):
        if len(x) > budget[0]:
            return {"type": type(x).__name__}
        budget[0] -= 1
        return [encode(v, budget) for v in x]
    return {"type": type(x).__name__}


def _tensor(data):
    return _torch().tensor(data, dtype=_torch().float64)


FUNCTIONS = {  # callables the grader can pass as arguments, by name
    "scaled_linear": lambda a, b: (lambda x: a * (x - b)),
    "const": lambda c: (lambda x: c),
    "cosh_grad": lambda c: (lambda x: c * math.sinh(c * x)),
    "cosh_hess": lambda c: (lambda x: c * c * math.cosh(c * x)),
    "affine": lambda A, c: (lambda x, A=_tensor(A), c=_tensor(c): A @ x + c),
}


def decode(x):
    if isinstance(x, dict) and "tensor" in x:
        return _tensor(x["tensor"]).reshape(x["shape"]) if "shape" in x else _tensor(x["tensor"])
    if isinstance(x, dict) and "function" in x:
        return FUNCTIONS[x["function"]](**x.get("params", {}))
    if isinstance(x, list):
        return [decode(v) for v in x]
    return x


def _fresh(obj):
    if isinstance(obj, _torch().Tensor):
        t = obj.detach().clone()
        return t.double() if t.is_floating_point() else t
    if isinstance(obj, list):
        return [_fresh(o) for o in obj]
    if isinstance(obj, tuple):
        return tuple(_fresh(o) for o in obj)
    return obj


def recorder(numels, limit=4000):
    """A dispatch mode that keeps the values of the floating tensors of the given sizes that any
    torch op produces (``.values``)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (list, tuple)) else [out]:
                if (isinstance(t, torch.Tensor) and t.is_floating_point() and t.numel() in numels
                        and len(self.values) < limit):
                    self.values.append(t.detach().double().flatten().tolist())
            return out

    mode = Recorder()
    mode.values = []
    return mode


def run_optimizer(ns, req):
    fn, init = ns[req["fn"]], ns[req["init"]]
    params = [_tensor(s).reshape(shape).requires_grad_(True) for s, shape in zip(req["start"], req["shapes"])]
    states = _fresh(init(req["feature_dim"]))
    hp = dict(req["hyperparams"])
    out = {"params": [], "states": [], "grad_left": False, "trace": []}
    for step, gs in enumerate(req["grads"]):
        for p, g in zip(params, gs):
            g = _tensor(g).reshape(p.shape)
            if p.grad is None:
                p.grad = g.clone()
            else:
                p.grad += g
        if step < req.get("trace_steps", 0):
            with recorder({p.numel() for p in params}) as rec:
                fn(params, states, hp)
            out["trace"].append(rec.values)
        else:
            fn(params, states, hp)
        out["grad_left"] = out["grad_left"] or any(
            p.grad is not None and bool(p.grad.ne(0).any()) for p in params)
        out["params"].append([p.detach().double().flatten().tolist() for p in params])
        out["states"].append(encode(states))
    return out


def run_request(ns, req):
    if req["kind"] == "value":
        return {"ok": encode(ns[req["name"]])}
    if req["kind"] == "optimizer":
        return {"ok": run_optimizer(ns, req)}
    args = decode(req.get("args", []))
    kwargs = {k: decode(v) for k, v in req.get("kwargs", {}).items()}
    result = ns[req["name"]](*args, **kwargs)
    record = {"ok": encode(result)}
    if req.get("return_args"):
        record["args"] = encode(args)
    return record


def timed(seconds, fn, *args):
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        job = json.load(f)
    signal.signal(signal.SIGALRM, _alarm)
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    shell.register_magic_function(lambda line: None, "line", "matplotlib")  # Agg, figures discarded
    ns = shell.user_ns
    timeout = job["cell_timeout"]
    for step in job["steps"]:
        if "code" in step:
            try:
                result = timed(timeout, shell.run_cell, step["code"], False, True)
                err = result.error_in_exec or result.error_before_exec
            except GraderTimeout as e:
                err = e
            if "matplotlib.pyplot" in sys.modules:
                sys.modules["matplotlib.pyplot"].close("all")
            emit({"cell": step["cell"], "error": type(err).__name__ if err is not None else None,
                  "timed_out": isinstance(err, GraderTimeout)})
            continue
        results = []
        for req in step["requests"]:
            if results and results[-1].get("error") == "timeout":
                results.append({"error": "timeout"})    # one time-out per exercise is enough
                continue
            names = [req[k] for k in ("name", "fn", "init") if k in req]
            missing = [n for n in names if n not in ns]
            if missing:
                results.append({"missing": missing[0]})
                continue
            try:
                results.append(timed(timeout, run_request, ns, req))
            except GraderTimeout:
                results.append({"error": "timeout"})
            except BaseException as err:  # the student's own error: only its type goes back
                results.append({"error": type(err).__name__})
        emit({"probe": step["probe"], "results": results})
    emit({"done": True})


if __name__ == "__main__":
    main()
