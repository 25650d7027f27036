"""nnsim sweep: a grid in worker processes or on a Dask cluster; interrupted sweeps resume."""

import csv
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from nnsim import sweep as sw
from nnsim.cli import main
from nnsim.engine import Simulation
from nnsim.errors import NnsimError
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
    assert all(r["steps"] == "20" and r["outcome"] == "ok" for r in rows)


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


SMALL = ["--set", "model.hidden=[8]", "--set", "data.samples=200"]


def test_a_run_that_goes_nan_is_an_outcome_not_a_crash_and_a_rerun_reads_it(tmp_path, capsys):
    # the repro: the progress line formatted the string "nan" with '.4g'
    args = ["sweep", "--set", "optimizer.name=sgd", "--set", "model.activation=relu",
            "--grid", "optimizer.lr=0.05,10,5", "--steps", "30", "-j", "1",
            "--out", str(tmp_path)]
    assert main(args) == 0
    out, err = capsys.readouterr()
    rows = {r["run"]: r for r in csv.DictReader(open(tmp_path / "summary.csv"))}
    assert rows["lr=0.05"]["outcome"] == "ok"
    assert rows["lr=5"]["outcome"].startswith("diverged at step ")
    assert rows["lr=5"]["loss"] == "nan"  # the loss that crashed the progress line
    assert rows["lr=10"]["outcome"].startswith("diverged at step ")
    assert "loss nan, diverged at step" in err
    assert main(args) == 0  # the rerun reads the same files back
    out, err = capsys.readouterr()
    assert out.count("(from an earlier sweep)") == 3 and "Traceback" not in err


def test_the_summary_shows_the_effective_lr_of_each_optimizer(tmp_path):
    summaries = sweep(small_config(), ["optimizer.name=sgd,adam"], 3, tmp_path, jobs=1)
    assert [s.lr for s in summaries] == [0.1, 0.001]  # each optimizer's own default
    assert "0.001" in sw.summary_table(summaries)
    rows = list(csv.DictReader(open(tmp_path / "summary.csv")))
    assert [float(r["lr"]) for r in rows] == [0.1, 0.001]


def test_a_rerun_skips_only_identical_runs(tmp_path):
    grid = ["model.activation=tanh,relu"]
    first = sweep(small_config(), grid, 5, tmp_path, executor=ThreadPoolExecutor(2))
    assert len({s.id for s in first}) == 2 and all(len(s.id) == 16 for s in first)
    same = sweep(small_config(), grid, 5, tmp_path, executor=ThreadPoolExecutor(2))
    assert all(s.skipped for s in same)
    more_steps = sweep(small_config(), grid, 7, tmp_path, executor=ThreadPoolExecutor(2))
    assert not any(s.skipped for s in more_steps) and all(s.steps == 7 for s in more_steps)
    other_seed = sweep(small_config(("seed", 4)), grid, 7, tmp_path,
                       executor=ThreadPoolExecutor(2))
    assert not any(s.skipped for s in other_seed)
    other_set = sweep(small_config(("seed", 4), ("train.l2", 0.01)), grid, 7, tmp_path,
                      executor=ThreadPoolExecutor(2))
    assert not any(s.skipped for s in other_set)
    lines = (tmp_path / "activation-relu.jsonl").read_text().splitlines()
    expected = Simulation(small_config(("seed", 4), ("train.l2", 0.01),
                                       ("model.activation", "relu"))).run(7)
    assert lines == [json.dumps(r.to_dict(), separators=(",", ":")) for r in expected]


def test_one_plugin_failure_does_not_abort_the_sweep(tmp_path, monkeypatch):
    from nnsim.pluginmanager import default_registry

    relu = default_registry().get("activation", "relu")

    def broken(self, x):
        raise RuntimeError("boom")

    monkeypatch.setattr(relu, "forward", broken)
    summaries = sweep(small_config(), ["model.activation=tanh,relu,sigmoid"], 5, tmp_path,
                      executor=ThreadPoolExecutor(2))
    outcomes = {s.run: s.outcome for s in summaries}
    assert outcomes["activation=tanh"] == "ok" and outcomes["activation=sigmoid"] == "ok"
    assert outcomes["activation=relu"].startswith("plugin error: activation 'relu'")
    assert "boom" in outcomes["activation=relu"] and "\n" not in outcomes["activation=relu"]
    rows = {r["run"]: r["outcome"] for r in csv.DictReader(open(tmp_path / "summary.csv"))}
    assert rows == outcomes
    # the failed run is run again next time (its outcome is recorded, it is not "done")
    monkeypatch.undo()
    again = sweep(small_config(), ["model.activation=tanh,relu,sigmoid"], 5, tmp_path,
                  executor=ThreadPoolExecutor(2))
    assert [s.skipped for s in again] == [True, False, True]
    assert again[1].outcome == "ok"


