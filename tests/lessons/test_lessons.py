"""Every lesson proves its claim at seeds 0-2 and its control fails there; the contract
(sections, controls, margins) holds; the helpers checks rely on measure what they say."""

import math

import numpy as np
import pytest

from nnsim.components import Margin, Verdict, above, below
from nnsim.config import Config
from nnsim.engine import Simulation
from nnsim.lessons import RunResult, parse_seeds, run_config, run_lesson
from nnsim.pluginmanager import BUILTIN, default_registry

REG = default_registry()
LESSONS = [n for n, e in REG.families["lesson"].items() if e.source == BUILTIN]
SEEDS = (0, 1, 2)

#: the headings of the lecture (reference/lecture-optimization-of-deep-networks.md) a lesson
#: may cite, as "section" or "section › subsection"
LECTURE = {
    "Optimization of Deep Neural Networks Overview": (),
    "Architectural Considerations": ("sigmoid", "TanH", "ReLU", "Leaky ReLU", "Conclusion"),
    "Initialization": ("Poor initialization", "Normal Initialization", "Xavier Initialization",
                       "(Simpler) Xavier and Xavier2 Initialization"),
    "Preprocessing, Normalization, and Augmentation": (),
    "Optimizers": ("Noisy gradients", "Adding momentum"),
    "Regularization": (),
    "Data Augmentation": (),
    "The Process of Training Neural Networks": (),
}
SECTIONS = set(LECTURE) | {f"{s} › {sub}" for s, subs in LECTURE.items() for sub in subs}


def test_the_lecture_is_covered():
    assert len(LESSONS) >= 22
    assert {"linear_collapse", "sigmoid_vanishing", "tanh_saturation", "dead_relu",
            "constant_init", "init_scale", "batchnorm_rescue", "batchnorm_statistics",
            "momentum_ill_conditioned", "batch_noise", "regularization", "preprocessing",
            "augmentation"} <= set(LESSONS)
    cited = {REG.get("lesson", n).section for n in LESSONS}
    assert cited <= SECTIONS, cited - SECTIONS
    # every top-level section with content has a lesson
    assert {s.split(" › ")[0] for s in cited} >= set(LECTURE) - {
        "Optimization of Deep Neural Networks Overview"}


@pytest.mark.parametrize("name", LESSONS)
def test_every_lesson_declares_a_control_that_changes_its_runs(name):
    cls = REG.get("lesson", name)
    lesson = cls()
    assert cls.title and cls.explanation and cls.watch and cls.section and cls.control_note
    assert cls.control and set(cls.control) <= set(cls.runs)
    changed = [label for label in cls.runs
               if run_config(lesson, label, REG) != run_config(lesson, label, REG, control=True)]
    assert changed == [label for label in cls.runs if cls.control.get(label)]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", LESSONS)
def test_lesson_passes_and_its_control_fails(name, seed):
    lesson = REG.get("lesson", name)()
    results, verdict = run_lesson(lesson, REG, seed=seed)
    assert verdict.passed, f"seed {seed}: {verdict.numbers}"
    assert set(results) == set(lesson.runs)
    assert all(r.sim.config.seed == seed for r in results.values())
    assert verdict.margins and verdict.margin > 0
    _, control = run_lesson(lesson, REG, seed=seed, control=True)
    assert not control.passed, f"control passed at seed {seed}: {control.numbers}"
    assert control.margin <= 0


def test_run_config_applies_base_run_control_seed_then_overrides_in_order():
    lesson = REG.get("lesson", "tanh_saturation")()
    plain = run_config(lesson, "normal(1.0)", REG)
    assert plain.model.initializer.hypers["std"] == 1.0 and plain.model.activation.name == "tanh"
    control = run_config(lesson, "normal(1.0)", REG, control=True)
    assert control.model.initializer.hypers["std"] == pytest.approx(0.177)
    assert run_config(lesson, "xavier", REG, control=True) == run_config(lesson, "xavier", REG)
    seeded = run_config(lesson, "xavier", REG, seed=7, overrides=["model.hidden=[8]",
                                                                  ("train.batch_size", 16)])
    assert (seeded.seed, seeded.model.hidden, seeded.train.batch_size) == (7, (8,), 16)
    # a --set wins over the lesson's own settings, the seed included
    assert run_config(lesson, "xavier", REG, seed=7, overrides=["seed=3"]).seed == 3


