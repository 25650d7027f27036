"""Conformance checks for plugin components, for `nnsim check-plugin` and authors' own tests.

    from nnsim.testing import assert_plugin_conforms
    def test_conforms():
        assert_plugin_conforms("nnsim-mine")   # the installed distribution, every component

Each check returns a Check: a name, whether it passed, the numbers behind the verdict and
the criterion it is judged by. Gradients are compared with central differences in float64,
learnable parameters included. Hyperparameters given to a check (`check_optimizer(Lion,
lr=0.003)`) are used for every instance it makes; by default, the declared defaults.
"""

from __future__ import annotations

import importlib.metadata
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnsim.components import Activation, Component, Dataset, Initializer, Normalizer, Optimizer
from nnsim.errors import did_you_mean, raised

RTOL, ATOL = 1e-4, 1e-7


@dataclass(frozen=True)
class Check:
    """One check of one component: `detail` is what was measured, `criterion` what passes."""

    component: str
    name: str
    passed: bool
    detail: str
    criterion: str = ""

    def __str__(self) -> str:
        line = f"{'PASS' if self.passed else 'FAIL'}  {self.component}  {self.name}: {self.detail}"
        return f"{line} (passes when {self.criterion})" if self.criterion and not self.passed \
            else line


def numeric_grad(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """∂f/∂x by central differences; `x` is perturbed in place and restored."""
    flat = x.reshape(-1)
    out = np.zeros(flat.size)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        out[i] = (up - down) / (2 * eps)
    return out.reshape(x.shape)


def _compare(analytic, numeric) -> tuple[bool, str]:
    analytic, numeric = np.asarray(analytic, float), np.asarray(numeric, float)
    if analytic.shape != numeric.shape:
        return False, f"shape {analytic.shape}, expected {numeric.shape}"
    err = np.abs(analytic - numeric)
    bound = ATOL + RTOL * np.maximum(np.abs(analytic), np.abs(numeric))
    worst = float((err / bound).max()) if err.size else 0.0
    return bool((err <= bound).all()), f"worst error {worst:.2g}× the tolerance"


def _run(component: str, name: str, fn: Callable[[], tuple[bool, str]],
         criterion: str = "") -> Check:
    try:
        passed, detail = fn()
    except Exception as exc:  # a check that blows up is a failed check, never a crash
        return Check(component, name, False, raised(exc), criterion)
    return Check(component, name, passed, detail, criterion)


def _label(cls: type[Component]) -> str:
    return f"{cls.family} {cls.name!r}"


# ---------------------------------------------------------------- activations

GRADIENT_CRITERION = ("backward is within 1e-4 relative + 1e-7 absolute of central "
                      "differences (step 1e-6, float64), for the input and every parameter")


def _activation(cls, width: int, dtype, rng, hypers: Mapping[str, Any] | None = None
                ) -> Activation:
    act = cls(**(hypers or {}))
    act.params = {k: np.asarray(v, dtype=dtype) + rng.uniform(-0.1, 0.1, width).astype(dtype)
                  for k, v in act.init_params(width, np.dtype(dtype)).items()}
    return act


def check_activation(cls: type[Activation], seed: int = 0, **hypers: Any) -> list[Check]:
    rng = np.random.default_rng(seed)
    label = _label(cls)
    x = rng.normal(0.0, 1.5, (6, 5))
    x[np.abs(x) < 1e-2] = 0.05  # away from kinks at zero
    upstream = rng.normal(size=x.shape)

    def gradients():
        act = _activation(cls, 5, np.float64, rng, hypers)

        def f():
            return float(np.sum(act.forward(x) * upstream))

        result = act.backward(x, act.forward(x), upstream)
        grad_x, grads = result if isinstance(result, tuple) else (result, {})
        ok, detail = _compare(grad_x, numeric_grad(f, x))
        if set(grads) != set(act.learnable()):
            return False, f"backward returned gradients for {sorted(grads)}, expected " \
                          f"{sorted(act.learnable())}"
        for key in act.learnable():
            ok_p, detail_p = _compare(grads[key], numeric_grad(f, act.params[key]))
            ok, detail = ok and ok_p, f"{detail}; {key}: {detail_p}"
        return ok, detail

    def shapes():
        for dtype in (np.float32, np.float64):
            act = _activation(cls, 5, dtype, rng, hypers)
            xx = x.astype(dtype)
            y = act.forward(xx)
            result = act.backward(xx, y, upstream.astype(dtype))
            g = result[0] if isinstance(result, tuple) else result
            for what, arr in (("forward", y), ("backward", g)):
                if arr.shape != xx.shape or arr.dtype != xx.dtype:
                    return False, f"{what} gave {arr.dtype}{arr.shape} for {xx.dtype}{xx.shape}"
            mask = act.saturated(xx, y)
            if mask.shape != xx.shape or mask.dtype != bool:
                return False, f"saturated gave {mask.dtype}{mask.shape}, expected a bool mask"
        return True, "float32 and float64 kept, saturated() is a boolean mask"

    def determinism():
        a = _activation(cls, 5, np.float64, np.random.default_rng(1), hypers)
        b = _activation(cls, 5, np.float64, np.random.default_rng(1), hypers)
        same = np.array_equal(a.forward(x), b.forward(x))
        return same, "same input, same output" if same else "outputs differ for one input"

    return [_run(label, "backward matches central differences", gradients, GRADIENT_CRITERION),
            _run(label, "shapes and dtypes preserved", shapes,
                 "forward and backward return the input's shape and dtype for float32 and "
                 "float64 input, and saturated() a boolean mask of that shape"),
            _run(label, "deterministic", determinism,
                 "two instances give identical outputs for one input")]


# ---------------------------------------------------------------- initializers

def check_initializer(cls: type[Initializer], seed: int = 0, **hypers: Any) -> list[Check]:
    label = _label(cls)
    init = cls(**hypers)
    fan_in, fan_out = 400, 300

    def draw(s):
        return np.asarray(init.sample((fan_in, fan_out), fan_in, fan_out,
                                      np.random.default_rng(s)))

    def shape_and_seed():
        a, b = draw(seed), draw(seed)
        if a.shape != (fan_in, fan_out):
            return False, f"shape {a.shape}, expected {(fan_in, fan_out)}"
        return bool(np.array_equal(a, b)), "same seed, same weights" if np.array_equal(a, b) \
            else "two draws with one seed differ"

    def statistics():
        w = draw(seed)
        notes, ok = [], True
        std = init.expected_std(fan_in, fan_out)
        if std is not None:
            good = abs(w.std() - std) <= 0.03 * std + 1e-12
            ok &= good
            notes.append(f"std {w.std():.4g} vs rule {std:.4g}")
        mean = init.expected_mean(fan_in, fan_out)
        if mean is not None:
            good = abs(w.mean() - mean) <= 0.05 * max(std or 0.0, abs(mean), 1e-3)
            ok &= good
            notes.append(f"mean {w.mean():.3g} vs {mean:.3g}")
        bound = init.bound(fan_in, fan_out)
        if bound is not None:
            good = np.abs(w).max() <= bound + 1e-12
            ok &= good
            notes.append(f"max |w| {np.abs(w).max():.4g} ≤ {bound:.4g}")
        return bool(ok), "; ".join(notes) or "no rule declared (expected_std, bound)"

    return [_run(label, "shape and determinism under a seed", shape_and_seed,
                 f"sample() returns the shape asked for, {(fan_in, fan_out)}, and the same "
                 f"array twice under one seed"),
            _run(label, "empirical statistics match the declared rule", statistics,
                 f"on a {fan_in}×{fan_out} draw the std is within 3 % of expected_std(), the "
                 f"mean within 5 % of max(std, |mean|, 0.001) of expected_mean(), and every "
                 f"|w| ≤ bound(), for each rule the initializer declares")]


# ---------------------------------------------------------------- normalizers

def _normalizer(cls, width: int, dtype, rng, hypers: Mapping[str, Any] | None = None
                ) -> Normalizer:
    norm = cls(**(hypers or {}))
    norm.params = {k: np.asarray(v, dtype=dtype) + rng.normal(0, 0.3, width).astype(dtype)
                   for k, v in norm.init_params(width, np.dtype(dtype)).items()}
    norm.buffers = {k: np.array(v, dtype=dtype)
                    for k, v in norm.init_buffers(width, np.dtype(dtype)).items()}
    return norm


def check_normalizer(cls: type[Normalizer], seed: int = 0, width: int = 8,
                     **hypers: Any) -> list[Check]:
    """`width` units (8 splits into 1, 2, 4 or 8 groups)."""
    rng = np.random.default_rng(seed)
    label = _label(cls)
    x = rng.normal(1.0, 2.0, (10, width))
    upstream = rng.normal(size=x.shape)

    def gradients():
        norm = _normalizer(cls, width, np.float64, rng, hypers)

        def f():
            return float(np.sum(norm.forward(x, True) * upstream))

        norm.forward(x, True)
        grad_x, grads = norm.backward(upstream)
        ok, detail = _compare(grad_x, numeric_grad(f, x))
        for key in norm.params:
            ok_p, detail_p = _compare(grads[key], numeric_grad(f, norm.params[key]))
            ok, detail = ok and ok_p, f"{detail}; {key}: {detail_p}"
        return ok, detail

    def shapes():
        for dtype in (np.float32, np.float64):
            norm = _normalizer(cls, width, dtype, rng, hypers)
            xx = x.astype(dtype)
            for training in (True, False):
                y = norm.forward(xx, training)
                if y.shape != xx.shape or y.dtype != xx.dtype:
                    return False, f"forward(training={training}) gave {y.dtype}{y.shape}"
        return True, "float32 and float64 kept in training and inference"

    def inference():
        norm = _normalizer(cls, width, np.float64, rng, hypers)
        if not norm.buffers:
            a, b = norm.forward(x, False), norm.forward(x, True)
            same = np.allclose(a, b)
            return same, "no buffers: inference equals training" if same else \
                "no buffers, yet inference differs from training"
        before = {k: v.copy() for k, v in norm.buffers.items()}
        norm.forward(x[:1], False)
        if any(not np.array_equal(before[k], v) for k, v in norm.buffers.items()):
            return False, "inference changed the buffers"
        for _ in range(300):
            norm.forward(x, True)
        moved = any(not np.array_equal(before[k], v) for k, v in norm.buffers.items())
        small = x[:2]
        differs = not np.allclose(norm.forward(small, False), norm.forward(small, True))
        return moved and differs, ("training updates the buffers; inference uses them, not "
                                   "the batch" if moved and differs else
                                   "buffers unchanged by training" if not moved else
                                   "inference on two rows equals training on them")

    return [_run(label, "backward (training mode) matches central differences", gradients,
                 GRADIENT_CRITERION),
            _run(label, "shapes and dtypes preserved", shapes,
                 "forward returns the input's shape and dtype for float32 and float64, in "
                 "training and in inference"),
            _run(label, "training and inference behaviour", inference,
                 "inference leaves the buffers alone, 300 training passes change them, and "
                 "inference on two rows then differs from training on them (without buffers: "
                 "inference equals training)")]


# ---------------------------------------------------------------- optimizers

#: the optimizer check's convex quadratic f(w) = ½ Σ a·w², its start, and what passes: a
#: fall by DROP or more within STEPS steps
CURVATURE = (1.0, 3.0, 10.0, 0.5)
START = (0.1, -0.2, 0.05, 0.3)
STEPS, DROP = 1000, 10.0


def check_optimizer(cls: type[Optimizer], seed: int = 0, **hypers: Any) -> list[Check]:
    """`hypers` (e.g. `lr=0.003`) are used by every check; by default the declared ones."""
    label = _label(cls)
    curvature = np.array(CURVATURE)
    given = ", ".join(f"{k}={v!r}" for k, v in hypers.items()) or "its defaults"

    def make() -> Optimizer:
        return cls(**hypers)

    def run(opt, w, state, steps, start=1):
        for t in range(start, start + steps):
            opt.update(w, curvature * w, state, t)

    def quadratic():
        opt = make()
        w = np.array(START)
        state = opt.init_state(w)
        first = 0.5 * float(np.sum(curvature * w * w))
        run(opt, w, state, STEPS)
        last = 0.5 * float(np.sum(curvature * w * w))
        ok = bool(last < first / DROP)
        return ok, (f"f = ½Σaw² fell from {first:.3g} to {last:.3g} ({first / last:.3g}×) in "
                    f"{STEPS} steps at {given}" if last > 0 else
                    f"f = ½Σaw² fell from {first:.3g} to {last:.3g} in {STEPS} steps at {given}")

    def round_trip():
        a, b = make(), make()
        w = np.array([1.0, -2.0, 0.5, 3.0])
        state = a.init_state(w)
        run(a, w, state, 10)
        buffer = io.BytesIO()
        np.savez(buffer, w=w, **{f"s_{k}": v for k, v in state.items()})
        buffer.seek(0)
        with np.load(buffer) as saved:
            w2 = saved["w"].copy()
            state2 = {k: saved[f"s_{k}"].copy() for k in state}
        run(a, w, state, 10, start=11)
        run(b, w2, state2, 10, start=11)
        same = np.array_equal(w, w2)
        return same, "continues identically from saved state" if same else \
            "a restored optimizer diverges from the original: state beyond init_state()?"

    def own_state():
        rng = np.random.default_rng(seed)
        starts = rng.normal(size=(2, 6))
        grads = rng.normal(size=(2, 12, 6))
        shared = make()
        together = [starts[0].copy(), starts[1].copy()]
        states = [shared.init_state(together[0]), shared.init_state(together[1])]
        for t in range(12):
            for i in (0, 1):
                shared.update(together[i], grads[i, t], states[i], t + 1)
        apart = []
        for i in (0, 1):
            alone, w = make(), starts[i].copy()
            state = alone.init_state(w)
            for t in range(12):
                alone.update(w, grads[i, t], state, t + 1)
            apart.append(w)
        same = all(np.array_equal(x, y) for x, y in zip(together, apart))
        return same, ("one instance stepping two parameter vectors in turn gives what two "
                      "instances give" if same else
                      "one instance stepping two parameter vectors in turn differs from two "
                      "instances stepping one each: state kept on the optimizer (self) "
                      "instead of in the state arrays?")

    def state_changes():
        opt = make()
        rng = np.random.default_rng(seed)
        w = rng.normal(size=6)
        state = opt.init_state(w)
        if not state:
            return True, "no state arrays declared (state_names is empty)"
        initial = {k: np.array(v, copy=True) for k, v in state.items()}
        for t in range(5):
            opt.update(w, rng.normal(size=6), state, t + 1)
        still = sorted(k for k in state if np.array_equal(state[k], initial[k]))
        return not still, (f"state {', '.join(map(repr, still))} unchanged after 5 steps: "
                           f"kept on the optimizer (self) instead?" if still else
                           f"state {', '.join(map(repr, sorted(state)))} updated")

    def dtypes():
        opt = make()
        w = np.ones(4, np.float32)
        state = opt.init_state(w)
        opt.update(w, np.full(4, 0.5, np.float32), state, 1)
        bad = [k for k, v in state.items() if v.dtype != np.float32 or v.shape != w.shape]
        ok = w.dtype == np.float32 and not bad
        return ok, "float32 kept" if ok else f"state {bad} not float32 shaped like params"

    def declares_lr():
        ok = "lr" in cls.hyperparameters
        return ok, "declares lr" if ok else "every optimizer must declare an lr hyperparameter"

    quad = (f"f = ½Σaw² with a = {CURVATURE} falls {DROP:g}× or more within {STEPS:,} steps "
            f"from w = {START} at {given} (pass other hyperparameters to the check, e.g. "
            f"check_optimizer(cls, lr=0.01), where the defaults are not meant for it)")
    return [_run(label, "decreases a convex quadratic", quadratic, quad),
            _run(label, "state survives a checkpoint round trip", round_trip,
                 "10 steps, then the parameters and state arrays saved and loaded with "
                 "np.savez: 10 more steps of a fresh instance equal 10 more of the original"),
            _run(label, "state kept in the state arrays", own_state,
                 "one instance stepping two parameter vectors in turn (12 steps each, random "
                 "gradients) gives exactly what two instances give stepping one each"),
            _run(label, "state arrays change", state_changes,
                 "every array init_state() returns changes within 5 steps of random gradients"),
            _run(label, "float32 parameters and state", dtypes,
                 "float32 parameters stay float32, and every state array is float32 shaped "
                 "like them"),
            _run(label, "declares lr", declares_lr, "the class declares an lr hyperparameter")]


# ---------------------------------------------------------------- datasets

def check_dataset(cls: type[Dataset], seed: int = 0, **hypers: Any) -> list[Check]:
    label = _label(cls)

    def generate():
        ds = cls(**hypers)
        x1, y1 = ds.generate(np.random.default_rng(seed))
        x2, y2 = ds.generate(np.random.default_rng(seed))
        x1, y1 = np.asarray(x1), np.asarray(y1)
        if x1.ndim != 2 or len(x1) != len(y1):
            return False, f"X {x1.shape} and y {y1.shape} do not pair up"
        if not np.isfinite(x1).all():
            return False, "non-finite inputs"
        if not (np.array_equal(x1, x2) and np.array_equal(y1, y2)):
            return False, "two draws with one seed differ"
        if ds.task == "classification":
            labels = set(np.unique(y1).tolist())
            if not labels <= set(range(ds.n_classes())):
                return False, f"labels {sorted(labels)[:5]}… outside [0, {ds.n_classes()})"
        return True, f"{len(x1)} examples of dimension {x1.shape[1]}, deterministic"

    return [_run(label, "generates paired, finite, seeded data", generate,
                 "generate() returns X of shape (n, d) and n targets, all finite, the same "
                 "under one seed, and classification labels in [0, n_classes())")]


# ---------------------------------------------------------------- lessons

def check_lesson(cls, seed: int = 0, **hypers: Any) -> list[Check]:
    from nnsim.lessons import run_config, run_lesson

    label = _label(cls)
    lesson = cls(**hypers)

    def described():
        missing = [k for k in ("title", "explanation", "watch", "section", "control_note")
                   if not getattr(cls, k)]
        if not cls.runs:
            missing.append("runs")
        if not cls.control:
            missing.append("control")
        return not missing, ("title, explanation, watch, section, runs and control given"
                             if not missing else f"missing {', '.join(missing)}")

    def configs():
        unknown = set(cls.control) - set(cls.runs)
        if unknown:
            return False, f"control names runs that do not exist: {', '.join(sorted(unknown))}"
        for run in cls.runs:
            run_config(lesson, run)  # raises ConfigError naming the key
            run_config(lesson, run, control=True)
        return True, f"{len(cls.runs)} run configs valid, and their control's"

    def claim():
        _, verdict = run_lesson(lesson, seed=seed)
        return verdict.passed, verdict.numbers

    def control():
        _, verdict = run_lesson(lesson, seed=seed, control=True)
        return not verdict.passed, ("control fails the check: " if not verdict.passed else
                                    "control passes the check, so it proves nothing: ") + \
            verdict.numbers

    return [_run(label, "described", described,
                 "title, explanation, watch, section, control_note, runs and control are given"),
            _run(label, "run configs valid", configs,
                 "every run's overrides, and its control's, make a valid config; the control "
                 "names only runs that exist"),
            _run(label, "its check passes", claim, f"check() passes on the runs at seed {seed}"),
            _run(label, "its control fails", control,
                 f"check() fails on the control's runs at seed {seed}")]


# ---------------------------------------------------------------- doctor checks

def check_doctor_check(cls, seed: int = 0, **hypers: Any) -> list[Check]:
    """A doctor's check examines a short healthy run and a diverged one without raising,
    and returns Findings that say what, why, what to do, and where in the lecture."""
    from nnsim.components import Finding
    from nnsim.config import Config
    from nnsim.doctor import Evidence
    from nnsim.engine.simulation import Simulation

    label = _label(cls)

    def examines():
        out = []
        for lr in (0.05, 10.0):
            config = Config.from_dict({"seed": seed, "model": {"hidden": [8, 8, 8]},
                                       "optimizer": {"name": "sgd", "lr": lr},
                                       "data": {"samples": 200}})
            sim = Simulation(config)
            records = sim.run(60)
            found = cls(**hypers).examine(Evidence(records, config, sim.data.outputs,
                                                   sim=sim))
            if not isinstance(found, (list, tuple)):
                return False, f"examine() returned {type(found).__name__}, not a list"
            for f in found:
                if not isinstance(f, Finding):
                    return False, f"examine() returned a {type(f).__name__}, not a Finding"
                missing = [k for k in ("code", "title", "evidence", "remedy", "section")
                           if not getattr(f, k)]
                if missing or not f.strength > 0:
                    return False, f"a finding without {', '.join(missing) or 'a strength > 0'}"
            out.append(len(found))
        return True, f"examines a healthy and a diverging run ({out[0]} and {out[1]} findings)"

    return [_run(label, "returns well-formed findings", examines,
                 "examine() returns a list of Findings for a 60-step healthy run (lr 0.05) "
                 "and a diverging one (lr 10), each with a code, title, evidence, remedy, "
                 "section and a strength > 0")]


CHECKS = {"activation": check_activation, "lesson": check_lesson, "initializer": check_initializer,
          "normalizer": check_normalizer, "optimizer": check_optimizer,
          "dataset": check_dataset, "check": check_doctor_check}


def check_component(cls: type[Component], **hypers: Any) -> list[Check]:
    """Every check that applies to the component's family; `hypers` are given to every
    instance the checks make (by default the declared defaults)."""
    if cls.family == "dataset" and getattr(cls, "name", "") == "digits":
        try:
            import sklearn  # noqa: F401
        except ImportError:
            return [Check(_label(cls), "generates data", True,
                          "skipped: needs scikit-learn (pip install 'nnsim[digits]')")]
    if cls.family == "normalizer" and getattr(cls, "passthrough", False):
        return [Check(_label(cls), "passthrough", True, "left out of the network: nothing to do")]
    family = getattr(cls, "family", None)
    if family not in CHECKS:
        return [Check(repr(cls), "is a component", False, f"family {family!r} is none of "
                      "nnsim's", "it subclasses one of nnsim.components' base classes")]
    return CHECKS[family](cls, **hypers)


def assert_conforms(*classes: type[Component], **hypers: Any) -> None:
    """For plugin authors' pytest: fail with every failed check listed. `hypers` go to every
    class given (e.g. `assert_conforms(Lion, lr=0.003)`)."""
    failed = [c for cls in classes for c in check_component(cls, **hypers) if not c.passed]
    assert not failed, "\n".join(map(str, failed))


# ---------------------------------------------------------------- whole plugins

LOAD_CRITERION = ("the plugin imports, implements only nnsim's hooks (each marked @hookimpl), "
                  "and registers component classes, each with a name no other plugin took")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _distribution(source: str) -> str:
    """'nnsim-extras 0.1.0' → 'nnsim-extras'."""
    return source.rsplit(" ", 1)[0] if " " in source else source


def matches(name: str, plugin: str, source: str, component: str = "") -> bool:
    """Whether `name` (an entry-point name, a distribution name, a component name or
    FAMILY:NAME) names this plugin or component."""
    family, _, short = component.partition(":")
    return (name == plugin or _normalize(name) == _normalize(_distribution(source))
            or (bool(component) and name in (component, short)))


def load_problems(registry: Any, names: Iterable[str]) -> list[Any]:
    """The registry's load failures (pluginmanager.Failure) that concern any of `names`."""
    names = list(names)
    return [f for f in registry.failures
            if any(matches(n, f.plugin, f.source, f.component) for n in names)]


def failure_check(failure: Any) -> Check:
    """A load failure as a failed check."""
    return Check(f"plugin {failure.plugin!r} ({failure.source})", "loads", False,
                 f"failed at {failure.stage}: {failure.error}", LOAD_CRITERION)


def _entry_points(distribution: str) -> list[importlib.metadata.EntryPoint]:
    from nnsim.pluginmanager import ENTRY_POINT_GROUP

    eps = list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    mine = [ep for ep in eps if ep.dist is not None
            and _normalize(ep.dist.name) == _normalize(distribution)]
    return mine or [ep for ep in eps if ep.name == distribution]


def check_plugin(distribution: str,
                 hypers: Mapping[str, Mapping[str, Any]] | None = None) -> list[Check]:
    """Load an installed plugin through its `nnsim` entry points, as nnsim does, and check
    everything it registers: a failed check per load problem, then every component's checks.
    `hypers` maps a component name (or FAMILY:NAME) to hyperparameters for its checks."""
    from nnsim.pluginmanager import BUILTIN, ENTRY_POINT_GROUP, load_registry

    hypers = dict(hypers or {})
    eps = _entry_points(distribution)
    if not eps:
        known = sorted({ep.dist.name for ep in importlib.metadata.entry_points(
            group=ENTRY_POINT_GROUP) if ep.dist is not None})
        return [Check(f"plugin {distribution!r}", "installed", False,
                      f"no installed distribution {distribution!r} has an `{ENTRY_POINT_GROUP}` "
                      f"entry point{did_you_mean(distribution, known)}",
                      "the distribution is installed (pip install -e .) and declares "
                      "[project.entry-points.nnsim]")]
    registry = load_registry(entry_points=eps, env={})
    results = [failure_check(f) for f in registry.failures]
    components = [(family, name, entry.cls) for family, table in registry.families.items()
                  for name, entry in table.items() if entry.source != BUILTIN]
    if not components and not results:
        results.append(Check(f"plugin {distribution!r}", "registers components", False,
                             "its hooks registered nothing",
                             "its @hookimpl functions call register(cls) at least once"))
    unknown = set(hypers) - {n for _, n, _ in components} \
        - {f"{f}:{n}" for f, n, _ in components}
    if unknown:
        raise ValueError(f"hyperparameters for {', '.join(sorted(unknown))}, which "
                         f"{distribution} does not register")
    for family, name, cls in components:
        given = hypers.get(f"{family}:{name}", hypers.get(name, {}))
        results += check_component(cls, **given)
    return results


def assert_plugin_conforms(distribution: str,
                           hypers: Mapping[str, Mapping[str, Any]] | None = None) -> None:
    """The one test a plugin needs: its distribution, loaded through its entry points as
    nnsim loads it, registers components that pass every check.

        def test_conforms():
            assert_plugin_conforms("nnsim-mine", hypers={"lion": {"lr": 0.003}})
    """
    results = check_plugin(distribution, hypers)
    failed = [c for c in results if not c.passed]
    assert not failed, f"{len(failed)} of {len(results)} checks failed:\n" + \
        "\n".join(map(str, failed))


__all__: Sequence[str] = (
    "Check", "numeric_grad", "check_activation", "check_initializer", "check_normalizer",
    "check_optimizer", "check_dataset", "check_lesson", "check_doctor_check",
    "check_component", "assert_conforms", "check_plugin", "assert_plugin_conforms",
    "load_problems", "failure_check")
