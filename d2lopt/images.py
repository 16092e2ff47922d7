"""Fashion-MNIST-like image data (generated offline, or read from the real idx files) and LeNet.

The book trains LeNet on Fashion-MNIST (60k images, downloaded at run time) for 30 epochs per
schedule, far beyond a CPU budget. By default `load_data_fashion_mnist` therefore *generates* a
small seeded 10-class set of 28x28 grayscale garment silhouettes with the same label set, value
range and tensor layout. Shapes are drawn as soft-edged unions of boxes in a per-image jittered
frame (scale, aspect, rotation, shift), with random proportions, brightness, shading and pixel
noise. T-shirt/shirt/pullover/coat and sandal/sneaker/ankle boot overlap on purpose, as the real
classes do, so that LeNet learns the set well but not perfectly. Given ``path``, the real idx
files are read instead; nothing is ever downloaded.
"""
import functools
import gzip
import os

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils import data

from d2lopt.validate import check_int, is_int

__all__ = ["TEXT_LABELS", "get_fashion_mnist_labels", "read_idx", "load_data_fashion_mnist",
           "softmax_regression",
           "generate_fashion_like", "lenet"]

TEXT_LABELS = ("t-shirt", "trouser", "pullover", "dress", "coat",
               "sandal", "shirt", "sneaker", "bag", "ankle boot")

IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}

# idx type code -> big-endian numpy dtype (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT")
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def get_fashion_mnist_labels(labels):
    """Text labels for numeric Fashion-MNIST labels (ints or a tensor/array of them)."""
    out = []
    for i in (labels.tolist() if hasattr(labels, "tolist") else labels):
        if isinstance(i, bool) or int(i) != i or not 0 <= int(i) < len(TEXT_LABELS):
            raise ValueError(f"labels must be ints in 0..9, got {i!r}")
        out.append(TEXT_LABELS[int(i)])
    return out


