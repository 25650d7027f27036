"""Conformance checks for plugin components, for `nnsim check-plugin` and authors' own tests.

    from nnsim.testing import assert_conforms
    def test_swish():
        assert_conforms(Swish)

Each check returns a Check: a name, whether it passed, and the numbers behind the verdict.
Gradients are compared with central differences in float64, learnable parameters included.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nnsim.components import Activation, Component, Dataset, Initializer, Normalizer, Optimizer

RTOL, ATOL = 1e-4, 1e-7


@dataclass(frozen=True)
class Check:
    component: str
    name: str
    passed: bool
    detail: str

    def __str__(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.component}  {self.name}: {self.detail}"


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


def _run(component: str, name: str, fn: Callable[[], tuple[bool, str]]) -> Check:
    try:
        passed, detail = fn()
    except Exception as exc:  # a check that blows up is a failed check, never a crash
        return Check(component, name, False, f"raised {type(exc).__name__}: {exc}")
    return Check(component, name, passed, detail)


def _label(cls: type[Component]) -> str:
    return f"{cls.family} {cls.name!r}"


# ---------------------------------------------------------------- activations

def _activation(cls, width: int, dtype, rng) -> Activation:
    act = cls()
    act.params = {k: np.asarray(v, dtype=dtype) + rng.uniform(-0.1, 0.1, width).astype(dtype)
                  for k, v in act.init_params(width, np.dtype(dtype)).items()}
    return act


def check_activation(cls: type[Activation], seed: int = 0) -> list[Check]:
    rng = np.random.default_rng(seed)
    label = _label(cls)
    x = rng.normal(0.0, 1.5, (6, 5))
    x[np.abs(x) < 1e-2] = 0.05  # away from kinks at zero
    upstream = rng.normal(size=x.shape)

    def gradients():
        act = _activation(cls, 5, np.float64, rng)

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
            act = _activation(cls, 5, dtype, rng)
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
        a = _activation(cls, 5, np.float64, np.random.default_rng(1))
        b = _activation(cls, 5, np.float64, np.random.default_rng(1))
        same = np.array_equal(a.forward(x), b.forward(x))
        return same, "same input, same output" if same else "outputs differ for one input"

    return [_run(label, "backward matches central differences", gradients),
            _run(label, "shapes and dtypes preserved", shapes),
            _run(label, "deterministic", determinism)]


# ---------------------------------------------------------------- initializers

def check_initializer(cls: type[Initializer], seed: int = 0) -> list[Check]:
    label = _label(cls)
    init = cls()
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

    return [_run(label, "shape and determinism under a seed", shape_and_seed),
            _run(label, "empirical statistics match the declared rule", statistics)]


# ---------------------------------------------------------------- normalizers

def _normalizer(cls, width: int, dtype, rng) -> Normalizer:
    norm = cls()
    norm.params = {k: np.asarray(v, dtype=dtype) + rng.normal(0, 0.3, width).astype(dtype)
                   for k, v in norm.init_params(width, np.dtype(dtype)).items()}
    norm.buffers = {k: np.array(v, dtype=dtype)
                    for k, v in norm.init_buffers(width, np.dtype(dtype)).items()}
    return norm


def check_normalizer(cls: type[Normalizer], seed: int = 0, width: int = 8) -> list[Check]:
    """`width` units (8 splits into 1, 2, 4 or 8 groups)."""
    rng = np.random.default_rng(seed)
    label = _label(cls)
    x = rng.normal(1.0, 2.0, (10, width))
    upstream = rng.normal(size=x.shape)

    def gradients():
        norm = _normalizer(cls, width, np.float64, rng)

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
            norm = _normalizer(cls, width, dtype, rng)
            xx = x.astype(dtype)
            for training in (True, False):
                y = norm.forward(xx, training)
                if y.shape != xx.shape or y.dtype != xx.dtype:
                    return False, f"forward(training={training}) gave {y.dtype}{y.shape}"
        return True, "float32 and float64 kept in training and inference"

    def inference():
        norm = _normalizer(cls, width, np.float64, rng)
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

    return [_run(label, "backward (training mode) matches central differences", gradients),
            _run(label, "shapes and dtypes preserved", shapes),
            _run(label, "training and inference behaviour", inference)]


# ---------------------------------------------------------------- optimizers

def check_optimizer(cls: type[Optimizer], seed: int = 0) -> list[Check]:
    label = _label(cls)
    curvature = np.array([1.0, 3.0, 10.0, 0.5])

    def run(opt, w, state, steps, start=1):
        for t in range(start, start + steps):
            opt.update(w, curvature * w, state, t)

    def quadratic():
        opt = cls()  # its default hyperparameters; a start within 1000 default steps
        w = np.array([0.1, -0.2, 0.05, 0.3])
        state = opt.init_state(w)
        first = 0.5 * float(np.sum(curvature * w * w))
        run(opt, w, state, 1000)
        last = 0.5 * float(np.sum(curvature * w * w))
        return last < 0.1 * first, f"f = ½Σaw²: {first:.3g} → {last:.3g} in 1000 steps " \
                                   f"at lr {getattr(opt, 'lr', '?')}"

    def round_trip():
        a, b = cls(), cls()
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

    def dtypes():
        opt = cls()
        w = np.ones(4, np.float32)
        state = opt.init_state(w)
        opt.update(w, np.full(4, 0.5, np.float32), state, 1)
        bad = [k for k, v in state.items() if v.dtype != np.float32 or v.shape != w.shape]
        ok = w.dtype == np.float32 and not bad
        return ok, "float32 kept" if ok else f"state {bad} not float32 shaped like params"

    def declares_lr():
        ok = "lr" in cls.hyperparameters
        return ok, "declares lr" if ok else "every optimizer must declare an lr hyperparameter"

    return [_run(label, "decreases a convex quadratic", quadratic),
            _run(label, "state survives a checkpoint round trip", round_trip),
            _run(label, "float32 parameters and state", dtypes),
            _run(label, "declares lr", declares_lr)]


# ---------------------------------------------------------------- datasets

def check_dataset(cls: type[Dataset], seed: int = 0) -> list[Check]:
    label = _label(cls)

    def generate():
        ds = cls()
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

    return [_run(label, "generates paired, finite, seeded data", generate)]


# ---------------------------------------------------------------- lessons

def check_lesson(cls, seed: int = 0) -> list[Check]:
    from nnsim.lessons import run_config, run_lesson

    label = _label(cls)
    lesson = cls()

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

    return [_run(label, "described", described), _run(label, "run configs valid", configs),
            _run(label, "its check passes", claim), _run(label, "its control fails", control)]


# ---------------------------------------------------------------- doctor checks

def check_doctor_check(cls, seed: int = 0) -> list[Check]:
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
            found = cls().examine(Evidence(records, config, sim.data.outputs, sim=sim))
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

    return [_run(label, "returns well-formed findings", examines)]


CHECKS = {"activation": check_activation, "lesson": check_lesson, "initializer": check_initializer,
          "normalizer": check_normalizer, "optimizer": check_optimizer,
          "dataset": check_dataset, "check": check_doctor_check}


def check_component(cls: type[Component]) -> list[Check]:
    """Every check that applies to the component's family."""
    if cls.family == "dataset" and getattr(cls, "name", "") == "digits":
        try:
            import sklearn  # noqa: F401
        except ImportError:
            return [Check(_label(cls), "generates data", True,
                          "skipped: needs scikit-learn (pip install 'nnsim[digits]')")]
    if cls.family == "normalizer" and getattr(cls, "passthrough", False):
        return [Check(_label(cls), "passthrough", True, "left out of the network: nothing to do")]
    return CHECKS[cls.family](cls)


def assert_conforms(*classes: type[Component]) -> None:
    """For plugin authors' pytest: fail with every failed check listed."""
    failed = [c for cls in classes for c in check_component(cls) if not c.passed]
    assert not failed, "\n".join(map(str, failed))

