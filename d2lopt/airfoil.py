"""A synthetic stand-in for the UCI airfoil self-noise file, plus the book's reader and preprocessing.

The book's minibatch-SGD section reads ``airfoil_self_noise.dat`` (1503 rows, tab-separated, no
header): frequency f [Hz], angle of attack α [deg], chord c [m], free-stream velocity U [m/s],
suction-side displacement thickness δ* [m], and the label, a sound pressure level SPL [dB].
That file cannot be downloaded here, so ``generate_airfoil_like`` builds a file with the same layout
from a seed, with a made-up but physically shaped model:

    configurations   chord c from 6 values, angles α from 0 up to a stall angle that grows as c
                     shrinks, velocity U from {71.3, 55.5, 39.6, 31.7}; one frequency sweep each
    thickness        δ* = δ_ref (c/c_ref)^0.7 (U/U_ref)^-0.3 10^(h(α) + ε),  ε ~ N(0, σ_δ²),
                     h(α) = r (tanh((α - α_m)/w) + tanh(α_m/w))  (thickens fast towards stall)
    sweep            a run of consecutive 1/3-octave bands (200 Hz to 20 kHz) near the spectral
                     peak f_p = St_p U / δ*
    label            SPL = L0 + k_δ log10(δ*/δ_ref) + k_U log10(U/U_ref) + S(log10(f/f_p))
                           - b c/c_ref + k_α α + (per-configuration offset) + (per-row noise),
                     S(x) = -a x² for |x| <= 1, -a (2|x| - 1) beyond (parabolic peak, straight skirts)

Symbols → code: f=``freq``, α=``angle``, c=``chord``, U=``vel``, δ*=``thick``, δ_ref=``D_REF``,
St_p=``ST_PEAK``, r=``THICK_RISE``, α_m=``THICK_MID``, w=``THICK_WIDTH``, σ_δ=``THICK_SCATTER``,
L0=``SPL_BASE``, k_δ=``SPL_THICK``, k_U=``SPL_VEL``, a=``SPL_CURVE``, b=``SPL_CHORD``, k_α=``SPL_ANGLE``.
After the book's whitening the synthetic file has nearly the real file's optimisation geometry
(½MSE optimum ≈ 0.24, Hessian condition number ≈ 12, largest eigenvalue just above 2); see
``data/README.md`` for the side-by-side numbers.

>>> data = generate_airfoil_like()
>>> data.shape
(1503, 6)
"""
import argparse
import math
from pathlib import Path

import numpy as np

from d2lopt.validate import check_finite_rows, check_int, is_int

AIRFOIL_SEED = 82
N_ROWS = 1503
N_COLUMNS = 6

BANDS = (200, 250, 315, 400, 500, 630, 800, 1000, 1250, 1600, 2000, 2500, 3150,
         4000, 5000, 6300, 8000, 10000, 12500, 16000, 20000)  # nominal 1/3-octave centres [Hz]
CHORDS = (0.3048, 0.2286, 0.1524, 0.0508, 0.0254, 0.1016)  # in the real file's campaign order [m]
STALL_ANGLE = (4.0, 7.3, 12.6, 19.7, 22.2, 15.6)           # largest angle tested per chord [deg]
VELOCITIES = (71.3, 55.5, 39.6, 31.7)                      # [m/s], listed fastest first
ANGLES_PER_CHORD = (4, 6, 6, 6, 6, 6)
MIN_SWEEP, MAX_SWEEP = 8, 19                               # bands per frequency sweep

# Model coefficients. They were tuned (together with AIRFOIL_SEED) so that the whitened data has
# about the real file's least-squares optimum, Hessian spectrum and GD-at-lr=1 curve.
C_REF, U_REF = 0.3048, 71.3    # reference chord [m] and velocity [m/s]
D_REF = 0.0024                 # δ* at c = C_REF, U = U_REF, α = 0 [m]
ST_PEAK = 0.055                # Strouhal number f δ*/U of the spectral peak
THICK_RISE = 0.82              # h(α) = THICK_RISE (tanh((α - THICK_MID) / THICK_WIDTH) + const)
THICK_MID, THICK_WIDTH = 7.2, 4.9   # [deg]
THICK_SCATTER = 0.1            # sd of log10 δ* around the smooth law
SPL_BASE = 136.4               # L0 [dB]
SPL_THICK = 5.2                # dB per decade of δ*
SPL_ANGLE = -0.26              # dB per degree of angle of attack
SPL_VEL = 7.8                  # dB per decade of U (weak, as in the real file's scaled SPL)
SPL_CURVE = 9.4                # a: dB lost per (decade off the peak)^2 near the peak
SPL_CHORD = 12.4               # b: dB lost per C_REF of chord
SPL_CONFIG_SD = 2.2            # sd of the per-configuration offset (set-up, tunnel) [dB]
SPL_NOISE_SD = 1.3             # sd of the per-row noise [dB]

