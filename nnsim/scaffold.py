"""`nnsim new-plugin NAME`: writes a plugin distribution to start from.

The distribution installs as it is (`pip install -e DIR`) and passes its own tests: a
pyproject with the `nnsim` entry point, one working component of every family (delete the
ones you do not need), tests that load it through its entry point with nnsim's
conformance kit, and a README.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from pathlib import Path

from nnsim.errors import cap

#: a plugin name: a letter, then letters, digits, '-' or '_'
NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
#: the longest plugin name (a folder and a module are named after it)
MAX_NAME = 64


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME",
                        help="the plugin's name, e.g. 'mine': writes the distribution "
                             "nnsim-mine with the module nnsim_mine")
    parser.add_argument("--dir", default=".", metavar="D",
                        help="the folder to write the distribution's folder into "
                             "(default: the current one)")


def names(name: str) -> dict[str, str]:
    """The distribution, module, entry-point and component-prefix names for NAME."""
    slug = name.strip().lower()
    if slug.startswith("nnsim-") or slug.startswith("nnsim_"):
        slug = slug[len("nnsim-"):]
    if not slug:
        raise ValueError(f"the plugin name {cap(name, 60)!r} has nothing after the 'nnsim-' prefix; "
                         f"give a name of its own (e.g. 'mine' or 'nnsim-mine')")
    if not NAME.match(slug):
        raise ValueError(f"the plugin name {cap(name, 60)!r} must start with a letter and hold only "
                         f"ASCII letters, digits, '-' and '_' (e.g. 'mine' or 'nnsim-mine')")
    if len(slug) > MAX_NAME:
        raise ValueError(f"the plugin name {cap(name, 60)!r} is {len(slug):,} characters "
                         f"long; give one of at most {MAX_NAME}")
    prefix = re.sub(r"[-_]+", "_", slug)
    module = f"nnsim_{prefix}"
    taken = importlib.util.find_spec(module)
    if taken is not None:
        raise ValueError(f"the plugin name {name!r} gives the module {module}, which is "
                         f"already installed ({taken.origin or 'a namespace package'}); "
                         f"choose another name")
    return {"dist": f"nnsim-{re.sub(r'[-_]+', '-', slug)}", "module": f"nnsim_{prefix}",
            "entry": prefix, "prefix": prefix}


def files(name: str) -> dict[str, str]:
    """The distribution's files: relative path → text."""
    n = names(name)

    def fill(text: str) -> str:
        for key, value in n.items():
            text = text.replace(f"@{key}@", value)
        return text

    return {"pyproject.toml": fill(PYPROJECT), "README.md": fill(README),
            f"{n['module']}/__init__.py": fill(MODULE),
            "tests/test_plugin.py": fill(TESTS)}


def write(name: str, parent: Path) -> Path:
    """Write the distribution into parent/DIST; refuses a folder that is not empty."""
    n = names(name)
    root = parent / n["dist"]
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root} already exists and is not an empty folder; choose "
                              f"another NAME or --dir")
    for path, text in files(name).items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return root


def run(args: argparse.Namespace) -> int:
    try:
        n = names(args.name)  # (once: after writing, its module exists)
        root = write(args.name, Path(args.dir))
    except ValueError as exc:
        print(f"nnsim new-plugin: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        reason = exc.strerror or str(exc) if not isinstance(exc, FileExistsError) else str(exc)
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"nnsim new-plugin: cannot write the plugin: {reason}{where}", file=sys.stderr)
        return 2
    print(f"wrote {root}/ (distribution {n['dist']}, module {n['module']}, entry point "
          f"{n['entry']})\n"
          f"next: pip install -e {root} && python -m pytest {root}/tests\n"
          f"then keep the components you want in {root}/{n['module']}/__init__.py")
    return 0


PYPROJECT = '''\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "@dist@"
version = "0.1.0"
description = "Components for nnsim"
requires-python = ">=3.11"
dependencies = ["nnsim", "numpy"]

[project.optional-dependencies]
test = ["pytest"]

# how nnsim finds the plugin: entry-point name = module with the @hookimpl functions
[project.entry-points.nnsim]
@entry@ = "@module@"

[tool.setuptools]
packages = ["@module@"]
'''

