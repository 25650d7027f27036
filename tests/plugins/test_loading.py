"""Plugin discovery: built-ins first, real entry points one at a time, failures recorded."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nnsim.pluginmanager import BUILTIN, load_registry

GOOD = '''
import numpy as np
from nnsim import hookimpl
from nnsim.components import Activation, Hyper

class Cube(Activation):
    """x cubed, for testing discovery."""
    name = "cube"
    hyperparameters = {"scale": Hyper(1.0, low=0.0, high=2.0, help="multiplier")}
    def forward(self, x):
        return self.scale * x ** 3
    def backward(self, x, y, grad_y):
        return grad_y * 3 * self.scale * x ** 2

@hookimpl
def register_activations(register):
    register(Cube)
'''
BROKEN_IMPORT = "raise RuntimeError('cannot import me')\n"
BROKEN_HOOK = '''
from nnsim import hookimpl

@hookimpl
def register_optimizers(register):
    raise ValueError("hook exploded")
'''
CLASH = '''
from nnsim import hookimpl
from nnsim.components import Activation

class FakeRelu(Activation):
    name = "relu"

@hookimpl
def register_activations(register):
    register(FakeRelu)
'''


FRAGILE = '''
import numpy as np
from nnsim import hookimpl
from nnsim.components import Activation

class Fragile(Activation):
    """tanh whose backward pass breaks on its 20th call."""
    name = "fragile"
    calls = 0
    def forward(self, x):
        return np.tanh(x)
    def backward(self, x, y, grad_y):
        type(self).calls += 1
        if type(self).calls == 20:
            raise RuntimeError("worn out")
        return grad_y * (1 - y * y)
    def saturated(self, x, y):
        return np.abs(y) > 0.975

@hookimpl
def register_activations(register):
    register(Fragile)
'''


def make_distribution(root: Path, dist: str, module: str, source: str) -> None:
    """A real installed distribution: a module plus a .dist-info with an `nnsim` entry point."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[nnsim]\n{module} = {module}\n")


@pytest.fixture
def plugin_path(tmp_path):
    make_distribution(tmp_path, "nnsim-cube", "nnsim_cube", GOOD)
    make_distribution(tmp_path, "nnsim-broken", "nnsim_broken", BROKEN_IMPORT)
    make_distribution(tmp_path, "nnsim-badhook", "nnsim_badhook", BROKEN_HOOK)
    make_distribution(tmp_path, "nnsim-clash", "nnsim_clash", CLASH)
    make_distribution(tmp_path, "nnsim-fragile", "nnsim_fragile", FRAGILE)
    return tmp_path


def nnsim(args, plugin_path, **env):
    full_env = {**os.environ, "PYTHONPATH": str(plugin_path), **env}
    for key in ("NNSIM_LOAD_PLUGINS", "NNSIM_DISABLE_PLUGINS"):
        if key not in env:
            full_env.pop(key, None)
    return subprocess.run([sys.executable, "-m", "nnsim", *args], capture_output=True,
                          text=True, env=full_env, timeout=120)


