"""Numbers for people in every CLI output: the table of `nnsim run`, its progress bar, the
compare and sweep tables; and a table with a readable number of rows."""

import io
import math
from types import SimpleNamespace

import pytest

from nnsim.cli import Progress, table_every
from nnsim.formatting import RecordTable, human, interval
from tests.helpers import run_cli as run

SMALL = ["--set", "data.samples=200", "--set", "model.hidden=[8,8]"]


@pytest.mark.parametrize("value,text", [
    (1_000_000, "1,000,000"), (1e6, "1,000,000"), (2**63 - 1, "9.22e+18"),
    (39180727639793152819200.0, "3.92e+22"), (float("nan"), "nan"), ("nan", "nan"),
    (float("-inf"), "-inf"), (None, "-"), (1.0986123, "1.099"), (0.05, "0.05"),
    (1e-5, "1e-05"), (12345.6, "12,346"), (0, "0"), (-3.5, "-3.5"), (2000, "2,000"),
])
def test_human(value, text):
    assert human(value) == text


def test_interval():
    assert interval(0, 1e6) == "[0, 1,000,000]"
    assert interval(0, 10, low_open=True) == "(0, 10]"
    assert interval(1, None) == "[1, inf)"


def record(step, loss, nonfinite=None):
    return SimpleNamespace(step=step, epoch=step / 12.5, loss=loss, accuracy=0.5,
                           val_loss=None, val_accuracy=None, grad_norm=loss, nonfinite=nonfinite)


def test_the_table_writes_huge_and_non_finite_numbers_for_people():
    out = io.StringIO()
    table = RecordTable(out)
    table.write(record(1_000, 39180727639793152819200.0))
    table.write(record(1_001, math.nan, "loss"))
    header, huge, nan = out.getvalue().splitlines()
    assert header.split() == ["step", "epoch", "loss", "acc", "val_loss", "val_acc",
                              "grad_norm"]
    assert huge.split() == ["1,000", "80", "3.92e+22", "0.500", "-", "-", "3.92e+22"]
    assert nan.split()[:3] == ["1,001", "80.08", "nan"] and nan.endswith("non-finite loss")
    assert len({len(line.rstrip()) for line in (header, huge)}) == 1  # aligned


@pytest.mark.parametrize("steps", [20, 21, 49, 50, 51, 99, 100, 101, 250, 999, 1000, 2000,
                                   3001, 10**5, 10**6 + 7, 10**9])
def test_a_table_has_20_to_50_rows_for_any_number_of_steps(steps):
    every = table_every(steps)
    assert 20 <= steps // every <= 50
    assert str(every).strip("0") in ("1", "2", "5")  # 1, 2, 5, 10, 20, 50, ...
    assert table_every(7) == 1


def test_run_table_rows_follow_every_or_stay_readable(capsys):
    code, out, _ = run(capsys, "run", *SMALL, "--steps", "1003", "--format", "table",
                       "--no-telemetry")
    steps = [int(line.split()[0].replace(",", "")) for line in out.splitlines()[1:]]
    assert code == 0 and 20 <= len(steps) <= 51 and steps[-1] == 1003
    assert steps[:3] == [50, 100, 150]
    code, out, _ = run(capsys, "run", *SMALL, "--steps", "30", "--every", "10", "--format",
                       "table")
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["10", "20", "30"]
    code, out, _ = run(capsys, "run", *SMALL, "--steps", "12", "--format", "jsonl")
    assert len([line for line in out.splitlines() if '"step"' in line]) == 12  # jsonl: all


def screen(text: str) -> str:
    """What a terminal line shows after `text`: each \\r returns to the line's start and
    what follows is written over what was there."""
    shown: list[str] = []
    for part in text.split("\r"):
        shown[:len(part)] = list(part)
    return "".join(shown)


def test_the_progress_bar_leaves_no_stray_character(monkeypatch):
    clock = iter([0.0, 1.0, 1000.0, 1000.5])
    monkeypatch.setattr("nnsim.cli.time.perf_counter", lambda: next(clock))
    stream = io.StringIO()
    bar = Progress(2000, stream)
    bar.update(record(1000, 12345.678), force=True)  # 1,000 steps/s, loss 12,346
    bar.update(record(1001, 0.25), force=True)  # 1 steps/s, loss 0.25: a shorter line
    bar.update(record(1002, 0.5), force=True)
    lines = [part for part in stream.getvalue().split("\r") if part]
    assert "1,000 steps/s" in lines[0] and "1 steps/s" in lines[1]
    assert len(lines[0].rstrip()) > len(lines[1].rstrip())
    assert screen("\r".join(lines[:2])).rstrip() == lines[1].rstrip()
    assert screen(stream.getvalue()).rstrip() == lines[-1].rstrip()
    assert "1,002/2,000" in lines[-1] and "loss 0.5 " in lines[-1]


def test_compare_and_sweep_tables_print_numbers_for_people(capsys, tmp_path):
    from nnsim.sweep import RunSummary, summary_table

    fields = RunSummary.__dataclass_fields__
    base = {name: None for name in fields}
    base.update(run="lr=10", steps=20_000, lr=10.0, loss=39180727639793152819200.0,
                accuracy=float("nan"), val_loss=None, val_accuracy=None,
                outcome="diverged at step 7", skipped=False)
    line = summary_table([RunSummary(**{k: v for k, v in base.items() if k in fields})])
    row = line.splitlines()[1].split()
    assert row[1:5] == ["20,000", "10", "3.92e+22", "nan"]
    code, out, _ = run(capsys, "compare", *SMALL, "--vary", "optimizer.lr=0.05,10",
                       "--steps", "1200", "--set", "optimizer.name=sgd",
                       "--set", "model.activation=relu")
    assert code == 0 and "1,200" in out and "e+06" not in out
    assert not any(len(word) > 12 for word in out.split())