README = '''\
# @dist@

Components for nnsim, one of each family to start from:

| family | name | what |
| --- | --- | --- |
| activation | `@prefix@_softsign` | x / (1 + \\|x\\|) |
| initializer | `@prefix@_scaled_normal` | N(0, 1) · gain / √fan_in |
| normalizer | `@prefix@_rmsnorm` | each example divided by its root mean square, times γ |
| optimizer | `@prefix@_heavy_ball` | gradient descent with momentum, its velocity a state array |
| dataset | `@prefix@_rings` | concentric rings, one class each |
| lesson | `@prefix@_tiny_lr` | a learning rate a hundred times too small barely moves the loss |
| check | `@prefix@_tiny_output` | the doctor: the output layer's weights have shrunk |

Delete the classes you do not need from `@module@/__init__.py`, and their `register(...)`
lines. nnsim's `docs/plugins.md` describes each family's contract.

```sh
pip install -e .                  # nnsim finds it through the entry point in pyproject.toml
python -m pytest tests            # nnsim's conformance kit on everything it registers
nnsim plugins                     # lists the components, from "@dist@ 0.1.0"
nnsim check-plugin @entry@        # the same checks from the command line
nnsim --set model.activation=@prefix@_softsign --set optimizer.name=@prefix@_heavy_ball
```

`tests/test_plugin.py` holds the one test a plugin needs,
`assert_plugin_conforms("@dist@")`: it loads the plugin as nnsim does and runs every
check on every component; a failure says what was measured and what passes. Give a
component's checks other hyperparameters with `hypers={"@prefix@_heavy_ball": {"lr": 0.01}}`.
'''