def test_runs_differ_only_in_what_the_lesson_varies():
    lesson = REG.get("lesson", "init_scale")()
    a, b = (run_config(lesson, label, REG) for label in ("tanh normal(0.01)", "tanh xavier"))
    assert a.seed == b.seed and a.data == b.data and a.optimizer == b.optimizer
    assert a.model.initializer != b.model.initializer


def test_margin_is_log_distance_signed_by_the_condition():
    assert above("x", 2.0, 1.0).margin == pytest.approx(math.log(2))
    assert below("x", 2.0, 1.0).margin == pytest.approx(-math.log(2))
    assert below("x", 0.5, 1.0).passed and not above("x", 0.5, 1.0).passed
    assert not above("x", 1.0, 1.0).passed  # on the threshold is not beyond it
    assert above("x", math.nan, 1.0).margin == -math.inf
    assert below("x", math.nan, 1.0).margin == -math.inf
    assert below("x", 0.0, 1.0).margin == math.inf and above("x", -1.0, 1.0).margin == -math.inf
    assert below("x", math.inf, 1.0).margin == -math.inf
    with pytest.raises(ValueError):
        Margin("x", 1.0, ">=", 1.0)
    with pytest.raises(ValueError):
        above("x", 1.0, 0.0)


def test_verdict_of_passes_only_when_every_condition_holds():
    good, bad = above("a", 3.0, 1.0), below("b", 3.0, 1.0)
    assert Verdict.of(good).passed and not Verdict.of(good, bad).passed
    v = Verdict.of(good, bad, note="more")
    assert v.margin == bad.margin and v.weakest is bad
    assert v.numbers == "a 3 (> 1); b 3 (< 1); more"
    assert Verdict(True, "by hand").margin == math.inf
    assert Verdict(False, "by hand").margin == -math.inf


def test_parse_seeds():
    assert parse_seeds("0-9") == list(range(10))
    assert parse_seeds("2") == [2] and parse_seeds("0,3,5-6") == [0, 3, 5, 6]
    for bad, says in (("", "expected seeds as N, A-B"), ("a", "expected seeds"),
                      ("abc", "e.g. 0-9"), ("5-2", "empty range"), ("-1", "expected seeds"),
                      ("1.5", "expected seeds"), ("0-99999999999", "at most 10,000 seeds"),
                      ("0-5000,6000-12000", "at most 10,000 seeds")):
        with pytest.raises(ValueError, match=says):
            parse_seeds(bad)
    assert len(parse_seeds("0-9999")) == 10_000


def _result(sets, steps=5):
    config = Config.default().with_overrides(sets, REG)
    sim = Simulation(config, REG)
    return RunResult(sim.run(steps), sim)


def test_gradient_is_the_engines_and_leaves_the_run_untouched():
    r = _result([("model.hidden", [8, 8]), ("model.normalizer", "batchnorm"),
                 ("data.samples", 200), ("model.dtype", "float64")])
    sim = r.sim
    x, y = sim.data.train_x[:64].copy(), sim.data.train_y[:64].copy()
    params, grads = sim.net.params.copy(), sim.net.grads.copy()
    buffers = {k: v.copy() for k, v in sim.net.buffers().items()}
    g = r.gradient(x, y)
    assert np.array_equal(sim.net.params, params) and np.array_equal(sim.net.grads, grads)
    assert all(np.array_equal(v, buffers[k]) for k, v in sim.net.buffers().items())
    sim.compute_gradients(x, y)  # the engine's own gradient of the same batch
    assert np.allclose(g, sim.net.grads)
    assert not np.allclose(g, r.gradient(sim.data.train_x[64:128], sim.data.train_y[64:128]))


def test_errors_and_losses_are_on_whole_splits_in_inference_mode():
    r = _result([("model.hidden", [8]), ("data.samples", 200), ("model.dropout", 0.5)], 50)
    sim = r.sim
    probs = sim.predict(sim.data.val_x)
    assert r.error("val") == pytest.approx(float(np.mean(probs.argmax(1) != sim.data.val_y)))
    assert r.full_loss("val") == pytest.approx(sim.evaluate()[0])
    assert r.error("train") == r.error("train")  # inference mode: no dropout, deterministic
