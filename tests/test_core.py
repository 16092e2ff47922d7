"""Utilities, data loading, plotting helpers and the 2-D problems."""
import os
import subprocess
import sys
import warnings

import matplotlib
import numpy as np
import pytest
import torch

import d2lopt as d2l
from d2lopt import plotting as plot, problems

matplotlib.use("Agg")


def test_seed_everything_returns_none_and_reproduces():
    assert d2l.seed_everything(3) is None
    a = (torch.rand(3), np.random.rand(2))
    d2l.seed_everything(3)
    b = (torch.rand(3), np.random.rand(2))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    with pytest.raises(ValueError, match="seed"):
        d2l.seed_everything(-1)


def test_devices():
    assert d2l.cpu() == torch.device("cpu")
    assert d2l.gpu(1) == torch.device("cuda:1")
    assert d2l.try_gpu(d2l.num_gpus()) == torch.device("cpu")  # one past the last GPU


def test_try_gpu_respects_override(monkeypatch):
    monkeypatch.setenv("D2L_DEVICE", "cpu")
    assert d2l.try_gpu() == torch.device("cpu")


def test_timer_and_accumulator():
    t = d2l.Timer()
    t.times = [1.0, 2.0, 3.0]
    assert t.sum() == 6.0 and t.avg() == 2.0 and t.cumsum() == [1.0, 3.0, 6.0]
    acc = d2l.Accumulator(2)
    acc.add(1, 2.5)
    acc.add(torch.tensor(1.0), 0.5)
    assert acc[0] == 2.0 and acc[1] == 3.0
    with pytest.raises(ValueError, match="expects 2"):
        acc.add(1)
    assert d2l.format_seconds(0.01234) == "0.012 sec"


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-3, ValueError), (2.5, TypeError),
                                      ("10", TypeError)])
def test_get_data_ch11_batch_size(bad, exc):
    with pytest.raises(exc, match="batch_size"):
        d2l.get_data_ch11(batch_size=bad)


def test_get_data_ch11_n_too_large():
    with pytest.raises(ValueError, match=r"n must be between 1 and 1503"):
        d2l.get_data_ch11(n=5000)


def test_get_data_ch11_layout_and_whitening():
    data_iter, dim = d2l.get_data_ch11(batch_size=10)
    X, y = data_iter.dataset.tensors
    assert dim == 5 and X.shape == (1500, 5) and y.shape == (1500,)
    assert X.dtype == torch.float32 and len(data_iter) == 150
    # whitened over all 1503 rows, so the first 1500 are close to (but not exactly) standard
    assert X.mean(0).abs().max() < 0.05 and (X.std(0) - 1).abs().max() < 0.05


def test_get_data_ch11_seed_makes_order_reproducible():
    a, _ = d2l.get_data_ch11(batch_size=10, seed=1)
    b, _ = d2l.get_data_ch11(batch_size=10, seed=1)
    assert torch.equal(next(iter(a))[0], next(iter(b))[0])


def test_real_path_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="path"):
        d2l.get_data_ch11(path=tmp_path / "missing.dat")
    bad = tmp_path / "bad.dat"
    bad.write_text("1\t2\t3\n4\t5\t6\n")
    with pytest.raises(ValueError, match="6"):
        d2l.get_data_ch11(path=bad)


def test_real_path_is_read(tmp_path):
    rng = np.random.default_rng(0)
    table = rng.normal(size=(40, 6))
    path = tmp_path / "real.dat"
    path.write_text("\r\n".join("\t".join(f"{v:.5f}" for v in row) for row in table) + "\r\n")
    data_iter, dim = d2l.get_data_ch11(batch_size=4, n=30, path=path)
    X, y = data_iter.dataset.tensors
    expected = (table - table.mean(0)) / table.std(0)
    assert np.allclose(X.numpy(), expected[:30, :-1], atol=1e-3)


