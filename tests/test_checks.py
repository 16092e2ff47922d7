"""Tests of d2lopt.checks.

The optimizers below are written here in the book's style, ``fn(params, states, hyperparams)``,
with torch's eps values and placement; torch.optim is the independent reference. Each faulty
variant contains exactly one mistake, and the test asserts that the diagnosis names it.
"""
import re

import pytest
import torch

from d2lopt.checks import CheckResult, assert_passes, check_function, check_optimizer


# ---- correct book-style updates (torch's eps placement and defaults) -------------------------
def init_one(feature_dim):              # one state tensor per parameter (momentum, Adagrad, ...)
    return (torch.zeros((feature_dim, 1)), torch.zeros(1))


def init_two(feature_dim):              # two per parameter (Adadelta, Adam)
    return ((torch.zeros((feature_dim, 1)), torch.zeros((feature_dim, 1))),
            (torch.zeros(1), torch.zeros(1)))


def sgd_momentum(params, states, hyperparams):
    for p, v in zip(params, states):
        with torch.no_grad():
            v[:] = hyperparams['momentum'] * v + p.grad
            p[:] -= hyperparams['lr'] * v
        p.grad.data.zero_()


def adagrad(params, states, hyperparams):
    for p, s in zip(params, states):
        with torch.no_grad():
            s[:] += p.grad ** 2
            p[:] -= hyperparams['lr'] * p.grad / (torch.sqrt(s) + 1e-10)
        p.grad.data.zero_()


def rmsprop(params, states, hyperparams):
    gamma = hyperparams['gamma']
    for p, s in zip(params, states):
        with torch.no_grad():
            s[:] = gamma * s + (1 - gamma) * p.grad ** 2
            p[:] -= hyperparams['lr'] * p.grad / (torch.sqrt(s) + 1e-8)
        p.grad.data.zero_()


def adadelta(params, states, hyperparams):
    rho, eps = hyperparams['rho'], 1e-6
    for p, (s, delta) in zip(params, states):
        with torch.no_grad():
            s[:] = rho * s + (1 - rho) * p.grad ** 2
            g = torch.sqrt(delta + eps) / torch.sqrt(s + eps) * p.grad
            p[:] -= g
            delta[:] = rho * delta + (1 - rho) * g ** 2
        p.grad.data.zero_()


def adam(params, states, hyperparams, eps=1e-8):
    beta1, beta2 = hyperparams.get('beta1', 0.9), hyperparams.get('beta2', 0.999)
    t = hyperparams['t']
    for p, (v, s) in zip(params, states):
        with torch.no_grad():
            v[:] = beta1 * v + (1 - beta1) * p.grad
            s[:] = beta2 * s + (1 - beta2) * p.grad ** 2
            v_hat, s_hat = v / (1 - beta1 ** t), s / (1 - beta2 ** t)
            p[:] -= hyperparams['lr'] * v_hat / (torch.sqrt(s_hat) + eps)
        p.grad.data.zero_()
    hyperparams['t'] += 1


CORRECT = [(sgd_momentum, init_one, torch.optim.SGD, {'lr': 0.01, 'momentum': 0.9}),
           (adagrad, init_one, torch.optim.Adagrad, {'lr': 0.1}),
           (rmsprop, init_one, torch.optim.RMSprop, {'lr': 0.01, 'gamma': 0.9}),
           (adadelta, init_two, torch.optim.Adadelta, {'rho': 0.9}),
           (adam, init_two, torch.optim.Adam, {'lr': 0.01, 't': 1})]


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-6), (torch.float64, 1e-12)])
@pytest.mark.parametrize("fn, init, ref, hp", CORRECT, ids=lambda c: getattr(c, "__name__", ""))
def test_correct_updates_match_torch(fn, init, ref, hp, dtype, tol):
    result = check_optimizer(fn, init, ref, hp, dtype=dtype)
    assert result.passed and result.gap <= tol and result.diagnosis is None
    assert result.reference_name == f"torch.optim.{ref.__name__}"
    # a match prints the tolerance met, never round-off digits (they differ between CPUs)
    assert str(result).endswith("(match)") and f"within {tol:.0e}".replace("e-0", "e-") in str(result)
    assert f"{result.gap:.1e}" not in str(result)


# ---- one mistake each --------------------------------------------------------------------------
def adam_bias_off_by_one(params, states, hyperparams):
    t = hyperparams['t'] + 1                    # mistake: the first step uses beta ** 2
    for p, (v, s) in zip(params, states):
        with torch.no_grad():
            v[:] = 0.9 * v + 0.1 * p.grad
            s[:] = 0.999 * s + 0.001 * p.grad ** 2
            p[:] -= hyperparams['lr'] * (v / (1 - 0.9 ** t)) / (torch.sqrt(s / (1 - 0.999 ** t)) + 1e-8)
        p.grad.data.zero_()
    hyperparams['t'] += 1


