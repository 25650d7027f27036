"""Example nnsim plugin: Swish, Lion, group norm and sparse initialization."""

from __future__ import annotations

import math

import numpy as np

from nnsim import hookimpl
from nnsim.components import Activation, Hyper, Initializer, Normalizer, Optimizer


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class Swish(Activation):
    """x · sigmoid(βx) with a learnable β per unit (β = 1 is SiLU)."""

    name = "swish"
    max_grad = 1.1
    hist_range = (-1.0, 3.0)
    hyperparameters = {"beta": Hyper(1.0, low=0.0, high=10.0, learnable=True,
                                     help="initial gate slope β")}

    def forward(self, x):
        return x * _sigmoid(self.params["beta"] * x)

    def backward(self, x, y, grad_y):
        beta = self.params["beta"]
        s = _sigmoid(beta * x)
        ds = s * (1.0 - s)
        grad_x = grad_y * (s + beta * x * ds)
        grad_beta = (grad_y * x * x * ds).sum(axis=0)
        return grad_x, {"beta": grad_beta.astype(beta.dtype, copy=False)}


class Lion(Optimizer):
    """Lion: w ← w − α·(sign(β1·m + (1−β1)·g) + λw), then m ← β2·m + (1−β2)·g."""

    name = "lion"
    state_names = ("m",)
    hyperparameters = {
        "lr": Hyper(3e-4, low=0.0, high=1.0, low_open=True, help="learning rate α"),
        "beta1": Hyper(0.9, low=0.0, high=1.0, high_open=True, help="interpolation for the step"),
        "beta2": Hyper(0.99, low=0.0, high=1.0, high_open=True, help="decay of the momentum m"),
        "weight_decay": Hyper(0.0, low=0.0, high=1.0, help="decoupled weight decay λ"),
    }

    def update(self, params, grads, state, t):
        m = state["m"]
        step = np.sign(self.beta1 * m + (1.0 - self.beta1) * grads)
        if self.weight_decay:
            step += self.weight_decay * params
        params -= self.lr * step
        m *= self.beta2
        m += (1.0 - self.beta2) * grads


class GroupNorm(Normalizer):
    """Group norm: the units form `groups` groups, each standardized per example, then
    scaled by γ and shifted by β per unit. No batch statistics, so no running buffers."""

    name = "groupnorm"
    hyperparameters = {
        "groups": Hyper(4, low=1, high=1024, help="number of groups (must divide the width)"),
        "eps": Hyper(1e-5, low=0.0, high=1.0, low_open=True, help="added to the variance"),
    }

    def init_params(self, width, dtype):
        if width % self.groups:
            raise ValueError(f"width {width} is not divisible by {self.groups} groups")
        return {"gamma": np.ones(width, dtype), "beta": np.zeros(width, dtype)}

    def forward(self, x, training):
        b, w = x.shape
        g = x.reshape(b, self.groups, w // self.groups)
        centred = g - g.mean(axis=2, keepdims=True)
        inv_std = 1.0 / np.sqrt((centred * centred).mean(axis=2, keepdims=True) + self.eps)
        xhat = centred * inv_std
        self._cache = (xhat, inv_std)
        return xhat.reshape(b, w) * self.params["gamma"] + self.params["beta"]

    def backward(self, grad_y):
        xhat, inv_std = self._cache
        b, w = grad_y.shape
        n = w // self.groups
        flat_xhat = xhat.reshape(b, w)
        dgamma = (grad_y * flat_xhat).sum(axis=0)
        dbeta = grad_y.sum(axis=0)
        dxhat = (grad_y * self.params["gamma"]).reshape(b, self.groups, n)
        grad = (dxhat - dxhat.mean(axis=2, keepdims=True)
                - xhat * (dxhat * xhat).mean(axis=2, keepdims=True)) * inv_std
        return grad.reshape(b, w), {"gamma": dgamma, "beta": dbeta}


class Sparse(Initializer):
    """Sparse initialization (Martens 2010): each unit gets k nonzero incoming weights
    N(0, gain²/k), the rest zero; the variance per unit matches gain²·(1/fan_in)·fan_in/k·k."""

    name = "sparse"
    hyperparameters = {
        "k": Hyper(15, low=1, high=10_000, help="nonzero incoming weights per unit"),
        "gain": Hyper(1.0, low=0.0, high=10.0, low_open=True, help="scale of the weights"),
    }

    def sample(self, shape, fan_in, fan_out, rng):
        if len(shape) != 2:
            raise ValueError("sparse initialization is for weight matrices, not biases")
        rows, cols = shape
        k = min(self.k, rows)
        w = np.zeros(shape)
        for col in range(cols):
            picked = rng.choice(rows, size=k, replace=False)
            w[picked, col] = rng.normal(0.0, self.gain / math.sqrt(k), size=k)
        return w

    def expected_std(self, fan_in, fan_out):
        return self.gain / math.sqrt(fan_in)


@hookimpl
def register_activations(register):
    register(Swish)


@hookimpl
def register_optimizers(register):
    register(Lion)


@hookimpl
def register_normalizers(register):
    register(GroupNorm)


@hookimpl
def register_initializers(register):
    register(Sparse)
