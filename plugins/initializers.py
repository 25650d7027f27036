"""Built-in initializers: constant ones, small normals, Xavier (Glorot), Xavier2 (He), orthogonal."""

from __future__ import annotations

import math

import numpy as np

from nnsim import hookimpl
from nnsim.components import Hyper, Initializer


class Zeros(Initializer):
    """All zeros: every unit of a layer stays identical (the default for biases)."""

    name = "zeros"

    def sample(self, shape, fan_in, fan_out, rng):
        return np.zeros(shape)

    def expected_std(self, fan_in, fan_out):
        return 0.0

    def bound(self, fan_in, fan_out):
        return 0.0


class Constant(Initializer):
    """One value everywhere: a degenerate start where all units of a layer learn alike."""

    name = "constant"
    hyperparameters = {"value": Hyper(0.1, low=-10.0, high=10.0, help="the value")}

    def sample(self, shape, fan_in, fan_out, rng):
        return np.full(shape, self.value)

    def expected_mean(self, fan_in, fan_out):
        return self.value

    def expected_std(self, fan_in, fan_out):
        return 0.0

    def bound(self, fan_in, fan_out):
        return abs(self.value)


class Normal(Initializer):
    """N(mean, std) with a fixed std (0.01 as in the lecture), whatever the layer's size."""

    name = "normal"
    hyperparameters = {
        "std": Hyper(0.01, low=0.0, high=10.0, help="standard deviation"),
        "mean": Hyper(0.0, low=-10.0, high=10.0, help="mean"),
    }

    def sample(self, shape, fan_in, fan_out, rng):
        return rng.normal(self.mean, self.std, size=shape)

    def expected_mean(self, fan_in, fan_out):
        return self.mean

    def expected_std(self, fan_in, fan_out):
        return self.std


class Uniform(Initializer):
    """U(-limit, +limit) with a fixed limit."""

    name = "uniform"
    hyperparameters = {"limit": Hyper(0.05, low=0.0, high=10.0, help="half-width")}

    def sample(self, shape, fan_in, fan_out, rng):
        return rng.uniform(-self.limit, self.limit, size=shape)

    def expected_std(self, fan_in, fan_out):
        return self.limit / math.sqrt(3.0)

    def bound(self, fan_in, fan_out):
        return self.limit


class _Scaled(Initializer):
    """Shared gain hyperparameter for the fan-scaled rules."""

    hyperparameters = {"gain": Hyper(1.0, low=0.0, high=10.0, low_open=True,
                                     help="multiplies the rule's scale")}


class XavierUniform(_Scaled):
    """Xavier (Glorot): U(±gain·√6/√(fan_in+fan_out)), keeps variance across tanh layers."""

    name = "xavier_uniform"

    def bound(self, fan_in, fan_out):
        return self.gain * math.sqrt(6.0 / (fan_in + fan_out))

    def sample(self, shape, fan_in, fan_out, rng):
        limit = self.bound(fan_in, fan_out)
        return rng.uniform(-limit, limit, size=shape)

    def expected_std(self, fan_in, fan_out):
        return self.bound(fan_in, fan_out) / math.sqrt(3.0)


class XavierNormal(_Scaled):
    """The lecture's simple Xavier: N(0,1)·gain·√(1/fan_in), for tanh and similar."""

    name = "xavier_normal"
    factor = 1.0

    def expected_std(self, fan_in, fan_out):
        return self.gain * math.sqrt(self.factor / fan_in)

    def sample(self, shape, fan_in, fan_out, rng):
        return rng.standard_normal(size=shape) * self.expected_std(fan_in, fan_out)


class HeNormal(XavierNormal):
    """Xavier2 / He: N(0,1)·gain·√(2/fan_in), keeps variance across ReLU layers."""

    name = "he_normal"
    factor = 2.0


class HeUniform(_Scaled):
    """He uniform: U(±gain·√6/√fan_in), the same variance as he_normal."""

    name = "he_uniform"

    def bound(self, fan_in, fan_out):
        return self.gain * math.sqrt(6.0 / fan_in)

    def sample(self, shape, fan_in, fan_out, rng):
        limit = self.bound(fan_in, fan_out)
        return rng.uniform(-limit, limit, size=shape)

    def expected_std(self, fan_in, fan_out):
        return self.bound(fan_in, fan_out) / math.sqrt(3.0)


class Orthogonal(_Scaled):
    """A random (semi-)orthogonal matrix times gain: preserves norms through linear layers."""

    name = "orthogonal"

    def sample(self, shape, fan_in, fan_out, rng):
        if len(shape) != 2:
            raise ValueError(f"orthogonal needs a 2-D weight shape, got {shape}; "
                             "use it for weights, not biases")
        rows, cols = shape
        a = rng.standard_normal(size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))  # a uniform (Haar) draw, not one biased by QR's signs
        if rows < cols:
            q = q.T
        return self.gain * q

    def expected_std(self, fan_in, fan_out):
        # every entry of an n x m (semi-)orthogonal matrix has mean square 1 / max(n, m)
        return self.gain / math.sqrt(max(fan_in, fan_out))


INITIALIZERS = (Zeros, Constant, Normal, Uniform, XavierUniform, XavierNormal, HeNormal,
                HeUniform, Orthogonal)


@hookimpl
def register_initializers(register):
    for cls in INITIALIZERS:
        register(cls)
