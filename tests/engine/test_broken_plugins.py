"""Plugins that break at run time stop the run with a message naming them; nothing crashes."""

import pickle

import numpy as np
import pytest

from nnsim.components import (Activation, Dataset, DoctorCheck, Hyper, Lesson, Normalizer,
                              Optimizer)
from nnsim.doctor import Evidence, examine
from nnsim.landscape import Landscape
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


class Refuses(Activation):
    """Raises nnsim's own PluginError with a message alone, as the docs allow."""
    name = "refuses"
    where = "forward"

    def forward(self, x):
        if self.where == "forward":
            raise PluginError("width 8 is too narrow")
        return np.tanh(x)

    def backward(self, x, y, grad_y):
        if self.where == "backward":
            raise PluginError("width 8 is too narrow")
        return grad_y * (1 - y * y)


class RefusingOptimizer(Optimizer):
    name = "refusing"

    def init_state(self, params):
        return {}

    def update(self, params, grads, state, t):
        raise PluginError("no step today")


@pytest.mark.parametrize("family,cls,key,where,needle", [
    ("activation", Refuses, "model.activation", "forward",
     "activation 'refuses' (from nnsim-bad 0.1): forward() width 8 is too narrow"),
    # the default saturated() calls backward(), and the run's first call of it is there
    ("activation", Refuses, "model.activation", "backward",
     "activation 'refuses' (from nnsim-bad 0.1): saturated() width 8 is too narrow"),
    ("optimizer", RefusingOptimizer, "optimizer.name", "",
     "optimizer 'refusing' (from nnsim-bad 0.1): update() no step today"),
])
def test_a_plugins_own_bare_plugin_error_is_given_its_name(family, cls, key, where, needle,
                                                            monkeypatch):
    monkeypatch.setattr(Refuses, "where", where)
    sim = simulation(family, cls, key)
    with pytest.raises(PluginError) as info:
        sim.run(3)
    assert str(info.value) == needle
    assert (info.value.family, info.value.component) == (family, cls.name)


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


# ---------------------------------------------------------------- the first step's checks

class InPlaceTanh(Activation):
    """tanh written over its input."""
    name = "inplace_tanh"

    def forward(self, x):
        return np.tanh(x, out=x)

    def backward(self, x, y, grad_y):
        return grad_y * (1 - y * y)


class InPlaceBackward(Activation):
    """tanh whose backward scales the upstream gradient in place."""
    name = "inplace_backward"

    def forward(self, x):
        return np.tanh(x)

    def backward(self, x, y, grad_y):
        grad_y *= 1 - y * y
        return grad_y


class InPlaceNorm(Normalizer):
    """Centres its input in place."""
    name = "inplace_norm"

    def forward(self, x, training):
        x -= x.mean(axis=1, keepdims=True)
        return x

    def backward(self, grad_y):
        return grad_y - grad_y.mean(axis=1, keepdims=True), {}


class Rebinding(Optimizer):
    """Gradient descent that makes a new array instead of changing the one it is given."""
    name = "rebinding"
    from nnsim.components import Hyper
    hyperparameters = {"lr": Hyper(0.05, low=0.0, high=1.0, help="learning rate")}

    def update(self, params, grads, state, t):
        params = params - self.lr * grads  # noqa: F841 — the bug


class Tiny(Optimizer):
    """Correct gradient descent at a learning rate below float32's resolution."""
    name = "tiny"
    from nnsim.components import Hyper
    hyperparameters = {"lr": Hyper(1e-12, low=0.0, high=1.0, help="learning rate")}

    def update(self, params, grads, state, t):
        params -= self.lr * grads


@pytest.mark.parametrize("family,cls,key,message", [
    ("activation", InPlaceTanh, "model.activation",
     "activation 'inplace_tanh' (from nnsim-bad 0.1): forward() changed its input x in place; "
     "leave the arrays it is given as they were and return new ones (the engine reuses them)"),
    ("activation", InPlaceBackward, "model.activation",
     "activation 'inplace_backward' (from nnsim-bad 0.1): backward() changed its input grad_y "
     "in place; leave the arrays it is given as they were and return new ones (the engine "
     "reuses them)"),
    ("normalizer", InPlaceNorm, "model.normalizer",
     "normalizer 'inplace_norm' (from nnsim-bad 0.1): forward() changed its input x in place; "
     "leave the arrays it is given as they were and return new ones (the engine reuses them)"),
    ("optimizer", Rebinding, "optimizer.name",
     "optimizer 'rebinding' (from nnsim-bad 0.1): update() left the parameters it was given "
     "unchanged; change them in place (params -= step), not by making a new array "
     "(params = params - step)"),
])
def test_the_first_step_checks_each_plugins_contract(family, cls, key, message):
    sim = simulation(family, cls, key)
    with pytest.raises(PluginError) as info:
        sim.step()
    assert str(info.value) == message
    assert (info.value.family, info.value.component, info.value.distribution) == \
        (family, cls.name, "nnsim-bad 0.1")
    assert sim.step_count == 0 or family == "optimizer"


