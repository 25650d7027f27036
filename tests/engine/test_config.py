"""Config files, --set overrides and their error messages."""

import pytest

from nnsim.config import Config, load, parse_set
from nnsim.errors import ConfigError


@pytest.mark.parametrize("item,key,value", [
    ("model.activation=relu", "model.activation", "relu"),
    ("model.hidden=[256,256]", "model.hidden", [256, 256]),
    ('model.initializer={name="normal", std=0.01}', "model.initializer",
     {"name": "normal", "std": 0.01}),
    ("optimizer.lr=0.1", "optimizer.lr", 0.1),
    ("seed=7", "seed", 7),
    ("train.eval_every = 5", "train.eval_every", 5),
])
def test_set_values_are_read_as_toml_then_as_strings(item, key, value):
    assert parse_set(item) == (key, value)


def test_set_builds_a_component_table():
    config = load(sets=["model.initializer=normal", "model.initializer.std=0.5"])
    assert config.model.initializer.name == "normal"
    assert config.model.initializer.hypers == {"std": 0.5, "mean": 0.0}


def test_changing_a_component_forgets_the_old_ones_hyperparameters(tmp_path):
    config = load(sets=["optimizer.name=momentum", "optimizer.name=adam"])
    assert config.optimizer.name == "adam" and "beta" not in config.optimizer.hypers
    assert config.optimizer.hypers["lr"] == 0.001  # adam's own default
    path = tmp_path / "exp.toml"
    path.write_text('[optimizer]\nname = "momentum"\nbeta = 0.5\n')
    config = load(path, ["optimizer.name=adam"])  # the file's beta belongs to momentum
    assert config.optimizer.hypers == {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-08}
    # a hyperparameter given with the --set list belongs to the component it names, so one
    # the new component lacks is an error whatever the order
    for sets in (["optimizer.beta=0.5", "optimizer.name=adam"],
                 ["optimizer.name=adam", "optimizer.beta=0.5"]):
        with pytest.raises(ConfigError, match="optimizer.beta: optimizer 'adam' has no"):
            load(sets=sets)


@pytest.mark.parametrize("sets,expected", [
    (["model.activation.slope=0.1", "model.activation=leaky_relu"], ("leaky_relu", 0.1)),
    (["model.activation=leaky_relu", "model.activation.slope=0.1"], ("leaky_relu", 0.1)),
    (["model.activation.slope=0.1", "model.activation.name=leaky_relu"], ("leaky_relu", 0.1)),
    (["model.activation.slope=0.1", 'model.activation={name="leaky_relu"}'],
     ("leaky_relu", 0.1)),
    (['model.activation={name="leaky_relu"}', "model.activation.slope=0.1"],
     ("leaky_relu", 0.1)),
    (["optimizer.lr=0.01", "optimizer.name=adam"], ("adam", 0.01)),
    (["optimizer.name=adam", "optimizer.lr=0.01"], ("adam", 0.01)),
])
def test_set_does_not_depend_on_order(sets, expected):
    config = load(sets=sets)
    spec = config.optimizer if sets[0].startswith("optimizer") else config.model.activation
    value = spec.hypers["lr" if spec is config.optimizer else "slope"]
    assert (spec.name, value) == expected


def test_a_new_component_starts_from_its_own_defaults_everywhere():
    # one rule for run --set, compare --vary, sweep --grid and the TUI's settings: the
    # previous optimizer's default lr does not ride along, an explicit one does
    assert load(sets=["optimizer.name=adam"]).optimizer.hypers["lr"] == 0.001
    assert Config.default().with_overrides([("optimizer.name", "adam")]).optimizer.hypers[
        "lr"] == 0.001
    explicit = load(sets=["optimizer.lr=0.01"])
    assert explicit.with_overrides([("optimizer.name", "adam")]).optimizer.hypers["lr"] == 0.01
    leaky = load(sets=["model.activation=leaky_relu", "model.activation.slope=0.2"])
    assert leaky.with_overrides([("model.activation", "leaky_relu")]).model.activation.hypers \
        == {"slope": 0.2}  # the same component again keeps its explicit settings
    assert leaky.with_overrides([("model.activation", "elu")]).model.activation.name == "elu"


