"""The doctor on the lessons: each lesson's bad run shows the finding the lesson is about,
its good run does not, and the healthy default run shows nothing at all."""

import dataclasses
import math

import pytest

from nnsim.config import Config
from nnsim.doctor import THRESHOLDS, Threshold, diagnose, diagnose_simulation
from nnsim.engine.simulation import Simulation
from nnsim.lessons import run_config
from nnsim.pluginmanager import default_registry

#: (lesson, bad run, finding it must show, good run that must not show it)
TABLE = [
    ("sigmoid_vanishing", "sigmoid", "vanishing_gradients", "relu"),
    ("dead_relu", "relu", "dead_units", "leaky_relu"),
    ("tanh_saturation", "normal(1.0)", "saturation", "xavier"),
    ("init_scale", "tanh normal(0.01)", "activation_scale", "tanh xavier"),
    ("depth_init", "10 layers", "activation_scale", "2 layers"),
    ("learning_rate", "lr 10", "learning_rate_high", "lr 0.1"),
    ("learning_rate", "lr 1e-5", "learning_rate_low", "lr 0.1"),
    ("constant_init", "constant", "stuck_at_chance", "xavier"),
    ("batchnorm_rescue", "plain N(0,0.01)", "stuck_at_chance", "batchnorm N(0,0.01)"),
    ("batchnorm_rescue", "plain xavier lr 0.5", "learning_rate_high", None),
    ("regularization", "plain", "overfitting", None),
    ("early_stopping", "to the end", "overfitting", None),
    ("batch_noise", "batch 8", "noisy_training", "batch 64"),
]
REGISTRY = default_registry()


def findings(lesson: str, run: str, seed: int) -> list:
    cls = REGISTRY.get("lesson", lesson)
    sim = Simulation(run_config(cls(), run, REGISTRY, seed=seed), REGISTRY)
    return diagnose_simulation(sim, sim.run(cls.steps))


@pytest.mark.parametrize("lesson,bad,code,good", TABLE,
                         ids=[f"{row[0]}:{row[1]}" for row in TABLE])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_lessons_bad_run_shows_its_finding_and_its_good_run_does_not(
        lesson, bad, code, good, seed):
    found = findings(lesson, bad, seed)
    assert code in {f.code for f in found}, [f.title for f in found]
    finding = next(f for f in found if f.code == code)
    assert finding.remedy and finding.section and finding.strength > 0
    if good is not None:
        assert code not in {f.code for f in findings(lesson, good, seed)}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_healthy_default_run_has_no_findings(seed):
    sim = Simulation(Config.default().with_overrides([("seed", seed)]), REGISTRY)
    found = diagnose_simulation(sim, sim.run(3000))
    assert found == [], [f.title for f in found]


def test_thresholds_come_from_the_one_table():
    cls = REGISTRY.get("lesson", "sigmoid_vanishing")
    sim = Simulation(run_config(cls(), "sigmoid", REGISTRY), REGISTRY)
    records = sim.run(cls.steps)
    classes = sim.data.outputs
    assert "vanishing_gradients" in {f.code for f in diagnose(records, sim.config, classes)}
    lenient = dict(THRESHOLDS, vanishing=Threshold(1e-9, "never"))
    from nnsim.doctor import Evidence, examine
    found = examine(Evidence(records, sim.config, classes, thresholds=lenient))
    assert "vanishing_gradients" not in {f.code for f in found}


def test_a_finding_explained_by_another_is_left_out():
    # tiny updates while the activations collapse are the initialization's fault
    cls = REGISTRY.get("lesson", "batchnorm_rescue")
    sim = Simulation(run_config(cls(), "plain N(0,0.01)", REGISTRY), REGISTRY)
    found = {f.code for f in diagnose_simulation(sim, sim.run(cls.steps))}
    assert "activation_scale" in found and "learning_rate_low" not in found