def test_entry_point_plugin_is_found_used_and_broken_ones_reported(plugin_path):
    result = nnsim(["plugins", "--json"], plugin_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    cube = [e for e in report["families"]["activation"] if e["name"] == "cube"]
    assert cube and cube[0]["source"] == "nnsim-cube 1.2.3"
    assert cube[0]["hyperparameters"]["scale"]["range"] == "a number in [0, 2]"
    failures = {f["plugin"]: f for f in report["failures"]}
    assert failures["nnsim_broken"]["stage"] == "import"
    assert "cannot import me" in failures["nnsim_broken"]["error"]
    assert failures["nnsim_badhook"]["stage"] == "register_optimizers"
    assert "hook exploded" in failures["nnsim_badhook"]["error"]
    assert "already registered by nnsim_plugins.activations (built-in)" in \
        failures["nnsim_clash"]["error"]
    relu = [e for e in report["families"]["activation"] if e["name"] == "relu"]
    assert relu[0]["source"] == BUILTIN  # the built-in wins the clash
    loaded = {p["plugin"]: p["source"] for p in report["plugins"]}
    assert loaded["nnsim_cube"] == "nnsim-cube 1.2.3" and "nnsim_broken" not in loaded

    run = nnsim(["run", "--steps", "3", "--set", "model.activation={name='cube', scale=0.5}",
                 "--set", "model.hidden=[8]", "--format", "jsonl"], plugin_path)
    assert run.returncode == 0, run.stderr
    assert len(run.stdout.splitlines()) == 3
    assert "warning: plugin nnsim_broken" in run.stderr


def test_allow_list_and_block_list(plugin_path):
    none = json.loads(nnsim(["plugins", "--json"], plugin_path,
                            NNSIM_LOAD_PLUGINS="").stdout)
    assert none["failures"] == []
    assert "cube" not in [e["name"] for e in none["families"]["activation"]]
    assert "relu" in [e["name"] for e in none["families"]["activation"]]
    only = json.loads(nnsim(["plugins", "--json"], plugin_path,
                            NNSIM_LOAD_PLUGINS="nnsim_cube").stdout)
    assert only["failures"] == [] and "cube" in [e["name"] for e in
                                                 only["families"]["activation"]]
    blocked = json.loads(nnsim(["plugins", "--json"], plugin_path,
                               NNSIM_DISABLE_PLUGINS="nnsim_cube,nnsim_broken").stdout)
    assert "cube" not in [e["name"] for e in blocked["families"]["activation"]]
    assert "nnsim_broken" not in [f["plugin"] for f in blocked["failures"]]


def test_trace_prints_every_hook_call(plugin_path):
    result = nnsim(["plugins", "--json"], plugin_path, NNSIM_TRACE_PLUGINS="1",
                   NNSIM_LOAD_PLUGINS="nnsim_cube")
    assert "calling register_activations of plugin 'nnsim_cube'" in result.stderr
    assert "registered activation 'cube'" in result.stderr
    json.loads(result.stdout)  # stdout stays clean


def test_builtins_register_every_family():
    registry = load_registry(entry_points=[], env={})
    names = {family: set(registry.names(family)) for family in registry.families}
    assert names["activation"] == {"identity", "sigmoid", "tanh", "relu", "leaky_relu", "prelu",
                                   "elu", "gelu", "silu", "softplus"}
    assert names["initializer"] == {"zeros", "constant", "normal", "uniform", "xavier_uniform",
                                    "xavier_normal", "he_normal", "he_uniform", "orthogonal"}
    assert names["normalizer"] == {"none", "batchnorm", "layernorm"}
    assert names["optimizer"] == {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam",
                                  "adamw"}
    assert names["dataset"] == {"circle", "xor", "gauss", "spiral", "moons", "teacher", "digits"}
    assert registry.failures == []


def test_every_component_declares_documented_hyperparameters():
    registry = load_registry(entry_points=[], env={})
    for family, table in registry.families.items():
        for name, entry in table.items():
            assert entry.cls.summary(), f"{family} {name} has no docstring"
            for key, hyper in entry.cls.hyperparameters.items():
                assert hyper.help, f"{family} {name}.{key} has no help"
                assert hyper.validate(hyper.default) == hyper.default
        for entry in table.values():
            if family == "optimizer":
                assert "lr" in entry.cls.hyperparameters


def test_engine_never_imports_textual():
    code = ("import sys, nnsim.engine, nnsim.config, nnsim.pluginmanager, nnsim.cli; "
            "from nnsim.engine import Simulation; Simulation().run(2); "
            "print('textual' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_a_plugin_failing_mid_run_exits_4_and_keeps_the_records(plugin_path):
    result = nnsim(["run", "--steps", "50", "--set", "model.activation=fragile", "--set",
                    "model.hidden=[8,8]", "--format", "jsonl"], plugin_path,
                   NNSIM_LOAD_PLUGINS="nnsim_fragile")
    assert result.returncode == 4
    steps = [json.loads(line)["step"] for line in result.stdout.splitlines()]
    assert steps == list(range(1, 10))  # two layers: the 20th backward call is in step 10
    assert result.stderr.strip() == (
        "nnsim: error: activation 'fragile' (from nnsim-fragile 1.2.3): backward() raised "
        "RuntimeError: worn out")