MODULE = '''\
"""Components for nnsim, one of each family: keep the ones you want."""

import math

import numpy as np

from nnsim import hookimpl
from nnsim.components import (Activation, Dataset, DoctorCheck, Finding, Hyper, Initializer,
                              Lesson, Normalizer, Optimizer, Verdict, below)


class Softsign(Activation):
    """x / (1 + |x|): tanh's shape with polynomial tails."""

    name = "@prefix@_softsign"
    max_grad = 1.0  # the largest |derivative|: sets the saturation threshold

    def forward(self, x):
        return x / (1.0 + np.abs(x))

    def backward(self, x, y, grad_y):
        d = 1.0 + np.abs(x)
        return grad_y / (d * d)


class ScaledNormal(Initializer):
    """N(0, 1) · gain / √fan_in."""

    name = "@prefix@_scaled_normal"
    hyperparameters = {"gain": Hyper(1.0, low=0.0, high=10.0, help="scale of the draw")}

    def sample(self, shape, fan_in, fan_out, rng):
        return rng.standard_normal(size=shape) * self.gain / math.sqrt(fan_in)

    def expected_std(self, fan_in, fan_out):
        return self.gain / math.sqrt(fan_in)


class RMSNorm(Normalizer):
    """Each example divided by its root mean square, then scaled by a learnable γ."""

    name = "@prefix@_rmsnorm"
    hyperparameters = {"eps": Hyper(1e-6, low=0.0, high=1.0, low_open=True,
                                    help="added to the mean square")}

    def init_params(self, width, dtype):
        return {"gamma": np.ones(width, dtype)}

    def forward(self, x, training):
        inv = 1.0 / np.sqrt((x * x).mean(axis=1, keepdims=True) + self.eps)
        self._cache = (x, inv)
        return x * inv * self.params["gamma"]

    def backward(self, grad_y):
        x, inv = self._cache
        g = grad_y * self.params["gamma"]
        grad_x = inv * g - x * inv**3 * (g * x).mean(axis=1, keepdims=True)
        return grad_x, {"gamma": (grad_y * x * inv).sum(axis=0)}


class HeavyBall(Optimizer):
    """v ← βv + ∂L/∂w; w ← w − αv."""

    name = "@prefix@_heavy_ball"
    hyperparameters = {"lr": Hyper(0.05, low=0.0, high=1.0, low_open=True, help="α"),
                       "beta": Hyper(0.9, low=0.0, high=1.0, high_open=True, help="β")}
    state_names = ("velocity",)  # kept in the state arrays, never on self

    def update(self, params, grads, state, t):
        v = state["velocity"]
        v *= self.beta
        v += grads
        params -= self.lr * v  # in place: the engine's parameter vector


class Rings(Dataset):
    """Concentric rings, one class each."""

    name = "@prefix@_rings"
    hyperparameters = {"samples": Hyper(600, low=8, high=100_000, help="examples"),
                       "classes": Hyper(3, low=2, high=10, help="rings")}

    def n_classes(self):
        return self.classes

    def generate(self, rng):
        y = np.arange(self.samples) % self.classes
        angle = rng.uniform(0, 2 * np.pi, self.samples)
        radius = 1 + y + rng.normal(0, 0.1, self.samples)
        return np.column_stack([radius * np.cos(angle), radius * np.sin(angle)]), y


class TinyLearningRate(Lesson):
    """A learning rate a hundred times too small barely moves the loss."""

    name = "@prefix@_tiny_lr"
    title = "A learning rate far too small barely moves the loss"
    section = "The Process of Training Neural Networks"
    explanation = ("Each step moves the weights by lr × gradient. Divide lr by a hundred "
                   "and the network needs a hundred times as many steps.")
    watch = "the loss in the status line; ‖ΔW‖/‖W‖ far below 1e-3."
    base = {"model.hidden": [16], "data.name": "gauss", "data.samples": 200}
    runs = {"lr 0.05": {"optimizer.lr": 0.05}, "lr 0.0005": {"optimizer.lr": 0.0005}}
    control = {"lr 0.0005": {"optimizer.lr": 0.05}}
    control_note = "both runs at lr 0.05: nothing too small left"
    steps = 100

    def check(self, results):
        fast, slow = (results[k].mean("loss", 20) for k in ("lr 0.05", "lr 0.0005"))
        return Verdict.of(below("loss after 100 steps, lr 0.05 ÷ lr 0.0005", fast / slow, 0.8))


class TinyOutputWeights(DoctorCheck):
    """The output layer's weights have shrunk towards zero."""

    name = "@prefix@_tiny_output"

    def examine(self, evidence):
        if not evidence.measured:
            return []
        limit = evidence.threshold("@prefix@_tiny_output", 1e-2)
        norm = evidence.measured[-1].layers[-1].weight_norm
        if norm >= limit:
            return []
        return [Finding(self.name, f"the output weights have shrunk to {norm:.2g}",
                        f"‖W‖ of the output layer {norm:.2g} (limit {limit:g})",
                        "lower the L2 penalty", "Regularization", strength=1.0,
                        steps=evidence.steps, fix=(("train.l2", 0.0),))]


@hookimpl
def register_activations(register):
    register(Softsign)


@hookimpl
def register_initializers(register):
    register(ScaledNormal)


@hookimpl
def register_normalizers(register):
    register(RMSNorm)


@hookimpl
def register_optimizers(register):
    register(HeavyBall)


@hookimpl
def register_datasets(register):
    register(Rings)


@hookimpl
def register_lessons(register):
    register(TinyLearningRate)


@hookimpl
def register_checks(register):
    register(TinyOutputWeights)
'''

TESTS = '''\
"""@dist@, loaded through its entry point and checked by nnsim's conformance kit."""

from nnsim.config import load
from nnsim.engine import Simulation
from nnsim.testing import assert_plugin_conforms


def test_plugin_conforms():
    assert_plugin_conforms("@dist@")


def test_trains_with_its_components():
    sim = Simulation(load(sets=["model.activation=@prefix@_softsign",
                                "model.initializer=@prefix@_scaled_normal",
                                "model.normalizer=@prefix@_rmsnorm",
                                "optimizer.name=@prefix@_heavy_ball",
                                "data.name=@prefix@_rings", "model.hidden=[16, 16]"]))
    records = sim.run(300)
    assert records[-1].nonfinite is None
    assert sum(r.loss for r in records[-20:]) / 20 < 0.7 * records[0].loss
'''
