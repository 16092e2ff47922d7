"""Print the CPU kernel sets this machine can run the notebooks under, one per line.

Each line is the environment that selects one set: torch's ATen kernels (ATEN_CPU_CAPABILITY),
oneDNN's instruction set (DNNL_MAX_CPU_ISA) and, for the scalar set, numpy's SIMD dispatch.
`default` (scalar ATen, SSE4.1 oneDNN, baseline numpy) runs everywhere; `avx2` and `avx512` only
where the CPU has them. `make test-kernels` runs nbval under each line, so a stored output that
depends on vector width fails on the maintainer's machine, not on a reader's.

Usage: python tools/kernel_sets.py            # all sets this CPU offers
       python tools/kernel_sets.py --scalar   # the scalar set only (what `make test` adds)
"""
import sys

SETS = {
    # numpy dispatches its own SIMD loops (and SVML on AVX-512); the scalar set turns them off
    # too (older numpy names the features AVX2/FMA3/AVX512F, newer X86_V3/X86_V4).
    "default": "ATEN_CPU_CAPABILITY=default DNNL_MAX_CPU_ISA=SSE41 "
               "NPY_DISABLE_CPU_FEATURES=X86_V3,X86_V4,AVX512_ICL,AVX512_SPR,AVX2,FMA3,AVX512F,AVX512_SKX",
    "avx2": "ATEN_CPU_CAPABILITY=avx2 DNNL_MAX_CPU_ISA=AVX2",
    "avx512": "ATEN_CPU_CAPABILITY=avx512 DNNL_MAX_CPU_ISA=AVX512_CORE",
}


def available():
    """Kernel sets this CPU supports, from the best set torch itself would pick."""
    import torch

    best = torch.backends.cpu.get_cpu_capability().lower()  # e.g. 'avx2', 'avx512', 'default'
    names = ["default"]
    if best in ("avx2", "avx512"):
        names.append("avx2")
    if best == "avx512":
        names.append("avx512")
    return names


def main(argv):
    names = ["default"] if "--scalar" in argv else available()
    for name in names:
        print(f"{name} {SETS[name]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
