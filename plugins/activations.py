"""Built-in activations: identity, sigmoid, tanh, the ReLU family, ELU, GELU, SiLU, softplus."""

from __future__ import annotations

import math

import numpy as np

from nnsim import hookimpl
from nnsim.components import SATURATION_SHARE, Activation, Hyper


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # 0.5 * (1 + tanh(x / 2)) never overflows, unlike 1 / (1 + exp(-x))
    y = np.tanh(x * 0.5)
    y += 1.0
    y *= 0.5
    return y


class Identity(Activation):
    """No non-linearity: stacked layers collapse to one linear map."""

    name = "identity"

    def forward(self, x):
        return x

    def backward(self, x, y, grad_y):
        return grad_y

    def saturated(self, x, y):
        return np.zeros(y.shape, dtype=bool)


class Sigmoid(Activation):
    """1 / (1 + e^-x): outputs in (0, 1), always positive, saturates at both ends."""

    name = "sigmoid"
    max_grad = 0.25
    hist_range = (0.0, 1.0)

    def forward(self, x):
        return _sigmoid(x)

    def backward(self, x, y, grad_y):
        return grad_y * y * (1.0 - y)

    def saturated(self, x, y):
        return y * (1.0 - y) < SATURATION_SHARE * self.max_grad


class Tanh(Activation):
    """Hyperbolic tangent: outputs in (-1, 1), centred, saturates at both ends."""

    name = "tanh"
    hist_range = (-1.0, 1.0)
    _limit = math.sqrt(1.0 - SATURATION_SHARE)

    def forward(self, x):
        return np.tanh(x)

    def backward(self, x, y, grad_y):
        return grad_y * (1.0 - y * y)

    def saturated(self, x, y):
        return np.abs(y) > self._limit


class ReLU(Activation):
    """max(0, x): no saturation above zero, zero gradient (dead) below."""

    name = "relu"
    hist_range = (0.0, 3.0)

    def forward(self, x):
        return np.maximum(x, 0.0)

    def backward(self, x, y, grad_y):
        return grad_y * (x > 0)

    def saturated(self, x, y):
        return x <= 0


class LeakyReLU(Activation):
    """max(x, slope * x): a small fixed slope below zero keeps gradients alive."""

    name = "leaky_relu"
    hyperparameters = {"slope": Hyper(0.01, low=0.0, high=1.0, help="slope below zero")}

    def forward(self, x):
        return np.where(x > 0, x, x * self.slope)

    def backward(self, x, y, grad_y):
        return np.where(x > 0, grad_y, grad_y * self.slope)

    def saturated(self, x, y):
        # the ReLU family's units saturate where their gradient is zero: never, for a slope
        if self.slope > 0:
            return np.zeros(y.shape, dtype=bool)
        return x <= 0


class PReLU(Activation):
    """Leaky ReLU whose slope below zero is learned, one slope per unit."""

    name = "prelu"
    hyperparameters = {"slope": Hyper(0.25, low=-1.0, high=1.0, learnable=True,
                                      help="initial slope below zero (learned per unit)")}

    def forward(self, x):
        return np.where(x > 0, x, x * self.params["slope"])

    def backward(self, x, y, grad_y):
        neg = x <= 0
        slope = self.params["slope"]
        grad_x = np.where(neg, grad_y * slope, grad_y)
        grad_slope = np.where(neg, grad_y * x, 0.0).sum(axis=0)
        return grad_x, {"slope": grad_slope.astype(slope.dtype, copy=False)}

    def saturated(self, x, y):
        return (x <= 0) & (self.params["slope"] == 0)


class ELU(Activation):
    """x above zero, alpha * (e^x - 1) below: smooth, saturates only on the negative side."""

    name = "elu"
    hyperparameters = {"alpha": Hyper(1.0, low=0.0, high=10.0, low_open=True,
                                      help="value approached for very negative inputs")}
    hist_range = (-1.0, 3.0)

    def forward(self, x):
        return np.where(x > 0, x, self.alpha * np.expm1(np.minimum(x, 0.0)))

    def backward(self, x, y, grad_y):
        return np.where(x > 0, grad_y, grad_y * (y + self.alpha))

    def saturated(self, x, y):
        return (x <= 0) & (y + self.alpha < SATURATION_SHARE)


_GELU_C = math.sqrt(2.0 / math.pi)


class GELU(Activation):
    """x * Phi(x) in its tanh form: a smooth ReLU that lets a little negative signal through."""

    name = "gelu"
    max_grad = 1.13
    hist_range = (-1.0, 3.0)

    def forward(self, x):
        return 0.5 * x * (1.0 + np.tanh(_GELU_C * (x + 0.044715 * x**3)))

    def backward(self, x, y, grad_y):
        t = np.tanh(_GELU_C * (x + 0.044715 * x**3))
        dt = _GELU_C * (1.0 + 3 * 0.044715 * x * x) * (1.0 - t * t)
        return grad_y * (0.5 * (1.0 + t) + 0.5 * x * dt)


class SiLU(Activation):
    """x * sigmoid(x) (swish): smooth, non-monotonic, unbounded above."""

    name = "silu"
    max_grad = 1.1
    hist_range = (-1.0, 3.0)

    def forward(self, x):
        return x * _sigmoid(x)

    def backward(self, x, y, grad_y):
        s = _sigmoid(x)
        return grad_y * (s * (1.0 + x * (1.0 - s)))


class Softplus(Activation):
    """log(1 + e^x): a smooth ReLU whose gradient is the sigmoid."""

    name = "softplus"
    hist_range = (0.0, 3.0)

    def forward(self, x):
        return np.logaddexp(x, 0.0)

    def backward(self, x, y, grad_y):
        return grad_y * _sigmoid(x)

    def saturated(self, x, y):
        return _sigmoid(x) < SATURATION_SHARE


ACTIVATIONS = (Identity, Sigmoid, Tanh, ReLU, LeakyReLU, PReLU, ELU, GELU, SiLU, Softplus)


@hookimpl
def register_activations(register):
    for cls in ACTIVATIONS:
        register(cls)
