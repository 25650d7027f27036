"""Built-in normalizers: none, batch norm (batch statistics in training) and layer norm."""

from __future__ import annotations

import numpy as np

from nnsim import hookimpl
from nnsim.components import Hyper, Normalizer


class NoNorm(Normalizer):
    """No normalization."""

    name = "none"
    passthrough = True

    def forward(self, x, training):
        return x

    def backward(self, grad_y):
        return grad_y, {}


class BatchNorm(Normalizer):
    """Batch norm: each unit standardized over the batch, then scaled by γ and shifted by β.

    Training uses the batch's mean and variance and updates running estimates with
    `momentum`; inference uses the running estimates.

    In front of it (norm_position "before") the Dense layer's bias changes nothing in
    training: its true gradient is 0 and what is computed is float32 round-off. nnsim keeps
    the bias; SGD and momentum leave it in place, while Adam and Adagrad turn the round-off
    into steps of about lr, which the running mean follows with a lag, so eval-mode results
    shift a little. PyTorch practice is a layer without bias (bias=False) before batch norm.
    """

    name = "batchnorm"
    hyperparameters = {
        "eps": Hyper(1e-5, low=0.0, high=1.0, low_open=True, help="added to the variance"),
        "momentum": Hyper(0.1, low=0.0, high=1.0,
                          help="weight of the newest batch in the running statistics"),
    }

    def init_params(self, width, dtype):
        return {"gamma": np.ones(width, dtype), "beta": np.zeros(width, dtype)}

    def init_buffers(self, width, dtype):
        return {"running_mean": np.zeros(width, dtype), "running_var": np.ones(width, dtype)}

    def forward(self, x, training):
        gamma, beta = self.params["gamma"], self.params["beta"]
        if training:
            n = x.shape[0]
            mean = x.mean(axis=0)
            centred = x - mean
            var = np.einsum("ij,ij->j", centred, centred) / n
            inv_std = 1.0 / np.sqrt(var + self.eps)
            xhat = centred * inv_std
            self._cache = (xhat, inv_std)
            m = self.momentum
            unbiased = var * (n / (n - 1)) if n > 1 else var
            buf = self.buffers
            buf["running_mean"] *= 1.0 - m
            buf["running_mean"] += m * mean
            buf["running_var"] *= 1.0 - m
            buf["running_var"] += m * unbiased
        else:
            buf = self.buffers
            inv_std = 1.0 / np.sqrt(buf["running_var"] + self.eps)
            xhat = (x - buf["running_mean"]) * inv_std
        return xhat * gamma + beta

    def backward(self, grad_y):
        xhat, inv_std = self._cache
        gamma = self.params["gamma"]
        n = grad_y.shape[0]
        dbeta = grad_y.sum(axis=0)
        dgamma = np.einsum("ij,ij->j", grad_y, xhat)
        # dx = γ/σ · (dy − mean(dy) − x̂ · mean(dy · x̂))
        grad_x = (grad_y - dbeta / n - xhat * (dgamma / n)) * (gamma * inv_std)
        return grad_x, {"gamma": dgamma, "beta": dbeta}


class LayerNorm(Normalizer):
    """Layer norm: each example standardized over its units, then scaled by γ, shifted by β."""

    name = "layernorm"
    hyperparameters = {
        "eps": Hyper(1e-5, low=0.0, high=1.0, low_open=True, help="added to the variance"),
    }

    def init_params(self, width, dtype):
        return {"gamma": np.ones(width, dtype), "beta": np.zeros(width, dtype)}

    def forward(self, x, training):
        mean = x.mean(axis=1, keepdims=True)
        centred = x - mean
        var = (centred * centred).mean(axis=1, keepdims=True)
        inv_std = 1.0 / np.sqrt(var + self.eps)
        xhat = centred * inv_std
        self._cache = (xhat, inv_std)
        return xhat * self.params["gamma"] + self.params["beta"]

    def backward(self, grad_y):
        xhat, inv_std = self._cache
        d = grad_y.shape[1]
        dgamma = np.einsum("ij,ij->j", grad_y, xhat)
        dbeta = grad_y.sum(axis=0)
        g = grad_y * self.params["gamma"]
        grad_x = (g - g.sum(axis=1, keepdims=True) / d
                  - xhat * (np.einsum("ij,ij->i", g, xhat)[:, None] / d)) * inv_std
        return grad_x, {"gamma": dgamma, "beta": dbeta}


NORMALIZERS = (NoNorm, BatchNorm, LayerNorm)


@hookimpl
def register_normalizers(register):
    for cls in NORMALIZERS:
        register(cls)
