"""The command line end to end: records out, errors as one line with the right exit code."""

import csv
import io
import subprocess
import sys

import pytest

from nnsim.cli import main
from nnsim.engine.writers import read_records
from tests.helpers import run_cli as run

SMALL = ["--set", "data.samples=200", "--set", "model.hidden=[8,8]"]


def test_run_writes_one_jsonl_record_per_step(capsys):
    code, out, err = run(capsys, "run", *SMALL, "--steps", "12", "--format", "jsonl",
                         "--set", "train.eval_every=5")
    assert code == 0, err
    lines = read_records(out.splitlines())
    assert [r["step"] for r in lines] == list(range(1, 13))
    first = lines[0]
    assert {"step", "epoch", "loss", "accuracy", "lr", "val_loss", "val_accuracy",
            "grad_norm", "layers"} <= set(first)
    layer = first["layers"][0]
    assert {"act_mean", "act_std", "hist", "saturated", "dead", "grad_norm", "grad_in_norm",
            "update_ratio", "velocity_norm"} <= set(layer)
    assert [r["val_loss"] is not None for r in lines].count(True) == 2  # steps 5 and 10


def test_every_and_out(tmp_path, capsys):
    out_file = tmp_path / "run.jsonl"
    code, out, _ = run(capsys, "run", *SMALL, "--steps", "10", "--every", "4", "--out",
                       str(out_file))
    assert code == 0 and out == ""
    steps = [r["step"] for r in read_records(out_file.read_text().splitlines())]
    assert steps == [4, 8, 10]