def adam_eps_inside(params, states, hyperparams):
    t = hyperparams['t']
    for p, (v, s) in zip(params, states):
        with torch.no_grad():
            v[:] = 0.9 * v + 0.1 * p.grad
            s[:] = 0.999 * s + 0.001 * p.grad ** 2
            p[:] -= hyperparams['lr'] * (v / (1 - 0.9 ** t)) / torch.sqrt(s / (1 - 0.999 ** t) + 1e-8)
        p.grad.data.zero_()
    hyperparams['t'] += 1


def adam_no_one_minus_beta2(params, states, hyperparams):
    t = hyperparams['t']
    for p, (v, s) in zip(params, states):
        with torch.no_grad():
            v[:] = 0.9 * v + 0.1 * p.grad
            s[:] = 0.999 * s + p.grad ** 2          # mistake: no (1 - beta2)
            p[:] -= hyperparams['lr'] * (v / (1 - 0.9 ** t)) / (torch.sqrt(s / (1 - 0.999 ** t)) + 1e-8)
        p.grad.data.zero_()
    hyperparams['t'] += 1


def adam_counter_stuck(params, states, hyperparams):
    adam(params, states, hyperparams)
    hyperparams['t'] -= 1                       # net effect: 't' never advances


def adam_counter_from_zero(params, states, hyperparams):
    hyperparams.setdefault('k', 0)              # mistake: counts from 0, so 1 - beta**0 = 0
    adam(params, states, {'lr': hyperparams['lr'], 't': hyperparams['k']})
    hyperparams['k'] += 1


def rmsprop_no_one_minus_gamma(params, states, hyperparams):
    for p, s in zip(params, states):
        with torch.no_grad():
            s[:] = hyperparams['gamma'] * s + p.grad ** 2
            p[:] -= hyperparams['lr'] * p.grad / (torch.sqrt(s) + 1e-8)
        p.grad.data.zero_()


def momentum_keeps_grad(params, states, hyperparams):
    for p, v in zip(params, states):
        with torch.no_grad():
            v[:] = hyperparams['momentum'] * v + p.grad
            p[:] -= hyperparams['lr'] * v           # mistake: p.grad is never zeroed


def momentum_updates_copy(params, states, hyperparams):
    for p, v in zip(params, states):
        with torch.no_grad():
            g = p.grad.clone()
            p.grad.zero_()
            v[:] = hyperparams['momentum'] * v + g
            p = p - hyperparams['lr'] * v           # mistake: rebinds p, the parameter is untouched


def momentum_rebinds_then_zeroes(params, states, hyperparams):
    for p, v in zip(params, states):
        with torch.no_grad():
            v[:] = hyperparams['momentum'] * v + p.grad
            p = p - hyperparams['lr'] * v
        p.grad.data.zero_()                         # p is the new tensor now: its grad is None


def momentum_without_no_grad(params, states, hyperparams):
    for p, v in zip(params, states):
        v[:] = hyperparams['momentum'] * v + p.grad
        p -= hyperparams['lr'] * v
        p.grad.data.zero_()


def momentum_ascent(params, states, hyperparams):
    for p, v in zip(params, states):
        with torch.no_grad():
            v[:] = hyperparams['momentum'] * v + p.grad
            p[:] += hyperparams['lr'] * v
        p.grad.data.zero_()


def momentum_averaged(params, states, hyperparams):
    beta = hyperparams['momentum']
    for p, v in zip(params, states):
        with torch.no_grad():
            v[:] = beta * v + (1 - beta) * p.grad   # mistake: torch's buffer sums, not averages
            p[:] -= hyperparams['lr'] * v
        p.grad.data.zero_()


def adam_no_bias_correction(params, states, hyperparams):
    for p, (v, s) in zip(params, states):
        with torch.no_grad():
            v[:] = 0.9 * v + 0.1 * p.grad
            s[:] = 0.999 * s + 0.001 * p.grad ** 2
            p[:] -= hyperparams['lr'] * v / (torch.sqrt(s) + 1e-8)
        p.grad.data.zero_()


def book_adadelta(params, states, hyperparams):  # the book's own: eps = 1e-5 (torch: 1e-6)
    rho, eps = hyperparams['rho'], 1e-5
    for p, (s, delta) in zip(params, states):
        with torch.no_grad():
            s[:] = rho * s + (1 - rho) * p.grad ** 2
            g = torch.sqrt(delta + eps) / torch.sqrt(s + eps) * p.grad
            p[:] -= g
            delta[:] = rho * delta + (1 - rho) * g ** 2
        p.grad.data.zero_()


