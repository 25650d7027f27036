"""nnsim check-plugin NAME fails, showing why, when the plugin it names did not load."""

import os
import subprocess
import sys

import pytest

from tests.plugins.test_loading import BROKEN_IMPORT, CLASH, GOOD, make_distribution

NAMELESS = '''
from nnsim import hookimpl
from nnsim.components import Activation

class Nameless(Activation):
    """Forgot its name."""

@hookimpl
def register_activations(register):
    register(Nameless)
'''
INSTANCE = GOOD.replace("register(Cube)", "register(Cube())").replace('"cube"', '"cube4"')
TYPO = GOOD.replace("register_activations", "register_activation").replace('"cube"', '"cube5"')
CRITERION = ("(passes when the plugin imports, implements only nnsim's hooks (each marked "
             "@hookimpl), and registers component classes, each with a name no other plugin "
             "took)")


@pytest.fixture(scope="module")
def plugins(tmp_path_factory):
    root = tmp_path_factory.mktemp("plugins")
    make_distribution(root, "nnsim-broken", "nnsim_broken", BROKEN_IMPORT)
    make_distribution(root, "nnsim-clash", "nnsim_clash", CLASH)
    make_distribution(root, "nnsim-nameless", "nnsim_nameless", NAMELESS)
    make_distribution(root, "nnsim-instance", "nnsim_instance", INSTANCE)
    make_distribution(root, "nnsim-typo", "nnsim_typo", TYPO)
    make_distribution(root, "nnsim-cube", "nnsim_cube", GOOD)
    return root


def check_plugin(root, *names):
    env = {**os.environ, "PYTHONPATH": str(root)}
    for key in ("NNSIM_LOAD_PLUGINS", "NNSIM_DISABLE_PLUGINS"):
        env.pop(key, None)
    return subprocess.run([sys.executable, "-m", "nnsim", "check-plugin", *names],
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("name,line", [
    ("nnsim_broken", "FAIL  plugin 'nnsim_broken' (nnsim-broken 1.2.3)  loads: failed at import: "
                     "RuntimeError: cannot import me"),
    ("nnsim-broken", "FAIL  plugin 'nnsim_broken' (nnsim-broken 1.2.3)  loads: failed at import: "
                     "RuntimeError: cannot import me"),
    ("nnsim_clash", "FAIL  plugin 'nnsim_clash' (nnsim-clash 1.2.3)  loads: failed at "
                    "register_activations: activation 'relu' is already registered by "
                    "nnsim_plugins.activations (built-in); this one was skipped"),
    ("nnsim_nameless", "FAIL  plugin 'nnsim_nameless' (nnsim-nameless 1.2.3)  loads: failed at "
                       "register_activations: TypeError: Nameless has no registry name (set "
                       "`name = ...`)"),
    ("nnsim_instance", "FAIL  plugin 'nnsim_instance' (nnsim-instance 1.2.3)  loads: failed at "
                       "register_activations: TypeError: register_activations got an instance "
                       "of Cube; register the class: register(Cube)"),
    ("nnsim_typo", "FAIL  plugin 'nnsim_typo' (nnsim-typo 1.2.3)  loads: failed at register: "
                   "unknown hook 'register_activation' (did you mean 'register_activations'?)"),
])
def test_a_plugin_that_did_not_load_fails_its_check(plugins, name, line):
    result = check_plugin(plugins, name)
    assert result.returncode == 1, result.stdout + result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith(line) and first.endswith(CRITERION), first
    assert "checks passed" in result.stdout and "0 failed" not in result.stdout


@pytest.mark.parametrize("name", ["nnsim_cube", "nnsim-cube", "activation:cube"])
def test_a_plugin_that_loaded_passes(plugins, name):
    result = check_plugin(plugins, name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("3 checks passed, 0 failed")


def test_an_unknown_name_is_still_a_usage_error(plugins):
    result = check_plugin(plugins, "nnsim_nope")
    assert result.returncode == 2
    assert "no plugin or component 'nnsim_nope'" in result.stderr
