"""nnsim.testing: every built-in conforms, and each check catches what it is for."""

import numpy as np
import pytest

from nnsim.cli import main
from nnsim.components import Activation, Hyper, Initializer, Optimizer
from nnsim.pluginmanager import BUILTIN, default_registry
from nnsim.testing import assert_conforms, check_component

# built-in lessons: tests/lessons runs each, and its control, at three seeds
BUILTINS = [(f, n, e.cls) for f, t in default_registry().families.items()
            for n, e in t.items() if e.source == BUILTIN and f != "lesson"]


@pytest.mark.parametrize("family,name,cls", BUILTINS, ids=[f"{f}:{n}" for f, n, _ in BUILTINS])
def test_every_builtin_passes_every_check(family, name, cls):
    assert_conforms(cls)


class WrongGradient(Activation):
    name = "wrong_gradient"

    def forward(self, x):
        return np.tanh(x)

    def backward(self, x, y, grad_y):
        return grad_y * (1 - y)  # should be 1 - y²


class ForgetfulOptimizer(Optimizer):
    """Keeps its velocity on the instance, where a checkpoint cannot see it."""
    name = "forgetful"
    hyperparameters = {"lr": Hyper(0.05, low=0.0, high=1.0, help="learning rate")}

    def update(self, params, grads, state, t):
        self.v = 0.9 * getattr(self, "v", 0.0) + grads
        params -= self.lr * self.v


class Overpromising(Initializer):
    name = "overpromising"

    def sample(self, shape, fan_in, fan_out, rng):
        return rng.normal(0.0, 1.0, size=shape)

    def expected_std(self, fan_in, fan_out):
        return 0.5


@pytest.mark.parametrize("cls,check", [
    (WrongGradient, "backward matches central differences"),
    (ForgetfulOptimizer, "state survives a checkpoint round trip"),
    (Overpromising, "empirical statistics match the declared rule"),
])
def test_checks_catch_broken_components(cls, check):
    results = {c.name: c for c in check_component(cls)}
    assert not results[check].passed
    others = [c for name, c in results.items() if name != check]
    assert all(c.passed for c in others), [str(c) for c in others if not c.passed]
    with pytest.raises(AssertionError, match=check):
        assert_conforms(cls)


def test_check_plugin_command(capsys):
    assert main(["check-plugin", "relu", "optimizer:adam"]) == 0
    out = capsys.readouterr().out
    assert "PASS  activation 'relu'  backward matches central differences" in out
    assert out.strip().endswith("7 checks passed, 0 failed")
    assert main(["check-plugin", "nope"]) == 2
    assert "no plugin or component 'nope'" in capsys.readouterr().err
