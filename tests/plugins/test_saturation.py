"""`saturated` is one rule for every built-in activation: the local derivative, taken from the
activation's own backward() (itself checked against central differences), is below 5 % of the
largest derivative the activation has."""

import numpy as np
import pytest

from nnsim.components import SATURATION_SHARE
from nnsim_plugins.activations import ACTIVATIONS

GRID = np.linspace(-12.0, 12.0, 48001)
PRELU_SLOPES = [0.25, 0.01, -0.02, 0.049, 0.051, -0.5, 1.5, 0.0]

CASES = [(cls.name, {}) for cls in ACTIVATIONS] + [
    ("leaky_relu", {"slope": 0.0}), ("leaky_relu", {"slope": 0.049}),
    ("leaky_relu", {"slope": 0.051}), ("leaky_relu", {"slope": 0.3}),
    ("elu", {"alpha": 0.3}), ("elu", {"alpha": 3.0}), ("elu", {"alpha": 10.0}),
]
BY_NAME = {cls.name: cls for cls in ACTIVATIONS}


def _build(name, hypers, width):
    act = BY_NAME[name](**hypers)
    params = act.init_params(width, np.dtype(np.float64))
    if "slope" in params and name == "prelu":
        params["slope"] = np.array(PRELU_SLOPES[:width], dtype=np.float64)
    act.params = params
    return act


@pytest.mark.parametrize("name,hypers", CASES, ids=[f"{n}{h or ''}" for n, h in CASES])
def test_saturated_is_the_derivative_under_5_percent_of_its_maximum(name, hypers):
    width = len(PRELU_SLOPES)
    x = np.repeat(GRID[:, None], width, axis=1)
    act = _build(name, hypers, width)
    y = act.forward(x)
    result = act.backward(x, y, np.ones_like(y))
    deriv = result[0] if isinstance(result, tuple) else result

    # backward is the derivative: central differences away from the kink at zero
    h = 1e-6
    smooth = np.abs(x) > 1e-3
    numeric = (act.forward(x + h) - act.forward(x - h)) / (2 * h)
    assert np.allclose(deriv[smooth], numeric[smooth], rtol=1e-5, atol=1e-7)

    largest = np.abs(deriv).max(axis=0)  # per unit: a learnable slope is per unit
    limit = SATURATION_SHARE * largest
    expected = np.abs(deriv) < limit
    decided = np.abs(np.abs(deriv) - limit) > 1e-6 * largest  # not on the threshold itself
    mask = act.saturated(x, y)
    assert mask.dtype == bool and mask.shape == x.shape
    wrong = (mask != expected) & decided
    assert not wrong.any(), (
        f"{name}{hypers}: saturated() disagrees with the rule at x = "
        f"{x[wrong][:5]} (derivative {deriv[wrong][:5]}, limit {np.broadcast_to(limit, x.shape)[wrong][:5]})")


def test_what_the_rule_gives_where_the_docstrings_say():
    neg, pos = np.array([[-0.5]]), np.array([[0.5]])
    leaky = _build("leaky_relu", {}, 1)  # the default slope 0.01
    assert leaky.saturated(neg, leaky.forward(neg)).all()
    assert not leaky.saturated(pos, leaky.forward(pos)).any()
    x = np.full((1, len(PRELU_SLOPES)), -0.5)
    prelu = _build("prelu", {}, len(PRELU_SLOPES))
    assert prelu.saturated(x, prelu.forward(x)).tolist() == [
        [abs(a) < 0.05 for a in PRELU_SLOPES]]
    # ELU with alpha 3: its largest derivative is 3, so alpha·e^x = 0.12 (x = −3.2) is
    # saturated though above 5 % of 1
    elu = _build("elu", {"alpha": 3.0}, 1)
    x = np.array([[-3.2, -2.9]])
    assert elu.saturated(x, elu.forward(x)).tolist() == [[True, False]]
    tanh = _build("tanh", {}, 1)
    x = np.array([[2.17, 2.19]])
    assert tanh.saturated(x, tanh.forward(x)).tolist() == [[False, True]]