def test_csv_and_table(capsys):
    code, out, _ = run(capsys, "run", *SMALL, "--steps", "3", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 3
    assert "layer1.grad_norm" in rows[0] and "layer3.velocity_norm" in rows[0]
    assert float(rows[2]["step"]) == 3
    code, out, _ = run(capsys, "run", *SMALL, "--steps", "3", "--format", "table")
    assert out.splitlines()[0].split()[:3] == ["step", "epoch", "loss"]
    assert len(out.splitlines()) == 4


def test_same_seed_same_output(capsys):
    _, a, _ = run(capsys, "run", *SMALL, "--steps", "5", "--format", "jsonl", "--seed", "9")
    _, b, _ = run(capsys, "run", *SMALL, "--steps", "5", "--format", "jsonl", "--seed", "9")
    _, c, _ = run(capsys, "run", *SMALL, "--steps", "5", "--format", "jsonl", "--seed", "10")
    assert a == b and a != c


@pytest.mark.parametrize("args,needle", [
    (["run", "--set", "model.activation=rleu"], "did you mean 'relu'"),
    (["run", "missing.toml"], "missing.toml: no such file"),
    (["run", "--steps", "x"], "argument --steps: invalid int value"),
    (["run", "--format", "xml"], "invalid choice: 'xml'"),
    (["run", "--every", "0"], "--every must be 1 or more"),
    (["run", "--bogus"], "unrecognized arguments: --bogus"),
    (["--set", "train.l2=-1"], "train.l2: expected a number in [0, 10], got -1"),
    (["runs"], "unknown command or config file 'runs' (did you mean 'run'?)"),
    (["missing.toml"], "missing.toml: no such file"),
])
def test_bad_input_is_one_line_with_exit_code_2(capsys, args, needle):
    code, out, err = run(capsys, *args)
    assert code == 2
    assert needle in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_divergence_exits_3_and_keeps_the_records_before(capsys):
    args = ["run", "--set", "optimizer.name=sgd", "--set", "optimizer.lr=10",
            "--set", "model.activation=relu", "--set", "model.initializer=he_normal",
            "--steps", "300", "--format", "jsonl"]
    code, out, err = run(capsys, *args)
    records = read_records(out.splitlines())
    assert code == 3
    assert records[-1]["nonfinite"] is not None
    assert all(r["nonfinite"] is None for r in records[:-1])
    assert f"diverged at step {records[-1]['step']}" in err
    code, out, _ = run(capsys, *args, "--on-divergence", "continue")
    assert code == 3 and len(read_records(out.splitlines())) == 300


def test_module_entry_and_version():
    result = subprocess.run([sys.executable, "-m", "nnsim", "--version"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("nnsim ")


def test_plugins_lists_every_family(capsys):
    code, out, _ = run(capsys, "plugins")
    assert code == 0
    for header in ("activations:", "initializers:", "normalizers:", "optimizers:", "datasets:"):
        assert header in out
    assert "lr = 0.05" in out  # momentum's declared default


def test_checkpoint_and_resume_continue_the_same_run(tmp_path, capsys):
    common = [*SMALL, "--set", "model.dropout=0.1", "--format", "jsonl"]
    _, straight, _ = run(capsys, "run", *common, "--steps", "20")
    code, first, _ = run(capsys, "run", *common, "--steps", "12", "--checkpoint",
                         str(tmp_path / "ck"), "--checkpoint-every", "5")
    assert code == 0 and (tmp_path / "ck" / "checkpoint.npz").exists()
    code, rest, err = run(capsys, "run", "--resume", str(tmp_path / "ck"), "--steps", "8",
                          "--format", "jsonl")
    assert code == 0, err
    assert read_records((first + rest).splitlines()) == read_records(straight.splitlines())
    assert read_records(rest.splitlines())[0]["step"] == 13


@pytest.mark.parametrize("args,needle", [
    (["--set", "seed=3"], "--resume takes --set only for optimizer hyperparameters"),
    (["--seed", "3"], "leave out CONFIG and --seed"),
    ([], "not a readable checkpoint"),
])
def test_resume_refuses_bad_input(tmp_path, capsys, args, needle):
    (tmp_path / "checkpoint.npz").write_bytes(b"junk")
    code, _, err = run(capsys, "run", "--resume", str(tmp_path), *args)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------- the subcommand table

def test_a_new_subcommand_is_one_table_entry(monkeypatch, capsys):
    from nnsim import cli

    seen = []

    def add(parser):
        parser.add_argument("--times", type=int, default=1)

    def hello(args):
        seen.append(args.times)
        print("hello " * args.times)
        return 0

    monkeypatch.setattr(cli, "COMMANDS", (*cli.COMMANDS, cli.Command("hello", "Say hello.",
                                                                        add, hello)))
    code, out, _ = run(capsys, "hello", "--times", "2")
    assert code == 0 and seen == [2] and out.startswith("hello hello")
    code, _, err = run(capsys, "hello", "--bogus")
    assert code == 2 and "nnsim hello: unrecognized arguments: --bogus" in err
    code, _, err = run(capsys, "helo")
    assert code == 2 and "(did you mean 'hello'?)" in err
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "  hello " in capsys.readouterr().out


def test_every_command_is_listed_in_the_help_with_its_one_line_help(capsys):
    from nnsim.cli import COMMANDS

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in COMMANDS:
        line = next(line for line in out.splitlines() if line.startswith(f"  {command.name} "))
        assert 20 < len(line) < 100 and line.split()[1][0].isupper()
    assert {"run", "config", "new-plugin", "serve"} <= {c.name for c in COMMANDS}


def test_new_plugin_without_its_module_says_so_in_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "nnsim.scaffold", None)  # as if it were missing
    for args in (["new-plugin", "mine"], ["new-plugin", "--help"]):
        code, out, err = run(capsys, *args)
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and "nnsim.scaffold is missing" in err


def test_new_plugin_hands_its_arguments_to_the_scaffold_module(monkeypatch, capsys):
    import types

    module = types.ModuleType("nnsim.scaffold")
    module.add_arguments = lambda parser: parser.add_argument("name")
    module.run = lambda args: print(f"made {args.name}") or 0
    monkeypatch.setitem(sys.modules, "nnsim.scaffold", module)
    code, out, _ = run(capsys, "new-plugin", "nnsim-mine")
    assert code == 0 and out == "made nnsim-mine\n"


def test_version(capsys):
    from nnsim import __version__

    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0 and capsys.readouterr().out == f"nnsim {__version__}\n"


# ---------------------------------------------------------------- nnsim config

def test_config_prints_the_effective_config_as_toml_that_loads_back(tmp_path, capsys):
    import tomllib

    from nnsim.config import Config, load

    path = tmp_path / "exp.toml"
    path.write_text('seed = 4\n[model]\nactivation = "relu"\n')
    sets = ["--set", "optimizer.name=adam", "--set", "model.hidden=[16,8]"]
    code, out, err = run(capsys, "config", "--config", str(path), *sets)
    assert code == 0, err
    printed = tomllib.loads(out)
    assert printed["seed"] == 4 and printed["model"]["activation"] == "relu"
    assert printed["optimizer"]["lr"] == 0.001  # adam's own default, not momentum's
    assert Config.from_dict(printed) == load(path, [s for s in sets if s != "--set"])
    again = tmp_path / "again.toml"
    again.write_text(out)
    assert run(capsys, "config", str(again))[1] == out
    assert run(capsys, "config", str(path), *sets)[1] == out


@pytest.mark.parametrize("args,needle", [
    (["config", "a.toml", "--config", "b.toml"], "give the file once"),
    (["config", "--set", "train.steps=-1"], "train.steps: expected"),
    (["config", "--config", "missing.toml"], "missing.toml: no such file"),
])
def test_config_refuses_bad_input_in_one_line(capsys, args, needle):
    code, out, err = run(capsys, *args)
    assert code == 2 and out == "" and needle in err and err.count("\n") == 1


@pytest.mark.parametrize("argv", [
    ["run", "--seed", "x" * 100_000], ["check-plugin", "x" * 100_000],
    ["lesson", "x" * 100_000, "--headless"],
    ["sweep", "--grid", "seed=1,2", "--scheduler", f"tcp://{'x' * 100_000}:1"]])
def test_an_error_echoes_a_huge_argument_in_part(argv, capsys):
    assert main(argv) in (1, 2)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) <= 1001 and "characters left out" in err