def read_idx(file):
    """Read one idx file (optionally gzipped) into a numpy array of its declared dtype and shape.

    Header: 2 zero bytes, a type code byte (0x08 = uint8, ...), a byte with the number of dims d,
    then d big-endian uint32 sizes, then the data, big-endian, row-major.
    """
    file = os.fspath(file)
    if not os.path.isfile(file):
        raise FileNotFoundError(f"idx file not found: {file}")
    with open(file, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":  # gzip magic
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{file} is not an idx file: bad magic number {raw[:4].hex() or '(empty)'}")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{file} is truncated: header declares {ndim} dims but the file has {len(raw)} bytes")
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    count = int(np.prod(shape, dtype=np.int64))
    if len(raw) < header + count * dtype.itemsize:
        raise ValueError(f"{file} is truncated: shape {shape} needs {header + count * dtype.itemsize} "
                         f"bytes, the file has {len(raw)}")
    return np.frombuffer(raw, dtype, count=count, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find_idx(path, name):
    for candidate in (name, name + ".gz"):
        full = os.path.join(path, candidate)
        if os.path.isfile(full):
            return full
    expected = ", ".join(f"{a}[.gz]" for pair in IDX_FILES.values() for a in pair)
    raise FileNotFoundError(f"{name}[.gz] not found in {path!r}; the folder must hold the Fashion-MNIST "
                            f"idx files: {expected}")


def _read_split(path, split):
    images, labels = (read_idx(_find_idx(path, name)) for name in IDX_FILES[split])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{split} idx files in {path!r} disagree: images {images.shape}, labels {labels.shape}")
    return images, labels


# ---------------------------------------------------------------- generated garments
def _box(u, v, u0, u1, v0, v1, edge):
    """Soft indicator of the box u0 < u < u1, v0 < v < v1 (edge = width of the ramp)."""
    d = np.minimum(np.minimum(u - u0, u1 - u), np.minimum(v - v0, v1 - v))
    return np.clip(d / edge + 0.5, 0.0, 1.0)


def _garment(cls, u, v, r, edge):
    """Mask in [0, 1] of ``len(u)`` garments of class ``cls`` in the local frame (u right, v down)."""
    n = len(u)
    U = lambda a, b: r.uniform(a, b, (n, 1, 1))  # noqa: E731  one value per image
    au, box = np.abs(u), functools.partial(_box, edge=edge)
    if cls in (0, 2, 4, 6):  # upper-body garments: torso + sleeves
        w = U(0.36, 0.5) + (0.05 if cls == 4 else 0.0)
        top, bottom = U(-0.75, -0.6), U(0.65, 0.85) + (0.08 if cls == 4 else 0.0)
        torso = box(u, v, -w, w, top, bottom)
        long_sleeve = {0: 0.0, 2: 1.0, 4: 1.0, 6: 0.8}[cls] > r.uniform(size=(n, 1, 1))
        sleeve_end = np.where(long_sleeve, U(0.3, 0.75), U(-0.4, -0.1))
        sleeve_w = U(0.22, 0.38)
        slope = np.where(long_sleeve, U(0.1, 0.35), U(0.3, 0.8))
        sleeve = box(au - slope * (v - top), v, w - 0.1, w + sleeve_w, top, sleeve_end)
        gap = box(au - slope * (v - top), v, w - 0.02, w + 0.02, top + 0.25, sleeve_end)
        mask = np.maximum(torso, sleeve * (1 - U(0.0, 0.7) * gap))
        neck = (u / U(0.1, 0.2)) ** 2 + ((v - top) / U(0.08, 0.16)) ** 2 < 1
        if cls == 6:  # collar notch and a row of buttons
            neck = neck | ((v - top) < U(0.15, 0.3) - 1.5 * au) & (v > top)
            mask = mask * (1 - U(0.2, 0.6) * (au < 0.03) * (np.sin(25 * v) > 0.3))
        if cls == 4:  # front opening, from barely visible to clear
            mask = mask * (1 - U(0.0, 0.8) * (au < 0.035))
        return mask * ~neck
    if cls == 1:  # trousers: waistband + two legs
        leg, gap, top = U(0.14, 0.22), U(0.02, 0.1), U(-0.85, -0.7)
        waist = box(u, v, -gap - 2 * leg, gap + 2 * leg, top, top + 0.25)
        legs = box(au, v, gap, gap + 2 * leg, top, U(0.75, 0.9))
        return np.maximum(waist, legs)
    if cls == 3:  # dress: flared trapezoid, sometimes with short sleeves
        top, bottom, w0, w1 = U(-0.85, -0.65), U(0.7, 0.9), U(0.15, 0.3), U(0.4, 0.75)
        half = w0 + (w1 - w0) * np.clip((v - top) / (bottom - top), 0, 1)
        body = box(u - half, v, -2 * half, 0.0, top, bottom)
        shoulders = box(au, v, 0.0, w0 + U(0.05, 0.3), top, top + 0.25) * (r.uniform(size=(n, 1, 1)) < 0.4)
        return np.maximum(body, shoulders)
    if cls in (5, 7, 9):  # footwear, toe to the right: sole + upper (+ shaft)
        sole_top, bottom = U(0.25, 0.4), U(0.45, 0.55)
        sole = box(u, v, -0.85, U(0.7, 0.9), sole_top, bottom)
        heel_h = U(0.3, 0.55) if cls != 9 else U(0.55, 0.8)
        upper_top = sole_top - heel_h * np.clip((0.8 - u) / 1.6, 0, 1) - 0.08
        upper = box(u, v - upper_top, -0.8, U(0.55, 0.8), 0.0, sole_top - upper_top + 0.02)
        if cls == 9:
            shaft = box(u, v, -0.8, U(-0.35, 0.05), U(-0.85, -0.35), sole_top)
            upper = np.maximum(upper, shaft)
        if cls == 5:  # straps: stripes cut out of the upper
            stripes = np.sin(U(10, 16) * (u + U(0.3, 1.0) * v) + U(0, 2 * np.pi)) > U(-0.2, 0.4)
            upper = upper * stripes
        else:  # laces / stitching
            upper = upper * (1 - U(0.0, 0.4) * (np.sin(20 * u) > 0.5) * (v < sole_top - 0.05))
        return np.maximum(sole, upper)
    if cls == 8:  # bag: body + optional handle (half annulus)
        bw, top = U(0.45, 0.75), U(-0.3, 0.0)
        body = box(u, v, -bw, bw, top, U(0.6, 0.8))
        radius, thick = U(0.25, 0.45), U(0.06, 0.14)
        ring = np.clip((thick - np.abs(np.hypot(u, v - top) - radius)) / edge + 0.5, 0, 1) * (v < top)
        return np.maximum(body, ring * (r.uniform(size=(n, 1, 1)) < 0.8))
    raise ValueError(f"cls must be in 0..9, got {cls}")


@functools.lru_cache(maxsize=4)
def _generate_cached(n, seed, stream):
    # The same bytes on every CPU: shapes are drawn in float64 (numpy's sin/exp differ between
    # SIMD paths only in the last bits, ~1e-16) and stored as 8-bit intensities, as the real
    # Fashion-MNIST is, so no last-bit difference survives the rounding to 1/255.
    rng = np.random.default_rng([seed, stream])
    labels = rng.permutation(np.arange(n) % 10)
    grid = (np.arange(28) + 0.5) / 14 - 1  # pixel centres in [-1, 1]
    x, y = grid[None, None, :], grid[None, :, None]
    images = np.zeros((n, 28, 28), np.float64)
    for cls in range(10):
        idx = np.flatnonzero(labels == cls)
        k = len(idx)
        if k == 0:
            continue
        J = lambda a, b: rng.uniform(a, b, (k, 1, 1))  # noqa: E731
        theta, scale, aspect = J(-0.1, 0.1), J(0.85, 1.05), np.exp(J(-0.1, 0.1))
        tx, ty = J(-0.07, 0.07), J(-0.07, 0.07)
        c, s = np.cos(theta), np.sin(theta)
        u = (c * (x - tx) + s * (y - ty)) / (scale * aspect)
        v = (-s * (x - tx) + c * (y - ty)) * aspect / scale
        mask = _garment(cls, u, v, rng, edge=0.1)
        shade = J(0.5, 1.0) + J(-0.2, 0.2) * v  # brightness with a vertical gradient
        images[idx] = mask * shade
    images += 0.06 * rng.standard_normal(images.shape)
    images = (np.rint(np.clip(images, 0.0, 1.0) * 255) / 255).astype(np.float32)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def generate_fashion_like(n, seed=0, stream=0):
    """``n`` generated garment images, float32 (n, 28, 28) in [0, 1], and int64 labels in 0..9.

    Classes are balanced (counts differ by at most one) and the result is a pure function of
    ``(n, seed, stream)``; the train and test sets use streams 0 and 1. Returns fresh copies.
    """
    n, seed = check_int("n", n, low=1), check_int("seed", seed, low=0)
    images, labels = _generate_cached(n, seed, check_int("stream", stream, low=0))
    return images.copy(), labels.astype(np.int64)


# ---------------------------------------------------------------- loaders and model
def _check_resize(resize):
    if resize is None:
        return None
    size = (resize, resize) if is_int(resize) else resize
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or any(not is_int(s) or s < 1 for s in size)):
        raise ValueError(f"resize must be None, an int >= 1 or a pair (h, w) of ints >= 1, got {resize!r}")
    return (int(size[0]), int(size[1]))


