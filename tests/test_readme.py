"""The README's plugin example works as printed, and its references cover every key and field."""

import re
from pathlib import Path

import numpy as np

from nnsim.components import Activation
from nnsim.config import SCHEMA
from nnsim.engine import Simulation
from nnsim.engine.records import LAYER_SCALARS
from nnsim.engine.writers import GLOBAL_FIELDS
from tests.helpers import assert_close, numeric_grad

README = (Path(__file__).parent.parent / "README.md").read_text()


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, re.S)


def test_the_plugin_example_registers_and_passes_a_gradient_check():
    block = next(b for b in python_blocks() if "register_activations" in b)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    found = []
    namespace["register_activations"](found.append)
    (cls,) = found
    assert issubclass(cls, Activation) and cls.name == "swish"
    act = cls()
    rng = np.random.default_rng(0)
    act.params = {"beta": rng.uniform(0.5, 2.0, 3)}
    x, up = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))

    def f():
        return float(np.sum(act.forward(x) * up))

    grad_x, grads = act.backward(x, act.forward(x), up)
    assert_close(grad_x, numeric_grad(f, x))
    assert_close(grads["beta"], numeric_grad(f, act.params["beta"]))


def test_the_api_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # it saves a checkpoint
    block = next(b for b in python_blocks() if "Simulation(" in b)
    exec(compile(block.replace("sim.run(500)", "sim.run(5)"), "README.md", "exec"), {})
    assert (tmp_path / "ck" / "checkpoint.npz").exists()


def test_every_config_key_and_record_field_is_documented():
    for section, table in SCHEMA.items():
        for key in table:
            assert f"`{section}.{key}`" in README, f"{section}.{key} is not in the README"
    for name in (*GLOBAL_FIELDS, *LAYER_SCALARS, "hist", "hist_range"):
        assert f"`{name}`" in README or f"`{name}`," in README, f"{name} is undocumented"
    record = Simulation().step().to_dict()
    layer_fields = set(record["layers"][0])
    documented = {f for f in layer_fields if f"`{f}`" in README or f"{f}`" in README}
    assert {"velocity_norm"} <= layer_fields
    assert layer_fields - documented <= {"velocity_norm"}  # covered by `{state}_norm`
