"""Tests of d2lopt.images: generated Fashion-MNIST-like data, the idx reader, the loader, LeNet."""
import gzip
import struct

import numpy as np
import pytest
import torch

from d2lopt import images


def _all(loader):
    X, y = zip(*loader)
    return torch.cat(X), torch.cat(y)


# ---------------------------------------------------------------- generated data
def test_loader_shapes_dtypes_and_range():
    train_iter, test_iter = images.load_data_fashion_mnist(256)
    assert len(train_iter) == 24  # ceil(6000 / 256)
    X, y = next(iter(train_iter))
    assert X.shape == (256, 1, 28, 28) and X.dtype == torch.float32
    assert y.shape == (256,) and y.dtype == torch.int64
    for loader, n in ((train_iter, 6000), (test_iter, 1000)):
        X, y = _all(loader)
        assert X.shape == (n, 1, 28, 28)
        assert 0.0 <= X.min() and X.max() <= 1.0
        assert set(y.tolist()) == set(range(10))
        # not blank: a garment covers a good share of the frame, the background stays dark
        assert 0.1 < X.mean() < 0.5


def test_classes_are_balanced():
    _, y = images.generate_fashion_like(6000, seed=3)
    assert np.bincount(y, minlength=10).tolist() == [600] * 10
    _, y = images.generate_fashion_like(1005, seed=3)
    counts = np.bincount(y, minlength=10)
    assert counts.sum() == 1005 and set(counts.tolist()) <= {100, 101}


def test_classes_differ_on_average():
    X, y = images.generate_fashion_like(2000, seed=0)
    means = np.stack([X[y == c].mean(axis=0) for c in range(10)])  # (10, 28, 28)
    gaps = np.abs(means[:, None] - means[None]).mean(axis=(2, 3))
    assert gaps[~np.eye(10, dtype=bool)].min() > 0.01


def test_same_seed_same_data_and_batch_order():
    a_train, a_test = images.load_data_fashion_mnist(100, seed=5, n_train=500, n_test=200)
    b_train, b_test = images.load_data_fashion_mnist(100, seed=5, n_train=500, n_test=200)
    for xa, xb in zip(_all(a_train) + _all(a_test), _all(b_train) + _all(b_test)):
        assert torch.equal(xa, xb)


def test_different_seeds_differ():
    Xa, _ = images.generate_fashion_like(200, seed=0)
    Xb, _ = images.generate_fashion_like(200, seed=1)
    assert np.abs(Xa - Xb).mean() > 0.05
    train, test = images.generate_fashion_like(200, seed=0, stream=0), images.generate_fashion_like(200, seed=0, stream=1)
    assert np.abs(train[0] - test[0]).mean() > 0.05


def test_train_shuffles_each_epoch_test_does_not():
    train_iter, test_iter = images.load_data_fashion_mnist(50, n_train=300, n_test=100)
    y1, y2 = _all(train_iter)[1], _all(train_iter)[1]
    assert not torch.equal(y1, y2) and torch.equal(y1.sort().values, y2.sort().values)
    _, y_test = images.generate_fashion_like(100, seed=0, stream=1)
    assert torch.equal(_all(test_iter)[1], torch.from_numpy(y_test))
    assert torch.equal(_all(test_iter)[1], _all(test_iter)[1])


def test_generated_arrays_are_fresh_copies():
    X, _ = images.generate_fashion_like(50, seed=0)
    X[:] = 7.0
    assert images.generate_fashion_like(50, seed=0)[0].max() <= 1.0


def test_resize():
    (train_iter, _), (plain, _) = (images.load_data_fashion_mnist(8, r, n_train=40, n_test=10)
                                   for r in ((14, 20), None))
    assert next(iter(train_iter))[0].shape == (8, 1, 14, 20)
    train_iter, _ = images.load_data_fashion_mnist(8, 32, n_train=40, n_test=10)
    assert next(iter(train_iter))[0].shape == (8, 1, 32, 32)
    # bilinear (align_corners=False) halving samples between pixel pairs: the mean of each 2x2 block
    half, _ = images.load_data_fashion_mnist(8, 14, n_train=40, n_test=10)
    X, X_half = next(iter(plain))[0], next(iter(half))[0]
    blocks = X.reshape(8, 1, 14, 2, 14, 2).mean(dim=(3, 5))
    torch.testing.assert_close(X_half, blocks, rtol=0, atol=1e-6)
    same, _ = images.load_data_fashion_mnist(8, 28, n_train=40, n_test=10)
    torch.testing.assert_close(next(iter(same))[0], X, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kwargs, error", [
    (dict(batch_size=0), ValueError), (dict(batch_size=2.5), TypeError), (dict(batch_size=True), TypeError),
    (dict(batch_size=8, resize=0), ValueError), (dict(batch_size=8, resize=(28, 28, 1)), ValueError),
    (dict(batch_size=8, resize="28"), ValueError), (dict(batch_size=8, n_train=0), ValueError),
    (dict(batch_size=8, n_test=-5), ValueError), (dict(batch_size=8, seed=-1), ValueError),
    (dict(batch_size=8, num_workers=-1), ValueError)])
