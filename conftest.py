"""Settings shared by the unit tests and the notebook regression tests (nbval).

The environment set here is inherited by the kernels nbval starts, so stored outputs and test
runs see the same single-threaded, animation-free, CPU-only world.
"""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
for key, value in {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0",
                   "D2L_NO_ANIMATION": "1", "PYTHONWARNINGS": "ignore::DeprecationWarning"}.items():
    os.environ.setdefault(key, value)
if "D2L_DEVICE" not in os.environ:          # the CUDA target sets D2L_DEVICE=cuda
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))


def pytest_configure(config):
    opt = config.option
    if getattr(opt, "nbval", False) or getattr(opt, "nbval_lax", False):
        if not opt.nbval_sanitize_with:
            opt.nbval_sanitize_with = str(ROOT / "nbval_sanitize.cfg")
        if not opt.nbval_kernel_name:
            opt.nbval_current_env = True


def pytest_collectstart(collector):
    # PNG is never compared by nbval; SVG only on request (it is exact but version-sensitive).
    if hasattr(collector, "skip_compare") and not os.environ.get("NBVAL_COMPARE_SVG"):
        collector.skip_compare += ("image/svg+xml",)