def test_file_and_overrides(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text('seed = 5\n[model]\nactivation = {name = "leaky_relu", slope = 0.2}\n'
                    '[optimizer]\nname = "sgd"\nlr = 0.3\n')
    config = load(path, ["optimizer.lr=0.4"])
    assert config.seed == 5 and config.model.activation.hypers == {"slope": 0.2}
    assert config.optimizer.hypers == {"lr": 0.4}


@pytest.mark.parametrize("sets,message", [
    (["model.activation=rleu"], "model.activation: unknown activation 'rleu' (did you mean 'relu'?)"),
    (["modle.hidden=[3]"], "modle: unknown section or key (did you mean 'model'?)"),
    (["model.hiden=[3]"], "model.hiden: unknown key (did you mean 'hidden'?)"),
    (["model.hidden=[0]"], "model.hidden: expected a list of 1 to 64 integers in [1, 8,192], got [0]"),
    (["model.hidden=3"], "model.hidden: expected a list"),
    (["train.batch_size=0"], "train.batch_size: expected an integer in [1, 1,000,000], got 0"),
    (["train.batch_size=2.5"], "train.batch_size: expected an integer in [1, 1,000,000], got 2.5"),
    (["optimizer.lr=0"], "optimizer.lr: expected a number in (0, 10], got 0"),
    (["optimizer.lr=fast"], "optimizer.lr: expected a number in (0, 10], got 'fast'"),
    (["model.activation.slope=2"], "model.activation.slope: activation 'tanh' has no hyperparameter"),
    (["model.activation=leaky_relu", "model.activation.slope=2"],
     "model.activation.slope: expected a number in [0, 1], got 2"),
    (["model.dropout=1"], "model.dropout: expected a number in [0, 1), got 1"),
    (["model.dtype=float16"], "model.dtype: expected one of float32, float64, got 'float16'"),
    (["data.preprocess=whitten"], "(did you mean 'whiten'?)"),
    (["data.name=spirals"], "data.name: unknown dataset 'spirals' (did you mean 'spiral'?)"),
    (["data.samples=-5"], "data.samples: expected an integer in [8, 1,000,000], got -5"),
    (["seed=-1"], "seed: expected an integer in [0, 9.22e+18], got -1"),
    (["oops"], "--set: expected KEY=VALUE"),
])
def test_bad_values_name_the_key_and_what_would_be_right(sets, message):
    with pytest.raises(ConfigError) as info:
        load(sets=sets)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="missing.toml: no such file"):
        load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nhidden = [1,\n")
    with pytest.raises(ConfigError, match=r"malformed TOML: .*end of document, line 2"):
        load(bad)
    bad.write_text("seed = 1\n[model\nhidden = [1]\n")
    with pytest.raises(ConfigError, match=r"malformed TOML: .*line 2, column 7"):
        load(bad)
    with pytest.raises(ConfigError, match="is a folder"):
        load(tmp_path)


def test_to_dict_lists_every_hyperparameter():
    d = Config.default().to_dict()
    assert d["optimizer"] == {"name": "momentum", "lr": 0.05, "beta": 0.9}
    assert d["data"]["name"] == "spiral" and "samples" in d["data"]


def test_batch_norm_with_one_example_per_batch_is_refused():
    import subprocess
    import sys

    message = ("train.batch_size: batch norm needs more than 1 example per batch when training "
               "(a single example normalizes to 0 in every unit); use 2 or more, or "
               "model.normalizer=layernorm")
    for sets in (["model.normalizer=batchnorm", "train.batch_size=1"],
                 ["train.batch_size=1", "model.normalizer=batchnorm"]):
        with pytest.raises(ConfigError) as info:
            load(sets=sets)
        assert str(info.value) == message
    load(sets=["model.normalizer=batchnorm", "train.batch_size=2"])
    load(sets=["model.normalizer=layernorm", "train.batch_size=1"])
    load(sets=["train.batch_size=1"])
    result = subprocess.run([sys.executable, "-m", "nnsim", "run", "--steps", "1", "--set",
                             "model.normalizer=batchnorm", "--set", "train.batch_size=1"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == f"nnsim: error: {message}" and result.stdout == ""


# ---------------------------------------------------------------- one rule, one wording

def _declared():
    """(dotted key, declaration) of every config key and of the default components'
    hyperparameters that sit in a section (dataset, optimizer)."""
    from nnsim.config import KEYS, SEED
    from nnsim.pluginmanager import default_registry

    registry = default_registry()
    found = [("seed", SEED)]
    found += [(f"{section}.{key}", spec) for section, keys in KEYS.items()
              for key, spec in keys.items() if spec.family is None]
    for section, family in (("data", "dataset"), ("optimizer", "optimizer")):
        name = KEYS[section]["name"].default
        found += [(f"{section}.{key}", spec)
                  for key, spec in registry.get(family, name).hyperparameters.items()]
    return found


def _bad_values(spec):
    if getattr(spec, "length", None):
        return [3, [], [0], [1.5], [spec.high + 1], [8] * (spec.length[1] + 1), ["8"]]
    if spec.choices is not None:
        return ["nope", 3, True]
    values = ["x", True, None]
    if spec.kind is int:
        values += [2.5, float("nan"), float("inf")]
    if spec.kind is float:
        values += [float("nan"), float("inf"), float("-inf")]
    if spec.low is not None:
        values.append(spec.low if spec.low_open else spec.low - 1)
    if spec.high is not None:
        values.append(spec.high if spec.high_open else spec.high + 1)
    return values


def _raw(key, value):
    section, _, rest = key.partition(".")
    return {section: value} if not rest else {section: {rest: value}}


CASES = [(key, spec, value) for key, spec in _declared() for value in _bad_values(spec)
         if value is not None]


def test_every_key_is_in_the_table():
    keys = {key for key, _, _ in CASES}
    assert {"seed", "train.batch_size", "data.samples", "optimizer.lr", "model.hidden",
            "model.dtype", "data.validation", "model.dropout", "train.clip_norm"} <= keys
    assert len(CASES) > 80


@pytest.mark.parametrize("key,spec,value", CASES, ids=[f"{k}={v!r}" for k, _, v in CASES])
def test_every_key_refuses_a_bad_value_with_one_wording(key, spec, value):
    from nnsim.config import expected

    with pytest.raises(ConfigError) as info:
        Config.from_dict(_raw(key, value))
    message = str(info.value)
    assert message.startswith(f"{key}: expected {expected(spec)}, got {value!r}")
    assert "\n" not in message and " e+" not in message and "e+06" not in message


@pytest.mark.parametrize("key", ["train.batch_size", "data.samples", "seed", "train.steps",
                                 "train.eval_every", "train.early_stopping"])
def test_a_whole_float_is_an_integer_for_every_integer_key(key):
    """The rule plugins' hyperparameters always had (data.samples=500.0 is 500), now for
    nnsim's own keys too (train.batch_size=32.0 used to be refused)."""
    config = load(sets=[f"{key}=32.0"])
    section, _, rest = key.partition(".")
    value = config.to_dict()[section][rest] if rest else config.to_dict()[section]
    assert value == 32 and type(value) is int
    with pytest.raises(ConfigError, match=rf"^{key}: expected an integer in .*, got 32.5$"):
        load(sets=[f"{key}=32.5"])


def test_ranges_read_as_numbers_for_people():
    from nnsim.config import KEYS, SEED, expected

    assert expected(KEYS["train"]["batch_size"]) == "an integer in [1, 1,000,000]"
    assert expected(SEED) == "an integer in [0, 9.22e+18]"
    assert expected(KEYS["model"]["dropout"]) == "a number in [0, 1)"
    assert expected(KEYS["model"]["hidden"]) == "a list of 1 to 64 integers in [1, 8,192]"
    assert expected(KEYS["data"]["preprocess"]) == "one of none, standardize, whiten"


@pytest.mark.parametrize("value, text", [(-1, "-1"), (True, "true"), ("fast", '"fast"'),
                                         (1e9, "1e9"), (float("nan"), "nan")])
def test_a_live_change_is_refused_in_the_words_of_a_config(value, text):
    from nnsim.engine import Simulation
    from nnsim.errors import NnsimError

    with pytest.raises(NnsimError) as at_load:
        load(sets=[f"optimizer.lr={text}"])
    with pytest.raises(NnsimError) as live:
        Simulation(load()).set_hyper("lr", value)
    assert str(live.value) == str(at_load.value)


def test_ranges_read_with_thousands_in_every_message():
    from nnsim.components import Hyper

    assert Hyper(1, 1, 1_000_000).range_text() == "an integer in [1, 1,000,000]"
