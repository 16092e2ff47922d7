"""Benchmarks behind `make bench` (a script, not timed tests).

1. Execution time of every chapter notebook (one kernel each, one thread, sequentially).
2. Overhead of `train_ch11` / `train_concise_ch11` over a bare torch loop on the same
   minibatches, with the live plot off (static) and on (inside a real Jupyter kernel, where the
   live plot actually renders).

Usage: python tools/bench.py [--skip-notebooks] [--repeat 3] [--json out.json]
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]

OVERHEAD_CODE = r'''
import json, time, torch
import d2lopt as d2l

def sgd(params, states, hp):
    for p in params:
        p.data.sub_(hp["lr"] * p.grad)
        p.grad.data.zero_()

def bare_scratch(data_iter, epochs):
    w = torch.normal(0, 0.01, size=(5, 1), requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    for _ in range(epochs):
        for X, y in data_iter:
            l = d2l.squared_loss(X @ w + b, y).mean()
            l.backward()
            sgd([w, b], None, {"lr": 0.05})

def bare_concise(data_iter, epochs):
    net = torch.nn.Linear(5, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    loss = torch.nn.MSELoss()
    for _ in range(epochs):
        for X, y in data_iter:
            opt.zero_grad()
            loss(net(X), y.reshape(-1, 1)).backward()
            opt.step()

def best(fn, repeat):
    times = []
    for _ in range(repeat):
        d2l.seed_everything(0)
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return min(times)

results = {}
for bs in (10, 100):
    data_iter, _ = d2l.get_data_ch11(batch_size=bs, seed=0)
    cpu = torch.device("cpu")
    row = {"bare_scratch": best(lambda: bare_scratch(data_iter, 2), REPEAT),
           "bare_concise": best(lambda: bare_concise(data_iter, 2), REPEAT)}
    for live in (False, True):
        tag = "live" if live else "static"
        row[f"train_ch11_{tag}"] = best(lambda: d2l.train_ch11(
            sgd, None, {"lr": 0.05}, data_iter, 5, num_epochs=2, device=cpu, animate=live), REPEAT)
        row[f"train_concise_ch11_{tag}"] = best(lambda: d2l.train_concise_ch11(
            torch.optim.SGD, {"lr": 0.01}, data_iter, num_epochs=2, device=cpu, animate=live),
            REPEAT)
    results[f"batch_size={bs}"] = row
print("BENCH_JSON " + json.dumps(results))
'''


def run_code_in_kernel(code, env_updates, timeout=600):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    env = {**os.environ, **env_updates}
    env.pop("D2L_NO_ANIMATION", None)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}})
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    for out in nb.cells[0].outputs:
        for line in out.get("text", "").splitlines():
            if line.startswith("BENCH_JSON "):
                return json.loads(line[len("BENCH_JSON "):])
    raise RuntimeError(f"benchmark cell printed no result: {nb.cells[0].outputs}")


def time_notebook(path, timeout=600):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-notebooks", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="",
                      PYTHONPATH=str(ROOT), D2L_NO_ANIMATION="1")
    report = {}
    if not args.skip_notebooks:
        report["notebooks"] = {}
        total = 0.0
        for path in sorted((ROOT / "chapters").glob("[0-9]*.ipynb")):
            seconds = time_notebook(path)
            total += seconds
            report["notebooks"][path.name] = round(seconds, 2)
            print(f"{path.name:40s} {seconds:7.1f} s", flush=True)
        print(f"{'all notebooks':40s} {total:7.1f} s")
    overhead = run_code_in_kernel(OVERHEAD_CODE.replace("REPEAT", str(args.repeat)),
                                  {"PYTHONPATH": str(ROOT)})
    report["trainer_overhead"] = overhead
    print("\ntrainer wall time for 2 epochs (best of %d), ratio to a bare torch loop" % args.repeat)
    for setting, row in overhead.items():
        print(f"  {setting}: bare scratch {row['bare_scratch']:.3f} s, "
              f"bare concise {row['bare_concise']:.3f} s")
        for name in ("train_ch11", "train_concise_ch11"):
            bare = row["bare_scratch" if name == "train_ch11" else "bare_concise"]
            for tag in ("static", "live"):
                t = row[f"{name}_{tag}"]
                print(f"    {name:20s} {tag:6s} {t:.3f} s  ({t / bare:.2f}x bare)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