def book_adagrad(params, states, hyperparams):   # the book's own: eps = 1e-6 inside the root
    for p, s in zip(params, states):
        with torch.no_grad():
            s[:] += p.grad ** 2
            p[:] -= hyperparams['lr'] * p.grad / torch.sqrt(s + 1e-6)
        p.grad.data.zero_()


ADAM, MOMENTUM = {'lr': 0.01, 't': 1}, {'lr': 0.01, 'momentum': 0.9}
MISTAKES = [
    (adam_bias_off_by_one, init_two, torch.optim.Adam, ADAM, ["bias correction", "power of β"]),
    (adam_eps_inside, init_two, torch.optim.Adam, ADAM, ["eps", "square root", "tiny"]),
    (adam_no_one_minus_beta2, init_two, torch.optim.Adam, ADAM, ["(1 - β)", "squared gradients"]),
    (adam_counter_stuck, init_two, torch.optim.Adam, ADAM, ["hyperparams['t']", "advance"]),
    (adam_counter_from_zero, init_two, torch.optim.Adam, ADAM, ["NaN", "1 - β^t"]),
    (rmsprop_no_one_minus_gamma, init_one, torch.optim.RMSprop, {'lr': 0.01, 'gamma': 0.9},
     ["(1 - β)", "squared gradients"]),
    (momentum_keeps_grad, init_one, torch.optim.SGD, MOMENTUM, ["p.grad", "zero"]),
    (momentum_updates_copy, init_one, torch.optim.SGD, MOMENTUM, ["never change", "new tensor"]),
    (momentum_rebinds_then_zeroes, init_one, torch.optim.SGD, MOMENTUM, ["rebinds", "new tensor"]),
    (momentum_without_no_grad, init_one, torch.optim.SGD, MOMENTUM, ["torch.no_grad()"]),
    (momentum_ascent, init_one, torch.optim.SGD, MOMENTUM, ["sign"]),
    (momentum_averaged, init_one, torch.optim.SGD, MOMENTUM, ["(1 - β)", "velocity"]),
    (adam_no_bias_correction, init_two, torch.optim.Adam, ADAM, ["bias correction", "too large"]),
    (book_adadelta, init_two, torch.optim.Adadelta, {'rho': 0.9}, ["value", "eps=1e-06"]),
    (book_adagrad, init_one, torch.optim.Adagrad, {'lr': 0.1}, ["eps", "square root"]),
]


@pytest.mark.parametrize("fn, init, ref, hp, words", MISTAKES, ids=lambda c: getattr(c, "__name__", ""))
def test_mistake_is_detected_and_named(fn, init, ref, hp, words):
    result = check_optimizer(fn, init, ref, hp)
    assert not result.passed and result.gap > 1e-6
    assert result.diagnosis is not None and all(w in result.diagnosis for w in words), result.diagnosis
    assert str(result).endswith("(MISMATCH)") and "tolerance 1e-6" in str(result)
    with pytest.raises(AssertionError, match=re.escape(result.diagnosis)):
        assert_passes(result)


def test_frozen_parameters_are_detected_exactly():
    # A zero learning rate is no mistake: the reference does not move either, so this passes.
    assert check_optimizer(momentum_updates_copy, init_one, torch.optim.SGD,
                           {'lr': 0.0, 'momentum': 0.9}).passed


def test_book_adagrad_eps_diagnosis_in_float64():
    r64 = check_optimizer(book_adagrad, init_one, torch.optim.Adagrad, {'lr': 0.1},
                          dtype=torch.float64)
    assert not r64.passed and 1e-12 < r64.gap and "square root" in r64.diagnosis


def test_eps_value_differs_and_explicit_reference_hyperparams():
    def adam_book_eps(params, states, hyperparams):
        adam(params, states, hyperparams, eps=1e-6)
    r = check_optimizer(adam_book_eps, init_two, torch.optim.Adam, ADAM)
    assert not r.passed and "value" in r.diagnosis and "eps=1e-08" in r.diagnosis
    assert check_optimizer(adam_book_eps, init_two, torch.optim.Adam, ADAM,
                           reference_hyperparams={'lr': 0.01, 'eps': 1e-6}).passed


def test_default_translation_of_betas():
    hp = {'lr': 0.01, 't': 1, 'beta1': 0.5, 'beta2': 0.9}       # -> betas=(0.5, 0.9)
    assert check_optimizer(adam, init_two, torch.optim.Adam, hp, dtype=torch.float64).passed
    assert not check_optimizer(adam, init_two, torch.optim.Adam, hp,
                               reference_hyperparams={'lr': 0.01}).passed