def test_a_run_that_errors_is_an_outcome_and_the_command_says_so(tmp_path, capsys):
    code = main(["sweep", *SMALL, "--grid", "train.batch_size=16,100000", "--steps", "3",
                 "-j", "1", "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 2 and "1 of 2 runs failed" in err
    rows = list(csv.DictReader(open(tmp_path / "summary.csv")))
    assert rows[0]["outcome"] == "ok" and rows[1]["outcome"].startswith("error: ")


def test_ctrl_c_keeps_finished_runs_and_ends_the_others_at_once(tmp_path, monkeypatch):
    pools = []

    def local_pool(jobs):
        pools.append(made := local(jobs))
        return made

    local = sw._local_pool
    monkeypatch.setattr(sw, "_local_pool", local_pool)
    workers = []

    def interrupt(done, total, summary):
        workers.extend(pools[0][0]._processes.values())
        raise KeyboardInterrupt

    # the first runs are tiny; the big ones would take minutes
    grid = ["model.hidden=[4],[1024,1024,1024]", "optimizer.lr=0.01,0.1"]
    base = small_config(("train.batch_size", 128))
    start = time.perf_counter()
    with pytest.raises(sw.SweepInterrupted) as caught:
        sweep(base, grid, 3000, tmp_path, jobs=2, progress=interrupt)
    assert time.perf_counter() - start < 20
    # the runs in flight saw the stop flag and returned: no worker was killed (one killed
    # while sending a result leaves the pool's reader, and so this process's exit, stuck)
    for worker in workers:
        worker.join(5)
    assert workers and [w.exitcode for w in workers] == [0] * len(workers)
    assert caught.value.done == 1 and caught.value.total == 4
    rows = list(csv.DictReader(open(tmp_path / "summary.csv")))
    assert len(rows) == 1 and rows[0]["outcome"] == "ok"
    assert (tmp_path / f"{slug(rows[0]['run'])}.jsonl").exists()
    assert len(list(tmp_path.glob("*.jsonl"))) == 1
    manifest = json.loads((tmp_path / "sweep.json").read_text())
    assert list(manifest["runs"]) == [slug(rows[0]["run"])]


def test_ctrl_c_on_the_command_is_one_line_and_exit_130(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise sw.SweepInterrupted(2, 4, tmp_path)

    monkeypatch.setattr(sw, "sweep", interrupted)
    assert main(["sweep", "--grid", "seed=1,2", "--out", str(tmp_path)]) == 130
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "2 of 4 runs finished" in err and "again" in err


def test_a_foreign_or_unwritable_folder_is_one_line(tmp_path, capsys, monkeypatch):
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(NnsimError, match="not a sweep folder"):
        sweep(small_config(), ["seed=1,2"], 2, foreign)
    assert (foreign / "notes.txt").read_text() == "mine" and len(list(foreign.iterdir())) == 1
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["sweep", "--grid", "seed=1,2", "--steps", "2", "--out", str(a_file)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main(["sweep", "--grid", "seed=1,2", "--steps", "2",
                 "--out", str(a_file / "sub")]) == 2
    err = capsys.readouterr().err
    assert "cannot create the sweep folder" in err and err.count("\n") == 1

    def read_only(self, data):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(type(tmp_path), "write_bytes", read_only)
    assert main(["sweep", "--grid", "seed=1,2", "--steps", "2",
                 "--out", str(tmp_path / "ro")]) == 2
    err = capsys.readouterr().err
    assert "cannot write in the sweep folder (Permission denied)" in err
    assert err.count("\n") == 1


def test_workers_limit_their_blas_threads(tmp_path, monkeypatch):
    threadpoolctl = pytest.importorskip(
        "threadpoolctl", reason="threadpoolctl is not installed: workers fall back to "
                                "thread-limiting environment variables, tested elsewhere")
    assert sw.threads_per_worker(1) == (os.cpu_count() or 1)
    assert sw.threads_per_worker(10_000) == 1
    with sw._blas_threads(1):
        assert all(p["num_threads"] == 1 for p in threadpoolctl.threadpool_info())
    seen = []
    real = sw.run_one
    monkeypatch.setattr(sw, "run_one", lambda *a: seen.append(a[3]) or real(*a))
    sweep(small_config(), ["seed=1,2"], 2, tmp_path, executor=ThreadPoolExecutor(1))
    assert seen == [0, 0]  # an executor given from outside keeps its own settings
    with sw._thread_environment(3):
        assert os.environ["OPENBLAS_NUM_THREADS"] == "3" and os.environ["OMP_NUM_THREADS"] == "3"
    assert os.environ.get("OPENBLAS_NUM_THREADS") != "3"


def test_a_local_sweep_passes_each_worker_its_thread_share(tmp_path, monkeypatch):
    submitted = []

    class Recorder(ThreadPoolExecutor):
        def submit(self, fn, *args):
            submitted.append(args[3])
            return super().submit(fn, *args)

    monkeypatch.setattr(sw, "_local_pool", lambda jobs: (Recorder(jobs), threading.Event()))
    sweep(small_config(), ["seed=1,2"], 2, tmp_path, jobs=2)
    assert submitted == [sw.threads_per_worker(2)] * 2


def test_a_malformed_scheduler_is_one_line(capsys, tmp_path):
    for bad in ("localhost", "tcp://", "tcp://host:port", "x" * 100_000):
        assert main(["sweep", "--grid", "seed=1,2", "--scheduler", bad,
                     "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert "expected tcp://HOST:PORT" in err and err.count("\n") == 1 and len(err) < 300


def test_no_more_workers_than_runs(tmp_path, monkeypatch):
    asked = []
    local = sw._local_pool
    monkeypatch.setattr(sw, "_local_pool", lambda jobs: (asked.append(jobs), local(jobs))[1])
    sweep(small_config(), ["optimizer.lr=0.1,0.2"], 2, tmp_path, jobs=1000)
    assert asked == [2]


def test_a_users_summary_csv_is_not_taken_for_a_sweep_folder(tmp_path):
    mine = tmp_path / "mydata"
    mine.mkdir()
    (mine / "summary.csv").write_text("precious\n")
    (mine / "notes.txt").write_text("notes")
    with pytest.raises(NnsimError, match="not a sweep folder"):
        sweep(small_config(), ["seed=1,2"], 2, mine)
    (mine / "notes.txt").unlink()  # a summary.csv alone, not ours: refused too
    with pytest.raises(NnsimError, match="not a sweep folder"):
        sweep(small_config(), ["seed=1,2"], 2, mine)
    assert (mine / "summary.csv").read_text() == "precious\n"
    (mine / "summary.csv").write_text("run,score\n1,0.5\n")  # a user's, headed like ours
    (mine / "run1.jsonl").write_text("{}\n")
    with pytest.raises(NnsimError, match="not a sweep folder"):
        sweep(small_config(), ["seed=1,2"], 2, mine)
    assert (mine / "summary.csv").read_text() == "run,score\n1,0.5\n"
    old = tmp_path / "old"  # the summary of the first nnsim with sweeps, no manifest
    old.mkdir()
    (old / "summary.csv").write_text("run,steps,loss,accuracy,val_loss,val_accuracy,state,"
                                     "seconds\nseed=1,2,0.7,0.5,,,ok,0.1\n")
    (old / "seed-1.jsonl").write_text("{}\n")
    assert len(sweep(small_config(), ["seed=1,2"], 2, old)) == 2
    # an earlier nnsim's sweep folder (no manifest) is still taken up
    sweep(small_config(), ["seed=1,2"], 2, tmp_path / "s")
    (tmp_path / "s" / sw.MANIFEST).unlink()
    assert len(sweep(small_config(), ["seed=1,2"], 2, tmp_path / "s")) == 2


@pytest.mark.parametrize("grid,says", [
    (["optimizer.lr=0.1,0.2", "optimizer.lr=0.3"], "optimizer.lr is varied twice"),
    (["optimizer.lr=1e-3,0.001"], "the value 0.001 is given twice"),
    (["optimizer.lr=1,1.0"], "the value 1.0 is given twice"),
    (["model.hidden=[4],[4, 4],[4]"], "the value [4] is given twice"),
    (["train.steps=5,10"], "train.steps cannot be varied"),
    (["optimizer.lr="], "--grid: expected KEY=V1,V2"),
])
def test_a_grid_that_would_mislabel_or_repeat_runs_is_refused(tmp_path, capsys, grid, says):
    argv = [a for g in grid for a in ("--grid", g)]
    assert main(["sweep", *argv, "--steps", "2", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1
    assert not (tmp_path / "s").exists()
    vary = [a for g in grid for a in ("--vary", g)]
    assert main(["compare", *vary, "--steps", "2"]) == 2
    assert says.replace("--grid", "--vary") in capsys.readouterr().err


def test_a_rerun_of_other_settings_keeps_the_earlier_records_and_takes_them_back(tmp_path):
    grid = ["model.activation=tanh,relu"]
    first = sweep(small_config(), grid, 5, tmp_path, jobs=1)
    before = {p.name: p.read_bytes() for p in tmp_path.glob("*.jsonl")}
    longer = sweep(small_config(), grid, 7, tmp_path, jobs=1)
    assert not any(s.skipped for s in longer) and all(s.steps == 7 for s in longer)
    for old in first:  # each earlier run's records, byte for byte, under its identity
        name = slug(old.run)
        assert next(s for s in longer if s.run == old.run).kept == f"{name}.{old.id}.jsonl"
        assert (tmp_path / f"{name}.{old.id}.jsonl").read_bytes() == before[f"{name}.jsonl"]
    manifest = json.loads((tmp_path / sw.MANIFEST).read_text())["runs"]
    assert manifest[f"activation-relu.{first[1].id}"]["steps"] == 5
    rows = list(csv.DictReader(open(tmp_path / "summary.csv")))
    assert [r["steps"] for r in rows] == ["7", "7"]  # the summary is this grid's
    again = sweep(small_config(), grid, 5, tmp_path, jobs=1)  # the first settings again
    assert all(s.skipped and s.steps == 5 for s in again)
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.jsonl")
            if p.name.count(".") == 1} == before
    assert {p.name for p in tmp_path.glob("*.jsonl")} == {
        f"{slug(s.run)}{suffix}.jsonl" for s in longer for suffix in ("", f".{s.id}")}


def test_the_sweep_command_names_the_earlier_runs_it_kept(tmp_path, capsys):
    args = ["sweep", *SMALL, "--grid", "model.activation=tanh,relu", "-j", "1",
            "--out", str(tmp_path)]
    assert main([*args, "--steps", "4"]) == 0
    capsys.readouterr()
    assert main([*args, "--steps", "6"]) == 0
    err = capsys.readouterr().err
    assert "2 earlier run(s) of other settings kept beside the new ones: activation-tanh." in err


def test_a_plugin_that_exits_mid_run_is_that_runs_outcome_and_the_others_finish(
        tmp_path, monkeypatch, capsys):
    """A plugin calling sys.exit() inside a run ended the sweep (and `run`, `compare`)
    with status 0 and nothing said."""
    from nnsim.pluginmanager import default_registry

    relu = default_registry().get("activation", "relu")
    forward = relu.forward
    calls = []

    def quits(self, x):
        calls.append(1)
        if len(calls) > 15:  # mid-run: 20 steps call it 23 times
            raise SystemExit(0)
        return forward(self, x)

    monkeypatch.setattr(relu, "forward", quits)
    summaries = sweep(small_config(), ["model.activation=tanh,relu,sigmoid"], 20, tmp_path,
                      executor=ThreadPoolExecutor(1))
    outcomes = {s.run: s.outcome for s in summaries}
    assert outcomes["activation=tanh"] == outcomes["activation=sigmoid"] == "ok"
    assert outcomes["activation=relu"].startswith(
        "plugin error: activation 'relu'") and "forward() raised SystemExit: 0" in \
        outcomes["activation=relu"]
    calls.clear()
    assert main(["run", *SMALL, "--set", "model.activation=relu", "--steps", "20",
                 "--out", str(tmp_path / "r.jsonl")]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "forward() raised SystemExit: 0" in err[0]


def test_a_run_of_slow_steps_sees_the_stop_flag_after_its_step_in_progress(monkeypatch):
    """The stop flag was looked at every 8 steps: with 0.25 s steps, Ctrl-C took 2 s."""
    import threading

    step = Simulation.step

    def slow(self, measure=True):
        stop.set()  # Ctrl-C during the first step
        time.sleep(0.06)
        return step(self, measure)

    monkeypatch.setattr(Simulation, "step", slow)
    stop = threading.Event()
    monkeypatch.setattr(sw, "_STOP", stop)
    _, lines, seconds, outcome = sw.run_one("slow", small_config().to_toml(), 100)
    assert outcome == "interrupted at step 1" and len(lines) == 1


def test_a_scheduler_address_may_be_ipv6():
    for good in ("tcp://127.0.0.1:8786", "tcp://[::1]:8786", "tls://sched.example", "tcp://[fe80::1]"):
        assert sw.SCHEDULER.fullmatch(good), good
    for bad in ("127.0.0.1:8786", "tcp://[::1", "tcp://a b:1", "http://x:1", "tcp://x:123456"):
        assert not sw.SCHEDULER.fullmatch(bad), bad


def test_a_run_queued_when_ctrl_c_came_does_not_begin(monkeypatch):
    """The pool hands a worker the next run as soon as it is free: after Ctrl-C that run
    built its network and took a first step (2 s for 3×4096 layers) before it looked at the
    stop flag, and the worker was ended by force (Ctrl-C took 2.09 s; now 0.14-0.23 s)."""
    import threading

    stop = threading.Event()
    stop.set()
    monkeypatch.setattr(sw, "_STOP", stop)
    _, lines, seconds, outcome = sw.run_one("queued", small_config().to_toml(), 100)
    assert outcome == "interrupted at step 0" and lines == []
