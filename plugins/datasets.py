"""Built-in datasets: 2-D toys (circle, xor, gauss, spiral, moons), a random deep teacher,
and scikit-learn's 8x8 digits when scikit-learn is installed."""

from __future__ import annotations

import numpy as np

from nnsim import hookimpl
from nnsim.components import Dataset, Hyper


def _samples(default: int = 1000) -> Hyper:
    return Hyper(default, low=8, high=1_000_000, help="how many examples to draw")


def _noise(default: float) -> Hyper:
    return Hyper(default, low=0.0, high=10.0, help="std of Gaussian noise on the inputs")


def _raw() -> dict[str, Hyper]:
    return {"offset": Hyper(0.0, low=-1000.0, high=1000.0,
                            help="added to both inputs (raw, uncentred data)"),
            "stretch": Hyper(1.0, low=1e-3, high=1000.0,
                             help="multiplies the first input (badly scaled features)")}


class _TwoD(Dataset):
    """Shared by the 2-D toys: inputs in the plane, classes drawn evenly; `offset` and
    `stretch` turn them into raw, badly scaled data for the preprocessing lessons."""

    hyperparameters = {"samples": _samples(), "noise": _noise(0.1), **_raw()}

    def generate(self, rng):
        x, y = self.draw(rng)
        if self.noise:
            x = x + rng.normal(0.0, self.noise, size=x.shape)
        if self.stretch != 1.0:
            x = x * np.array([self.stretch, 1.0])
        if self.offset:
            x = x + self.offset
        return x, y

    def draw(self, rng):
        raise NotImplementedError


class Circle(_TwoD):
    """A disc of one class inside a ring of the other: needs a non-linear boundary."""

    name = "circle"

    def draw(self, rng):
        n = self.samples
        y = np.arange(n) % 2
        radius = np.where(y == 0, rng.uniform(0.0, 0.5, n), rng.uniform(0.7, 1.0, n))
        angle = rng.uniform(0.0, 2 * np.pi, n)
        return np.column_stack([radius * np.cos(angle), radius * np.sin(angle)]), y


class Xor(_TwoD):
    """Four quadrants, opposite ones alike: no single line separates the classes."""

    name = "xor"

    def draw(self, rng):
        x = rng.uniform(-1.0, 1.0, size=(self.samples, 2))
        x += np.where(x >= 0, 0.05, -0.05)  # a margin around the axes
        return x, (x[:, 0] * x[:, 1] > 0).astype(np.int64)


class Gauss(_TwoD):
    """Two Gaussian blobs: linearly separable, the easy case."""

    name = "gauss"
    hyperparameters = {"samples": _samples(), "noise": _noise(0.3), **_raw()}

    def draw(self, rng):
        n = self.samples
        y = np.arange(n) % 2
        centre = np.where(y[:, None] == 0, -0.5, 0.5)
        return centre + rng.normal(0.0, 0.1, size=(n, 2)), y


class Spiral(_TwoD):
    """Interleaved spiral arms, one class each: hard for shallow nets."""

    name = "spiral"
    hyperparameters = {
        "samples": _samples(),
        "noise": _noise(0.05),
        "classes": Hyper(3, low=2, high=10, help="number of arms"),
        "turns": Hyper(1.0, low=0.25, high=4.0, help="how far each arm winds"),
        **_raw(),
    }

    def n_classes(self):
        return self.classes

    def draw(self, rng):
        n, k = self.samples, self.classes
        y = np.arange(n) % k
        r = rng.uniform(0.05, 1.0, n)
        theta = y * (2 * np.pi / k) + r * (2 * np.pi * self.turns)
        return np.column_stack([r * np.sin(theta), r * np.cos(theta)]), y


class Moons(_TwoD):
    """Two interleaving half circles."""

    name = "moons"

    def draw(self, rng):
        n = self.samples
        y = np.arange(n) % 2
        t = rng.uniform(0.0, np.pi, n)
        upper = np.column_stack([np.cos(t), np.sin(t)])
        lower = np.column_stack([1.0 - np.cos(t), 0.5 - np.sin(t)])
        x = np.where(y[:, None] == 0, upper, lower)
        return (x - [0.5, 0.25]) / 1.0, y


class Teacher(Dataset):
    """Inputs N(0, I) of dimension `dim`, labelled by a random deep tanh teacher network."""

    name = "teacher"
    hyperparameters = {
        "samples": _samples(2000),
        "noise": _noise(0.0),
        "dim": Hyper(16, low=1, high=4096, help="input dimension"),
        "classes": Hyper(4, low=2, high=100, help="number of classes (classification)"),
        "depth": Hyper(3, low=1, high=16, help="hidden layers of the teacher"),
        "width": Hyper(32, low=1, high=4096, help="units per teacher layer"),
        "task": Hyper("classification", choices=("classification", "regression"),
                      help="labels (argmax of the teacher) or its raw outputs"),
    }

    def n_classes(self):
        return self.classes

    def generate(self, rng):
        n, d = self.samples, self.dim
        x = rng.standard_normal((n, d))
        h = x
        fan_in = d
        for _ in range(self.depth):
            w = rng.standard_normal((fan_in, self.width)) * np.sqrt(2.0 / fan_in)
            h = np.tanh(h @ w)
            fan_in = self.width
        w = rng.standard_normal((fan_in, self.classes)) * np.sqrt(1.0 / fan_in)
        out = h @ w
        if self.noise:
            x = x + rng.normal(0.0, self.noise, size=x.shape)
        if self.task == "regression":
            return x, out
        return x, out.argmax(axis=1).astype(np.int64)


class Digits(Dataset):
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), pixels scaled to [0, 1]."""

    name = "digits"
    hyperparameters = {"samples": Hyper(1797, low=8, high=1797, help="how many images to use"),
                       "noise": _noise(0.0)}

    def n_classes(self):
        return 10

    def generate(self, rng):
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise RuntimeError("the digits dataset needs scikit-learn: "
                               "pip install 'nnsim[digits]'") from None
        data = load_digits()
        x = data.data / 16.0
        y = data.target.astype(np.int64)
        pick = rng.permutation(len(y))[: self.samples]
        x, y = x[pick], y[pick]
        if self.noise:
            x = x + rng.normal(0.0, self.noise, size=x.shape)
        return x, y


DATASETS = (Circle, Xor, Gauss, Spiral, Moons, Teacher, Digits)


@hookimpl
def register_datasets(register):
    for cls in DATASETS:
        register(cls)
