"""Trusted grading specs of chapters/14-edge-of-stability (the format of specs.py, merged into its
``SPECS``): the power iteration of exercise 3 and the stable-rate bound of exercise 4.

The matrices are drawn here with numpy and sent as plain numbers; the power iteration receives
``matvec`` as the harness's ``affine`` function with ``c = 0`` (v -> A v). Reference values are
closed forms of the drawn spectra, never computed in the sandbox.
"""
import numpy as np

from spec import Exercise, Probe, call, function, tensor, to_array


def _spectral(rng, eigenvalues):
    """A symmetric matrix with the given eigenvalues, and the eigenvector of the first one."""
    q, _ = np.linalg.qr(rng.standard_normal((len(eigenvalues), len(eigenvalues))))
    return q @ np.diag(eigenvalues) @ q.T, q[:, 0]


def _power_judge(want, u):
    def judge(record):
        got = record["ok"]
        if not isinstance(got, list) or len(got) != 2:
            return False, "return a pair (lam, v)"
        lam, v = to_array(got[0]), to_array(got[1])
        if lam is None or lam.size != 1 or v is None or v.size != u.size:
            return False, "return lam as one number and v as a vector of the start vector's length"
        lam, v = float(lam.reshape(())), v.reshape(-1)
        if not (np.isfinite(lam) and np.all(np.isfinite(v))):
            return False, "got NaN or inf: normalize v after every product"
        if abs(lam - want) > 1e-8 * abs(want):
            if abs(lam + want) <= 1e-8 * abs(want):
                return False, ("the eigenvalue has the wrong sign: use the Rayleigh quotient v . A v "
                               "of a unit v, not the norm of A v")
            return False, ("the eigenvalue is not the one of largest magnitude: check that every "
                           "iteration multiplies by A and normalizes")
        if abs(np.linalg.norm(v) - 1) > 1e-8:
            return False, "v should have unit length"
        if abs(abs(float(u @ v)) - 1) > 1e-6:
            return False, "v is not the eigenvector of the returned eigenvalue"
        return True, None
    return judge


def _power(rng):
    probes = []
    for d, sign, iters, scale in [(4, 1.0, 80, 1.0), (3, -1.0, 80, 10.0),
                                  (8, float(rng.choice([-1.0, 1.0])), 100, 0.01), (2, 1.0, 60, 1.0)]:
        top = sign * float(rng.uniform(2.0, 6.0))
        rest = rng.uniform(-0.5, 0.5, d - 1) * abs(top)          # |lambda_2 / lambda_1| <= 0.5
        A, u = _spectral(rng, [top, *rest])
        v0 = rng.standard_normal(d) * scale
        probes.append(Probe(call("power_iteration", function("affine", A=A.tolist(), c=[0.0] * d),
                                 tensor(v0), iters),
                            judge=_power_judge(top, u),
                            hint="power iteration should return the largest-magnitude eigenvalue with "
                                 "its sign and a unit eigenvector"))
    return probes


def _bound(rng):
    probes = []
    cases = [(2, None, None), (3, 0.9, False), (3, 0.5, True), (4, 0.0, True),
             (5, float(rng.uniform(0.1, 0.95)), False), (4, float(rng.uniform(0.1, 0.95)), True)]
    for d, beta, nesterov in cases:
        M = rng.standard_normal((d, d))
        A = M @ M.T / d + float(rng.uniform(0.05, 0.5)) * np.eye(d)
        lam_max = float(np.linalg.eigvalsh(A)[-1])
        b = 0.0 if beta is None else beta
        want = (2 + 2 * b) / lam_max / ((1 + 2 * b) if nesterov else 1)
        kwargs = {} if beta is None else {"momentum": beta, "nesterov": nesterov}
        probes.append(Probe(call("stable_lr_bound", tensor(A), **kwargs), expected=want, rtol=1e-8,
                            atol=0.0,
                            hint="use the largest eigenvalue of A; with momentum, the edge is where "
                                 "the larger root of section 11.6's characteristic polynomial reaches "
                                 "modulus 1, and Nesterov's polynomial differs from heavy ball's"))
    return probes


SPECS = {
    "14-edge-of-stability": [
        Exercise(check_id="14-power-iteration-check", points=2, names=("power_iteration",), make=_power),
        Exercise(check_id="14-stable-lr-bound-check", points=2, names=("stable_lr_bound",), make=_bound),
    ],
}