def test_download_is_offline_and_falls_back(tmp_path, capsys, monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("d2lopt tried to open a network connection")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    d2l.data._told.discard("airfoil")
    path = d2l.download("airfoil", folder=tmp_path)
    assert path.endswith("airfoil_like.dat") and os.path.exists(path)
    assert "synthetic stand-in" in capsys.readouterr().out
    d2l.download("airfoil", folder=tmp_path)
    assert capsys.readouterr().out == ""  # said once
    with pytest.raises(ValueError, match="name"):
        d2l.download("imagenet")


def test_download_prefers_a_local_real_copy(tmp_path):
    import hashlib
    local = tmp_path / "airfoil_self_noise.dat"
    local.write_text("not the real file\n")
    # a file whose checksum is not the real file's is not taken for it
    assert d2l.download("airfoil", folder=tmp_path) != str(local)
    digest = hashlib.sha1(local.read_bytes()).hexdigest()
    assert d2l.download("airfoil", folder=tmp_path, sha1_hash=digest) == str(local)


def test_plot_honours_figsize():
    d2l.set_figsize((4.5, 2.5))
    plot.plt.figure()
    d2l.plot(torch.arange(5.0), [torch.arange(5.0) ** 2], "x", "y")
    assert tuple(plot.plt.gcf().get_size_inches()) == (4.5, 2.5)
    plot.plt.close("all")
    d2l.plot(torch.arange(5.0), [torch.arange(5.0)], "x", "y", figsize=(6, 3))
    assert tuple(plot.plt.gcf().get_size_inches()) == (6, 3)
    plot.plt.close("all")
    d2l.set_figsize()


def test_show_paths_bounds_follow_trajectories_and_mark_divergence():
    fig, ax = plot.plt.subplots()
    far = [(-50.0, 30.0), (10.0, -40.0)]
    inf = [(0.0, 0.0), (1.0, 1.0), (float("inf"), float("nan"))]
    d2l.show_paths(problems.quadratic.f, {"far": far, "blowup": inf}, ax=ax)
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    assert x0 <= -50 and x1 >= 10 and y0 <= -40 and y1 >= 30
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["far", "blowup (diverged)"]
    plot.plt.close(fig)


def test_show_trace_2d_book_call():
    path = d2l.train_2d(lambda a, b, s1, s2: (0.9 * a, 0.5 * b, 0, 0), steps=5, verbose=False)
    d2l.show_trace_2d(lambda x1, x2: x1 ** 2 + 2 * x2 ** 2, path)
    plot.plt.close("all")


def test_animator_static_without_ipython():
    anim = d2l.Animator(xlabel="epoch", legend=["a", "b"])
    for i in range(5):
        anim.add(i, (i ** 2, None if i == 2 else -i))
    assert anim.live is False
    assert anim.X[0] == [0, 1, 2, 3, 4] and anim.X[1] == [0, 1, 3, 4]
    assert list(anim._lines[1].get_ydata()) == [0, -1, -3, -4]
    plot.plt.close("all")


def test_plot_histories_one_call():
    h1 = d2l.LossHistory([0.1, 0.2], [0.3, 0.25], [1, 2], [10, 20])
    h2 = d2l.LossHistory([0.1], [float("nan")], [1], [10], diverged=True)
    ax = d2l.plot_histories({"sgd": h1, "big lr": h2}, x="examples")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["sgd", "big lr (diverged)"]
    assert ax.get_xscale() == "linear"
    assert d2l.plot_histories({"sgd": h1}, x="time", ax=plot.plt.figure().gca()).get_xscale() == "log"
    with pytest.raises(ValueError, match="x must be"):
        d2l.plot_histories({"sgd": h1}, x="steps")
    plot.plt.close("all")


@pytest.mark.parametrize("problem", list(problems.PROBLEMS.values()), ids=list(problems.PROBLEMS))
def test_problem_gradients_match_autograd(problem):
    for point in [(-1.3, 0.7), (0.4, -2.1), (2.0, 0.3)]:
        expected = problems.autograd_check(problem, point)
        got = problem.grad(*point)
        assert np.allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_problem_minima():
    for problem in (problems.quadratic, problems.ill_conditioned, problems.rosenbrock,
                    problems.beale):
        assert problem.f(*problem.minimum) == pytest.approx(0.0, abs=1e-12)
        assert np.allclose(problem.grad(*problem.minimum), 0.0, atol=1e-12)


def test_tensor_aliases():
    x = d2l.tensor([1.0, 2.0])
    assert d2l.size(x) == 2 and d2l.reduce_sum(x).item() == 3.0
    assert d2l.numpy(d2l.reshape(x, (2, 1))).shape == (2, 1)
    assert d2l.argmax(x).item() == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", ResourceWarning)  # others' kernels' sockets
        warnings.simplefilter("ignore", pytest.PytestUnraisableExceptionWarning)
        d2l.meshgrid(d2l.linspace(-1, 1, 3), d2l.linspace(-1, 1, 3), indexing="ij")
    assert isinstance(d2l.plt, type(plot.plt))


def test_import_is_light_and_offline():
    code = ("import sys, d2lopt; "
            "assert 'd2lopt.images' not in sys.modules; "
            "import d2lopt.images; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "MPLBACKEND": "Agg"})
    assert out.returncode == 0, out.stderr


def test_installed_without_repository_regenerates_the_same_file(tmp_path, monkeypatch):
    from d2lopt import data
    committed = (data.DATA_DIR / "airfoil_like.dat").read_bytes()
    monkeypatch.setattr(data, "DATA_DIR", tmp_path / "no-repo")
    monkeypatch.setenv("D2L_CACHE", str(tmp_path / "cache"))
    path = data._synthetic_path("airfoil")
    assert path.parent == tmp_path / "cache" and path.read_bytes() == committed


def test_animator_live_uses_one_handle_and_throttles(monkeypatch):
    import IPython.display
    calls = []

    class Handle:
        def update(self, fig):
            calls.append("update")

    def fake_display(fig, display_id=False):
        calls.append("display")
        return Handle()

    monkeypatch.setattr(IPython.display, "display", fake_display)
    anim = d2l.Animator(live=True, interval=60.0)
    for i in range(200):
        anim.add(i, (i,))
    assert calls == []            # throttled: nothing redrawn within the interval
    anim.show()
    anim.show()
    assert calls == ["display", "update"]  # one display, then updates of the same handle
    anim_fast = d2l.Animator(live=True, interval=0.0)
    anim_fast.add(0, (1,))
    anim_fast.add(1, (2,))
    assert calls[2:] == ["display", "update"]


def _fresh_ax():
    return plot.plt.figure().gca()


def test_every_plot_helper_draws_on_ax_and_returns_it():
    f = problems.quadratic.f
    h = d2l.LossHistory([0.1, 0.2], [0.3, 0.25], [1, 2], [10, 20])
    calls = {
        "plot": lambda ax: d2l.plot([0.0, 1.0], [[1.0, 2.0]], ax=ax),
        "annotate": lambda ax: d2l.annotate("here", (0.5, 0.5), (0.1, 0.1), ax=ax),
        "show_trace": lambda ax: d2l.show_trace([2.0, 1.0, 0.5], lambda x: x ** 2, ax=ax),
        "show_trace_2d": lambda ax: d2l.show_trace_2d(f, [(1.0, 1.0), (0.5, 0.2)], ax=ax),
        "show_paths": lambda ax: d2l.show_paths(f, [(1.0, 1.0), (0.5, 0.2)], ax=ax),
        "plot_histories": lambda ax: d2l.plot_histories({"sgd": h}, ax=ax),
        "set_axes": lambda ax: d2l.set_axes(ax, "x", "y", None, None, "linear", "linear", None),
    }
    for name, call in calls.items():
        ax = _fresh_ax()
        assert call(ax) is ax, name
        assert ax.get_children() and (ax.lines or ax.texts or ax.collections or name == "set_axes")
        plot.plt.close("all")
        current = plot.plt.figure().gca()                  # ax=None: the current Axes
        if name != "set_axes":
            assert call(None) is current, name
        plot.plt.close("all")


def test_plot_keeps_the_books_axes_keyword_and_never_clears_a_passed_axes():
    ax = _fresh_ax()
    ax.plot([0, 1], [5, 5], "k-")                          # the caller's own drawing
    assert d2l.plot([0.0, 1.0], [[1.0, 2.0]], axes=ax) is ax
    assert d2l.plot([0.0, 1.0], [[3.0, 4.0]], ax=ax) is ax
    assert len(ax.lines) == 3
    with pytest.raises(TypeError, match="not both"):
        d2l.plot([0.0, 1.0], [[1.0, 2.0]], ax=ax, axes=_fresh_ax())
    plot.plt.close("all")


def test_plot_without_axes_clears_the_current_one_as_the_book_does():
    plot.plt.figure()
    plot.plt.plot([0, 1], [5, 5])
    ax = d2l.plot([0.0, 1.0], [[1.0, 2.0]])
    assert ax is plot.plt.gca() and len(ax.lines) == 1
    plot.plt.close("all")


def test_divergence_rule():
    from d2lopt.utils import DIVERGENCE_FACTOR, Divergence
    assert DIVERGENCE_FACTOR == 100
    rule = Divergence()
    assert [rule.check(v) for v in (0.49, 0.3, 40.0, 49.0)] == [False] * 4   # 100 x 0.49 = 49
    assert rule.check(49.01) and rule.check(0.1)                       # and it stays diverged
    assert rule.message(12, 0.5) == (
        "diverged: the loss reached 49.01, over 100 times its first value 0.49, after 12 updates "
        "(epoch 0.50); training stopped: try a smaller learning rate")
    nan_first = Divergence()
    assert nan_first.check(float("nan")) and nan_first.first is None
    assert nan_first.message(1, 0.01).startswith("diverged: the loss became nan after 1 updates")
    assert not Divergence().check(float(np.float32(3.0)))
    zero = Divergence()                                  # a perfect fit: only non-finite counts
    assert not zero.check(0.0) and not zero.check(5.0) and zero.check(float("inf"))
