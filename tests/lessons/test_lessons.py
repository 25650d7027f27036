"""Every lesson's claim holds (the checks run here), and the lesson commands work."""

import json

import pytest

from nnsim.cli import main
from nnsim.components import Lesson, Verdict
from nnsim.lessons import run_config, run_lesson
from nnsim.pluginmanager import BUILTIN, Entry, default_registry

REG = default_registry()
LESSONS = [n for n, e in REG.families["lesson"].items() if e.source == BUILTIN]


def test_the_lecture_is_covered():
    assert len(LESSONS) >= 13
    assert {"linear_collapse", "sigmoid_vanishing", "tanh_saturation", "dead_relu",
            "constant_init", "init_scale", "batchnorm_rescue", "batchnorm_statistics",
            "momentum_ill_conditioned", "batch_noise", "regularization", "preprocessing",
            "augmentation"} <= set(LESSONS)


@pytest.mark.parametrize("name", LESSONS)
def test_lesson_claim_holds(name):
    lesson = REG.get("lesson", name)()
    results, verdict = run_lesson(lesson, REG)
    assert verdict.passed, verdict.numbers
    assert set(results) == set(lesson.runs)
    assert any(ch.isdigit() for ch in verdict.numbers)  # it reports its numbers


def test_runs_differ_only_in_what_the_lesson_varies():
    lesson = REG.get("lesson", "init_scale")()
    a, b = (run_config(lesson, label, REG) for label in ("tanh normal(0.01)", "tanh xavier"))
    assert a.seed == b.seed and a.data == b.data and a.optimizer == b.optimizer
    assert a.model.initializer != b.model.initializer


class NeverTrue(Lesson):
    """A claim that does not hold, for testing the exit code."""
    name = "never_true"
    title = "A false claim"
    explanation = "Nothing."
    watch = "Nothing."
    runs = {"only": {"model.hidden": [4]}}
    steps = 2

    def check(self, results):
        return Verdict(False, f"loss {results['only'].last.loss:.3g} is not negative")


def test_lesson_commands(capsys, monkeypatch):
    assert main(["lessons", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {entry["name"] for entry in listed} >= set(LESSONS)
    assert all(entry["title"] and entry["runs"] for entry in listed)

    assert main(["lesson", "sigmoid_vanishing", "--headless"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith("PASS: ‖∂L/∂W‖ of layer 1 ÷ layer 8")

    monkeypatch.setitem(REG.families["lesson"], "never_true",
                        Entry(NeverTrue, "tests", "tests"))
    assert main(["lesson", "never_true", "--headless"]) == 1
    assert "FAIL: loss" in capsys.readouterr().out
    assert main(["lesson", "sigmoid_vanish"]) == 2
    assert "did you mean 'sigmoid_vanishing'" in capsys.readouterr().err
