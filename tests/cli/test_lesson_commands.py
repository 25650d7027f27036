"""nnsim lessons / nnsim lesson: listing, --seed, --set, --control, --verify, exit codes."""

import json

from nnsim.components import Lesson, Verdict, below
from nnsim.pluginmanager import Entry, default_registry
from tests.helpers import run_cli as run

REG = default_registry()


class NeverTrue(Lesson):
    """A claim that does not hold, for testing the exit codes."""
    name = "never_true"
    title = "A false claim"
    explanation = "Nothing."
    watch = "Nothing."
    section = "Optimizers"
    runs = {"only": {"model.hidden": [4], "data.samples": 100}}
    control = {"only": {"model.hidden": [5]}}
    control_note = "a wider net"
    steps = 2

    def check(self, results):
        return Verdict.of(below("loss", results["only"].last.loss, 1e-9))


class NoControl(NeverTrue):
    name = "no_control"
    control = {}


def test_lessons_json_lists_sections_and_controls(capsys):
    code, out, _ = run(capsys, "lessons", "--json")
    assert code == 0
    listed = {entry["name"]: entry for entry in json.loads(out)}
    assert len(listed) >= 22
    for entry in listed.values():
        assert entry["title"] and entry["runs"] and entry["section"]
        assert entry["control"]["note"] and set(entry["control"]["runs"]) <= set(entry["runs"])
    code, out, _ = run(capsys, "lessons")
    assert "lecture: Optimizers › Adding momentum" in out and "control: " in out


def test_lessons_wrap_under_their_own_text_on_a_narrow_terminal(capsys, monkeypatch):
    """On an 80-column terminal no line is longer than the terminal, and a wrapped line
    starts under its own text, not at column 0; piped, lines stay whole for scripts."""
    import os
    import shutil
    import sys

    code, piped, _ = run(capsys, "lessons")
    assert code == 0 and max(map(len, piped.splitlines())) > 80
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(shutil, "get_terminal_size", lambda *a: os.terminal_size((80, 24)))
    code, out, _ = run(capsys, "lessons")
    lines = out.splitlines()
    assert code == 0 and max(map(len, lines)) < 80
    width = len(lines[0]) - len(lines[0].split("  ", 1)[1].lstrip())  # where the text starts
    assert all(line[:width].strip() in REG.names("lesson") or not line[:width].strip()
               for line in lines), "a line wrapped into the names' column"
    assert " ".join(out.split()) == " ".join(piped.split())  # the same words


def test_lesson_headless_passes_and_its_control_fails(capsys):
    code, out, err = run(capsys, "lesson", "sigmoid_vanishing", "--headless")
    assert code == 0, out
    assert out.splitlines()[-1].startswith("PASS: sigmoid ‖∂L/∂W‖ layer 1 ÷ last hidden")
    assert "[margin +" in out.splitlines()[-1]
    code, out, err = run(capsys, "lesson", "sigmoid_vanishing", "--headless", "--control")
    assert code == 1
    assert out.splitlines()[-1].startswith("FAIL:") and "[margin -" in out.splitlines()[-1]
    assert "control: two hidden layers" in err


def test_lesson_seed_and_set_reach_every_run(capsys):
    outputs = {}
    for seed in ("0", "1"):
        code, out, _ = run(capsys, "lesson", "initial_loss", "--headless", "--seed", seed)
        assert code == 0
        outputs[seed] = out
    assert outputs["0"] != outputs["1"]  # another seed, other numbers
    code, again, _ = run(capsys, "lesson", "initial_loss", "--headless", "--seed", "0")
    assert again == outputs["0"]
    # --set applies to every run: large weights make the first loss far from ln C
    code, out, _ = run(capsys, "lesson", "initial_loss", "--headless",
                       "--set", "model.initializer.std=1.0")
    assert code == 1 and "FAIL: first loss ÷ ln C: distance from 1" in out
    code, _, err = run(capsys, "lesson", "initial_loss", "--headless",
                       "--set", "model.activaton=relu")
    assert code == 2 and "did you mean 'activation'" in err


def test_lesson_exit_codes(capsys, monkeypatch):
    monkeypatch.setitem(REG.families["lesson"], "never_true", Entry(NeverTrue, "tests", "tests"))
    monkeypatch.setitem(REG.families["lesson"], "no_control", Entry(NoControl, "tests", "tests"))
    code, out, _ = run(capsys, "lesson", "never_true", "--headless")
    assert code == 1 and "FAIL: loss" in out
    code, _, err = run(capsys, "lesson", "no_control", "--headless", "--control")
    assert code == 2 and "declares no control" in err
    code, _, err = run(capsys, "lesson", "sigmoid_vanish")
    assert code == 2 and "did you mean 'sigmoid_vanishing'" in err


def test_verify_prints_margins_and_fails_unless_lessons_pass_and_controls_fail(
        capsys, monkeypatch):
    code, out, err = run(capsys, "lessons", "--verify", "sigmoid_vanishing", "initial_loss",
                         "--seeds", "0-1")
    assert code == 0, out + err
    lines = out.splitlines()
    assert [c.strip() for c in lines[1].split("|")][:6] == [
        "lesson", "claim", "pass", "min margin", "control fails", "control max"]
    rows = {line.split("|")[0].strip(): [c.strip() for c in line.split("|")]
            for line in lines[3:]}
    assert set(rows) == {"sigmoid_vanishing", "initial_loss"}
    for row in rows.values():
        assert row[2] == "2/2" and row[4] == "2/2"
        assert float(row[3]) > 0 and float(row[5].replace("inf", "1e999")) < 0
    assert "sigmoid_vanishing: 2/2 as expected" in err

    monkeypatch.setitem(REG.families["lesson"], "never_true", Entry(NeverTrue, "tests", "tests"))
    code, out, _ = run(capsys, "lessons", "--verify", "never_true", "--seeds", "0")
    assert code == 1
    code, _, err = run(capsys, "lessons", "--verify", "--seeds", "3-1")
    assert code == 2 and "--seeds" in err
    code, _, err = run(capsys, "lessons", "--verify", "nope", "--seeds", "0")
    assert code == 2 and "no lesson 'nope'" in err
