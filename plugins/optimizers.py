"""Built-in optimizers: sgd, momentum (as the lecture writes it), nesterov, adagrad, rmsprop,
adam and adamw. Each updates the flat parameter vector in place without allocating.

Each but adamw computes its whole step into one scratch vector and subtracts it from the
parameters; it leaves that vector in `last_step`, and its `update` is marked
`reports_step`, so the engine reads the weight change from it instead of copying the
parameters before the update and subtracting after. A third-party optimizer needs neither:
without the mark the engine measures the change by difference.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from nnsim import hookimpl
from nnsim.components import Hyper, Optimizer

LR_HELP = "learning rate α"


def _lr(default: float) -> Hyper:
    return Hyper(default, low=0.0, high=10.0, low_open=True, help=LR_HELP)


def reports_step(update: Callable) -> Callable:
    """Mark an `update` that ends with `params -= self.last_step` and changes the
    parameters in no other way."""
    setattr(update, "reports_step", True)  # noqa: B010 — a function attribute
    return update


class _Scratch:
    """A reusable temporary the size of the parameters (no allocation on the hot path)."""

    _tmp: np.ndarray | None = None
    #: the step the newest update subtracted from the parameters (see `reports_step`)
    last_step: np.ndarray | None = None

    def scratch(self, like: np.ndarray) -> np.ndarray:
        tmp = self._tmp
        if tmp is None or tmp.shape != like.shape or tmp.dtype != like.dtype:
            tmp = self._tmp = np.empty_like(like)
        return tmp


class SGD(Optimizer, _Scratch):
    """Plain gradient descent: w ← w − α·∂L/∂w.

    ∂L/∂w includes the `train.l1`/`train.l2` penalty's gradient, and `train.clip_norm`
    clips the sum (PyTorch adds `weight_decay` inside the step, after clipping).
    """

    name = "sgd"
    hyperparameters = {"lr": _lr(0.1)}

    @reports_step
    def update(self, params, grads, state, t):
        tmp = self.last_step = self.scratch(params)
        np.multiply(grads, self.lr, out=tmp)
        params -= tmp


class Momentum(Optimizer, _Scratch):
    """Momentum as the lecture writes it: v ← β·v + ∂L/∂w, then w ← w − α·v."""

    name = "momentum"
    state_names = ("velocity",)
    hyperparameters = {
        "lr": _lr(0.05),
        "beta": Hyper(0.9, low=0.0, high=1.0, high_open=True, help="velocity decay β"),
    }

    @reports_step
    def update(self, params, grads, state, t):
        v = state["velocity"]
        v *= self.beta
        v += grads
        tmp = self.last_step = self.scratch(params)
        np.multiply(v, self.lr, out=tmp)
        params -= tmp


class Nesterov(Optimizer, _Scratch):
    """Nesterov momentum: v ← β·v + g, then w ← w − α·(g + β·v) (a look-ahead step)."""

    name = "nesterov"
    state_names = ("velocity",)
    hyperparameters = Momentum.hyperparameters

    @reports_step
    def update(self, params, grads, state, t):
        v = state["velocity"]
        v *= self.beta
        v += grads
        tmp = self.last_step = self.scratch(params)
        np.multiply(v, self.beta, out=tmp)
        tmp += grads
        tmp *= self.lr
        params -= tmp


class Adagrad(Optimizer, _Scratch):
    """Adagrad: G ← G + g², then w ← w − α·g / (√G + ε): steps shrink where gradients were large.

    Where gradients are only round-off (the Dense bias in front of batch norm), g/√G is
    still of order 1 at first: the parameter drifts by steps of about α (see BatchNorm).
    """

    name = "adagrad"
    state_names = ("sum_sq",)
    hyperparameters = {
        "lr": _lr(0.05),
        "eps": Hyper(1e-8, low=0.0, high=1.0, low_open=True, help="added to the denominator"),
    }

    @reports_step
    def update(self, params, grads, state, t):
        acc = state["sum_sq"]
        tmp = self.last_step = self.scratch(params)
        np.multiply(grads, grads, out=tmp)
        acc += tmp
        np.sqrt(acc, out=tmp)
        tmp += self.eps
        np.divide(grads, tmp, out=tmp)
        tmp *= self.lr
        params -= tmp


class RMSprop(Optimizer, _Scratch):
    """RMSprop: s ← ρ·s + (1−ρ)·g², then w ← w − α·g / (√s + ε)."""

    name = "rmsprop"
    state_names = ("sq_avg",)
    hyperparameters = {
        "lr": _lr(0.001),
        "rho": Hyper(0.99, low=0.0, high=1.0, high_open=True, help="decay of the squared average"),
        "eps": Hyper(1e-8, low=0.0, high=1.0, low_open=True, help="added to the denominator"),
    }

    @reports_step
    def update(self, params, grads, state, t):
        s = state["sq_avg"]
        tmp = self.last_step = self.scratch(params)
        np.multiply(grads, grads, out=tmp)
        tmp *= 1.0 - self.rho
        s *= self.rho
        s += tmp
        np.sqrt(s, out=tmp)
        tmp += self.eps
        np.divide(grads, tmp, out=tmp)
        tmp *= self.lr
        params -= tmp


class Adam(Optimizer, _Scratch):
    """Adam: bias-corrected first (m) and second (v) moment estimates, w ← w − α·m̂/(√v̂ + ε).

    m̂/√v̂ does not depend on the gradient's scale: a gradient that is only round-off, like
    that of the Dense bias in front of batch norm (true gradient 0), becomes steps of about
    α (see BatchNorm). The gradient includes the `train.l1`/`train.l2` penalty, clipped with
    it.
    """

    name = "adam"
    state_names = ("m", "v")
    hyperparameters = {
        "lr": _lr(0.001),
        "beta1": Hyper(0.9, low=0.0, high=1.0, high_open=True, help="decay of the mean m"),
        "beta2": Hyper(0.999, low=0.0, high=1.0, high_open=True,
                       help="decay of the uncentred variance v"),
        "eps": Hyper(1e-8, low=0.0, high=1.0, low_open=True, help="added to the denominator"),
    }

    @reports_step
    def update(self, params, grads, state, t):
        self._adam(params, grads, state, t)

    def _adam(self, params, grads, state, t):
        b1, b2 = self.beta1, self.beta2
        step = self.last_step = self.scratch(params)
        c1 = 1.0 - b1**t
        c2 = 1.0 - b2**t
        # α·m̂/(√v̂ + ε) = (α·√c2/c1)·m / (√v + ε·√c2): one pass fewer than scaling √v
        root_c2 = math.sqrt(c2)
        m, v, tmp = state["m"], state["v"], step
        m *= b1
        np.multiply(grads, 1.0 - b1, out=tmp)
        m += tmp
        v *= b2
        np.multiply(grads, grads, out=tmp)
        tmp *= 1.0 - b2
        v += tmp
        np.sqrt(v, out=tmp)
        tmp += self.eps * root_c2
        np.divide(m, tmp, out=tmp)
        tmp *= self.lr * root_c2 / c1
        params -= tmp


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay, w ← w − α·λ·w before the Adam step.

    The decay applies to every parameter: weights, biases, the normalizers' γ and β and
    PReLU slopes alike, as torch.optim.AdamW does with every parameter it is given (the
    usual PyTorch practice exempts biases and normalization parameters with a group of
    weight_decay=0). `train.l2` penalizes the weights only.
    """

    name = "adamw"
    hyperparameters = {
        **Adam.hyperparameters,
        "weight_decay": Hyper(0.01, low=0.0, high=1.0, help="decoupled weight decay λ"),
    }

    def update(self, params, grads, state, t):
        params *= 1.0 - self.lr * self.weight_decay
        self._adam(params, grads, state, t)


OPTIMIZERS = (SGD, Momentum, Nesterov, Adagrad, RMSprop, Adam, AdamW)


@hookimpl
def register_optimizers(register):
    for cls in OPTIMIZERS:
        register(cls)