def _collate_resize(batch, size):
    X, y = data.default_collate(batch)
    return F.interpolate(X, size=size, mode="bilinear", align_corners=False), y


def load_data_fashion_mnist(batch_size, resize=None, *, path=None, n_train=None, n_test=None,
                            seed=0, num_workers=0):
    """Fashion-MNIST-shaped data as ``(train_iter, test_iter)`` DataLoaders of ``(X, y)``.

    X is float32 (B, 1, 28, 28) in [0, 1] (or (B, 1, h, w) with ``resize``, bilinear), y int64 in 0..9.
    Without ``path``: the generated set, ``n_train`` (default 6000) and ``n_test`` (default 1000)
    images from ``seed``. With ``path``: the real idx files in that folder, the first ``n_train`` /
    ``n_test`` images if given (default: all 60000 / 10000). The training loader shuffles with its
    own ``torch.Generator`` seeded by ``seed``, so the batch order is reproducible; the test loader
    does not shuffle.
    """
    batch_size = check_int("batch_size", batch_size, low=1)
    size = _check_resize(resize)
    n_train = None if n_train is None else check_int("n_train", n_train, low=1)
    n_test = None if n_test is None else check_int("n_test", n_test, low=1)
    seed, num_workers = check_int("seed", seed, low=0), check_int("num_workers", num_workers, low=0)
    if path is None:
        train = generate_fashion_like(n_train or 6000, seed, stream=0)
        test = generate_fashion_like(n_test or 1000, seed, stream=1)
    else:
        path = os.fspath(path)
        if not os.path.isdir(path):
            raise FileNotFoundError(f"path {path!r} is not a folder with the Fashion-MNIST idx files")
        (tr_x, tr_y), (te_x, te_y) = _read_split(path, "train"), _read_split(path, "test")
        train = (tr_x[:n_train].astype(np.float32) / 255, tr_y[:n_train])
        test = (te_x[:n_test].astype(np.float32) / 255, te_y[:n_test])

    def dataset(images, labels):
        X = torch.tensor(images, dtype=torch.float32).unsqueeze(1)
        return data.TensorDataset(X, torch.tensor(labels, dtype=torch.int64))

    collate = None if size is None else functools.partial(_collate_resize, size=size)
    train_iter = data.DataLoader(dataset(*train), batch_size, shuffle=True, num_workers=num_workers,
                                 generator=torch.Generator().manual_seed(int(seed)), collate_fn=collate)
    test_iter = data.DataLoader(dataset(*test), batch_size, shuffle=False, num_workers=num_workers,
                                collate_fn=collate)
    return train_iter, test_iter


def lenet():
    """The book's modernized LeNet for 1x28x28 inputs (ReLU, max pooling, PyTorch's default init)."""
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.ReLU(), nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10))


class _Cast(nn.Module):
    """Cast the input to the model's dtype (the loaders yield float32 images)."""

    def __init__(self, dtype):
        super().__init__()
        self.dtype = dtype

    def forward(self, x):
        return x.to(self.dtype)


def softmax_regression(num_inputs=784, num_outputs=10, dtype=torch.float64):
    """A linear classifier on flattened images (softmax regression with
    ``nn.CrossEntropyLoss``), in float64 by default.

    Its loss is convex, and in float64 at SGD rates up to about 0.3 a last-bit difference grows
    only to about 1e-9 over a few epochs (measured: a 1e-14 nudge of the weights moves the final
    ones by ~2e-7), far below the printed digits: its accuracies are the same on every CPU.
    LeNet's are not (training a network amplifies last-bit differences until the runs part), and
    at rate 0.5 neither is this model's; that is why the schedule comparisons use it at <= 0.3.
    """
    return nn.Sequential(nn.Flatten(), _Cast(dtype), nn.Linear(num_inputs, num_outputs, dtype=dtype))
