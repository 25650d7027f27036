"""nnsim compare: lockstep runs from one seed that differ only where asked."""

import json

import numpy as np
import pytest

from nnsim.cli import main
from nnsim.compare import compare, parse_vary, split_values, variants
from nnsim.errors import ConfigError
from tests.helpers import small_config


def test_values_split_on_top_level_commas_only():
    assert split_values("sgd,momentum") == ["sgd", "momentum"]
    assert split_values("[16,16],[32, 32, 32]") == ["[16,16]", "[32, 32, 32]"]
    assert split_values('{name="normal", std=0.1},xavier_normal') == [
        '{name="normal", std=0.1}', "xavier_normal"]
    assert parse_vary(["model.hidden=[8],[4,4]"]) == [("model.hidden", [[8], [4, 4]])]
    with pytest.raises(ConfigError, match="expected KEY=V1,V2"):
        parse_vary(["optimizer.name"])


def test_runs_share_data_batches_and_initial_weights():
    runs = variants(small_config(), parse_vary(["optimizer.name=sgd,momentum",
                                                "model.activation=tanh,relu"]))
    assert [label for label, _ in runs] == [
        "optimizer=sgd activation=tanh", "optimizer=sgd activation=relu",
        "optimizer=momentum activation=tanh", "optimizer=momentum activation=relu"]
    result = compare(runs, 1)
    sims = list(result.sims.values())
    first = sims[0]
    for sim in sims[1:]:
        assert np.array_equal(sim.data.train_x, first.data.train_x)
        assert np.array_equal(sim.data._order, first.data._order)  # same minibatch order
    fresh = [type(first)(config) for _, config in runs]
    for sim in fresh[1:]:
        assert np.array_equal(sim.net.params, fresh[0].net.params)  # same initial weights
    assert all(len(r) == 1 for r in result.records.values())


def test_compare_command(capsys):
    code = main(["compare", "--set", "data.samples=200", "--set", "model.hidden=[8,8]",
                 "--vary", "optimizer.name=sgd,momentum", "--steps", "30"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[1].startswith("optimizer=sgd")
    assert "grad_norm by layer" in out and "out" in out
    code = main(["compare", "--set", "model.hidden=[8]", "--vary", "model.activation=relu,tanh",
                 "--steps", "5", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and set(data) == {"activation=relu", "activation=tanh"}
    assert all(d["step"] == 5 for d in data.values())
    assert main(["compare"]) == 2
    assert "give at least one --vary" in capsys.readouterr().err
    assert main(["compare", "--vary", "model.activation=rleu,tanh"]) == 2
    assert "did you mean 'relu'" in capsys.readouterr().err


def test_varying_the_optimizer_gives_each_its_own_lr_unless_one_is_set(capsys):
    runs = dict(variants(small_config(), parse_vary(["optimizer.name=sgd,adam"])))
    assert runs["optimizer=sgd"].optimizer.hypers["lr"] == 0.1
    assert runs["optimizer=adam"].optimizer.hypers["lr"] == 0.001  # not momentum's 0.05
    runs = dict(variants(small_config(("optimizer.lr", 0.02)),
                         parse_vary(["optimizer.name=sgd,adam"])))
    assert [c.optimizer.hypers["lr"] for c in runs.values()] == [0.02, 0.02]
    assert main(["compare", "--set", "model.hidden=[8]", "--set", "data.samples=200",
                 "--vary", "optimizer.name=sgd,adam", "--steps", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["run", "step", "lr"]
    assert lines[1].split()[2] == "0.1" and lines[2].split()[2] == "0.001"


def test_a_diverged_run_prints_nan_in_the_table(capsys):
    code = main(["compare", "--set", "optimizer.name=sgd", "--set", "model.activation=relu",
                 "--vary", "optimizer.lr=0.05,5", "--steps", "30"])
    out = capsys.readouterr().out
    assert code == 0
    row = out.splitlines()[2]
    assert row.startswith("lr=5") and " nan " in row and "diverged at 8" in row


def test_huge_numbers_keep_their_columns_apart(capsys):
    # a diverging run's statistics reach 1e12 and more: each stays in its own column
    code = main(["compare", "--set", "optimizer.name=sgd", "--set", "model.activation=relu",
                 "--vary", "optimizer.lr=0.1,10", "--steps", "50"])
    out = capsys.readouterr().out
    assert code == 0
    tables = [t.splitlines() for t in out.split("\n\n")[1:]]
    assert tables
    for table in tables:
        width = len(table[1].split())  # 'run L1 … out'
        for row in table[2:]:
            assert len(row.split()) == width, row
            assert all(len(cell) < 10 for cell in row.split()[1:]), row


def test_fit_never_fills_its_column():
    from nnsim.formatting import fit

    for value in (3655286264966.0, 2429918434.9, 1.5e300, -7.25e-300, 123456789, 0.5, None,
                  float("nan"), float("-inf")):
        for width in (9, 10):  # (-7e-300 and a gap need 8)
            text = fit(value, width, 3)
            assert len(text) == width and text[0] == " ", (value, width, text)


@pytest.mark.parametrize("name,option", [("compare", "--vary"), ("sweep", "--grid")])
def test_a_set_hyperparameter_of_the_varied_components_is_given_to_every_run(name, option):
    """`--set model.activation.slope=0.3` with the activation varied between two that take
    a slope: the default activation (tanh) has none, which refused the whole command."""
    from nnsim.cli import _grid_config, command, parse

    argv = ["--set", "model.activation.slope=0.3", option,
            "model.activation=leaky_relu,prelu", "--set", "train.steps=7"]
    _, _, runs = _grid_config(parse(command(name), argv), argv[3:4], option)
    assert [(c.model.activation.name, c.model.activation.hypers["slope"], c.train.steps)
            for _, c in runs] == [("leaky_relu", 0.3, 7), ("prelu", 0.3, 7)]
    argv[3] = "model.activation=tanh,prelu"  # a run it does not fit: refused, naming it
    with pytest.raises(ConfigError, match="activation 'tanh' has no hyperparameter 'slope'"):
        _grid_config(parse(command(name), argv), argv[3:4], option)
