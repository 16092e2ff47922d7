"""Data for the chapter, offline: the airfoil-like regression set and the book's hub names.

Nothing here opens a network connection. ``download('airfoil')`` resolves to a local copy of
the real file when one sits in the data folder, and to the shipped synthetic stand-in otherwise.
"""
import hashlib
import os
from pathlib import Path

import torch
from torch.utils import data

from d2lopt.validate import check_int

# d2lopt.airfoil is imported inside the functions that use it: ``python -m d2lopt.airfoil``
# (data/README.md) runs it as a script, and runpy warns if importing the package already did.

__all__ = ["DATA_HUB", "DATA_URL", "DATA_DIR", "download", "load_array", "get_data_ch11",
           "load_airfoil"]

# The book's names, kept so its cells run. The URL is never fetched.
DATA_URL = "http://d2l-data.s3-accelerate.amazonaws.com/"
DATA_HUB = {"airfoil": (DATA_URL + "airfoil_self_noise.dat",
                        "76e5be1548fd8222e5074cf0faae75edff8cf93f")}
DATA_DIR = Path(__file__).resolve().parent.parent / "data"   # the repository's data/ folder
SYNTHETIC = {"airfoil": "airfoil_like.dat"}
_told = set()


def _sha1(path):
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


def _synthetic_path(name):
    """Path of the shipped stand-in; regenerated from its seed if the repository copy is absent."""
    from d2lopt import airfoil
    path = DATA_DIR / SYNTHETIC[name]
    if not path.exists():  # installed without the repository: rebuild it in a cache folder
        cache = Path(os.environ.get("D2L_CACHE", Path.home() / ".cache" / "d2lopt"))
        cache.mkdir(parents=True, exist_ok=True)
        # The generator's source is part of the name, so an edited generator never reads a
        # stale cache.
        version = hashlib.sha1(Path(airfoil.__file__).read_bytes()).hexdigest()[:10]
        path = cache / f"{Path(SYNTHETIC[name]).stem}-{airfoil.AIRFOIL_SEED}-{version}.dat"
        if not path.exists():
            airfoil.write_airfoil(path, airfoil.generate_airfoil_like())
    return path


def download(name, folder=None, sha1_hash=None):
    """Resolve a ``DATA_HUB`` name to a local file, offline.

    Looks for the real file (by its book file name) in ``folder`` (default: the repository's
    ``data/``); if found and its SHA-1 matches, returns it. Otherwise returns the synthetic
    stand-in and says so once per session. Never downloads.
    """
    if name not in DATA_HUB:
        raise ValueError(f"name must be one of {sorted(DATA_HUB)}, got {name!r}")
    url, expected = DATA_HUB[name]
    expected = sha1_hash or expected
    local = Path(folder if folder is not None else DATA_DIR) / url.split("/")[-1]
    if local.exists() and (expected is None or _sha1(local) == expected):
        return str(local)
    if name in SYNTHETIC:
        if name not in _told:
            print(f"d2lopt: no local copy of {local.name}; using the synthetic stand-in "
                  f"{SYNTHETIC[name]} (nothing is downloaded)")
            _told.add(name)
        return str(_synthetic_path(name))
    raise FileNotFoundError(f"{local} not found and d2lopt does not download; "
                            f"place the file there or pass its path")


def load_array(data_arrays, batch_size, is_train=True, generator=None):
    """A DataLoader over tensors; shuffled when ``is_train`` (seeded by ``generator`` if given)."""
    batch_size = check_int("batch_size", batch_size, low=1)
    dataset = data.TensorDataset(*data_arrays)
    return data.DataLoader(dataset, batch_size, shuffle=is_train, generator=generator)


def load_airfoil(path=None):
    """The raw (1503, 6) float32 airfoil table: the real file at ``path``, else the stand-in."""
    from d2lopt import airfoil
    if path is None:
        return airfoil.read_airfoil(_synthetic_path("airfoil"))
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"path: no such file {str(path)!r} (give the path of the real "
                                f"airfoil_self_noise.dat, or path=None for the synthetic stand-in)")
    return airfoil.read_airfoil(path)


def get_data_ch11(batch_size=10, n=1500, *, path=None, seed=None, device=None):
    """Whitened airfoil(-like) data as ``(data_iter, feature_dim)``, the book's return value.

    Every column (label included) is standardized with the mean and population std of all
    rows, then the first ``n`` rows are kept, as in the book. ``path`` reads the real UCI file
    instead of the synthetic stand-in; ``seed`` gives the loader its own shuffling generator
    (reproducible without touching the global one; it keeps advancing across epochs and runs,
    so build a new loader to replay the same order; with ``seed=None`` the order follows the
    global generator that ``seed_everything`` resets); ``device`` puts the tensors there once.
    """
    from d2lopt import airfoil
    batch_size, n = check_int("batch_size", batch_size, low=1), check_int("n", n, low=1)
    seed = None if seed is None else check_int("seed", seed, low=0)
    table = load_airfoil(path)
    if n > len(table):
        raise ValueError(f"n must be between 1 and {len(table)} (the number of rows), got {n}")
    table = airfoil.whiten(table)
    X = torch.from_numpy(table[:n, :-1].copy())
    y = torch.from_numpy(table[:n, -1].copy())
    if device is not None:
        X, y = X.to(device), y.to(device)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return load_array((X, y), batch_size, is_train=True, generator=generator), X.shape[1]
