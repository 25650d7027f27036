"""nnsim-extras, tested with nnsim's own conformance kit, and found by nnsim as installed."""

import json
import subprocess
import sys

import numpy as np
import pytest

from nnsim.config import load
from nnsim.engine import Simulation
from nnsim.testing import assert_plugin_conforms, check_plugin


def test_plugin_conforms():
    assert_plugin_conforms("nnsim-extras")  # as nnsim loads it: every component, every check


def test_every_component_is_checked():
    checked = {c.component for c in check_plugin("nnsim-extras")}
    assert checked == {"activation 'swish'", "optimizer 'lion'", "normalizer 'groupnorm'",
                       "initializer 'sparse'"}


def test_installed_plugin_is_discovered_with_its_distribution():
    out = subprocess.run([sys.executable, "-m", "nnsim", "plugins", "--json"],
                         capture_output=True, text=True, check=True).stdout
    report = json.loads(out)
    sources = {(family, e["name"]): e["source"] for family, entries in report["families"].items()
               for e in entries}
    for key in [("activation", "swish"), ("optimizer", "lion"), ("normalizer", "groupnorm"),
                ("initializer", "sparse")]:
        assert sources[key] == "nnsim-extras 0.1.0"


def test_trains_with_every_extra():
    sim = Simulation(load(sets=["model.activation=swish", "optimizer.name=lion",
                                "optimizer.lr=0.003", "model.normalizer=groupnorm",
                                "model.initializer=sparse", "model.hidden=[32,32]",
                                "data.name=xor"]))
    records = sim.run(300)
    assert records[-1].nonfinite is None
    assert np.mean([r.loss for r in records[-20:]]) < 0.5 * records[0].loss
    layer = records[-1].layers[0]
    assert {name for name, _ in layer.learnable} == {"gamma", "beta", "act_beta"}


def test_groupnorm_refuses_a_width_it_cannot_split():
    from nnsim.errors import PluginError

    with pytest.raises(PluginError, match="width 30 is not divisible by 4 groups"):
        Simulation(load(sets=["model.normalizer=groupnorm", "model.hidden=[30]"]))
