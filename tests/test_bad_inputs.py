"""Bad input fails early with a TypeError/ValueError naming the argument (d2lopt.validate)."""
import re

import matplotlib
import numpy as np
import pytest
import torch

import d2lopt as d2l
from d2lopt import airfoil, images, validate
from d2lopt.optim import ScheduleFreeAdamW, ScheduleFreeSGD, Yogi

matplotlib.use("Agg")
NAN = float("nan")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    d2l.plt.close("all")


def sgd(params, states, hyperparams):
    for p in params:
        p.data.sub_(hyperparams["lr"] * p.grad)
        p.grad.data.zero_()


def small_iter(n=20, dim=3):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, dim, generator=g)
    return d2l.load_array((X, X.sum(1)), 5, generator=torch.Generator().manual_seed(0)), dim


# ---------------------------------------------------------------- integers
def test_numpy_integers_are_integers():
    data_iter, dim = d2l.get_data_ch11(batch_size=np.int64(10), n=np.int32(100), seed=np.int64(1))
    first = next(iter(data_iter))[0]
    assert len(data_iter) == 10 and dim == 5 and first.shape == (10, 5)
    reference, _ = d2l.get_data_ch11(batch_size=10, n=100, seed=1)  # same order as a plain int
    assert torch.equal(first, next(iter(reference))[0])
    assert len(d2l.load_array((torch.zeros(6, 2),), np.int64(4))) == 2
    assert d2l.Accumulator(np.int64(2)).data == [0.0, 0.0]
    d2l.seed_everything(np.int64(3))
    a = torch.rand(2)
    d2l.seed_everything(3)
    assert torch.equal(a, torch.rand(2))
    train_iter, _ = images.load_data_fashion_mnist(np.int64(4), n_train=np.int64(8),
                                                   n_test=np.int64(4), seed=np.int64(0))
    assert next(iter(train_iter))[0].shape == (4, 1, 28, 28)
    assert len(d2l.train_2d(lambda *s: s, steps=np.int64(3), verbose=False)) == 4


@pytest.mark.parametrize("call, name", [
    (lambda: d2l.get_data_ch11(batch_size=True), "batch_size"),
    (lambda: d2l.get_data_ch11(n=np.float64(10)), "n"),
    (lambda: d2l.get_data_ch11(seed=True), "seed"),
    (lambda: d2l.get_data_ch11(seed=1.5), "seed"),
    (lambda: d2l.seed_everything(True), "seed"),
    (lambda: d2l.seed_everything(2.0), "seed"),
    (lambda: d2l.Accumulator(True), "n"),
    (lambda: airfoil.generate_airfoil_like(np.bool_(True)), "seed"),
    (lambda: images.generate_fashion_like(10, stream=0.5), "stream"),
    (lambda: images.load_data_fashion_mnist(8, seed=False), "seed"),
    (lambda: images.load_data_fashion_mnist(8, num_workers=1.0), "num_workers"),
    (lambda: d2l.train_2d(lambda *s: s, steps=True), "steps"),
    (lambda: ScheduleFreeSGD([torch.zeros(1, requires_grad=True)], warmup_steps=True),
     "warmup_steps"),
])
def test_bools_and_floats_are_not_integers(call, name):
    with pytest.raises(TypeError, match=f"^{name} must be an int >= "):
        call()


def test_validate_is_int():
    assert validate.is_int(3) and validate.is_int(np.int64(3)) and validate.is_int(np.uint8(3))
    assert not any(validate.is_int(v) for v in (True, np.bool_(True), 3.0, "3", None))


# ---------------------------------------------------------------- data files
@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "1e39", "-1e39"])
def test_data_file_with_non_finite_or_out_of_float32_values_is_refused(tmp_path, bad):
    table = np.random.default_rng(0).normal(size=(12, 6))
    lines = ["\t".join(f"{v:.5f}" for v in row) for row in table]
    fields = lines[7].split("\t")
    fields[2] = bad
    lines[7] = "\t".join(fields)
    lines.insert(3, "")  # a blank line: the message still gives the file's own line number
    path = tmp_path / "poisoned.dat"
    path.write_text("\n".join(lines) + "\n")
    message = re.escape(str(path)) + r", line 9, column 3: .* not a finite number within float32"
    with pytest.raises(ValueError, match=message):
        d2l.get_data_ch11(batch_size=2, n=10, path=path)
    with pytest.raises(ValueError, match=message):
        airfoil.read_airfoil(path)


def test_data_file_at_the_float32_limit_is_still_read(tmp_path):
    table = np.random.default_rng(1).normal(size=(5, 6))
    table[2, 0] = 3e38  # below float32's max (3.4e38): legal, if unwise
    path = tmp_path / "edge.dat"
    path.write_text("".join("\t".join(repr(float(v)) for v in row) + "\n" for row in table))
    got = airfoil.read_airfoil(path)
    assert got.dtype == np.float32 and np.isfinite(got).all()
    np.testing.assert_array_equal(got, table.astype(np.float32))


