"""Built-in activations: identity, sigmoid, tanh, the ReLU family, ELU, GELU, SiLU, softplus.

Saturation follows one rule for every activation: an entry is saturated where the local
derivative |f'(x)| is below 5 % (SATURATION_SHARE) of the largest |f'| the activation can have
(`max_grad`, or per unit for a learnable slope). Each docstring says what the rule gives; the
`saturated` methods below are that rule in closed form (the test suite checks each one against
the activation's own `backward`).
"""

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
    """No non-linearity: stacked layers collapse to one linear map.

    Saturated: never (the derivative is 1 everywhere).
    """

    name = "identity"

    def forward(self, x):
        return x

    def backward(self, x, y, grad_y):
        return grad_y

    def saturated(self, x, y):
        return np.zeros(y.shape, dtype=bool)


class Sigmoid(Activation):
    """1 / (1 + e^-x): outputs in (0, 1), always positive, saturates at both ends.

    Saturated: y(1 − y) < 5 % of 0.25, i.e. y < 0.0127 or y > 0.9873 (|x| > 4.36).
    """

    name = "sigmoid"
    max_grad = 0.25
    hist_range = (0.0, 1.0)

    def forward(self, x):
        return _sigmoid(x)

    def backward(self, x, y, grad_y):
        d = grad_y * y  # (grad_y · y) · (1 − y), the result array reused
        d *= 1.0 - y
        return d

    def saturated(self, x, y):
        return y * (1.0 - y) < SATURATION_SHARE * self.max_grad


class Tanh(Activation):
    """Hyperbolic tangent: outputs in (-1, 1), centred, saturates at both ends.

    Saturated: 1 − y² < 5 % of 1, i.e. |y| > √0.95 ≈ 0.9747 (|x| > 2.18).
    """

    name = "tanh"
    hist_range = (-1.0, 1.0)
    _limit = math.sqrt(1.0 - SATURATION_SHARE)

    def forward(self, x):
        return np.tanh(x)

    def backward(self, x, y, grad_y):
        d = np.multiply(y, y)  # one temporary, updated in place
        np.subtract(1.0, d, out=d)
        d *= grad_y
        return d

    def saturated(self, x, y):
        return np.abs(y) > self._limit


class ReLU(Activation):
    """max(0, x): no saturation above zero, zero gradient (dead) below.

    Saturated: x ≤ 0 (derivative 0 against a maximum of 1).
    """

    name = "relu"
    hist_range = (0.0, 3.0)

    def forward(self, x):
        return np.maximum(x, 0.0)

    def backward(self, x, y, grad_y):
        return grad_y * (x > 0)

    def saturated(self, x, y):
        return x <= 0


class LeakyReLU(Activation):
    """max(x, slope * x): a small fixed slope below zero keeps gradients alive.

    Saturated: x ≤ 0 when the slope is below 5 % of the largest derivative max(1, slope),
    i.e. below 0.05 (the default 0.01 included: its negative side passes 1 % of the
    gradient); never for a slope of 0.05 or more.
    """

    name = "leaky_relu"
    hyperparameters = {"slope": Hyper(0.01, low=0.0, high=1.0, help="slope below zero")}

    def forward(self, x):
        return np.where(x > 0, x, x * self.slope)

    def backward(self, x, y, grad_y):
        return np.where(x > 0, grad_y, grad_y * self.slope)

    def saturated(self, x, y):
        if abs(self.slope) < SATURATION_SHARE * max(1.0, abs(self.slope)):
            return x <= 0
        return np.zeros(y.shape, dtype=bool)


class PReLU(Activation):
    """Leaky ReLU whose slope below zero is learned, one slope per unit.

    Saturated: x ≤ 0 for the units whose current slope a is below 5 % of their largest
    derivative max(1, |a|), i.e. |a| < 0.05 (never at the default 0.25, until the slope
    is learned down towards 0).
    """

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
        slope = np.abs(self.params["slope"])
        flat = slope < SATURATION_SHARE * np.maximum(slope, 1.0)
        return (x <= 0) & flat


class ELU(Activation):
    """x above zero, alpha * (e^x - 1) below: smooth, saturates only on the negative side.

    The derivative is 1 above zero and alpha·e^x below, so its maximum is max(1, alpha).
    Saturated: alpha·e^x < 5 % of max(1, alpha), i.e. x < ln(0.05 / alpha) for alpha ≤ 1
    (x < −3.0 at alpha = 1) and x < ln 0.05 ≈ −3.0 for alpha > 1; the positive side never
    (1 ≥ 5 % of alpha for alpha up to 10).
    """

    name = "elu"
    hyperparameters = {"alpha": Hyper(1.0, low=0.0, high=10.0, low_open=True,
                                      help="value approached for very negative inputs")}
    hist_range = (-1.0, 3.0)

    def forward(self, x):
        return np.where(x > 0, x, self.alpha * np.expm1(np.minimum(x, 0.0)))

    def backward(self, x, y, grad_y):
        return np.where(x > 0, grad_y, grad_y * (y + self.alpha))

    def saturated(self, x, y):
        limit = SATURATION_SHARE * max(1.0, self.alpha)
        mask = (x <= 0) & (y + self.alpha < limit)  # y + alpha = alpha·e^x below zero
        if limit > 1.0:  # not for alpha ≤ 10, the declared range
            mask |= x > 0
        return mask


_GELU_C = math.sqrt(2.0 / math.pi)


class GELU(Activation):
    """x * Phi(x) in its tanh form: a smooth ReLU that lets a little negative signal through.

    The derivative peaks at 1.129 (x ≈ 1.42) and dips to −0.129 (x ≈ −1.42). Saturated:
    |f'(x)| < 5 % of 1.129, i.e. x < −2.29, and −0.90 < x < −0.63 where the derivative
    crosses zero.
    """

    name = "gelu"
    max_grad = 1.128993068655
    hist_range = (-1.0, 3.0)

    def forward(self, x):
        return 0.5 * x * (1.0 + np.tanh(_GELU_C * (x + 0.044715 * x**3)))

    def backward(self, x, y, grad_y):
        t = np.tanh(_GELU_C * (x + 0.044715 * x**3))
        dt = _GELU_C * (1.0 + 3 * 0.044715 * x * x) * (1.0 - t * t)
        return grad_y * (0.5 * (1.0 + t) + 0.5 * x * dt)


class SiLU(Activation):
    """x * sigmoid(x) (swish): smooth, non-monotonic, unbounded above.

    The derivative peaks at 1.0998 (x ≈ 2.40) and dips to −0.0998 (x ≈ −2.40). Saturated:
    |f'(x)| < 5 % of 1.0998, i.e. x < −3.93, and −1.60 < x < −1.06 where the derivative
    crosses zero.
    """

    name = "silu"
    max_grad = 1.099839320129
    hist_range = (-1.0, 3.0)

    def forward(self, x):
        return x * _sigmoid(x)

    def backward(self, x, y, grad_y):
        s = _sigmoid(x)
        return grad_y * (s * (1.0 + x * (1.0 - s)))


class Softplus(Activation):
    """log(1 + e^x): a smooth ReLU whose gradient is the sigmoid.

    Saturated: sigmoid(x) < 5 % of its supremum 1, i.e. x < ln(0.05 / 0.95) ≈ −2.94.
    """

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
