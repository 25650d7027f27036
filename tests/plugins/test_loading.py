"""Plugin discovery: built-ins first, real entry points one at a time, failures recorded."""

import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import numpy as np
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


def records(stdout: str) -> list[dict]:
    """The step records of `nnsim run --format jsonl` (a header line may come first)."""
    return [r for r in map(json.loads, stdout.splitlines()) if "step" in r]


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
    assert len(records(run.stdout)) == 3
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
    steps = [r["step"] for r in records(result.stdout)]
    assert steps == list(range(1, 10))  # two layers: the 20th backward call is in step 10
    assert result.stderr.strip() == (
        "nnsim: error: activation 'fragile' (from nnsim-fragile 1.2.3): backward() raised "
        "RuntimeError: worn out")


# ---------------------------------------------------------------- what plugin authors get wrong

def test_systemexit_and_keyboardinterrupt_from_a_plugin_are_its_load_failures(tmp_path):
    make_distribution(tmp_path, "nnsim-exits", "nnsim_exits", "import sys\nsys.exit(3)\n")
    make_distribution(tmp_path, "nnsim-ctrlc", "nnsim_ctrlc", "raise KeyboardInterrupt\n")
    make_distribution(tmp_path, "nnsim-hookexit", "nnsim_hookexit", '''
from nnsim import hookimpl

@hookimpl
def register_datasets(register):
    raise SystemExit("bye")
''')
    make_distribution(tmp_path, "nnsim-cube", "nnsim_cube", GOOD)
    result = nnsim(["plugins", "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    failures = {f["plugin"]: (f["stage"], f["error"]) for f in
                json.loads(result.stdout)["failures"]}
    assert failures == {"nnsim_exits": ("import", "SystemExit: 3"),
                        "nnsim_ctrlc": ("import", "KeyboardInterrupt"),
                        "nnsim_hookexit": ("register_datasets", "SystemExit: bye")}
    names = [e["name"] for e in json.loads(result.stdout)["families"]["activation"]]
    assert "cube" in names  # the others load


def test_a_real_ctrl_c_while_a_plugin_loads_still_stops_nnsim(tmp_path):
    marker = tmp_path / "importing"
    make_distribution(tmp_path, "nnsim-slow", "nnsim_slow", f'''
import pathlib, time
pathlib.Path({str(marker)!r}).write_text("now")
time.sleep(60)
''')
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    for key in ("NNSIM_LOAD_PLUGINS", "NNSIM_DISABLE_PLUGINS"):
        env.pop(key, None)
    # a shell's background jobs ignore SIGINT; the child starts with the default handler
    proc = subprocess.Popen([sys.executable, "-m", "nnsim", "plugins"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert marker.exists(), proc.communicate()[1]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().endswith("nnsim: interrupted")
    assert "failed plugins" not in out


def test_keyboardinterrupt_raised_by_a_plugin_is_told_apart_from_a_signal():
    from nnsim.pluginmanager import _reraise_interrupt, plugin_code

    # Python's own Ctrl-C handler, even where this process was started ignoring SIGINT
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with plugin_code() as guard:  # raised by the plugin's own code: a load failure
            try:
                raise KeyboardInterrupt
            except BaseException as exc:  # noqa: BLE001
                _reraise_interrupt(guard, exc)  # returns: the caller records the failure
        with pytest.raises(KeyboardInterrupt):
            with plugin_code() as guard:  # a SIGINT arriving meanwhile
                try:
                    signal.raise_signal(signal.SIGINT)
                    time.sleep(1)
                except BaseException as exc:  # noqa: BLE001
                    _reraise_interrupt(guard, exc)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


SETERR = '''
import numpy as np
np.seterr(all="raise")
from nnsim import hookimpl
from nnsim.components import Activation

class Unused(Activation):
    """Never used by the run."""
    name = "unused"
    def forward(self, x):
        return x
    def backward(self, x, y, grad_y):
        return grad_y

@hookimpl
def register_activations(register):
    np.seterr(under="raise", over="raise")
    register(Unused)
'''


def test_a_plugin_calling_seterr_at_import_leaves_numpy_alone(tmp_path, monkeypatch):
    make_distribution(tmp_path, "nnsim-seterr", "nnsim_seterr", SETERR)
    monkeypatch.syspath_prepend(str(tmp_path))
    before = np.geterr()
    eps = [ep for ep in importlib.metadata.entry_points(group="nnsim") if ep.name == "nnsim_seterr"]
    registry = load_registry(entry_points=eps, env={})
    assert np.geterr() == before
    assert "unused" in registry.names("activation") and registry.failures == []
    # a large step: tiny squares underflow, which NumPy would raise on if the plugin's
    # np.seterr stayed in force (FloatingPointError: underflow encountered in multiply)
    result = nnsim(["run", "--steps", "300", "--format", "jsonl", "--set", "optimizer.lr=1"],
                   tmp_path, NNSIM_LOAD_PLUGINS="nnsim_seterr")
    assert result.returncode == 0, result.stderr
    losses = [r["loss"] for r in records(result.stdout)]
    assert len(losses) == 300 and all(np.isfinite(losses))


def test_unknown_hooks_and_forgotten_hookimpl_are_load_failures_with_did_you_mean(tmp_path):
    make_distribution(tmp_path, "nnsim-typo", "nnsim_typo", GOOD.replace(
        "register_activations", "register_activation").replace('"cube"', '"cube2"'))
    make_distribution(tmp_path, "nnsim-bare", "nnsim_bare", GOOD.replace(
        "@hookimpl\n", "").replace('"cube"', '"cube3"'))
    make_distribution(tmp_path, "nnsim-cube", "nnsim_cube", GOOD)
    result = nnsim(["plugins", "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    failures = {f["plugin"]: f for f in report["failures"]}
    assert set(failures) == {"nnsim_typo", "nnsim_bare"}
    assert failures["nnsim_typo"]["error"].startswith(
        "unknown hook 'register_activation' (did you mean 'register_activations'?)")
    assert failures["nnsim_bare"]["error"] == (
        "register_activations() is not marked @hookimpl (from nnsim import hookimpl)")
    names = [e["name"] for e in report["families"]["activation"]]
    assert "cube" in names and "cube2" not in names and "cube3" not in names
    loaded = {p["plugin"] for p in report["plugins"]}
    assert "nnsim_cube" in loaded and not loaded & {"nnsim_typo", "nnsim_bare"}
    text = nnsim(["plugins"], tmp_path).stdout
    assert "nnsim_typo (nnsim-typo 1.2.3) at register: unknown hook 'register_activation'" in text


def test_an_instance_or_a_nameless_class_is_refused_with_what_to_register():
    from nnsim.components import Activation
    from nnsim.pluginmanager import PluginLoader

    class Nameless(Activation):
        pass

    class Named(Activation):
        name = "named"

    for value, error in [(Named(), "register_activations got an instance of Named; register "
                                   "the class: register(Named)"),
                         (Nameless, "Nameless has no registry name (set `name = ...`)")]:
        module = types.ModuleType("nnsim_fake")
        exec("from nnsim import hookimpl\n@hookimpl\ndef register_activations(register):\n"
             "    register(VALUE)\n", module.__dict__)
        module.VALUE = value
        loader = PluginLoader()
        loader.add(module, "nnsim_fake", "nnsim-fake 1.0")
        registry = loader.collect()
        assert [f.error for f in registry.failures] == [f"TypeError: {error}"]
