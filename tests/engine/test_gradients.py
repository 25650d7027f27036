"""Every backward pass against central differences in float64."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnsim.engine import Simulation
from nnsim.engine.losses import mean_squared_error, softmax_cross_entropy
from nnsim.pluginmanager import BUILTIN, default_registry
from tests.helpers import assert_close, numeric_grad, small_config

REG = default_registry()
ACTIVATIONS = [n for n, e in REG.families["activation"].items() if e.source == BUILTIN]
NORMALIZERS = [n for n, e in REG.families["normalizer"].items() if e.source == BUILTIN]


def _activation(name, width, rng):
    act = REG.get("activation", name)()
    act.params = {k: rng.uniform(-0.6, 0.6, width) for k in act.learnable()}
    return act


@pytest.mark.parametrize("name", ACTIVATIONS)
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([0.1, 1.0, 3.0]))
def test_activation_backward_matches_central_differences(name, seed, scale):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, scale, (5, 4))
    x[np.abs(x) < 1e-3] = 1e-3  # keep away from the kink of the ReLU family
    act = _activation(name, 4, rng)
    upstream = rng.normal(size=x.shape)

    def f():
        return float(np.sum(act.forward(x) * upstream))

    y = act.forward(x)
    result = act.backward(x, y, upstream)
    grad_x, param_grads = result if isinstance(result, tuple) else (result, {})
    assert_close(grad_x, numeric_grad(f, x))
    assert set(param_grads) == set(act.learnable())
    for key, grad in param_grads.items():
        assert_close(grad, numeric_grad(f, act.params[key]))


def test_prelu_learns_a_slope_gradient():
    """The learnable case is really exercised: PReLU's slope gradient is not zero."""
    rng = np.random.default_rng(0)
    act = _activation("prelu", 3, rng)
    x = rng.normal(size=(6, 3))
    _, grads = act.backward(x, act.forward(x), np.ones_like(x))
    assert np.abs(grads["slope"]).sum() > 0.1


@pytest.mark.parametrize("name", [n for n in NORMALIZERS if n != "none"])
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_normalizer_backward_in_training_mode(name, seed):
    rng = np.random.default_rng(seed)
    norm = REG.get("normalizer", name)()
    width = 5
    norm.params = {k: v + rng.normal(0, 0.5, v.shape)
                   for k, v in norm.init_params(width, np.dtype("float64")).items()}
    norm.buffers = norm.init_buffers(width, np.dtype("float64"))
    x = rng.normal(1.0, 2.0, (7, width))
    upstream = rng.normal(size=x.shape)

    def f():
        return float(np.sum(norm.forward(x, True) * upstream))

    norm.forward(x, True)
    grad_x, param_grads = norm.backward(upstream)
    assert_close(grad_x, numeric_grad(f, x), rtol=1e-4, atol=1e-7)
    for key in ("gamma", "beta"):
        assert_close(param_grads[key], numeric_grad(f, norm.params[key]), rtol=1e-4)


def test_softmax_cross_entropy_gradient():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, (6, 4))
    labels = rng.integers(0, 4, 6)
    _, grad, _ = softmax_cross_entropy(logits.copy(), labels)
    assert_close(grad, numeric_grad(lambda: softmax_cross_entropy(logits, labels, False)[0],
                                    logits))


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    loss, grad, correct = softmax_cross_entropy(np.array([[1e4, 0.0], [0.0, 1e4]]),
                                                np.array([0, 0]))
    assert np.isfinite(loss) and np.isfinite(grad).all()
    assert loss == pytest.approx(5e3) and correct == 1


def test_mean_squared_error_gradient():
    rng = np.random.default_rng(2)
    pred, target = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    _, grad = mean_squared_error(pred, target)
    assert_close(grad, numeric_grad(lambda: mean_squared_error(pred, target, False)[0], pred))


NETWORKS = {
    "tanh": [],
    "relu_batchnorm_before": [("model.activation", "relu"), ("model.normalizer", "batchnorm"),
                              ("model.initializer", "he_normal")],
    "prelu_layernorm_after": [("model.activation", "prelu"), ("model.normalizer", "layernorm"),
                              ("model.norm_position", "after")],
    "sigmoid_dropout_l1_l2": [("model.activation", "sigmoid"), ("model.dropout", 0.3),
                              ("train.l2", 0.05), ("train.l1", 0.01),
                              ("model.bias_initializer", {"name": "normal", "std": 0.1})],
    "gelu_batchnorm_after_regression": [
        ("data.name", "teacher"), ("data.task", "regression"), ("data.dim", 3),
        ("data.classes", 2), ("data.samples", 200), ("model.activation", "gelu"),
        ("model.normalizer", "batchnorm"), ("model.norm_position", "after")],
    "elu_silu_softplus": [("model.activation", "elu"), ("model.hidden", [6, 5, 4])],
    "silu": [("model.activation", "silu")],
    "softplus_whiten": [("model.activation", "softplus"), ("data.preprocess", "whiten")],
}


@pytest.mark.parametrize("name", list(NETWORKS))
def test_whole_network_gradient_matches_central_differences(name):
    sim = Simulation(small_config(*NETWORKS[name]))
    net = sim.net
    assert net.dtype == np.float64
    xb, yb = (a.copy() for a in sim.data.next_batch())
    rng = np.random.default_rng(0)
    for layer in net.hidden:  # dropout with a fixed mask
        if layer.dropout:
            keep = 1.0 - layer.dropout
            layer.fixed_mask = (rng.random((len(xb), layer.fan_out)) < keep) / keep
    # move parameters off their initial values so every term (γ, β, slopes) matters
    net.params += rng.normal(0.0, 0.05, net.params.shape)

    def objective():
        _, loss, _, penalty = sim.compute_gradients(xb, yb)
        return loss + penalty

    objective()
    analytic = net.grads.copy()
    numeric = numeric_grad(objective, net.params)
    assert np.abs(analytic).max() > 0
    assert_close(analytic, numeric, rtol=1e-4, atol=1e-8)
