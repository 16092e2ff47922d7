"""Mutation sample: do the unit tests notice a small bug in an update rule or a schedule?

Each mutation replaces one exact snippet of a d2lopt source file with a wrong one (a flipped
sign, an off-by-one step, a dropped clamp, a running maximum replaced by the current value,
...). For every mutation this script builds a throw-away copy of the repository's test world in
a temporary folder (the mutated ``d2lopt/``, a copy of ``tests/`` and ``conftest.py``, and a
link to ``data/``), runs the relevant unit tests there with that copy first on ``PYTHONPATH``,
and reports the mutation as *killed* (some test failed) or *survived* (all passed). The working
tree is never modified.

    python tools/mutation_sample.py             # all mutations, one at a time
    python tools/mutation_sample.py -j 2 3 7    # mutations 3 and 7, two at a time

Exit status 0 if every mutation was killed, 1 otherwise.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ["tests/test_updates.py", "tests/test_optim.py", "tests/test_schedules.py",
         "tests/test_checks.py", "tests/test_core.py", "tests/test_modern.py",
         "tests/test_mutants.py"]
PYTEST = ["-q", "-x", "-p", "no:cacheprovider"]

U, O, SF, S = "d2lopt/updates.py", "d2lopt/optim.py", "d2lopt/schedulefree.py", "d2lopt/schedules.py"
M, MI = "d2lopt/modern.py", "d2lopt/mistakes.py"
# (file, exact original snippet, mutated snippet, description)
MUTATIONS = [
    # ---- the shared cores (d2lopt/updates.py)
    (U, "return beta * avg + ((1 - beta) if average else 1.0) * x",
     "return (1 - beta) * avg + (beta if average else 1.0) * x", "ema: beta and 1 - beta swapped"),
    (U, "return avg / (1 - beta ** t)", "return avg / (1 - beta ** (t + 1))",
     "debias: off-by-one t"),
    (U, "return math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)",
     "return math.sqrt(1 - beta2 ** t) / (1 - beta1 ** (t + 1))",
     "step_correction: off-by-one t in beta1's power"),
    (U, "return math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)",
     "return (1 - beta2 ** t) / (1 - beta1 ** t)", "step_correction: sqrt dropped"),
    (U, "return (s + eps).sqrt() if eps_inside else s.sqrt() + eps",
     "return s.sqrt() + eps if eps_inside else (s + eps).sqrt()",
     "rms: eps placement flipped (inside <-> outside)"),
    (U, "    if not root:\n        return s + eps\n", "",
     "rms: root=False ignored (the no-sqrt mistake not modelled)"),
    (U, "b = g.clone() if b is None else momentum * b + (1 - dampening) * g",
     "b = (1 - dampening) * g if b is None else momentum * b + (1 - dampening) * g",
     "sgd_momentum: first step dampened"),
    (U, "b = g.clone() if b is None else momentum * b + (1 - dampening) * g",
     "b = g.clone() if b is None else momentum * b + (1 + dampening) * g",
     "sgd_momentum: dampening sign flipped"),
    (U, "return lr * (g + momentum * b if nesterov else b), b",
     "return lr * (g - momentum * b if nesterov else b), b", "sgd_momentum: Nesterov sign flipped"),
    (U, "s = s + g * g\n", "s = g * g\n",
     "adagrad: running sum replaced by the current value"),
    (U, "s = ema(s, g * g, alpha, average=average)", "s = ema(s, g * g, 1 - alpha, average=average)",
     "rmsprop: alpha and 1 - alpha swapped"),
    (U, "return lr * d, v, ema(u, d * d, rho, average=avg_u)",
     "return lr * d, v, ema(u, lr * d * lr * d, rho, average=avg_u)",
     "adadelta: u accumulates the lr-scaled step"),
    (U, "d = rms(u, eps, eps_inside=eps_inside) / rms(v, eps, eps_inside=eps_inside) * g",
     "d = rms(u, eps, eps_inside=eps_inside) / rms(v, eps) * g",
     "adadelta: eps_inside ignored in one root"),
    (U, "m = ema(m, g, beta1, average=avg_m)", "m = ema(m, g, beta2, average=avg_m)",
     "adam: beta2 used for the first moment (beta1/beta2 swapped)"),
    (U, "v = v - ((1 - beta2) if avg_v else 1.0) * torch.sign(v - g2) * g2",
     "v = v + ((1 - beta2) if avg_v else 1.0) * torch.sign(v - g2) * g2",
     "Yogi: sign(v - g^2) flipped"),
    (U, "v = v - ((1 - beta2) if avg_v else 1.0) * torch.sign(v - g2) * g2",
     "v = ema(v, g2, beta2, average=avg_v)", "Yogi: Adam's v update instead"),
    (U, "v_max = torch.maximum(v_max, v)", "v_max = v",
     "AMSGrad: running max replaced by the current value"),
    (U, "v_used = v if v_max is None else v_max", "v_used = v", "AMSGrad: v_max not used"),
    (U, "m_hat = debias(m, beta1, t) if fix_m else m", "m_hat = m",
     "adam: m's bias correction dropped"),
    (U, "v_hat = debias(v_used, beta2, t) if fix_v else v_used",
     "v_hat = debias(debias(v_used, beta2, t), beta2, t) if fix_v else v_used",
     "adam: v corrected twice (sqrt dropped from its correction)"),
    (U, "delta = lr * m_hat / rms(v_hat, eps, eps_inside=eps_inside)",
     "delta = lr * m_hat / rms(v_hat, eps)", "adam: eps_inside ignored"),
    (U, "delta = scale * m / rms(v_used, eps, eps_inside=eps_inside)",
     "delta = scale * m / rms(debias(v_used, beta2, t), eps, eps_inside=eps_inside)",
     "adam correct_step: eps added after the correction"),
    (U, "beta1 if fix_m else 0.0, beta2 if fix_v else 0.0, t)",
     "beta1, beta2, t)", "adam correct_step: bias_correction flags ignored"),
    (U, "                    else bias_correction)", "                    else bias_correction[::-1])",
     "adam: bias_correction pair read in the wrong order"),
    (U, "avg_m, avg_v = (average, average) if isinstance(average, bool) else average",
     "avg_m, avg_v = (average, average) if isinstance(average, bool) else average[::-1]",
     "adam: average pair read in the wrong order"),
    # ---- their users: Yogi (optim.py), Lion, LAMB (modern.py), the mistake models
    (O, 't = state["step"] + 1', 't = state["step"] + 2', "Yogi: bias-correction step t+1"),
    (O, 'g = g + group["weight_decay"] * p', 'g = g - group["weight_decay"] * p',
     "Yogi: weight-decay sign flipped"),
    (O, 'g = g + group["weight_decay"] * p', "g = g", "Yogi: weight-decay term dropped"),
    (O, "p.sub_(delta)", "p.add_(delta)", "Yogi: step sign flipped"),
    (O, '"v": torch.full_like(param, initial_accumulator,', '"v": torch.full_like(param, 0.0,',
     "Yogi: v0 ignores initial_accumulator"),
    (O, 'second_moment="yogi")', ")", "Yogi: Adam's second moment (the one line not changed)"),
    (M, "c = updates.ema(m, g, beta1)", "c = updates.ema(m, g, beta2)",
     "Lion: beta2 used for the direction (beta1/beta2 swapped)"),
    (M, "torch.linalg.vector_norm(p).clamp(0, clamp_value)", "torch.linalg.vector_norm(p)",
     "LAMB: clamp of ||p|| dropped"),
    (M, "eps=eps, bias_correction=False)", "eps=eps)", "LAMB: Adam's bias correction kept"),
    (M, "updates.step_correction(beta1, beta2, t) if debias", "updates.step_correction(beta2, beta1, t) if debias",
     "LAMB debias: beta1/beta2 swapped"),
    (MI, "counter = [1 if t_frozen else t + t_shift]", "counter = [t + t_shift]",
     "mistakes: frozen step counter not modelled"),
    (MI, "dict(eps_inside=family != \"adadelta\", eps=e)", "dict(eps_inside=family == \"adadelta\", eps=e)",
     "mistakes: eps-placement variant is the reference's own placement"),
    # ---- schedule-free (d2lopt/schedulefree.py)
    (SF, "gamma = lr * min(1.0, (k + 1) / warmup_steps)", "gamma = lr * min(1.0, k / warmup_steps)",
     "schedule-free: warmup off by one (k instead of k+1)"),
    (SF, "gamma = lr * min(1.0, (k + 1) / warmup_steps)", "gamma = lr * ((k + 1) / warmup_steps)",
     "schedule-free: warmup clamp dropped"),
    (SF, "lr_max = max(lr_max, gamma)", "lr_max = gamma",
     "schedule-free: running max lr replaced by the current lr"),
    (SF, "weight = (k + 1) ** r * lr_max", "weight = k ** r * lr_max",
     "schedule-free: averaging weight (k+1)^r off by one"),
    (SF, "c = weight / weight_sum if weight_sum > 0 else 0.0", "c = 1.0 / (k + 1)",
     "schedule-free: uniform average, ignoring the lr weights"),
    (SF, "gamma * (beta * (1 - c) - 1) * d", "gamma * (1 - beta * (1 - c)) * d",
     "schedule-free: y step sign flipped"),
    (SF, "z - gamma * d", "z + gamma * d", "schedule-free: z step sign flipped"),
    (SF, "self._lerp_to_z(group, 1 - 1 / self._beta(group))",
     "self._lerp_to_z(group, 1 - self._beta(group))", "schedule-free: eval() lerps with 1 - beta"),
    (SF, "d = g / ((v / (1 - beta2 ** (k + 1))).sqrt() + group[\"eps\"])",
     "d = g / ((v / (1 - beta2 ** (k + 2))).sqrt() + group[\"eps\"])",
     "SF-AdamW: bias-correction step k+2"),
    (SF, "d = g / ((v / (1 - beta2 ** (k + 1))).sqrt() + group[\"eps\"])",
     "d = g / ((v / (1 - beta2 ** (k + 1)) + group[\"eps\"]).sqrt())",
     "SF-AdamW: eps moved inside the sqrt"),
    (SF, "return d + group[\"weight_decay\"] * y if", "return d if",
     "SF-AdamW: weight-decay term dropped"),
    (SF, "return g + group[\"weight_decay\"] * y if", "return g - group[\"weight_decay\"] * y if",
     "SF-SGD: weight-decay sign flipped"),
    (SF, 'return group["betas"][0]', 'return group["betas"][1]',
     "SF-AdamW: beta2 used as the interpolation beta (beta1/beta2 swapped)"),
    # ---- schedules (d2lopt/schedules.py)
    (S, "(1.0 + math.cos(math.pi * frac))", "(1.0 - math.cos(math.pi * frac))",
     "cosine anneal: sign of the cosine flipped"),
    (S, "min(t - w, total - w) / (total - w)", "(t - w) / (total - w)",
     "cosine: clamp after total_steps dropped"),
    (S, "return base * ((t + 1) / w) if begin is None", "return base * (t / w) if begin is None",
     "cosine: default warmup off by one (t instead of t+1)"),
    (S, "        if t < w:\n            return base", "        if t <= w:\n            return base",
     "cosine: warmup runs one step too long"),
    (S, "frac = 1.0 - min(t, self.total_steps) / self.total_steps",
     "frac = 1.0 - t / self.total_steps", "polynomial: clamp after total_steps dropped"),
    (S, "frac = min(t, self.total_steps) / self.total_steps", "frac = t / self.total_steps",
     "linear: clamp after total_steps dropped"),
    (S, "t, start = min(t, last), self.max_lr", "t, start = t, self.max_lr",
     "one_cycle: clamp after total_steps dropped"),
    (S, "return max(self.min_lr, self.base_lr * self.factor ** t)",
     "return self.base_lr * self.factor ** t", "factor: min_lr floor dropped"),
    (S, "sum(m <= t for m in self.milestones)", "sum(m < t for m in self.milestones)",
     "multi_step: drop one step late"),
    (S, "self.base_lr * (t + 1) ** -0.5", "self.base_lr * (t + 2) ** -0.5",
     "square_root: off by one"),
    (S, "return self.base_lr * self.gamma ** t", "return self.base_lr * self.gamma ** (t + 1)",
     "exponential: off by one"),
    (S, "else (x - 1) / (ratio - 1)", "else (1 - x) / (ratio - 1)",
     "triangular: falling half sign flipped"),
    (S, "t_cur, t_i = t_cur - t_i, t_i * self.T_mult", "t_cur, t_i = t_cur - t_i, t_i",
     "cosine_restarts: T_mult ignored"),
    (S, "return self.schedule(t - w)", "return self.schedule(t)",
     "warmup: wrapped schedule not shifted by W"),
    (S, "return peak * ((t + 1) / w) if begin is None", "return peak * (t / w) if begin is None",
     "warmup: ramp off by one"),
    ("d2lopt/lr_scheduler.py", "float(s(self.last_epoch))", "float(s(self.last_epoch + 1))",
     "ScheduleLR: update t runs at s(t+1)"),
]


def apply(source, original, mutated, path):
    """``source`` with the one occurrence of ``original`` replaced, or raise if not exactly one."""
    count = source.count(original)
    if count != 1:
        raise ValueError(f"{path}: the original snippet occurs {count} times, not once: "
                         f"{original!r}")
    return source.replace(original, mutated)


def _copy_world(dest):
    """The mutable copy: d2lopt/, tests/, conftest.py, pyproject.toml, and data/ as a link."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "d2lopt", dest / "d2lopt", ignore=ignore)
    shutil.copytree(ROOT / "tests", dest / "tests", ignore=ignore)
    for name in ("conftest.py", "pyproject.toml"):
        shutil.copy2(ROOT / name, dest / name)
    (dest / "data").symlink_to(ROOT / "data", target_is_directory=True)


