"""Each initializer's empirical mean, spread and bounds against its formula, on a large draw."""

import math

import numpy as np
import pytest

from nnsim.pluginmanager import default_registry

REG = default_registry()
FAN_IN, FAN_OUT = 300, 200

# (name, hyperparameters, std by the lecture's formula, bound by formula or None)
FORMULAS = [
    ("zeros", {}, 0.0, 0.0),
    ("constant", {"value": 0.3}, 0.0, 0.3),
    ("normal", {}, 0.01, None),                                     # N(0, 0.01)
    ("uniform", {"limit": 0.2}, 0.2 / math.sqrt(3), 0.2),
    ("xavier_uniform", {}, math.sqrt(6 / (FAN_IN + FAN_OUT)) / math.sqrt(3),
     math.sqrt(6 / (FAN_IN + FAN_OUT))),
    ("xavier_normal", {}, math.sqrt(1 / FAN_IN), None),             # N(0,1)·√(1/n)
    ("he_normal", {}, math.sqrt(1 / (FAN_IN / 2)), None),           # N(0,1)·√(1/(n/2))
    ("he_uniform", {}, math.sqrt(2 / FAN_IN), math.sqrt(6 / FAN_IN)),
    ("orthogonal", {}, 1 / math.sqrt(FAN_IN), None),
]


def test_every_builtin_initializer_has_a_formula():
    builtin = {n for n, e in REG.families["initializer"].items() if e.source == "built-in"}
    assert builtin == {f[0] for f in FORMULAS}


@pytest.mark.parametrize("name,hyper,std,bound", FORMULAS)
def test_initializer_matches_its_formula(name, hyper, std, bound):
    init = REG.get("initializer", name)(**hyper)
    w = init.sample((FAN_IN, FAN_OUT), FAN_IN, FAN_OUT, np.random.default_rng(0))
    assert w.shape == (FAN_IN, FAN_OUT)
    expected_mean = hyper.get("value", 0.0)
    assert abs(w.mean() - expected_mean) < 0.01 * max(std, 0.01) + 1e-12
    assert w.std() == pytest.approx(std, rel=0.01, abs=1e-12)
    assert init.expected_std(FAN_IN, FAN_OUT) == pytest.approx(std, abs=1e-12)
    if bound is not None:
        assert np.abs(w).max() <= bound + 1e-12
        assert init.bound(FAN_IN, FAN_OUT) == pytest.approx(bound)
        if std > 0:  # a uniform draw comes close to its bound
            assert np.abs(w).max() > 0.99 * bound


def test_orthogonal_columns_are_orthonormal():
    init = REG.get("initializer", "orthogonal")()
    w = init.sample((50, 20), 50, 20, np.random.default_rng(1))
    np.testing.assert_allclose(w.T @ w, np.eye(20), atol=1e-12)
    wide = init.sample((20, 50), 20, 50, np.random.default_rng(1))
    np.testing.assert_allclose(wide @ wide.T, np.eye(20), atol=1e-12)


def test_initializers_use_only_the_generator_they_are_given():
    init = REG.get("initializer", "he_normal")()
    a = init.sample((4, 4), 4, 4, np.random.default_rng(5))
    np.random.seed(123)  # global state must not matter
    b = init.sample((4, 4), 4, 4, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
