"""Stored notebook outputs must be properties of the math, not of one CPU's kernels.

What is checked here, without executing the notebooks (`make test` runs them under two kernel
sets): the generated image data is the same bytes under scalar numpy as under this CPU's SIMD
dispatch; the gap formatter hides round-off digits and keeps real gaps; the notebook checker
flags a stored round-off-level number; the kernel sets `make test` uses are the ones
tools/kernel_sets.py documents.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from d2lopt import checks, images

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import check_notebooks  # noqa: E402
import kernel_sets  # noqa: E402

SCALAR_ENV = dict(kv.split("=", 1) for kv in kernel_sets.SETS["default"].split())

DIGEST = """
import hashlib, json
from d2lopt import images
out = {}
for n, seed, stream in [(300, 0, 0), (120, 3, 1)]:
    X, y = images.generate_fashion_like(n, seed, stream)
    out[f"{n}-{seed}-{stream}"] = hashlib.sha256(X.tobytes() + y.tobytes()).hexdigest()
print(json.dumps(out))
"""


def _digest(extra_env):
    env = {**os.environ, **extra_env, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", DIGEST], env=env, capture_output=True, text=True,
                         timeout=120, check=True)
    return json.loads(res.stdout)


def test_generated_images_are_the_same_bytes_under_scalar_numpy_and_torch():
    native, scalar = _digest({}), _digest(SCALAR_ENV)
    assert native == scalar


def test_scalar_numpy_really_switches_off_the_simd_dispatch():
    # Otherwise the test above would compare a run with itself.
    code = ("import numpy as np, json; from numpy._core._multiarray_umath import __cpu_features__ as f;"
            "print(json.dumps({k: bool(v) for k, v in f.items()}))")
    env = {**os.environ, **SCALAR_ENV}
    feats = json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                      text=True, check=True).stdout)
    # numpy 2 dispatches by level (X86_V3 = AVX2 + FMA3 ...); older numpy by feature (AVX2)
    level = "X86_V3" if "X86_V3" in feats else "AVX2"
    assert not feats.get(level, False)


def test_generated_images_are_8_bit_intensities():
    X, _ = images.generate_fashion_like(50, seed=0)
    levels = np.rint(X.astype(np.float64) * 255)
    assert np.array_equal((levels / 255).astype(np.float32), X) and X.min() >= 0 and X.max() <= 1


@pytest.mark.parametrize("gap, tol, shown", [(1.1e-16, 1e-12, "< 1e-12"), (0.0, 1e-12, "< 1e-12"),
                                             (6.0e-08, 1e-6, "< 1e-6"), (3.61e-1, 1e-12, "3.6e-01"),
                                             (2e-5, 1e-5, "2.0e-05")])
def test_show_gap_hides_round_off_and_keeps_real_gaps(gap, tol, shown):
    assert checks.show_gap(gap, tol) == shown


def test_show_gap_rejects_a_non_positive_tolerance():
    with pytest.raises(ValueError, match="tol"):
        checks.show_gap(1e-3, 0.0)


def _pair(tmp_path, printed):
    src = "```{code-cell} ipython3\nprint('x')\n```\n"
    md = tmp_path / "01-demo.md"
    md.write_text("---\njupyter:\n  kernelspec:\n    name: python3\n    display_name: Python 3\n"
                  "jupytext:\n  text_representation:\n    format_name: myst\n---\n\n" + src)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "print('x')", execution_count=1,
        outputs=[nbformat.v4.new_output("stream", name="stdout", text=printed)])])
    nbformat.write(nb, tmp_path / "01-demo.ipynb")
    return md


@pytest.mark.parametrize("printed, flagged", [("max |Δ| = 1.1e-16\n", True), ("gap 0.0e+00\n", True),
                                              ("max |Δ| = < 1e-12\n", False),
                                              ("distance after 300 steps 4.7e-45\n", False),
                                              ("loss 0.2393\n", False)])
def test_checker_flags_a_stored_round_off_number(tmp_path, printed, flagged):
    problems = check_notebooks.check(_pair(tmp_path, printed))
    assert any("round-off" in p for p in problems) == flagged, problems


def test_make_test_runs_the_documented_scalar_set():
    makefile = (ROOT / "Makefile").read_text()
    line = re.search(r"SCALAR_KERNELS := (.*?)\n(?!\t)", makefile, re.S).group(1)
    assert line.replace("\\\n\t", "").split() == kernel_sets.SETS["default"].split()
    assert re.search(r"env \$\(SCALAR_KERNELS\) \$\(NBVAL\)", makefile)