def run_tests(mutation=None, tests=TESTS):
    """Run ``tests`` against a copy of the package with ``mutation`` applied (None: unmutated).

    Returns ``(passed, seconds, line)``: ``line`` names the first failing test (the one that
    killed the mutant) if any, else it is pytest's last line.
    """
    with tempfile.TemporaryDirectory(prefix="d2lopt-mutant-") as tmp:
        tmp = Path(tmp)
        _copy_world(tmp)
        if mutation is not None:
            path, original, mutated = mutation[:3]
            target = tmp / path
            target.write_text(apply(target.read_text(), original, mutated, path))
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(tmp),
                                                            os.environ.get("PYTHONPATH")])))
        env.setdefault("OMP_NUM_THREADS", "1")
        present = [t for t in tests if (tmp / t).exists()]
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", *PYTEST, *present], cwd=tmp,
                              env=env, capture_output=True, text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
        failed = [ln.split(" - ")[0][len("FAILED "):] for ln in lines if ln.startswith("FAILED ")]
        line = failed[0] if failed else (lines[-1] if lines else "")
        return proc.returncode == 0, time.perf_counter() - start, line


def _check_isolation():
    """The copy, not the working tree, must be what the tests import: a broken copy must fail."""
    canary = ("d2lopt/__init__.py", "import importlib\n",
              "raise ImportError('mutation canary')\nimport importlib\n", "canary")
    passed, _, _ = run_tests(canary, tests=["tests/test_core.py"])
    if passed:
        sys.exit("the tests imported the working tree's d2lopt, not the mutated copy")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="*", type=int, help="mutation numbers (default: all)")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="mutants run at once")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    args = parser.parse_args(argv)
    chosen = args.which or list(range(1, len(MUTATIONS) + 1))
    if args.list:
        for i in chosen:
            print(f"{i:3d}  {MUTATIONS[i - 1][0]:24s} {MUTATIONS[i - 1][3]}")
        return 0
    for path, original, _, _ in MUTATIONS:  # every snippet must still match the source
        apply((ROOT / path).read_text(), original, "", path)
    _check_isolation()
    passed, seconds, line = run_tests()
    if not passed:
        sys.exit(f"the unmutated package fails its tests ({line}); fix that first")
    print(f"baseline: tests pass on the unmutated copy ({seconds:.0f} s)", flush=True)
    survivors = 0
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:  # results print in order as they come
        for i, passed, seconds, line in pool.map(lambda i: (i, *run_tests(MUTATIONS[i - 1])),
                                                 chosen):
            survivors += passed
            status = "SURVIVED" if passed else "killed"
            by = "" if passed else f"  <- {line}"
            print(f"{i:3d}  {status:8s} {seconds:5.1f}s  {MUTATIONS[i - 1][3]}{by}", flush=True)
    print(f"{len(chosen) - survivors} of {len(chosen)} mutations killed, {survivors} survived")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