# ---------------------------------------------------------------- per-group optimizer settings
def _p():
    return torch.zeros(2, requires_grad=True)


GROUP_CASES = [
    (Yogi, dict(lr=-1), r"\['lr'\] must be a finite number >= 0"),
    (Yogi, dict(lr=NAN), r"\['lr'\] must be a finite number >= 0"),
    (Yogi, dict(betas=(5, 5)), r"\['betas'\]\[0\] must be a finite number >= 0 and < 1"),
    (Yogi, dict(betas=(0.9, 1.0)), r"\['betas'\]\[1\] must be a finite number >= 0 and < 1"),
    (Yogi, dict(eps=-1), r"\['eps'\] must be a finite number > 0"),
    (Yogi, dict(eps=0.0), r"\['eps'\] must be a finite number > 0"),
    (Yogi, dict(weight_decay=-0.1), r"\['weight_decay'\] must be a finite number >= 0"),
    (Yogi, dict(initial_accumulator=-1e-6), r"\['initial_accumulator'\] must be"),
    (ScheduleFreeSGD, dict(lr=-1), r"\['lr'\] must be a finite number >= 0"),
    (ScheduleFreeSGD, dict(momentum=0.0), r"\['momentum'\] must be a finite number > 0 and < 1"),
    (ScheduleFreeSGD, dict(momentum=1.0), r"\['momentum'\] must be a finite number > 0 and < 1"),
    (ScheduleFreeSGD, dict(weight_decay=-1), r"\['weight_decay'\] must be"),
    (ScheduleFreeSGD, dict(warmup_steps=-1), r"\['warmup_steps'\] must be an int >= 0"),
    (ScheduleFreeSGD, dict(r=-1), r"\['r'\] must be"),
    (ScheduleFreeSGD, dict(weight_lr_power=NAN), r"\['weight_lr_power'\] must be"),
    (ScheduleFreeAdamW, dict(betas=(0.0, 0.999)), r"\['betas'\]\[0\] must be a finite number > 0"),
    (ScheduleFreeAdamW, dict(betas=(0.9, 1.0)), r"\['betas'\]\[1\] must be a finite number >= 0"),
    (ScheduleFreeAdamW, dict(eps=0.0), r"\['eps'\] must be a finite number > 0"),
    (ScheduleFreeAdamW, dict(lr=float("inf")), r"\['lr'\] must be a finite number >= 0"),
]


@pytest.mark.parametrize("cls, setting, message", GROUP_CASES)
def test_param_group_settings_are_checked_in_the_constructor(cls, setting, message):
    with pytest.raises(ValueError, match=r"^param_groups\[1\]" + message):
        cls([{"params": [_p()]}, {"params": [_p()], **setting}])


@pytest.mark.parametrize("cls, setting, message", GROUP_CASES)
def test_param_group_settings_are_checked_in_add_param_group(cls, setting, message):
    opt = cls([_p()])
    with pytest.raises(ValueError, match=r"^param_groups\[1\]" + message):
        opt.add_param_group({"params": [_p()], **setting})
    assert len(opt.param_groups) == 1  # the bad group was not added


@pytest.mark.parametrize("cls", [Yogi, ScheduleFreeSGD, ScheduleFreeAdamW])
def test_param_group_types_are_checked(cls):
    with pytest.raises(TypeError, match=r"^param_groups\[0\]\['lr'\] must be a real number"):
        cls([{"params": [_p()], "lr": "0.1"}])


def test_schedule_free_adamw_group_with_beta1_0_no_longer_divides_by_zero():
    # Before: accepted, and opt.train()/eval() computed 1 - 1/beta1 -> ZeroDivisionError.
    with pytest.raises(ValueError, match=r"betas'\]\[0\] must be a finite number > 0"):
        ScheduleFreeAdamW([{"params": [_p()], "betas": (0, 0.999)}])


def test_valid_param_groups_are_kept_as_given():
    a, b = _p(), _p()
    lr = torch.tensor(0.05)
    opt = Yogi([{"params": [a]}, {"params": [b], "lr": lr, "betas": [0.8, 0.99]}], lr=0.1)
    assert opt.param_groups[1]["lr"] is lr and opt.param_groups[1]["betas"] == [0.8, 0.99]
    sf = ScheduleFreeAdamW([a], lr=0.1)
    sf.add_param_group({"params": [b], "lr": 0.2, "warmup_steps": np.int64(3)})
    assert sf.param_groups[1]["lr"] == 0.2 and sf.param_groups[1]["betas"] == (0.9, 0.999)


# ---------------------------------------------------------------- plot helpers
def _f(x1, x2):
    return x1 ** 2 + 2 * x2 ** 2


