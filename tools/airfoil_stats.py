"""Print markdown tables comparing the real airfoil file with the synthetic stand-in.

    python tools/airfoil_stats.py /path/to/airfoil_self_noise.dat [--synthetic data/airfoil_like.dat]

The real file is only read, never copied; the output is what ``data/README.md`` shows.
"""
import argparse
from pathlib import Path

import numpy as np

from d2lopt import airfoil

COLUMNS = ("frequency (Hz)", "angle (deg)", "chord (m)", "velocity (m/s)", "thickness (m)",
           "label: SPL (dB)")
GD_STEPS = (1, 5, 6, 10)
DEFAULT_SYNTHETIC = Path(__file__).resolve().parent.parent / "data" / "airfoil_like.dat"


def _g(value):
    return f"{value:.6g}"


def column_rows(real, synth):
    """One row per column: mean, std (ddof=0), min, max, distinct values, each as "real / synthetic"."""
    stats = (lambda c: _g(c.mean()), lambda c: _g(c.std()), lambda c: _g(c.min()),
             lambda c: _g(c.max()), lambda c: str(len(np.unique(c))))
    rows = []
    for j, name in enumerate(COLUMNS):
        # float64 statistics of the float32 values, so the digits do not depend on summation order
        a, b = real[:, j].astype(np.float64), synth[:, j].astype(np.float64)
        rows.append((f"{j}: {name}", *(f"{fn(a)} / {fn(b)}" for fn in stats)))
    return rows


def geometry_rows(real, synth):
    """Rows for the optimisation geometry of the whitened first 1500 rows."""
    g_real, g_synth = airfoil.geometry(real), airfoil.geometry(synth)
    rows = [("½MSE optimum (OLS with bias)", f"{g_real['opt_loss']:.4f}", f"{g_synth['opt_loss']:.4f}"),
            ("Hessian λ_max", f"{g_real['lambda_max']:.4f}", f"{g_synth['lambda_max']:.4f}"),
            ("Hessian λ_min", f"{g_real['eigenvalues'][0]:.4f}", f"{g_synth['eigenvalues'][0]:.4f}"),
            ("condition number λ_max/λ_min", f"{g_real['condition']:.2f}", f"{g_synth['condition']:.2f}")]
    for k in GD_STEPS:
        rows.append((f"GD lr=1, loss after step {k}", f"{g_real['gd_losses'][k - 1]:.4f}",
                     f"{g_synth['gd_losses'][k - 1]:.4f}"))
    best = (lambda g: f"{g['gd_losses'].min():.4f} (step {int(np.argmin(g['gd_losses'])) + 1})")
    rows.append(("GD lr=1, lowest loss in 10 steps", best(g_real), best(g_synth)))
    return rows


def markdown_table(real, synth):
    """Two markdown tables: per-column statistics, then the geometry of the whitened data."""
    lines = ["| column | mean | std | min | max | distinct |", "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in column_rows(real, synth)]
    lines += ["", "| whitened first 1500 rows | real | synthetic |", "|---|---:|---:|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in geometry_rows(real, synth)]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("real", help="path to the real airfoil_self_noise.dat")
    parser.add_argument("--synthetic", default=str(DEFAULT_SYNTHETIC), help="synthetic file")
    args = parser.parse_args(argv)
    print(markdown_table(airfoil.read_airfoil(args.real), airfoil.read_airfoil(args.synthetic)))


if __name__ == "__main__":
    main()