_FORMATS = ("{:.0f}", "{:.1f}", "{:.4f}", "{:.1f}", "{:.6g}", "{:.3f}")


def _thickness_exponent(angle):
    """h(α): log10 of the thickening factor; 0 at α = 0, steepest at THICK_MID, flat near stall."""
    return THICK_RISE * (np.tanh((angle - THICK_MID) / THICK_WIDTH) + math.tanh(THICK_MID / THICK_WIDTH))


def _spectrum_shape(x):
    """dB below the peak at x decades from it: parabolic within one decade, then a straight roll-off."""
    x = np.abs(x)
    return -SPL_CURVE * np.where(x <= 1.0, x * x, 2.0 * x - 1.0)


def _configurations(rng):
    """(chord, angle, velocity) triples in file order: chord campaign, angle up, velocity down."""
    configs = []
    for chord, stall, n_angles in zip(CHORDS, STALL_ANGLE, ANGLES_PER_CHORD):
        inner = np.linspace(0.0, stall, n_angles)[1:-1] + rng.uniform(-0.6, 0.6, n_angles - 2)
        angles = [0.0, *np.round(np.sort(inner), 1), stall]
        for angle in angles:
            vels = VELOCITIES if rng.random() < 0.5 else (VELOCITIES[0], VELOCITIES[2])
            configs.extend((chord, float(angle), vel) for vel in vels)
    return configs


def _sweep_lengths(rng, n_configs):
    """Bands per sweep, nudged one at a time until the sweeps add up to exactly N_ROWS rows."""
    lengths = rng.integers(10, 19, n_configs)
    while lengths.sum() != N_ROWS:
        i = rng.integers(n_configs)
        step = 1 if lengths.sum() < N_ROWS else -1
        if MIN_SWEEP <= lengths[i] + step <= MAX_SWEEP:
            lengths[i] += step
    return lengths


def _round_like_file(data):
    """Round each column exactly as ``format_airfoil`` writes it."""
    return np.array([[float(fmt.format(v)) for fmt, v in zip(_FORMATS, row)] for row in data])


