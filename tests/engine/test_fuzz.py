"""Property-based: any valid config runs or diverges cleanly; any invalid one is a ConfigError."""

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnsim.config import Config
from nnsim.engine import Simulation
from nnsim.errors import ConfigError
from nnsim.pluginmanager import BUILTIN, default_registry

REG = default_registry()


def names(family):
    return sorted(n for n, e in REG.families[family].items() if e.source == BUILTIN)


def hyper_value(draw, hyper):
    if hyper.choices is not None:
        return draw(st.sampled_from(hyper.choices))
    if isinstance(hyper.default, bool):
        return draw(st.booleans())
    low = hyper.low if hyper.low is not None else -10.0
    high = hyper.high if hyper.high is not None else 10.0
    if isinstance(hyper.default, int):
        return draw(st.integers(int(low), int(min(high, low + 50))))
    if low > 0 and high / low > 100:  # rates and the like: log-uniform
        value = math.exp(draw(st.floats(math.log(low), math.log(high))))
    else:
        value = draw(st.floats(low, high, allow_nan=False))
    if hyper.low_open and value <= low:
        value = low + (high - low) * 1e-3
    if hyper.high_open and value >= high:
        value = high - (high - low) * 1e-3
    return min(max(value, low), high)


@st.composite
def component(draw, family, exclude=()):
    name = draw(st.sampled_from([n for n in names(family) if n not in exclude]))
    cls = REG.get(family, name)
    table = {"name": name}
    for key, hyper in cls.hyperparameters.items():
        if draw(st.booleans()):
            table[key] = hyper_value(draw, hyper)
    return table


@st.composite
def valid_configs(draw):
    data = draw(component("dataset", exclude=("digits",)))
    data["samples"] = draw(st.integers(40, 200))
    if data["name"] == "teacher":
        data["dim"] = draw(st.integers(1, 8))
        data["width"] = draw(st.integers(1, 16))
    data["validation"] = draw(st.sampled_from([0.0, 0.2, 0.5]))
    data["preprocess"] = draw(st.sampled_from(["none", "standardize", "whiten"]))
    data["augment"] = draw(st.sampled_from([0.0, 0.1, 1.0]))
    n_train = data["samples"] - round(data["samples"] * data["validation"])
    normalizer = draw(component("normalizer"))
    name = normalizer if isinstance(normalizer, str) else normalizer["name"]
    smallest_batch = 2 if name == "batchnorm" else 1  # batch norm refuses 1 example
    return {
        "seed": draw(st.integers(0, 2**32)),
        "data": data,
        "model": {
            "hidden": draw(st.lists(st.integers(1, 16), min_size=1, max_size=4)),
            "activation": draw(component("activation")),
            "initializer": draw(component("initializer")),
            "bias_initializer": draw(component("initializer", exclude=("orthogonal",))),
            "normalizer": normalizer,
            "norm_position": draw(st.sampled_from(["before", "after"])),
            "dropout": draw(st.sampled_from([0.0, 0.3, 0.9])),
            "dtype": draw(st.sampled_from(["float32", "float64"])),
        },
        "optimizer": draw(component("optimizer")),
        "train": {
            "batch_size": draw(st.integers(smallest_batch, min(64, n_train))),
            "l1": draw(st.sampled_from([0.0, 0.01])),
            "l2": draw(st.sampled_from([0.0, 0.1])),
            "clip_norm": draw(st.sampled_from([0.0, 1.0])),
            "eval_every": draw(st.sampled_from([0, 1, 2])),
            "early_stopping": draw(st.sampled_from([0, 1])),
        },
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=valid_configs())
def test_any_valid_config_runs_or_diverges_cleanly(raw):
    sim = Simulation(Config.from_dict(raw))
    records = sim.run(4)
    assert 1 <= len(records) <= 4
    last = records[-1]
    if last.nonfinite is not None:
        assert sim.divergence is not None and sim.divergence.step == last.step
        assert all(r.nonfinite is None for r in records[:-1])
    else:
        assert math.isfinite(last.loss)
        assert np.isfinite(sim.net.params).all()
        assert len(last.layers) == len(raw["model"]["hidden"]) + 1
    assert len(records) == 4 or last.nonfinite is not None or sim.stopped


CORRUPTIONS = [
    ("model", "activation", "no_such_activation"),
    ("model", "hidden", "wide"),
    ("model", "hidden", [0]),
    ("model", "dropout", 1.5),
    ("model", "dtype", "float8"),
    ("model", "colour", "blue"),
    ("optimizer", "lr", -1.0),
    ("optimizer", "lr", "fast"),
    ("optimizer", "name", 3),
    ("train", "batch_size", 0),
    ("train", "batch_size", 2.5),
    ("train", "l2", float("nan")),
    ("data", "preprocess", "whitening"),
    ("data", "samples", -1),
    ("data", "name", "mnist"),
    ("extra_section", "x", 1),
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=valid_configs(), corruption=st.sampled_from(CORRUPTIONS))
def test_any_invalid_config_is_a_one_line_config_error(raw, corruption):
    section, key, value = corruption
    raw.setdefault(section, {})
    raw[section][key] = value
    try:
        Config.from_dict(raw)
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message
        assert message.startswith(section) or message.startswith(f"{section}.")
    else:
        raise AssertionError(f"{section}.{key} = {value!r} was accepted")