def test_the_first_step_leaves_the_components_as_they_were():
    sim = Simulation(small_config())
    first, second = sim.step(), sim.step()
    assert first.step == 1 and second.step == 2
    for layer in sim.net.hidden:
        assert "forward" not in vars(layer.activation)
        assert "backward" not in vars(layer.activation)
    assert "update" not in vars(sim.optimizer)
    same = Simulation(small_config())  # the checks change nothing the run computes
    assert [r.loss for r in same.run(2)] == [first.loss, second.loss]


def test_an_update_below_the_parameters_precision_is_not_an_error():
    sim = simulation("optimizer", Tiny, "optimizer.name", ("model.dtype", "float32"),
                     ("model.bias_initializer", {"name": "constant", "value": 0.1}))
    before = sim.net.params.copy()
    assert len(sim.run(2)) == 2
    assert np.array_equal(sim.net.params, before)  # nothing moved, and that is right


@pytest.mark.parametrize("lr", [1e-300, 5e-324])
@pytest.mark.parametrize("name", ["sgd", "adagrad", "adam"])
def test_a_learning_rate_below_float64_precision_is_not_an_error(name, lr):
    """An update too small to move even a float64 copy of the parameters (lr 1e-300), or
    even zeros (5e-324), is a tiny step, not a plugin that rebinds its parameters."""
    sim = Simulation(small_config(("optimizer.name", name), ("optimizer.lr", lr), (
        "model.bias_initializer", {"name": "constant", "value": 0.1})))
    before = sim.net.params.copy()
    assert len(sim.run(2)) == 2
    assert np.array_equal(sim.net.params, before)


def test_labels_outside_the_declared_classes_stop_the_first_step():
    sim = Simulation(small_config())
    sim.data.train_y[5] = sim.data.outputs + 4  # past the build-time check
    with pytest.raises(PluginError, match=r"^dataset 'spiral' \(from built-in\): generate\(\) "
                                          r"returned the label 7, outside \[0, 3\) of its "
                                          r"declared classes$"):
        sim.step()


# ---------------------------------------------------------------- build time, NumPy's state

class BrokenData(Dataset):
    name = "broken_data"

    def generate(self, rng):
        raise OSError("no such file")


def test_a_build_time_plugin_error_names_the_distribution():
    registry = registry_with("dataset", BrokenData)
    with pytest.raises(PluginError) as info:
        Simulation(small_config().with_overrides([("data.name", "broken_data")], registry),
                   registry)
    assert str(info.value) == ("dataset 'broken_data' (from nnsim-bad 0.1): generate() failed: "
                               "OSError: no such file")
    assert info.value.fields() == {"family": "dataset", "component": "broken_data",
                                   "method": "generate", "distribution": "nnsim-bad 0.1",
                                   "detail": "failed: OSError: no such file"}


class SetsErr(Activation):
    """tanh whose forward turns every NumPy warning into an exception."""
    name = "sets_err"
    seen: list = []

    def forward(self, x):
        np.seterr(all="raise")
        return np.tanh(x)

    def backward(self, x, y, grad_y):
        type(self).seen.append(np.geterr())
        return grad_y * (1 - y * y)


def test_numpy_error_state_is_restored_around_each_plugin_call():
    SetsErr.seen = []
    before = np.geterr()
    sim = simulation("activation", SetsErr, "model.activation")
    sim.run(3)
    assert np.geterr() == before
    assert SetsErr.seen and all(state["under"] != "raise" for state in SetsErr.seen)
    logits = sim.predict(sim.data.val_x)  # outside a step, too
    assert np.isfinite(logits).all() and np.geterr() == before


class SetsErrCheck(DoctorCheck):
    name = "sets_err_check"

    def examine(self, evidence):
        np.seterr(all="raise")
        return []


class SetsErrOptimizer(Optimizer):
    name = "sets_err_sgd"
    hyperparameters = {"lr": Hyper(0.1, low=0.0, high=10.0, low_open=True, help="step size")}

    def init_state(self, params):
        return {}

    def update(self, params, grads, state, t):
        np.seterr(all="raise")
        params -= self.lr * grads


def test_numpy_error_state_is_restored_around_doctor_checks_and_landscape_optimizers():
    before = np.geterr()
    sim = Simulation(small_config())
    records = sim.run(5)
    assert examine(Evidence(records, sim.config, 3, sim=sim),
                   registry_with("check", SetsErrCheck)) == []
    assert np.geterr() == before
    land = Landscape("quadratic", ["sets_err_sgd"], lr=0.01,
                     registry=registry_with("optimizer", SetsErrOptimizer))
    land.step()
    assert np.geterr() == before


# ---------------------------------------------------------------- PluginError's fields