def generate_airfoil_like(seed=AIRFOIL_SEED):
    """Return the synthetic airfoil-like data, shape (1503, 6), float64, rounded as written to disk."""
    rng = np.random.default_rng(check_int("seed", seed, low=0))
    configs = _configurations(rng)
    lengths = _sweep_lengths(rng, len(configs))
    log_bands = np.log10(BANDS)
    rows = []
    for (chord, angle, vel), n_bands in zip(configs, lengths):
        scatter = rng.normal(0.0, THICK_SCATTER)
        thick = (D_REF * (chord / C_REF) ** 0.7 * (vel / U_REF) ** -0.3
                 * 10.0 ** (_thickness_exponent(angle) + scatter))
        f_peak = ST_PEAK * vel / thick
        centre = int(np.argmin(np.abs(log_bands - math.log10(f_peak)))) + int(rng.integers(-2, 3))
        start = int(np.clip(centre - n_bands // 3, 0, len(BANDS) - n_bands))
        freq = np.array(BANDS[start:start + n_bands], dtype=float)
        offset = rng.normal(0.0, SPL_CONFIG_SD)
        spl = (SPL_BASE + SPL_THICK * np.log10(thick / D_REF) + SPL_VEL * np.log10(vel / U_REF)
               + _spectrum_shape(np.log10(freq / f_peak)) - SPL_CHORD * chord / C_REF + SPL_ANGLE * angle
               + offset + rng.normal(0.0, SPL_NOISE_SD, n_bands))
        rows.append(np.column_stack([freq, np.full((n_bands, 4), (angle, chord, vel, thick)), spl]))
    return _round_like_file(np.concatenate(rows))


def format_airfoil(data):
    """Text of the file: one row per line, tab-separated, no header, LF line endings."""
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2 or data.shape[1] != N_COLUMNS:
        raise ValueError(f"data must have shape (n, {N_COLUMNS}), got {data.shape}")
    if not np.all(np.isfinite(data)):
        raise ValueError("data must be finite")
    if np.any(data[:, 4] < 1e-4):
        raise ValueError("thickness (column 4) must be >= 1e-4 so that it is written without an exponent")
    return "".join("\t".join(fmt.format(v) for fmt, v in zip(_FORMATS, row)) + "\n" for row in data)


def write_airfoil(path, data):
    """Write ``format_airfoil(data)`` to ``path`` (bytes, so no platform newline translation)."""
    Path(path).write_bytes(format_airfoil(data).encode("ascii"))


def read_airfoil(path):
    """Read an airfoil file (real or synthetic; LF or CRLF) as float32, like the book's genfromtxt."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"airfoil file not found: {path}")
    rows, numbers = [], []
    for number, line in enumerate(path.read_text(encoding="ascii").splitlines(), start=1):
        if not line.strip():
            continue
        numbers.append(number)
        fields = line.split("\t")
        if len(fields) != N_COLUMNS:
            raise ValueError(f"{path}, line {number}: expected 6 tab-separated columns "
                             f"(5 features + label), got {len(fields)}")
        try:
            rows.append([float(field) for field in fields])
        except ValueError:
            raise ValueError(f"{path}, line {number}: non-numeric field in {line!r}") from None
    if not rows:
        raise ValueError(f"{path}: no data rows")
    # nan, inf or a value beyond float32 (e.g. 1e39) would surface later as a "diverged" run
    return check_finite_rows(str(path), rows, numbers).astype(np.float32)


def whiten(data):
    """The book's preprocessing: (data - mean) / std per column, all rows, ddof=0, in float32."""
    data = np.asarray(data, dtype=np.float32)
    if data.ndim != 2 or data.shape[0] < 2:
        raise ValueError(f"data must be 2-D with at least 2 rows, got shape {data.shape}")
    std = data.std(axis=0)
    if np.any(std == 0):
        raise ValueError(f"data has a constant column (index {int(np.argmin(std))}); cannot whiten")
    return (data - data.mean(axis=0)) / std


def geometry(data, n=1500):
    """Optimisation geometry of the book's problem: linear model with bias, ½MSE on whitened rows.

    With A = [X, 1] (the first ``n`` whitened rows) and y the whitened label:
        loss(θ) = ½ mean((Aθ - y)²),  Hessian H = AᵀA / n,  θ_{k+1} = θ_k - ∇loss(θ_k)  (lr = 1).
    Returns ``opt_loss`` (min loss), ``eigenvalues`` of H (ascending), ``lambda_max``,
    ``condition`` (λ_max / λ_min) and ``gd_losses`` (loss after each of 10 GD steps from θ = 0).
    """
    if not is_int(n) or not 2 <= n <= len(data):
        raise ValueError(f"n must be an int in [2, {len(data)}], got {n!r}")
    z = whiten(data)[:n].astype(np.float64)
    a, y = np.column_stack([z[:, :-1], np.ones(n)]), z[:, -1]
    theta_opt = np.linalg.lstsq(a, y, rcond=None)[0]
    eigenvalues = np.linalg.eigvalsh(a.T @ a / n)
    theta, gd_losses = np.zeros(a.shape[1]), []
    for _ in range(10):
        theta = theta - a.T @ (a @ theta - y) / n
        gd_losses.append(0.5 * np.mean((a @ theta - y) ** 2))
    return {"opt_loss": 0.5 * np.mean((a @ theta_opt - y) ** 2), "eigenvalues": eigenvalues,
            "lambda_max": eigenvalues[-1], "condition": eigenvalues[-1] / eigenvalues[0],
            "gd_losses": np.array(gd_losses)}


def _main(argv=None):
    parser = argparse.ArgumentParser(description="Write the synthetic airfoil-like data file.")
    parser.add_argument("--write", required=True, metavar="PATH", help="output file")
    parser.add_argument("--seed", type=int, default=AIRFOIL_SEED)
    args = parser.parse_args(argv)
    write_airfoil(args.write, generate_airfoil_like(args.seed))
    print(f"wrote {N_ROWS} rows to {args.write} (seed {args.seed})")


if __name__ == "__main__":
    _main()
