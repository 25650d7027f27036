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
    (["model.hidden=[0]"], "model.hidden: expected a list of 1 to 64 widths"),
    (["model.hidden=3"], "model.hidden: expected a list"),
    (["train.batch_size=0"], "train.batch_size: expected a value in [1, 1e+06], got 0"),
    (["train.batch_size=2.5"], "train.batch_size: expected an integer, got 2.5"),
    (["optimizer.lr=0"], "optimizer.lr: expected a number in (0, 10], got 0.0"),
    (["optimizer.lr=fast"], "optimizer.lr: expected a number, got 'fast'"),
    (["model.activation.slope=2"], "model.activation.slope: activation 'tanh' has no hyperparameter"),
    (["model.activation=leaky_relu", "model.activation.slope=2"],
     "model.activation.slope: expected a number in [0, 1], got 2.0"),
    (["model.dropout=1"], "model.dropout: expected a value in [0, 1), got 1"),
    (["model.dtype=float16"], "model.dtype: expected one of float32, float64, got 'float16'"),
    (["data.preprocess=whitten"], "(did you mean 'whiten'?)"),
    (["data.name=spirals"], "data.name: unknown dataset 'spirals' (did you mean 'spiral'?)"),
    (["data.samples=-5"], "data.samples: expected an integer in [8, 1e+06], got -5"),
    (["seed=-1"], "seed: expected a value in"),
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