def test_findings_apply_as_config_overrides_that_cure():
    """The fix of the vanishing-gradient finding, applied, removes the finding."""
    cls = REGISTRY.get("lesson", "sigmoid_vanishing")
    config = run_config(cls(), "sigmoid", REGISTRY)
    sim = Simulation(config, REGISTRY)
    (finding,) = [f for f in diagnose_simulation(sim, sim.run(cls.steps))
                  if f.code == "vanishing_gradients"]
    cured = Simulation(config.with_overrides(list(finding.fix), REGISTRY), REGISTRY)
    assert "vanishing_gradients" not in {f.code for f in
                                         diagnose_simulation(cured, cured.run(cls.steps))}
    assert dataclasses.asdict(finding)["code"] == "vanishing_gradients"


@pytest.mark.parametrize("seed", [0, 1])
def test_the_doctor_on_the_newest_600_steps_judges_the_loss_from_the_runs_start(seed):
    """The TUI's doctor sees the newest 600 records. Given the run's first record, the
    healthy default run's noisy loss is never 'rising' in any window, as it is not for
    the CLI's doctor over the whole run; judged from the window's own first loss, it was
    (in about half the windows)."""
    sim = Simulation(Config.default().with_overrides([("seed", seed)]), REGISTRY)
    records = sim.run(2000)
    windows = [records[end - 600:end] for end in range(600, 2001, 100)]

    def rising(window, first):
        return any(f.code == "learning_rate_high"
                   for f in diagnose_simulation(sim, window, first))
    assert not any(rising(w, records[0]) for w in windows)
    assert sum(rising(w, None) for w in windows) >= 3  # the control: the window's start


def test_the_runners_doctor_shows_the_newest_evidence(monkeypatch):
    """The same finding on newer steps replaces the old one (its evidence and steps move
    on); the doctor is given the run's first record."""
    import nnsim.doctor
    from nnsim.components import Finding
    from nnsim.engine.runner import Runner

    seen = []

    def doctor(sim, records, first=None):
        seen.append(first)
        return [Finding("x", "the same title", f"at step {records[-1].step}", "", "",
                        steps=(records[0].step, records[-1].step))]
    monkeypatch.setattr(nnsim.doctor, "diagnose_simulation", doctor)
    runner = Runner(Config.default().with_overrides([("seed", 0)]), REGISTRY, paused=True)
    runner._advance(10)
    runner.diagnose(force=True)
    runner._advance(10)
    runner.diagnose(force=True)
    assert runner.findings[0].evidence == "at step 20"
    assert seen and all(first is not None and first.step == 1 for first in seen)


@pytest.mark.parametrize("initializer,normalizer,fix", [
    ("normal", "none", ("model.initializer", "xavier_normal")),
    ("xavier_normal", "none", ("model.normalizer", "batchnorm")),
    ("xavier_normal", "batchnorm", None)])
def test_no_learning_remedy_says_what_its_fix_does(initializer, normalizer, fix):
    """The 'no learning' finding's words and its fix (`f` in the TUI) agree: with the
    lecture's initializer already in place it said "check the initialization" and `f` added
    batch norm; with batch norm too there is no one setting to change."""
    config = Config.default().with_overrides([
        ("model.activation", "sigmoid"), ("model.initializer", initializer),
        ("model.normalizer", normalizer), ("optimizer.lr", 1e-6)])
    sim = Simulation(config)
    records = list(sim.steps(THRESHOLDS["chance_steps"].value + 10))
    # the loss held at ln 3: the net predicts the class prior
    found = [f for f in diagnose([r._replace(loss=math.log(3)) for r in records], config, 3)
             if f.code == "stuck_at_chance"]
    assert len(found) == 1
    finding = found[0]
    assert finding.fix == ((fix,) if fix else ())
    if fix is None:
        assert "batch norm" not in finding.remedy and "learning rate" in finding.remedy
    elif fix[0] == "model.initializer":
        assert finding.remedy.startswith("check the initialization")
    else:
        assert "already the lecture's" in finding.remedy and "batch norm" in finding.remedy


