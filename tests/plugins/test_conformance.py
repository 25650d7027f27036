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


class LazyLion(Optimizer):
    """Lion keeping its momentum on the instance, created at the first step: a checkpoint
    round trip on a convex quadratic cannot tell (the signs agree), a resumed run can."""
    name = "lazy_lion"
    hyperparameters = {"lr": Hyper(3e-3, low=0.0, high=1.0, help="learning rate"),
                       "beta1": Hyper(0.9, low=0.0, high=1.0, help="interpolation"),
                       "beta2": Hyper(0.99, low=0.0, high=1.0, help="momentum decay")}
    state_names = ("m",)  # declared, but left at zero: the state norm reads 0

    def update(self, params, grads, state, t):
        if getattr(self, "m", None) is None:
            self.m = np.zeros_like(params)
        step = np.sign(self.beta1 * self.m + (1 - self.beta1) * grads)
        self.m = self.beta2 * self.m + (1 - self.beta2) * grads
        params -= self.lr * step


class UndeclaredLion(LazyLion):
    """The same, declaring no state at all."""
    name = "undeclared_lion"
    state_names = ()


@pytest.mark.parametrize("cls,checks", [
    (WrongGradient, {"backward matches central differences"}),
    (ForgetfulOptimizer, {"state survives a checkpoint round trip",
                          "state kept in the state arrays"}),
    (LazyLion, {"state kept in the state arrays", "state arrays change"}),
    (UndeclaredLion, {"state kept in the state arrays"}),
    (Overpromising, {"empirical statistics match the declared rule"}),
])
def test_checks_catch_broken_components(cls, checks):
    results = {c.name: c for c in check_component(cls)}
    assert {name for name, c in results.items() if not c.passed} == checks, \
        [str(c) for c in results.values()]
    with pytest.raises(AssertionError, match="|".join(checks)):
        assert_conforms(cls)


def test_a_failed_check_says_what_passes():
    failed = [c for c in check_component(LazyLion) if not c.passed]
    assert str(failed[0]).endswith(
        "(passes when one instance stepping two parameter vectors in turn (12 steps each, "
        "random gradients) gives exactly what two instances give stepping one each)")
    slow = {c.name: c for c in check_component(LazyLion, lr=1e-6)}
    quadratic = slow["decreases a convex quadratic"]
    assert not quadratic.passed
    assert "at lr=1e-06" in quadratic.detail
    assert "falls 10× or more within 1,000 steps" in str(quadratic)


def test_hyperparameters_given_to_a_check_are_used():
    class Sluggish(Optimizer):
        """Plain gradient descent whose default learning rate is far too small."""
        name = "sluggish"
        hyperparameters = {"lr": Hyper(1e-5, low=0.0, high=1.0, help="learning rate")}

        def update(self, params, grads, state, t):
            params -= self.lr * grads

    def verdict(**hypers):
        return {c.name: c.passed for c in check_component(Sluggish, **hypers)}

    assert verdict()["decreases a convex quadratic"] is False
    assert verdict(lr=0.05)["decreases a convex quadratic"] is True
    assert_conforms(Sluggish, lr=0.05)


def test_check_plugin_command(capsys):
    assert main(["check-plugin", "relu", "optimizer:adam"]) == 0
    out = capsys.readouterr().out
    assert "PASS  activation 'relu'  backward matches central differences" in out
    assert out.strip().endswith("9 checks passed, 0 failed")
    assert main(["check-plugin", "nope"]) == 2
    assert "no plugin or component 'nope'" in capsys.readouterr().err


# ---------------------------------------------------------------- a whole installed plugin

SLUGGISH = '''
from nnsim import hookimpl
from nnsim.components import Hyper, Optimizer

class Sluggish(Optimizer):
    """Plain gradient descent whose default learning rate is far too small."""
    name = "sluggish"
    hyperparameters = {"lr": Hyper(1e-5, low=0.0, high=1.0, help="learning rate")}

    def update(self, params, grads, state, t):
        params -= self.lr * grads

@hookimpl
def register_optimizers(register):
    register(Sluggish)
'''


@pytest.fixture
def installed(tmp_path, monkeypatch):
    from tests.plugins.test_loading import BROKEN_IMPORT, GOOD, make_distribution

    make_distribution(tmp_path, "nnsim-cube", "nnsim_cube", GOOD)
    make_distribution(tmp_path, "nnsim-broken", "nnsim_broken", BROKEN_IMPORT)
    make_distribution(tmp_path, "nnsim-slow", "nnsim_slow", SLUGGISH)
    monkeypatch.syspath_prepend(str(tmp_path))


def test_assert_plugin_conforms_loads_the_distribution_through_its_entry_point(installed):
    from nnsim.testing import assert_plugin_conforms, check_plugin

    assert_plugin_conforms("nnsim-cube")
    assert {c.component for c in check_plugin("nnsim_cube")} == {"activation 'cube'"}
    with pytest.raises(AssertionError) as info:
        assert_plugin_conforms("nnsim-broken")
    assert str(info.value).splitlines()[1] == (
        "FAIL  plugin 'nnsim_broken' (nnsim-broken 1.2.3)  loads: failed at import: "
        "RuntimeError: cannot import me (passes when the plugin imports, implements only "
        "nnsim's hooks (each marked @hookimpl), and registers component classes, each with a "
        "name no other plugin took)")
    with pytest.raises(AssertionError, match=r"no installed distribution 'nnsim-cub' has an "
                                             r"`nnsim` entry point \(did you mean 'nnsim-cube'\?\)"):
        assert_plugin_conforms("nnsim-cub")


def test_assert_plugin_conforms_takes_hyperparameters_per_component(installed):
    from nnsim.testing import assert_plugin_conforms

    with pytest.raises(AssertionError, match="decreases a convex quadratic"):
        assert_plugin_conforms("nnsim-slow")
    assert_plugin_conforms("nnsim-slow", hypers={"sluggish": {"lr": 0.05}})
    assert_plugin_conforms("nnsim-slow", hypers={"optimizer:sluggish": {"lr": 0.05}})
    with pytest.raises(ValueError, match="hyperparameters for slugish, which nnsim-slow does "
                                         "not register"):
        assert_plugin_conforms("nnsim-slow", hypers={"slugish": {"lr": 0.05}})