def test_validation(kwargs, error):
    with pytest.raises(error, match=list(kwargs)[-1] if error is ValueError else None):
        images.load_data_fashion_mnist(**kwargs)


def test_text_labels():
    assert images.get_fashion_mnist_labels([0, 9, 6]) == ["t-shirt", "ankle boot", "shirt"]
    assert images.get_fashion_mnist_labels(torch.tensor([1, 5])) == ["trouser", "sandal"]
    with pytest.raises(ValueError, match="labels"):
        images.get_fashion_mnist_labels([10])


# ---------------------------------------------------------------- idx files
def _idx_bytes(array, code):
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, gz):
    rng = np.random.default_rng(0)
    arrays = {"u8": (rng.integers(0, 256, (3, 4, 5)).astype(np.uint8), 0x08),
              "i32": (np.array([1, 256, -2, 2**31 - 1], dtype=np.int32), 0x0C),
              "f64": (np.array([[0.5, -1.25]]), 0x0E)}
    for name, (array, code) in arrays.items():
        raw = _idx_bytes(array, code)
        file = tmp_path / (name + (".gz" if gz else ""))
        file.write_bytes(gzip.compress(raw) if gz else raw)
        back = images.read_idx(file)
        assert back.dtype == array.dtype and back.shape == array.shape
        np.testing.assert_array_equal(back, array)


def test_idx_known_bytes(tmp_path):
    # 2 labels of a 1-D uint8 idx file, written out byte by byte
    (tmp_path / "labels").write_bytes(b"\x00\x00\x08\x01" + b"\x00\x00\x00\x02" + b"\x07\x03")
    np.testing.assert_array_equal(images.read_idx(tmp_path / "labels"), [7, 3])


def test_idx_errors(tmp_path):
    good = _idx_bytes(np.zeros((2, 3), np.uint8), 0x08)
    (tmp_path / "bad").write_bytes(b"\x01\x02" + good[2:])
    with pytest.raises(ValueError, match="magic"):
        images.read_idx(tmp_path / "bad")
    (tmp_path / "code").write_bytes(b"\x00\x00\x07" + good[3:])
    with pytest.raises(ValueError, match="magic"):
        images.read_idx(tmp_path / "code")
    (tmp_path / "short").write_bytes(good[:-1])
    with pytest.raises(ValueError, match="truncated"):
        images.read_idx(tmp_path / "short")
    (tmp_path / "header").write_bytes(good[:6])
    with pytest.raises(ValueError, match="truncated"):
        images.read_idx(tmp_path / "header")
    with pytest.raises(FileNotFoundError, match="missing-file"):
        images.read_idx(tmp_path / "missing-file")


def _write_fake_fashion_mnist(folder, n_train=20, n_test=10):
    rng = np.random.default_rng(1)
    arrays = {}
    for split, n, gz in (("train", n_train, True), ("t10k", n_test, False)):
        X = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
        y = rng.integers(0, 10, n).astype(np.uint8)
        for kind, array in (("images-idx3-ubyte", X), ("labels-idx1-ubyte", y)):
            raw = _idx_bytes(array, 0x08)
            name = f"{split}-{kind}" + (".gz" if gz else "")
            (folder / name).write_bytes(gzip.compress(raw) if gz else raw)
        arrays[split] = (X, y)
    return arrays


def test_loader_reads_real_files(tmp_path):
    arrays = _write_fake_fashion_mnist(tmp_path)
    train_iter, test_iter = images.load_data_fashion_mnist(7, path=tmp_path)
    for loader, (X, y) in ((train_iter, arrays["train"]), (test_iter, arrays["t10k"])):
        got_X, got_y = _all(loader)
        order = torch.from_numpy(y.astype(np.int64))
        assert got_X.shape == (len(y), 1, 28, 28) and got_X.dtype == torch.float32
        if loader is test_iter:
            torch.testing.assert_close(got_X[:, 0], torch.from_numpy(X / 255.0).float())
            assert torch.equal(got_y, order)
        else:  # shuffled: compare as multisets of (label, pixel sum)
            pairs = sorted(zip(got_y.tolist(), (got_X.sum(dim=(1, 2, 3)) * 255).round().int().tolist()))
            assert pairs == sorted(zip(y.tolist(), X.reshape(len(y), -1).sum(axis=1).tolist()))
    small_train, small_test = images.load_data_fashion_mnist(4, path=tmp_path, n_train=8, n_test=3)
    assert len(small_train.dataset) == 8 and len(small_test.dataset) == 3


def test_loader_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        images.load_data_fashion_mnist(8, path=tmp_path / "nowhere")
    _write_fake_fashion_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte.*train-images-idx3-ubyte"):
        images.load_data_fashion_mnist(8, path=tmp_path)


# ---------------------------------------------------------------- LeNet
def test_lenet_shapes_and_size():
    net = images.lenet()
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    # conv 1*6*25+6, conv 6*16*25+16, linear 400*120+120, 120*84+84, 84*10+10
    assert sum(p.numel() for p in net.parameters()) == 156 + 2416 + 48120 + 10164 + 850
