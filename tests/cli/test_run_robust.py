"""nnsim run when things go wrong: write errors, signals, a bad --checkpoint folder and
resumed runs. Each ends with one line on stderr, a distinct exit code, and the final
checkpoint written."""

import os
import shlex
import signal
import subprocess
import sys
import time

import pytest

from nnsim.cli import main
from nnsim.engine.checkpoint import load
from nnsim.engine.writers import read_records

SMALL = ["--set", "data.samples=200", "--set", "model.hidden=[8]"]
NNSIM = [sys.executable, "-m", "nnsim"]


def records(text):
    return read_records(text.splitlines())


def test_a_full_disk_is_one_line_and_the_checkpoint_is_still_written(tmp_path, capsys):
    code = main(["run", *SMALL, "--steps", "400", "--out", "/dev/full",
                 "--checkpoint", str(tmp_path / "ck")])
    err = capsys.readouterr().err
    assert code == 74
    assert err.count("\n") == 1 and "cannot write the records to /dev/full (No space left" in err
    sim, _ = load(tmp_path / "ck")
    assert f"stopped at step {sim.step_count}; checkpoint at step {sim.step_count}" in err
    assert 0 < sim.step_count < 400  # it stopped at the error, not after every step


def test_a_broken_pipe_is_one_line_and_the_checkpoint_is_still_written(tmp_path):
    ck = tmp_path / "ck"
    proc = subprocess.Popen([*NNSIM, "run", *SMALL, "--steps", "100000", "--checkpoint",
                             str(ck)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()  # like `nnsim run | head -1`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 74
    assert err.count("\n") == 1 and "broken pipe" in err and "Traceback" not in err
    assert load(ck)[0].step_count >= 1


def test_a_closed_stdout_is_one_line():
    result = subprocess.run(["bash", "-c", " ".join([*NNSIM, "run", *SMALL, "--steps", "3"])
                             + " >&-"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr == "nnsim run: stdout is closed; give --out FILE for the records\n"


def test_plugins_to_a_full_disk_is_one_line():
    result = subprocess.run(["bash", "-c", " ".join([*NNSIM, "plugins", "--json"])
                             + " > /dev/full"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 74
    assert result.stderr == "nnsim: error: cannot write the output (No space left on device)\n"


def test_the_checkpoint_folder_is_checked_before_training(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    start = time.perf_counter()
    assert main(["run", *SMALL, "--steps", "1000000", "--checkpoint",
                 str(a_file / "ck")]) == 2
    assert time.perf_counter() - start < 10
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert "cannot create the checkpoint folder (Not a directory)" in err
    # the folder beside the checkpoint that periodic saves write to: a file there is the
    # user's, refused before the run (it used to stop the run at its first periodic save)
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "checkpoint.parts").write_text("mine")
    assert main(["run", *SMALL, "--steps", "1000000", "--checkpoint", str(tmp_path / "ck"),
                 "--checkpoint-every", "5"]) == 2
    err = capsys.readouterr().err
    assert "checkpoint.parts: is not a folder" in err and err.count("\n") == 1
    assert (tmp_path / "ck" / "checkpoint.parts").read_text() == "mine"
    assert not (tmp_path / "ck" / "checkpoint.npz").exists()


@pytest.mark.parametrize("signum,code,word", [(signal.SIGTERM, 143, "SIGTERM"),
                                              (signal.SIGINT, 130, "interrupted (Ctrl-C)")])
def test_a_signal_writes_the_final_checkpoint_and_exits_128_plus_its_number(
        tmp_path, signum, code, word):
    ck, out = tmp_path / "ck", tmp_path / "run.jsonl"
    proc = subprocess.Popen([*NNSIM, "run", *SMALL, "--steps", "10000000", "--checkpoint",
                             str(ck), "--out", str(out)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while (not out.exists() or out.stat().st_size == 0) and time.monotonic() < deadline:
        time.sleep(0.05)  # until training has started
    proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    err = err.decode()
    assert proc.returncode == code
    assert err.count("\n") == 1 and err.startswith(f"nnsim: {word} at step ")
    sim, history = load(ck)
    assert f"at step {sim.step_count};" in err
    # the records written end where the checkpoint stands: nothing lost, nothing doubled
    assert records(out.read_text())[-1]["step"] == history[-1].step == sim.step_count


def test_resuming_a_checkpoint_saved_at_a_divergence_steps_no_further(tmp_path, capsys):
    ck = str(tmp_path / "ck")
    diverge = ["--set", "optimizer.name=sgd", "--set", "optimizer.lr=10",
               "--set", "model.activation=relu"]
    assert main(["run", *diverge, "--steps", "50", "--checkpoint", ck]) == 3
    first = records(capsys.readouterr().out)
    assert first[-1]["nonfinite"]
    for _ in range(2):
        assert main(["run", "--resume", ck, "--steps", "5"]) == 3
        out, err = capsys.readouterr()
        assert out == "" and f"diverged at step {first[-1]['step']}" in err
    assert load(ck)[0].step_count == first[-1]["step"]


def test_resume_takes_set_for_optimizer_hyperparameters(tmp_path, capsys):
    ck = str(tmp_path / "ck")
    assert main(["run", *SMALL, "--steps", "5", "--checkpoint", ck]) == 0
    capsys.readouterr()
    assert main(["run", "--resume", ck, "--steps", "3", "--set", "optimizer.lr=0.01"]) == 0
    out = records(capsys.readouterr().out)
    assert [r["lr"] for r in out] == [0.01] * 3 and out[0]["step"] == 6
    assert main(["run", "--resume", ck, "--steps", "1", "--set", "model.hidden=[4]"]) == 2
    err = capsys.readouterr().err
    assert "--resume takes --set only for optimizer hyperparameters" in err
    assert main(["run", "--resume", ck, "--steps", "1", "--set", "optimizer.lr=99"]) == 2
    assert "optimizer.lr" in capsys.readouterr().err


def test_a_run_resumed_twice_with_every_writes_what_one_run_writes(tmp_path):
    def records(name):
        return read_records((tmp_path / name).read_text().splitlines())

    ck, every = str(tmp_path / "ck"), ["--every", "10"]
    assert main(["run", *SMALL, "--steps", "25", *every, "--checkpoint", ck,
                 "--out", str(tmp_path / "a.jsonl")]) == 0
    for part in ("b", "c"):
        assert main(["run", "--resume", ck, "--steps", "20", *every, "--checkpoint", ck,
                     "--out", str(tmp_path / f"{part}.jsonl")]) == 0
    assert main(["run", *SMALL, "--steps", "65", *every,
                 "--out", str(tmp_path / "straight.jsonl")]) == 0
    parts = records("a.jsonl") + records("b.jsonl") + records("c.jsonl")
    steps = [r["step"] for r in parts]
    assert steps == [10, 20, 25, 30, 40, 45, 50, 60, 65]  # each segment's end once
    straight = {r["step"]: r for r in records("straight.jsonl")}
    assert [r for r in parts if r["step"] % 10 == 0] == [straight[s] for s in (10, 20, 30, 40,
                                                                               50, 60)]
    assert parts[-1] == straight[65]


def test_empty_paths_and_records_onto_the_checkpoint_are_refused(tmp_path, capsys):
    ck = tmp_path / "ck"
    assert main(["run", *SMALL, "--steps", "3", "--checkpoint", str(ck),
                 "--out", os.devnull]) == 0
    before = (ck / "checkpoint.npz").read_bytes()
    capsys.readouterr()
    for argv, says in (
            (["--resume", str(ck), "--out", str(ck / "checkpoint.npz")], "--resume"),
            (["--resume", str(ck), "--checkpoint", str(ck), "--out", str(ck / "checkpoint.npz")],
             "--checkpoint"),
            ([*SMALL, "--checkpoint", str(tmp_path / "new"),
              "--out", str(tmp_path / "new" / "checkpoint.npz")], "--checkpoint"),
            ([*SMALL, "--checkpoint", ""], "--checkpoint needs a path"),
            (["--resume", "  "], "--resume needs a path"),
            ([*SMALL, "--out", ""], "--out needs a path")):
        assert main(["run", "--steps", "2", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert says in err and err.count("\n") == 1, (argv, err)
    assert (ck / "checkpoint.npz").read_bytes() == before
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("command,redirect,code,stdout,stderr", [
    # stderr closed: the run goes on, its messages are dropped (not written to stdout)
    ("run --steps 3 --out {tmp}/r.jsonl", "2>&-", 0, "", None),
    ("config --set bogus=1", "2>&-", 2, "", None),
    # stderr full: the message is lost, the exit status still says what went wrong
    ("run --set bogus=1", "2>/dev/full", 2, "", None),
    ("run --steps 3 --checkpoint {tmp}/ck --out /dev/full", "2>/dev/full", 74, "", None),
    # stdout closed: a write error, said on stderr, exit 74; or a usage error for records
    ("config", ">&-", 74, None, "nnsim: error: cannot write the output (stdout is closed)"),
    ("run --steps 3", ">&-", 2, None, "nnsim run: stdout is closed; give --out FILE"),
    # --help and --version too (argparse itself ignores a failed write: exit 0)
    ("--version", ">/dev/full", 74, None, "nnsim: error: cannot write the output (No space"),
    ("run --help", ">&-", 74, None, "nnsim: error: cannot write the output (stdout is"),
])
def test_a_closed_stream_is_no_traceback(tmp_path, command, redirect, code, stdout, stderr):
    line = " ".join([*map(shlex.quote, NNSIM), command.format(tmp=tmp_path), redirect])
    done = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=120)
    assert done.returncode == code, done.stderr
    if stdout is not None:
        assert done.stdout == stdout
    if stderr is not None:
        assert done.stderr.strip().startswith(stderr) and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stdout + done.stderr


def test_snapshot_every_without_a_checkpoint_and_a_diverged_checkpoint_say_what_to_do(
        tmp_path, capsys):
    assert main(["run", *SMALL, "--steps", "2", "--snapshot-every", "10"]) == 2
    assert "give --checkpoint DIR too" in capsys.readouterr().err
    ck = str(tmp_path / "ck")
    diverge = ["--set", "optimizer.name=sgd", "--set", "optimizer.lr=10",
               "--set", "model.activation=relu"]
    assert main(["run", *diverge, "--steps", "50", "--checkpoint", ck,
                 "--snapshot-every", "2", "--out", os.devnull]) == 3
    capsys.readouterr()
    assert main(["run", "--resume", ck, "--set", "optimizer.lr=0.01", "--steps", "5"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nothing to continue" in err and "--from-step" in err
    step = int(err.split("--from-step ")[1].split()[0])
    diverged = int(err.split("diverged at step ")[1].split(":")[0])
    assert step < diverged and "kept: 0, " in err
    # the way out it names: a branch from a kept step with a lower lr (from 0: sure to work)
    assert main(["run", "--resume", ck, "--from-step", "0", "--set",
                 "optimizer.lr=0.01", "--steps", "5", "--out", os.devnull]) == 0


def test_a_config_saved_with_a_byte_order_mark_reads(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_text("\ufeff[train]\nsteps = 7\n", encoding="utf-8")
    from nnsim.config import load

    assert load(str(path)).train.steps == 7


@pytest.mark.parametrize("argv,says", [
    ([], "nnsim: the screen needs a terminal"),
    (["compare", "--vary", "optimizer.lr=0.1,0.2", "--tui"], "leave out --tui"),
    (["lesson", "dead_relu"], "add --headless"),
    (["landscape"], "add --headless"),
])
def test_a_screen_with_stdout_not_a_terminal_is_refused(argv, says):
    # it would write screen codes into the file or pipe until killed
    done = subprocess.run([*NNSIM, *argv], capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if k != "TEXTUAL_DRIVER"})
    assert done.returncode == 2 and done.stdout == ""
    assert says in done.stderr and done.stderr.count("\n") == 1


def test_compare_options_that_go_with_tui_alone(capsys):
    assert main(["compare", "--vary", "optimizer.lr=0.1,0.2", "--paused"]) == 2
    assert "--paused starts the screen paused; it goes with --tui" in capsys.readouterr().err
    assert main(["compare", "--vary", "optimizer.lr=0.1,0.2", "--tui", "--json"]) == 2
    assert "does not go with --tui" in capsys.readouterr().err


def test_another_runs_checkpoint_is_never_replaced(tmp_path, capsys):
    ck, out = str(tmp_path / "ck"), ["--out", os.devnull]
    assert main(["run", *SMALL, "--steps", "20", "--checkpoint", ck, *out]) == 0
    before = (tmp_path / "ck" / "checkpoint.npz").read_bytes()
    capsys.readouterr()
    for argv in (["run", *SMALL, "--steps", "5", "--checkpoint", ck],  # a rerun, a typo
                 ["run", "--resume", ck, "--from-step", "0", "--steps", "5",
                  "--checkpoint", ck]):  # a branch over the run it branches from
        assert main([*argv, *out]) == 2
        err = capsys.readouterr().err
        assert "already holds the checkpoint of another run" in err and f"--resume {ck}" in err
        assert (tmp_path / "ck" / "checkpoint.npz").read_bytes() == before
    # continuing the run itself replaces it, as it should
    assert main(["run", "--resume", ck, "--steps", "5", "--checkpoint", ck, *out]) == 0
    assert (tmp_path / "ck" / "checkpoint.npz").read_bytes() != before


def test_a_second_run_saving_to_the_same_checkpoint_is_refused(tmp_path, capsys):
    ck = str(tmp_path / "ck")
    first = subprocess.Popen([*NNSIM, "run", *SMALL, "--steps", "10000000", "--checkpoint", ck,
                              "--checkpoint-every", "50", "--out", os.devnull],
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "ck" / "checkpoint.npz").exists():  # saving every 50 steps
            if first.poll() is not None or time.monotonic() > deadline:
                first.kill()
                pytest.fail(f"no checkpoint: {first.communicate()[1]}")
            time.sleep(0.05)
        assert main(["run", *SMALL, "--steps", "5", "--checkpoint", ck,
                     "--out", os.devnull]) == 2
        err = capsys.readouterr().err
        assert "another nnsim run is saving to this checkpoint" in err and err.count("\n") == 1
    finally:
        first.terminate()
        first.wait(timeout=60)
    # the first run ended (its final checkpoint written): the folder is free again
    assert main(["run", "--resume", ck, "--checkpoint", ck, "--steps", "5",
                 "--out", os.devnull]) == 0


def test_checkpoints_whose_names_share_a_stem_keep_their_parts_apart(tmp_path, capsys):
    """`runs/lr0.01` and `runs/lr0.05` are checkpoint files with their own parts folders: a
    run saving to one leaves the other's parts alone (they shared `runs/lr0.parts` before,
    and the second run's save removed the first's)."""
    first, second = str(tmp_path / "runs" / "lr0.01"), str(tmp_path / "runs" / "lr0.05")
    killed = subprocess.Popen([*NNSIM, "run", *SMALL, "--steps", "10000000", "--checkpoint",
                               first, "--checkpoint-every", "20", "--out", os.devnull],
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not any((tmp_path / "runs").glob("*.parts")):  # its periodic saves began
            if killed.poll() is not None or time.monotonic() > deadline:
                killed.kill()
                pytest.fail(f"no parts folder for lr0.01: {killed.communicate()[1]}")
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        killed.kill()  # as a crash: its parts stay, named by its checkpoint
        killed.wait(timeout=60)
    assert main(["run", *SMALL, "--steps", "30", "--checkpoint", second,
                 "--checkpoint-every", "10", "--out", os.devnull]) == 0
    assert main(["run", "--resume", first, "--steps", "5", "--out", os.devnull]) == 0
    assert "error" not in capsys.readouterr().err
    assert len(load(first)[1]) > 0 and len(load(second)[1]) == 30


def test_a_checkpoint_name_too_long_is_one_line_before_training(tmp_path, capsys):
    for name in ("a" * 300, "q9/" + "c" * 240 + ".npz"):
        start = time.perf_counter()
        assert main(["run", *SMALL, "--steps", "1000000", "--checkpoint",
                     str(tmp_path / name), "--out", os.devnull]) == 2
        assert time.perf_counter() - start < 10
        out, err = capsys.readouterr()
        assert err.count("\n") == 1 and "Traceback" not in err and "name" in err, err
    assert main(["run", "--resume", str(tmp_path / ("b" * 300)), "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_an_integer_past_pythons_digit_limit_is_one_line_everywhere(tmp_path, capsys):
    """Python refuses to read an integer of more than 4,300 digits (ValueError); from
    `--set`, a config file, a grid or `landscape --optimizer` it was a traceback."""
    huge = "1" * 4301
    (tmp_path / "big.toml").write_text(f"seed = {huge}\n")
    for argv in (["run", "--set", f"seed={huge}", "--steps", "2"],
                 ["config", str(tmp_path / "big.toml")],
                 ["sweep", "--grid", f"seed={huge},1", "--out", str(tmp_path / "s")],
                 ["landscape", "--headless", "--optimizer", f"{{name='adam', lr={huge}}}"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "more than 4,300 digits" in err, argv


def test_after_a_divergence_run_continues_to_write_every_kth_step(tmp_path):
    """With --on-divergence continue every step after the divergence was written (1,997
    rows of a 2,000-step table); the step that diverged is written, then --every holds."""
    out = tmp_path / "r.jsonl"
    assert main(["run", "--set", "data.samples=200", "--set", "optimizer.name=sgd",
                 "--set", "optimizer.lr=10",
                 "--set", "model.activation=relu", "--steps", "300", "--every", "100",
                 "--on-divergence", "continue", "--out", str(out)]) == 3  # diverged
    steps = [r["step"] for r in records(out.read_text()) if "step" in r]
    first = next(r for r in records(out.read_text()) if r.get("nonfinite"))
    assert first["step"] < 100 and steps == [first["step"], 100, 200, 300]
