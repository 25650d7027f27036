"""Plugins that break at run time stop the run with a message naming them; nothing crashes."""

import numpy as np
import pytest

from nnsim.components import Activation, Normalizer, Optimizer
from nnsim.engine import Simulation
from nnsim.errors import PluginError
from nnsim.pluginmanager import Entry, load_registry
from tests.helpers import small_config


def registry_with(family: str, cls) -> object:
    registry = load_registry(entry_points=[], env={})
    registry.families[family][cls.name] = Entry(cls, "nnsim_bad", "nnsim-bad 0.1")
    return registry


def simulation(family: str, cls, key: str, *more):
    registry = registry_with(family, cls)
    return Simulation(small_config().with_overrides([(key, cls.name), *more], registry), registry)


class Exploding(Activation):
    name = "exploding"
    armed = False

    def forward(self, x):
        if type(self).armed:
            raise RuntimeError("kaboom")
        return np.tanh(x)

    def backward(self, x, y, grad_y):
        return grad_y * (1 - y * y)


class WrongShape(Activation):
    name = "wrong_shape"

    def forward(self, x):
        return x[:, :1]

    def backward(self, x, y, grad_y):
        return grad_y


class WrongDtype(Activation):
    name = "wrong_dtype"

    def forward(self, x):
        return x.astype(np.float64)

    def backward(self, x, y, grad_y):
        return grad_y


class MakesNaN(Activation):
    name = "makes_nan"

    def forward(self, x):
        return x * np.nan

    def backward(self, x, y, grad_y):
        return grad_y


class BadSaturation(Activation):
    name = "bad_saturation"

    def forward(self, x):
        return x

    def backward(self, x, y, grad_y):
        return grad_y

    def saturated(self, x, y):
        raise ValueError("no idea")


class BadNorm(Normalizer):
    name = "bad_norm"

    def forward(self, x, training):
        return x

    def backward(self, grad_y):
        return grad_y  # forgot the parameter gradients


class BadOptimizer(Optimizer):
    name = "bad_optimizer"
    from nnsim.components import Hyper
    hyperparameters = {"lr": Hyper(0.1, low=0.0, high=1.0, help="learning rate")}

    def update(self, params, grads, state, t):
        raise ZeroDivisionError("oops")


@pytest.mark.parametrize("family,cls,key,needle", [
    ("activation", WrongShape, "model.activation",
     "activation 'wrong_shape' (from nnsim-bad 0.1): forward() must return an array of shape"),
    ("activation", BadSaturation, "model.activation",
     "activation 'bad_saturation' (from nnsim-bad 0.1): saturated() raised ValueError: no idea"),
    ("normalizer", BadNorm, "model.normalizer",
     "normalizer 'bad_norm' (from nnsim-bad 0.1): backward() must return (grad_x, {param: grad})"),
    ("optimizer", BadOptimizer, "optimizer.name",
     "optimizer 'bad_optimizer' (from nnsim-bad 0.1): update() raised ZeroDivisionError: oops"),
])
def test_runtime_failures_name_plugin_component_and_method(family, cls, key, needle):
    sim = simulation(family, cls, key)
    with pytest.raises(PluginError) as info:
        sim.run(3)
    assert needle in str(info.value)


def test_a_wrong_dtype_is_refused():
    sim = simulation("activation", WrongDtype, "model.activation", ("model.dtype", "float32"))
    with pytest.raises(PluginError, match="forward\\(\\) must return float32 for float32 "
                                          "input, got float64"):
        sim.step()


def test_a_failure_mid_run_keeps_what_came_before():
    Exploding.armed = False
    sim = simulation("activation", Exploding, "model.activation")
    records = []
    try:
        with pytest.raises(PluginError, match=r"forward\(\) raised RuntimeError: kaboom"):
            for record in sim.steps(100):
                records.append(record)
                Exploding.armed = len(records) == 4
    finally:
        Exploding.armed = False
    assert len(records) == 4 and sim.step_count == 4


def test_nan_from_a_plugin_is_a_divergence_not_a_crash():
    sim = simulation("activation", MakesNaN, "model.activation")
    records = sim.run(10)
    assert len(records) == 1 and records[0].nonfinite == "layer 1 activations"
    assert str(sim.divergence) == "diverged at step 1: non-finite layer 1 activations"


def test_an_engine_bug_is_not_blamed_on_a_plugin(monkeypatch):
    sim = Simulation(small_config())

    def broken_matmul(*args, **kwargs):
        raise MemoryError("the engine's own failure")

    monkeypatch.setattr(np, "matmul", broken_matmul)
    with pytest.raises(MemoryError):
        sim.step()


class InfInLayer2(Activation):
    """tanh, except that the second layer's forward overflows."""
    name = "inf_in_layer2"
    calls = 0

    def forward(self, x):
        type(self).calls += 1
        y = np.tanh(x)
        return y / 0.0 if type(self).calls % 2 == 0 else y

    def backward(self, x, y, grad_y):
        return grad_y


class InfGradient(Activation):
    name = "inf_gradient"

    def forward(self, x):
        return np.tanh(x)

    def backward(self, x, y, grad_y):
        return grad_y * np.inf


class NaNOptimizer(Optimizer):
    name = "nan_optimizer"
    from nnsim.components import Hyper
    hyperparameters = {"lr": Hyper(0.1, low=0.0, high=1.0, help="learning rate")}

    def update(self, params, grads, state, t):
        params[0] = np.nan  # the first weight of layer 1


@pytest.mark.parametrize("telemetry", [True, False])
@pytest.mark.parametrize("family,cls,key,where", [
    ("activation", InfInLayer2, "model.activation", "layer 2 activations"),
    ("activation", InfGradient, "model.activation", "layer 2 gradient of W"),
    ("optimizer", NaNOptimizer, "optimizer.name", "layer 1 parameter W"),
])
def test_divergence_names_the_layer_and_quantity(family, cls, key, where, telemetry):
    InfInLayer2.calls = 0
    registry = registry_with(family, cls)
    sim = Simulation(small_config(("model.hidden", [8, 8])).with_overrides(
        [(key, cls.name)], registry), registry, telemetry=telemetry)
    records = sim.run(5)
    assert len(records) == 1
    assert records[0].nonfinite == where
    assert str(sim.divergence) == f"diverged at step 1: non-finite {where}"