def test_plugin_error_fields_are_given_not_parsed():
    from nnsim.errors import PluginError as Error

    error = Error("raised ValueError: no", family="lesson", component="tiny_lr",
                  method="check")
    assert str(error) == "lesson 'tiny_lr': check() raised ValueError: no"
    sourced = error.with_source("nnsim-lessons 2.0")
    assert str(sourced) == "lesson 'tiny_lr' (from nnsim-lessons 2.0): check() raised ValueError: no"
    assert (sourced.family, sourced.component, sourced.method, sourced.distribution) == \
        ("lesson", "tiny_lr", "check", "nnsim-lessons 2.0")
    plain = Error("activation 'x': looks like a prefix")  # a plugin's own message, kept
    assert plain.family is None and str(plain) == "activation 'x': looks like a prefix"
    assert plain.with_source("d") is plain
    again = pickle.loads(pickle.dumps(sourced))  # sweeps run in worker processes
    assert again.fields() == sourced.fields() and str(again) == str(sourced)


class RaisingLesson(Lesson):
    """A lesson whose check reads a field that does not exist."""
    name = "raising_lesson"
    title = "t"
    runs = {"a": {}}
    steps = 3
    base = {"model.hidden": [4], "data.samples": 100}

    def check(self, results):
        raise KeyError("loss_after")


def test_a_lesson_check_that_raises_is_one_line_naming_it():
    from nnsim.lessons import run_lesson

    registry = registry_with("lesson", RaisingLesson)
    with pytest.raises(PluginError) as info:
        run_lesson(RaisingLesson(), registry)
    assert str(info.value) == ("lesson 'raising_lesson' (from nnsim-bad 0.1): check() raised "
                               "KeyError: 'loss_after'")
    assert info.value.family == "lesson" and info.value.method == "check"


class ObjectStateOptimizer(Optimizer):
    name = "object_state"

    def init_state(self, params):
        return {"notes": np.empty(params.shape, dtype=object)}

    def update(self, params, grads, state, t):
        params -= 0.1 * grads


def test_an_optimizer_state_of_objects_is_refused_when_the_simulation_is_built():
    """A checkpoint stores numbers, never pickles: a state of Python objects is named at
    once, not at the first save."""
    with pytest.raises(PluginError, match="init_state.. must return arrays of numbers "
                                          "shaped like the parameters, got 'notes'"):
        simulation("optimizer", ObjectStateOptimizer, "optimizer.name")


class Quits(Activation):
    """Calls sys.exit (or raises KeyboardInterrupt) in the middle of a run."""
    name = "quits"
    raises: type[BaseException] | None = None
    where = "forward"

    def forward(self, x):
        if self.raises is not None and self.where == "forward":
            raise self.raises(0)
        return np.tanh(x)

    def backward(self, x, y, grad_y):
        return grad_y * (1 - y * y)

    def saturated(self, z, a):
        if self.raises is not None and self.where == "saturated":
            raise self.raises(0)
        return np.abs(a) > 0.99


class QuittingOptimizer(Optimizer):
    name = "quitting"

    def init_state(self, params):
        return {}

    def update(self, params, grads, state, t):
        raise SystemExit(0)


def _quit_after(sim, steps: int, monkeypatch, exc: type[BaseException], where: str = "forward"):
    sim.run(steps)
    monkeypatch.setattr(Quits, "raises", exc)
    monkeypatch.setattr(Quits, "where", where)


@pytest.mark.parametrize("where", ["forward", "saturated"])
def test_a_plugin_calling_sys_exit_mid_run_is_its_failure_not_nnsims_exit(monkeypatch, where):
    sim = simulation("activation", Quits, "model.activation")
    _quit_after(sim, 3, monkeypatch, SystemExit, where)
    with pytest.raises(PluginError, match=rf"activation 'quits' \(from nnsim-bad 0.1\): "
                                          rf"{where}\(\) raised SystemExit: 0"):
        sim.step()
    sim = simulation("optimizer", QuittingOptimizer, "optimizer.name")
    with pytest.raises(PluginError, match=r"update\(\) raised SystemExit"):
        sim.step()


def test_a_plugins_keyboard_interrupt_is_its_failure_where_ctrl_c_cannot_raise_one(
        monkeypatch):
    """In the main thread, with Python's own SIGINT handler, a KeyboardInterrupt may be the
    user's Ctrl-C and stops as one; with SIGINT ignored (a sweep's workers), or in another
    thread (the TUI's training thread), it can only be the plugin's."""
    import signal
    import threading

    sim = simulation("activation", Quits, "model.activation")
    _quit_after(sim, 2, monkeypatch, KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        sim.step()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with pytest.raises(PluginError, match=r"forward\(\) raised KeyboardInterrupt"):
            sim.step()
    finally:
        signal.signal(signal.SIGINT, previous)
    caught: list[BaseException] = []

    def step() -> None:
        try:
            sim.step()
        except BaseException as exc:  # noqa: BLE001 — what the thread saw
            caught.append(exc)

    thread = threading.Thread(target=step)
    thread.start()
    thread.join()
    assert len(caught) == 1 and isinstance(caught[0], PluginError)