def test_caller_hyperparams_and_ready_states_are_not_mutated():
    hp, states = {'lr': 0.01, 't': 1}, init_two(5)
    check_optimizer(adam, states, torch.optim.Adam, hp)
    assert hp == {'lr': 0.01, 't': 1}
    assert all(float(x.abs().sum()) == 0.0 for pair in states for x in pair)


def test_results_are_deterministic_and_seeded():
    a = check_optimizer(book_adagrad, init_one, torch.optim.Adagrad, {'lr': 0.1})
    b = check_optimizer(book_adagrad, init_one, torch.optim.Adagrad, {'lr': 0.1})
    c = check_optimizer(book_adagrad, init_one, torch.optim.Adagrad, {'lr': 0.1}, seed=1)
    assert a.gap == b.gap and str(a) == str(b) and repr(a) == repr(b)
    assert c.gap != a.gap


def test_one_line_str_and_repr_without_addresses():
    r = check_optimizer(adam, init_two, torch.optim.Adam, ADAM, steps=30)
    assert re.fullmatch(r"max \|Δ\| vs torch\.optim\.Adam over 30 steps within 1e-6 relative \(match\)", str(r))
    assert " at 0x" not in repr(r) and repr(r).startswith("CheckResult(gap=")
    assert isinstance(r, CheckResult) and r.steps == 30


def test_book_style_reference_and_its_name():
    r = check_optimizer(adam, init_two, adam, ADAM, dtype=torch.float64)
    assert r.passed and r.gap == 0.0 and r.reference_name == "adam"
    bad = check_optimizer(momentum_ascent, init_one, (sgd_momentum, init_one), MOMENTUM)
    assert not bad.passed and "sign" in bad.diagnosis


def test_bad_arguments_raise_with_the_argument_named():
    with pytest.raises(ValueError, match="steps"):
        check_optimizer(adam, init_two, torch.optim.Adam, ADAM, steps=0)
    with pytest.raises(ValueError, match="'gamma'"):
        check_optimizer(rmsprop, init_one, torch.optim.Adam, {'lr': 0.01, 'gamma': 0.9})
    with pytest.raises(TypeError, match="reference"):
        check_optimizer(adam, init_two, 42, ADAM)
    with pytest.raises(ValueError, match="tol"):
        check_optimizer(adam, init_two, torch.optim.Adam, ADAM, dtype=torch.float16)
    with pytest.raises(TypeError, match="hyperparams"):
        check_optimizer(adam, init_two, torch.optim.Adam, [('lr', 0.1)])


# ---- check_function ----------------------------------------------------------------------------
def sqrt_schedule(t):
    return 0.1 * (t + 1) ** -0.5


def test_check_function_match_and_tuple_inputs():
    r = check_function(lambda t: 0.1 / (t + 1) ** 0.5, sqrt_schedule, range(10))
    assert r.passed and re.fullmatch(r"max \|Δ\| vs sqrt_schedule over 10 inputs within rtol 1e-06, atol 1e-09 \(match\)", str(r))
    assert assert_passes(r) is r
    f = check_function(lambda x1, x2: torch.tensor([0.2 * x1, 4.0 * x2]),
                       lambda x1, x2: [0.2 * x1, 4 * x2], [(1.0, 2.0), (-5.0, -2.0)], name="grad f")
    assert f.passed and f.reference_name == "grad f"


def test_check_function_hints():
    ahead = check_function(lambda t: sqrt_schedule(t + 1), sqrt_schedule, range(10))
    assert not ahead.passed and "one step ahead" in ahead.diagnosis
    double = check_function(lambda t: 2 * sqrt_schedule(t), sqrt_schedule, range(10))
    assert "constant 2" in double.diagnosis
    other = check_function(lambda t: 0.1 / (t + 1), sqrt_schedule, range(10))
    assert "input 1" in other.diagnosis and abs(other.gap - 0.1 * (0.5 - 0.25)) < 1e-12   # largest at t = 3
    with pytest.raises(AssertionError, match="one step ahead"):
        assert_passes(ahead)
    with pytest.raises(ValueError, match="inputs"):
        check_function(sqrt_schedule, sqrt_schedule, [])


def test_a_schedule_free_reference_is_stepped_in_train_mode():
    """check_optimizer builds the reference itself, so it must put a schedule-free one in train
    mode (its step() refuses eval mode): the package's optimizer checks against itself."""
    from d2lopt.optim import ScheduleFreeSGD

    def as_update(params, states, hyperparams):   # the package optimizer, book-style
        if not states:
            states.append(ScheduleFreeSGD(params, lr=hyperparams["lr"]))
            states[0].train()
        states[0].step()
        for p in params:
            p.grad.zero_()

    result = check_optimizer(as_update, lambda feature_dim: [], ScheduleFreeSGD, {"lr": 0.1}, steps=5)
    assert result.passed
