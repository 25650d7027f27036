"""Each optimizer, step by step, against its formula written out by hand."""

import math

import numpy as np
import pytest

from nnsim.pluginmanager import default_registry

REG = default_registry()


def reference(name, hyper, w0, grads):
    """The textbook update, one scalar at a time in plain Python floats."""
    ws = []
    for i, w in enumerate(w0):
        v = m = s = 0.0
        for t, g_all in enumerate(grads, start=1):
            g = g_all[i]
            lr = hyper["lr"]
            if name == "sgd":
                w = w - lr * g
            elif name == "momentum":          # v ← βv + g ; w ← w − αv
                v = hyper["beta"] * v + g
                w = w - lr * v
            elif name == "nesterov":          # v ← βv + g ; w ← w − α(g + βv)
                v = hyper["beta"] * v + g
                w = w - lr * (g + hyper["beta"] * v)
            elif name == "adagrad":
                s = s + g * g
                w = w - lr * g / (math.sqrt(s) + hyper["eps"])
            elif name == "rmsprop":
                s = hyper["rho"] * s + (1 - hyper["rho"]) * g * g
                w = w - lr * g / (math.sqrt(s) + hyper["eps"])
            elif name in ("adam", "adamw"):
                if name == "adamw":
                    w = w - lr * hyper["weight_decay"] * w
                m = hyper["beta1"] * m + (1 - hyper["beta1"]) * g
                s = hyper["beta2"] * s + (1 - hyper["beta2"]) * g * g
                m_hat = m / (1 - hyper["beta1"] ** t)
                s_hat = s / (1 - hyper["beta2"] ** t)
                w = w - lr * m_hat / (math.sqrt(s_hat) + hyper["eps"])
            else:
                raise AssertionError(name)
        ws.append(w)
    return np.array(ws)


CASES = {
    "sgd": {"lr": 0.1},
    "momentum": {"lr": 0.05, "beta": 0.9},
    "nesterov": {"lr": 0.05, "beta": 0.8},
    "adagrad": {"lr": 0.3, "eps": 1e-8},
    "rmsprop": {"lr": 0.01, "rho": 0.9, "eps": 1e-8},
    "adam": {"lr": 0.01, "beta1": 0.9, "beta2": 0.99, "eps": 1e-8},
    "adamw": {"lr": 0.01, "beta1": 0.8, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1},
}


def test_every_builtin_optimizer_has_a_reference():
    builtin = {n for n, e in REG.families["optimizer"].items() if e.source == "built-in"}
    assert builtin == set(CASES)


@pytest.mark.parametrize("name", list(CASES))
def test_optimizer_steps_follow_the_formula(name):
    rng = np.random.default_rng(7)
    w0 = rng.normal(size=6)
    grads = [rng.normal(size=6) for _ in range(5)]
    opt = REG.get("optimizer", name)(**CASES[name])
    params = w0.copy()
    state = opt.init_state(params)
    for t, g in enumerate(grads, start=1):
        opt.update(params, g.copy(), state, t)
    np.testing.assert_allclose(params, reference(name, CASES[name], w0, grads),
                               rtol=1e-12, atol=1e-14)


def test_momentum_velocity_is_the_sum_of_decayed_gradients():
    opt = REG.get("optimizer", "momentum")(lr=0.1, beta=0.5)
    params = np.zeros(1)
    state = opt.init_state(params)
    for t, g in enumerate([1.0, 1.0, 1.0], start=1):
        opt.update(params, np.array([g]), state, t)
    assert state["velocity"][0] == pytest.approx(1 + 0.5 + 0.25)
    assert params[0] == pytest.approx(-0.1 * (1 + 1.5 + 1.75))


@pytest.mark.parametrize("shrink,above", [(0.8, True), (1.0, False), (1.25, False)])
def test_momentums_step_passes_lr_over_1_minus_beta_only_while_the_gradient_shrinks(
        shrink, above):
    """What the Optimizer panel says of ‖ΔW‖/‖g‖: it tends to lr/(1−β) under gradients
    that agree and keep their size, and passes it while they shrink (the velocity still
    holds the larger ones); growing gradients keep it below."""
    lr, beta = 0.05, 0.9
    opt = REG.get("optimizer", "momentum")(lr=lr, beta=beta)
    params = np.zeros(1)
    state = opt.init_state(params)
    for t in range(1, 61):
        g = np.array([shrink ** t])
        before = params.copy()
        opt.update(params, g, state, t)
    ratio = abs(params[0] - before[0]) / g[0]
    assert bool(ratio > lr / (1 - beta) * 1.01) is above
    assert ratio == pytest.approx(lr / (1 - beta), rel=1e-2) or shrink != 1.0


def test_adam_first_step_moves_each_weight_by_lr():
    """Bias correction makes the first Adam step ±lr whatever the gradient's scale."""
    opt = REG.get("optimizer", "adam")(lr=0.01)
    params = np.zeros(3)
    opt.update(params, np.array([1e-3, -3.0, 50.0]), opt.init_state(params), 1)
    np.testing.assert_allclose(params, [-0.01, 0.01, -0.01], rtol=1e-4)


@pytest.mark.parametrize("name", list(CASES))
def test_optimizer_keeps_float32_parameters_float32(name):
    opt = REG.get("optimizer", name)(**CASES[name])
    params = np.ones(4, np.float32)
    state = opt.init_state(params)
    opt.update(params, np.full(4, 0.5, np.float32), state, 1)
    assert params.dtype == np.float32
    assert all(v.dtype == np.float32 for v in state.values())

