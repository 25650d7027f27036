"""nnsim sweep: a grid in worker processes or on a Dask cluster; interrupted sweeps resume."""

import csv
import json
from concurrent.futures import ThreadPoolExecutor

from nnsim.cli import main
from nnsim.engine import Simulation
from nnsim.sweep import slug, sweep
from tests.helpers import small_config

GRID = ["model.activation=tanh,relu", "optimizer.lr=0.01,0.1"]


def test_every_combination_runs_once_and_matches_a_plain_run(tmp_path):
    seen = []
    summaries = sweep(small_config(), GRID, 20, tmp_path, jobs=2,
                      progress=lambda done, total, s: seen.append((done, total, s.skipped)))
    assert [s.run for s in summaries] == [
        "activation=tanh lr=0.01", "activation=tanh lr=0.1",
        "activation=relu lr=0.01", "activation=relu lr=0.1"]
    assert [d for d, _, _ in seen] == [1, 2, 3, 4] and not any(s for _, _, s in seen)
    lines = (tmp_path / f"{slug('activation=relu lr=0.1')}.jsonl").read_text().splitlines()
    expected = Simulation(small_config(("model.activation", "relu"), ("optimizer.lr", 0.1)))
    assert lines == [json.dumps(r.to_dict(), separators=(",", ":")) for r in expected.run(20)]
    rows = list(csv.DictReader(open(tmp_path / "summary.csv")))
    assert [r["run"] for r in rows] == [s.run for s in summaries]
    assert all(r["steps"] == "20" and r["state"] == "ok" for r in rows)


def test_an_interrupted_sweep_runs_only_what_is_missing(tmp_path):
    sweep(small_config(), GRID, 10, tmp_path, executor=ThreadPoolExecutor(2))
    (tmp_path / f"{slug('activation=tanh lr=0.1')}.jsonl").unlink()
    (tmp_path / ".half-written.jsonl.tmp").write_text("{")  # a crash mid-write leaves this
    again = sweep(small_config(), GRID, 10, tmp_path, executor=ThreadPoolExecutor(2))
    assert [s.skipped for s in again] == [True, False, True, True]
    assert all(s.steps == 10 for s in again)


def test_sweep_command(tmp_path, capsys):
    code = main(["sweep", "--set", "model.hidden=[8]", "--set", "data.samples=200",
                 "--grid", "model.activation=sigmoid,relu", "--steps", "15", "-j", "2",
                 "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0
    assert out.splitlines()[1].startswith("activation=sigmoid")
    assert "[2/2]" in err and (tmp_path / "summary.csv").exists()
    assert main(["sweep", "--steps", "3"]) == 2
    assert "give at least one --grid" in capsys.readouterr().err


def test_sweep_on_a_dask_cluster_matches_the_local_one(tmp_path, capsys):
    import distributed

    args = ["--set", "model.hidden=[8]", "--set", "data.samples=200",
            "--grid", "model.activation=tanh,relu", "--steps", "12"]
    assert main(["sweep", *args, "-j", "1", "--out", str(tmp_path / "local")]) == 0
    capsys.readouterr()
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        assert main(["sweep", *args, "--scheduler", cluster.scheduler_address,
                     "--out", str(tmp_path / "dask")]) == 0
    for name in ("activation-tanh.jsonl", "activation-relu.jsonl"):
        assert (tmp_path / "dask" / name).read_text() == (tmp_path / "local" / name).read_text()
    assert main(["sweep", *args, "--scheduler", "tcp://127.0.0.1:9", "--out",
                 str(tmp_path / "none")]) == 2
    assert "cannot reach the Dask scheduler" in capsys.readouterr().err
