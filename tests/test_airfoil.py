"""The synthetic airfoil-like file: reproducible, shaped like the real file, with the real geometry.

Expected numbers come from the brief's ranges (taken from the real file) and from numpy computations
written out here, not from ``d2lopt.airfoil.geometry``.
"""
from pathlib import Path

import numpy as np
import pytest

from d2lopt import airfoil

DATA = Path(__file__).resolve().parent.parent / "data" / "airfoil_like.dat"
# Nominal 1/3-octave band centres (IEC 61260 / ANSI S1.11), 25 Hz to 20 kHz.
THIRD_OCTAVE = {25, 31.5, 40, 50, 63, 80, 100, 125, 160, 200, 250, 315, 400, 500, 630, 800, 1000,
                1250, 1600, 2000, 2500, 3150, 4000, 5000, 6300, 8000, 10000, 12500, 16000, 20000}


def book_whitened_first_1500():
    """The book's loading code, verbatim in numpy: genfromtxt float32, whiten all rows, keep 1500."""
    data = np.genfromtxt(DATA, dtype=np.float32, delimiter="\t")
    data = (data - data.mean(axis=0)) / data.std(axis=0)
    z = data[:1500].astype(np.float64)
    return np.column_stack([z[:, :5], np.ones(1500)]), z[:, 5]


def test_regenerating_from_the_seed_gives_the_committed_bytes(tmp_path):
    committed = DATA.read_bytes()
    assert airfoil.format_airfoil(airfoil.generate_airfoil_like()).encode("ascii") == committed
    airfoil.write_airfoil(tmp_path / "again.dat", airfoil.generate_airfoil_like(airfoil.AIRFOIL_SEED))
    assert (tmp_path / "again.dat").read_bytes() == committed


def test_generator_is_seeded_and_already_rounded():
    data = airfoil.generate_airfoil_like()
    assert data.shape == (airfoil.N_ROWS, 6) == (1503, 6) and data.dtype == np.float64
    assert np.array_equal(data, np.genfromtxt(DATA, delimiter="\t"))
    assert not np.array_equal(data[:, 5], airfoil.generate_airfoil_like(airfoil.AIRFOIL_SEED + 1)[:, 5])
    with pytest.raises(TypeError, match="seed must be an int"):
        airfoil.generate_airfoil_like(1.5)


def test_file_layout_1503_lines_6_tab_separated_columns_no_header():
    raw = DATA.read_bytes()
    assert b"\r" not in raw and raw.endswith(b"\n")
    lines = raw.decode("ascii").split("\n")[:-1]
    assert len(lines) == 1503
    for line in lines:
        fields = line.split("\t")
        assert len(fields) == 6
        [float(f) for f in fields]  # the first line too: no header
    assert lines[0].split("\t")[2] == "0.3048"  # chord written with 4 decimals
    read = airfoil.read_airfoil(DATA)
    assert read.dtype == np.float32
    assert np.array_equal(read, np.genfromtxt(DATA, dtype=np.float32, delimiter="\t"))


def test_geometry_of_the_whitened_first_1500_rows():
    a, y = book_whitened_first_1500()
    theta = np.linalg.lstsq(a, y, rcond=None)[0]
    opt_loss = 0.5 * np.mean((a @ theta - y) ** 2)
    eig = np.linalg.eigvalsh(a.T @ a / 1500)
    assert 0.22 <= opt_loss <= 0.26
    assert 2.0 <= eig[-1] <= 2.3
    assert 8 <= eig[-1] / eig[0] <= 16
    geo = airfoil.geometry(airfoil.read_airfoil(DATA))
    np.testing.assert_allclose(geo["opt_loss"], opt_loss, rtol=1e-10)
    np.testing.assert_allclose(geo["eigenvalues"], eig, rtol=1e-10)
    np.testing.assert_allclose([geo["lambda_max"], geo["condition"]], [eig[-1], eig[-1] / eig[0]], rtol=1e-10)


def test_full_batch_gd_at_lr_1_creeps_upward_after_a_few_steps():
    a, y = book_whitened_first_1500()
    w, losses = np.zeros(6), []
    for _ in range(10):
        w -= a.T @ (a @ w - y) / len(y)  # gradient of ½ mean((a w - y)²), lr = 1
        losses.append(0.5 * np.mean((a @ w - y) ** 2))
    best = int(np.argmin(losses))  # 0-based: losses[k] is after step k + 1
    assert losses[1] < losses[0] and losses[2] < losses[1]
    assert 3 <= best + 1 <= 8
    assert losses[9] > losses[best]
    np.testing.assert_allclose(airfoil.geometry(airfoil.read_airfoil(DATA))["gd_losses"], losses, rtol=1e-10)


def test_marginals_look_like_a_wind_tunnel_campaign():
    data = np.genfromtxt(DATA, delimiter="\t")
    freq, angle, chord, vel, thick = data[:, :5].T
    assert len(np.unique(freq)) <= 25 and set(np.unique(freq)) <= THIRD_OCTAVE
    assert len(np.unique(chord)) <= 8 and len(np.unique(vel)) <= 6
    assert angle.min() >= 0 and angle.max() <= 25 and np.all((0.02 < chord) & (chord < 0.35))
    assert np.corrcoef(thick, angle)[0, 1] > 0.5
    # rows come in configuration blocks (angle, chord, velocity), each a rising frequency sweep
    config = data[:, 1:4]
    starts = np.r_[True, np.any(config[1:] != config[:-1], axis=1)]
    block = np.cumsum(starts)
    assert len(np.unique([tuple(c) for c in config[starts]], axis=0)) == starts.sum()
    rising = np.diff(freq) > 0
    assert np.all(rising[block[1:] == block[:-1]])


def test_read_airfoil_missing_file(tmp_path):
    missing = tmp_path / "nope.dat"
    with pytest.raises(FileNotFoundError, match="nope.dat"):
        airfoil.read_airfoil(missing)


def test_read_airfoil_wrong_column_count(tmp_path):
    bad = tmp_path / "five_columns.dat"
    bad.write_text("800\t0\t0.3048\t71.3\t126.201\n1000\t0\t0.3048\t71.3\t125.201\n")
    with pytest.raises(ValueError, match=r"five_columns\.dat.*expected 6 tab-separated columns "
                                         r"\(5 features \+ label\), got 5"):
        airfoil.read_airfoil(bad)


def test_read_airfoil_reads_crlf_like_lf(tmp_path):
    crlf = tmp_path / "crlf.dat"
    crlf.write_bytes(DATA.read_bytes().replace(b"\n", b"\r\n"))
    assert np.array_equal(airfoil.read_airfoil(crlf), airfoil.read_airfoil(DATA))


def test_whiten_is_the_books_preprocessing():
    data = np.genfromtxt(DATA, dtype=np.float32, delimiter="\t")
    z = airfoil.whiten(data)
    assert z.dtype == np.float32
    assert np.array_equal(z, (data - data.mean(axis=0)) / data.std(axis=0))
    np.testing.assert_allclose(z.astype(np.float64).mean(axis=0), 0, atol=1e-4)  # float32 sums
    np.testing.assert_allclose(z.astype(np.float64).std(axis=0), 1, atol=1e-4)
    with pytest.raises(ValueError, match="constant column"):
        airfoil.whiten(np.ones((4, 6)))


def test_format_airfoil_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"shape \(n, 6\)"):
        airfoil.format_airfoil(np.zeros((3, 5)))
