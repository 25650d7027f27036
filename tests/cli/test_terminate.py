"""SIGTERM to a command with worker processes (sweep -j, lessons --verify -j): handled as
Ctrl-C is. Finished runs are kept, the workers end with the command, one line, exit 143."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(),
                                reason="reads the process table from /proc (Linux)")
NNSIM = [sys.executable, "-m", "nnsim"]


def children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def assert_ended(workers: list[int]) -> None:
    """The command had worker processes, and none outlives it (10 s of grace)."""
    assert len(workers) >= 2
    deadline = time.monotonic() + 10
    while any(map(alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(alive, workers)), "worker processes outlived the command"


def terminate_after_first_line(argv: list[str], cwd: Path) -> tuple[int, str, list[int]]:
    """Start `nnsim ARGV`, send SIGTERM once it has reported one finished piece of work;
    (exit code, stderr, the worker processes it had)."""
    proc = subprocess.Popen([*NNSIM, *argv], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stderr.readline()  # the first run (or lesson) done
        workers = children(proc.pid)
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=60)[1]
    finally:
        proc.kill()
    return proc.returncode, first + rest, workers


def test_sigterm_to_a_sweep_keeps_finished_runs_and_ends_its_workers(tmp_path):
    code, err, workers = terminate_after_first_line(
        ["sweep", "--set", "data.samples=200", "--grid", "model.hidden=[4],[512,512,512]",
         "--grid", "optimizer.lr=0.01,0.1", "--steps", "3000", "-j", "2", "--out", "s"],
        tmp_path)
    assert code == 143, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("nnsim: terminated (SIGTERM): ") and "runs finished and kept" in last
    assert "Traceback" not in err
    assert_ended(workers)
    assert (tmp_path / "s" / "summary.csv").read_text().count("\n") >= 2  # header + a run


def test_sigterm_to_lessons_verify_ends_its_workers(tmp_path):
    code, err, workers = terminate_after_first_line(
        ["lessons", "--verify", "--seeds", "0-3", "-j", "2"], tmp_path)
    assert code == 143, err
    assert err.strip().splitlines()[-1].startswith("nnsim: terminated (SIGTERM): ")
    assert "Traceback" not in err
    assert_ended(workers)
    assert os.listdir(tmp_path) == []