@pytest.mark.parametrize("call, name", [
    (lambda: d2l.plot([]), "X"),
    (lambda: d2l.plot(torch.zeros(0)), "X"),
    (lambda: d2l.plot([], []), "X"),
    (lambda: d2l.plot([1.0, 2.0], []), "Y"),
    (lambda: d2l.plot([NAN, NAN]), "X"),
    (lambda: d2l.plot([1.0, 2.0], [[NAN, NAN], [float("inf"), NAN]]), "Y"),
    (lambda: d2l.show_trace([], lambda x: x ** 2), "results"),
    (lambda: d2l.show_trace([NAN, float("inf")], lambda x: x ** 2), "results"),
    (lambda: d2l.show_trace_2d(_f, []), "results"),
    (lambda: d2l.show_trace_2d(_f, {"gd": []}), r"results\['gd'\]"),
    (lambda: d2l.show_paths(_f, []), "paths"),
    (lambda: d2l.show_paths(_f, {}), "paths"),
    (lambda: d2l.show_paths(_f, {"a": [(1.0, 2.0)], "b": []}), r"paths\['b'\]"),
    (lambda: d2l.show_paths(_f, [(NAN, NAN), (float("inf"), 1.0)]), "paths"),
])
def test_plot_helpers_refuse_empty_or_all_nan_data(call, name):
    with pytest.raises(ValueError, match=f"^{name} must hold at least one"):
        call()


def test_show_paths_refuses_points_that_are_not_pairs():
    with pytest.raises(TypeError, match=r"^paths must be a sequence of \(x1, x2\) points"):
        d2l.show_paths(_f, [(1.0, 2.0, 3.0)])


def test_plot_helpers_still_draw_partly_non_finite_data():
    ax = d2l.show_paths(_f, {"ok": [(1.0, 1.0), (0.5, 0.2)], "gone": [(1.0, 1.0), (NAN, NAN)]})
    assert any("diverged" in t.get_text() for t in ax.get_legend().get_texts())
    d2l.plot([1.0, 2.0], [[1.0, NAN], [NAN, NAN]])
    d2l.show_trace([1.0, NAN], lambda x: x ** 2)


# ---------------------------------------------------------------- trainers
@pytest.mark.parametrize("hyperparams", [None, [("lr", 0.1)], 0.1])
def test_hyperparams_must_be_a_dict(hyperparams):
    data_iter, dim = small_iter()
    with pytest.raises(TypeError, match=r"^hyperparams must be a dict such as \{'lr': 0.1\}"):
        d2l.train_ch11(sgd, None, hyperparams, data_iter, dim, plot=False, verbose=False)
    with pytest.raises(TypeError, match=r"^hyperparams must be a dict"):
        d2l.train_concise_ch11(torch.optim.SGD, hyperparams, data_iter, plot=False,
                               verbose=False)


@pytest.mark.parametrize("feature_dim", ["3", 3.0, True])
def test_feature_dim_must_be_an_int(feature_dim):
    data_iter, _ = small_iter()
    with pytest.raises(TypeError, match=r"^feature_dim must be an int >= 1, got "):
        d2l.train_ch11(sgd, None, {"lr": 0.1}, data_iter, feature_dim, plot=False,
                       verbose=False)


def test_feature_dim_as_numpy_int_works():
    data_iter, _ = small_iter()
    h = d2l.train_ch11(sgd, None, {"lr": 0.1}, data_iter, np.int64(3), num_epochs=1,
                       plot=False, verbose=False)
    assert len(h.losses) >= 1 and not h.diverged


@pytest.mark.parametrize("step, error, got", [
    (lambda x1, x2, s1, s2: (x1, x2, s1), ValueError, "got 3"),
    (lambda x1, x2, s1, s2: (x1, x2, s1, s2, 0), ValueError, "got 5"),
    (lambda x1, x2, s1, s2: None, TypeError, "got NoneType"),
])
def test_train_2d_step_must_return_four_values(step, error, got):
    with pytest.raises(error, match=r"^trainer must return 4 values \(x1, x2, s1, s2\), " + got):
        d2l.train_2d(step, steps=2, verbose=False)


def test_train_2d_valid_step_prints_as_before(capsys):
    def gd(x1, x2, s1, s2):
        return x1 - 0.4 * 2 * x1, x2 - 0.4 * 4 * x2, 0, 0
    results = d2l.train_2d(gd, steps=2)
    assert capsys.readouterr().out == "epoch 2, x1: -0.200000, x2: -0.720000\n"
    x1, x2, expected = -5.0, -2.0, [(-5.0, -2.0)]
    for _ in range(2):
        x1, x2 = x1 - 0.4 * 2 * x1, x2 - 0.4 * 4 * x2
        expected.append((x1, x2))
    assert results == expected
