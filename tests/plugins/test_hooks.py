"""Every hook: documented with a heading and a working example, and tested end to end.

The examples in docs/plugins.md are loaded as plugin modules through the same loader that
loads entry points, pass the conformance checks, and train."""

import re
import types
from pathlib import Path

import pytest

from nnsim import hookspecs
from nnsim.engine import Simulation
from nnsim.pluginmanager import HOOKS, PluginLoader
from nnsim.testing import assert_conforms
from tests.helpers import small_config

GUIDE = (Path(__file__).parents[2] / "docs" / "plugins.md").read_text()
HOOK_NAMES = [name for name in vars(hookspecs) if name.startswith("register_")]


def guide_section(hook: str) -> str:
    match = re.search(rf"^## {hook}\n(.*?)(?=^## )", GUIDE, re.S | re.M)
    assert match, f"docs/plugins.md has no '## {hook}' heading"
    return match.group(1)


def plugin_from_guide(hook: str) -> types.ModuleType:
    """The guide's example for `hook`, as a plugin module."""
    code = re.search(r"```python\n(.*?)```", guide_section(hook), re.S).group(1)
    module = types.ModuleType(f"guide_{hook}")
    exec(compile("from nnsim import hookimpl\n" + code, f"docs/plugins.md:{hook}", "exec"),
         module.__dict__)
    return module


def registry_with_guide_example(hook: str):
    loader = PluginLoader()
    from nnsim.pluginmanager import DEFAULT_PLUGINS
    import importlib

    for name in DEFAULT_PLUGINS:
        loader.add(importlib.import_module(name), name, "built-in")
    loader.add(plugin_from_guide(hook), f"guide_{hook}", "guide 1.0")
    registry = loader.collect()
    assert registry.failures == []
    family = next(f for f, h in HOOKS.items() if h == hook)
    (entry,) = [e for e in registry.families[family].values() if e.source == "guide 1.0"]
    return registry, family, entry.cls


def train_with(hook: str, key: str, *more):
    registry, _, cls = registry_with_guide_example(hook)
    assert_conforms(cls)
    config = small_config().with_overrides([(key, cls.name), *more], registry)
    records = Simulation(config, registry).run(30)
    assert len(records) == 30 and records[-1].nonfinite is None
    return records


def test_hook_register_activations():
    records = train_with("register_activations", "model.activation")
    assert dict(records[-1].layers[0].learnable)["beta"] != 1.0  # β is trained


def test_hook_register_initializers():
    train_with("register_initializers", "model.initializer")


def test_hook_register_normalizers():
    records = train_with("register_normalizers", "model.normalizer")
    assert "gamma" in dict(records[-1].layers[0].learnable)


def test_hook_register_optimizers():
    train_with("register_optimizers", "optimizer.name")


def test_hook_register_datasets():
    records = train_with("register_datasets", "data.name")
    assert records[-1].accuracy is not None


def test_hook_register_lessons():
    from nnsim.lessons import run_lesson

    registry, _, cls = registry_with_guide_example("register_lessons")
    assert_conforms(cls)
    results, verdict = run_lesson(cls(), registry)
    assert verdict.passed, verdict.numbers
    assert set(results) == {"lr 0.05", "lr 0.0005"}


def test_hook_register_checks():
    from nnsim.doctor import diagnose

    registry, _, cls = registry_with_guide_example("register_checks")
    assert_conforms(cls)
    sim = Simulation(small_config(("train.l2", 0.5), ("model.hidden", [8])), registry)
    records = sim.run(300)
    found = diagnose(records, sim.config, sim.data.outputs, registry)
    assert "tiny_output_weights" in {f.code for f in found}  # L2 this strong shrinks them
    healthy = Simulation(small_config(("model.hidden", [8])), registry)
    records = healthy.run(300)
    found = diagnose(records, healthy.config, healthy.data.outputs, registry)
    assert "tiny_output_weights" not in {f.code for f in found}


@pytest.mark.parametrize("hook", HOOK_NAMES)
def test_every_hook_has_a_test_and_a_documented_heading(hook):
    guide_section(hook)
    assert callable(globals().get(f"test_hook_{hook}")), f"no test_hook_{hook}"
    assert hook in HOOKS.values()