def test_first_updates_of_a_batch_normalized_network_are_not_called_too_large():
    """N(0, 0.01) under batch norm moves 0.25 of its tiny weights at first: only their
    scale, which its layers' outputs do not depend on (the README's 'batch norm rescues
    it' example was told to lower its learning rate). Without batch norm, large first
    steps are still judged too large."""
    from pathlib import Path

    from nnsim.config import load

    rescue = load(Path(__file__).parents[2] / "examples" / "batchnorm_rescue.toml")
    plain = rescue.with_overrides([("model.normalizer", "none"),
                                   ("model.initializer", "xavier_normal"),
                                   ("optimizer.lr", 5.0)])
    for config, flagged in ((rescue, False), (plain, True)):
        records = list(Simulation(config).steps(40))
        early = [f for f in diagnose(records, config, 3) if f.code == "learning_rate_high"
                 and "first steps" in f.title]
        assert bool(early) == flagged, (config.model.normalizer.name, early)


def test_a_huge_ratio_is_written_in_powers_of_ten():
    """A run whose first layer's gradient underflowed: its vanishing-gradients title wrote
    the ratio out in 300 digits."""
    from pathlib import Path

    from nnsim.config import load

    config = load(Path(__file__).parents[2] / "examples" / "batchnorm_rescue.toml") \
        .with_overrides([("model.normalizer", "none"), ("model.initializer", "xavier_normal"),
                         ("optimizer.lr", 5.0)])
    found = diagnose(list(Simulation(config).steps(40)), config, 3)
    vanishing = [f for f in found if f.code == "vanishing_gradients"]
    assert vanishing and "e2" in vanishing[0].title  # about 1e299×
    assert all(len(f.title) < 100 for f in found), [f.title for f in found]


def test_a_collapse_is_measured_to_the_deepest_layer_it_reaches():
    """N(0, 0.01): the last hidden layer's std climbs back a little, and first-to-last said
    65× where a middle layer was 1,400× below the first. The finding names the layer
    furthest from the first, and its evidence gives every layer's std."""
    import re

    config = Config.default().with_overrides([("model.initializer", "normal")])
    found = [f for f in diagnose(list(Simulation(config).steps(300)), config, 3)
             if f.code == "activation_scale"]
    assert len(found) == 1
    stds = {int(i): float(v) for i, v in re.findall(r"L(\d+) ([0-9.e+-]+)", found[0].evidence)}
    assert sorted(stds) == [1, 2, 3, 4, 5]
    lowest = min(list(stds)[1:], key=stds.__getitem__)
    assert found[0].title.endswith(f"from layer 1 to layer {lowest}")
    assert lowest != 5, stds  # the case it is for: the last layer is not the lowest


@pytest.mark.parametrize("lesson,run,fix,words", [
    ("tanh_saturation", "normal(1.0)", ("model.initializer", "xavier_normal"),
     "smaller initial weights"),
    ("momentum_ill_conditioned", "momentum lr 0.01", ("model.normalizer", "batchnorm"),
     "the initialization is already the lecture's")])
def test_a_saturation_remedy_starts_from_what_is_not_in_place(lesson, run, fix, words):
    """It said "smaller initial weights (Xavier for tanh)" to a network initialized with
    Xavier, while `f` added batch norm; the words and the fix now agree."""
    from nnsim.lessons import lesson_class

    registry = default_registry()
    config = run_config(lesson_class(registry, lesson)(), run, registry, seed=0)
    sim = Simulation(config, registry)
    found = [f for f in diagnose_simulation(sim, list(sim.steps(200)))
             if f.code == "saturation"]
    assert len(found) == 1 and found[0].fix == (fix,)
    assert found[0].remedy.startswith(words), found[0].remedy
