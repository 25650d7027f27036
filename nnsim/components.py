"""The contracts plugins implement: component base classes and hyperparameter declarations."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from nnsim.errors import HyperError
from nnsim.formatting import interval

#: A unit is "saturated" where its local derivative is below this share of the largest
#: derivative the activation can have (tanh: |y| > 0.975, as in makemore's |tanh| > 0.97).
SATURATION_SHARE = 0.05


@dataclass(frozen=True)
class Hyper:
    """A declared hyperparameter: default, type, valid range or choices, one line of help.

    `low`/`high` are inclusive unless `low_open`/`high_open`. The type is the default's type
    (an int default accepts only ints, a float default accepts ints and floats). A `learnable`
    hyperparameter is the initial value of a parameter the optimizer then trains: its range
    bounds that initial value only, not where training takes the parameter.
    """

    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    help: str = ""
    learnable: bool = False
    low_open: bool = False
    high_open: bool = False

    @property
    def kind(self) -> type:
        return type(self.default)

    def range_text(self) -> str:
        """The valid values in words, e.g. 'a number in (0, 10]' or 'one of relu, tanh'."""
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        what = {bool: "true or false", int: "an integer", float: "a number",
                str: "a string"}.get(self.kind, self.kind.__name__)
        if self.low is None and self.high is None:
            return what
        return f"{what} in {interval(self.low, self.high, self.low_open, self.high_open)}"

    def validate(self, value: Any) -> Any:
        """`value` as the declared type, or ValueError 'expected WHAT, got VALUE'. The one
        rule for every value of a config (nnsim's own keys and every component's
        hyperparameters, at load time and live): a bool is never a number; an integer takes
        a whole float (32.0 is 32); a number takes an integer and must be finite."""
        try:
            return self._coerce(value)
        except (ValueError, OverflowError, TypeError):  # UnicodeEncodeError is a ValueError
            raise ValueError(f"expected {self.range_text()}, got {value!r}") from None

    def _coerce(self, value: Any) -> Any:
        kind = self.kind
        if kind is bool and not isinstance(value, bool):
            raise ValueError
        if kind is int:
            if isinstance(value, float) and math.isfinite(value) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError
        if kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError
            value = float(value)  # OverflowError for an integer beyond any float
            if not math.isfinite(value):
                raise ValueError
        if kind is str:
            if not isinstance(value, str):
                raise ValueError
            value.encode("utf-8")  # a lone surrogate (from undecodable bytes) is no text
        if self.choices is not None and value not in self.choices:
            raise ValueError
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            raise ValueError
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            raise ValueError
        return value


class Component:
    """Base of every plugin component: a registry name and declared hyperparameters.

    `Component(**values)` validates each value against its declaration and stores it as an
    attribute of the same name; undeclared names and invalid values raise HyperError.
    """

    family: ClassVar[str] = "component"
    name: ClassVar[str] = ""
    hyperparameters: ClassVar[dict[str, Hyper]] = {}

    def __init__(self, **values: Any) -> None:
        declared = self.hyperparameters
        for key in values:
            if key not in declared:
                raise HyperError(key, f"{self.family} {self.name!r} has no hyperparameter "
                                      f"{key!r}", sorted(declared))
        for key, hyper in declared.items():
            raw = values.get(key, hyper.default)
            try:
                setattr(self, key, hyper.validate(raw))
            except ValueError as exc:
                raise HyperError(key, str(exc)) from None

    @classmethod
    def summary(cls) -> str:
        """The first line of the class docstring."""
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    def hyper_values(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.hyperparameters}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyper_values().items())
        return f"{type(self).__name__}({args})"


class Activation(Component):
    """A pointwise non-linearity.

    Subclasses implement `forward(x)` and `backward(x, y, grad_y)`. Learnable parameters are
    declared as hyperparameters with `learnable=True`: the engine then hands the component
    one vector per such name in `self.params` (one entry per unit, starting at the declared
    value) and `backward` returns `(grad_x, {name: grad})` instead of `grad_x` alone.
    """

    family = "activation"
    #: the largest |derivative| the function can have (for the saturation threshold)
    max_grad: ClassVar[float] = 1.0
    #: the range the activation histogram covers; values outside fall in the end bins
    hist_range: ClassVar[tuple[float, float]] = (-3.0, 3.0)

    params: dict[str, np.ndarray]

    @classmethod
    def learnable(cls) -> tuple[str, ...]:
        return tuple(k for k, h in cls.hyperparameters.items() if h.learnable)

    def init_params(self, width: int, dtype: np.dtype) -> dict[str, np.ndarray]:
        return {k: np.full(width, getattr(self, k), dtype=dtype) for k in self.learnable()}

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, x: np.ndarray, y: np.ndarray, grad_y: np.ndarray):
        raise NotImplementedError

    def saturated(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Boolean mask of the entries whose local gradient has (almost) vanished."""
        local = self.backward(x, y, np.ones_like(y))
        if isinstance(local, tuple):
            local = local[0]
        return np.abs(local) < SATURATION_SHARE * self.max_grad


class Initializer(Component):
    """Draws initial weights: `sample(shape, fan_in, fan_out, rng)` -> array of `shape`."""

    family = "initializer"

    def sample(self, shape: tuple[int, ...], fan_in: int, fan_out: int,
               rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def expected_mean(self, fan_in: int, fan_out: int) -> float | None:
        """The mean every draw should have (None where no rule is declared)."""
        return 0.0

    def expected_std(self, fan_in: int, fan_out: int) -> float | None:
        """The standard deviation the rule promises (None where no rule is declared)."""
        return None

    def bound(self, fan_in: int, fan_out: int) -> float | None:
        """The largest |value| a draw may have (None where unbounded)."""
        return None


class Normalizer(Component):
    """Normalizes a layer's pre-activations over the batch or over the features.

    `params` (learnable, e.g. gamma and beta) are kept apart from `buffers` (running
    statistics, not trained). `forward(x, training)` caches what `backward(grad_y)` needs;
    `backward` returns `(grad_x, {param name: grad})`.
    """

    family = "normalizer"
    #: True for the component that does nothing: the engine then leaves the layer out
    passthrough: ClassVar[bool] = False

    params: dict[str, np.ndarray]
    buffers: dict[str, np.ndarray]

    def init_params(self, width: int, dtype: np.dtype) -> dict[str, np.ndarray]:
        return {}

    def init_buffers(self, width: int, dtype: np.dtype) -> dict[str, np.ndarray]:
        return {}

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_y: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        raise NotImplementedError


class Optimizer(Component):
    """Updates parameters in place from their gradients.

    The engine keeps every trainable parameter in one contiguous vector, so `update(params,
    grads, state, t)` sees flat arrays (`t` counts steps from 1). `state_names` lists the
    per-parameter state vectors (e.g. "velocity") that `init_state` creates; the engine
    reports their norms per layer. Every optimizer declares an `lr` hyperparameter.
    """

    family = "optimizer"
    state_names: ClassVar[tuple[str, ...]] = ()

    def init_state(self, params: np.ndarray) -> dict[str, np.ndarray]:
        return {name: np.zeros_like(params) for name in self.state_names}

    def update(self, params: np.ndarray, grads: np.ndarray, state: dict[str, np.ndarray],
               t: int) -> None:
        raise NotImplementedError


class Dataset(Component):
    """Produces inputs and targets from a seeded generator: `generate(rng) -> (X, y)`.

    Classification datasets return integer labels in [0, classes); regression datasets
    (`task = "regression"`) return float targets of shape (n, outputs).
    """

    family = "dataset"
    task: ClassVar[str] = "classification"

    def n_classes(self) -> int:
        """How many classes the labels use (classification), or outputs (regression)."""
        return 2

    def generate(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


@dataclass(frozen=True)
class Margin:
    """One condition of a lesson's check: a measured positive `value` above (`op` ">") or
    below (`op` "<") a `threshold`.

    `margin` is how far the value is from the threshold in natural-log units, signed so that
    it is positive when the condition holds: ln(value / threshold) for ">", ln(threshold /
    value) for "<". 0.1 is about 10 % beyond the threshold, 0.69 a factor of two; a value
    that is not a number fails.
    """

    name: str
    value: float
    op: str
    threshold: float

    def __post_init__(self) -> None:
        if self.op not in ("<", ">"):
            raise ValueError(f"Margin op must be '<' or '>', got {self.op!r}")
        if not self.threshold > 0:
            raise ValueError(f"Margin threshold must be positive, got {self.threshold}")

    @property
    def margin(self) -> float:
        v, t = float(self.value), self.threshold
        if math.isnan(v):
            return -math.inf
        if v <= 0:
            return -math.inf if self.op == ">" else math.inf
        if math.isinf(v):
            return math.inf if self.op == ">" else -math.inf
        return math.log(v / t) if self.op == ">" else math.log(t / v)

    @property
    def passed(self) -> bool:
        return self.margin > 0

    def __str__(self) -> str:
        return f"{self.name} {_short(self.value)} ({self.op} {_short(self.threshold)})"


def _short(x: float) -> str:
    return f"{x:.3g}"


def above(name: str, value: float, threshold: float) -> Margin:
    """The condition value > threshold (both positive quantities)."""
    return Margin(name, float(value), ">", float(threshold))


def below(name: str, value: float, threshold: float) -> Margin:
    """The condition value < threshold (both positive quantities)."""
    return Margin(name, float(value), "<", float(threshold))


@dataclass(frozen=True)
class Verdict:
    """A lesson's check: whether the claim held, the numbers that say so, and, per
    condition, its margin (see `Margin`). Build it with `Verdict.of(*margins)`, which passes
    when every condition holds; a hand-made Verdict without margins still works."""

    passed: bool
    numbers: str
    margins: tuple[Margin, ...] = ()

    @classmethod
    def of(cls, *margins: Margin, note: str = "") -> Verdict:
        numbers = "; ".join(str(m) for m in margins) + (f"; {note}" if note else "")
        return cls(all(m.passed for m in margins), numbers, tuple(margins))

    @property
    def margin(self) -> float:
        """The smallest margin: > 0 exactly when every condition holds (without margins:
        +inf for a pass, -inf for a fail)."""
        if not self.margins:
            return math.inf if self.passed else -math.inf
        return min(m.margin for m in self.margins)

    @property
    def weakest(self) -> Margin | None:
        """The condition with the smallest margin."""
        return min(self.margins, key=lambda m: m.margin) if self.margins else None


class Lesson(Component):
    """A claim of the lecture that a person can watch happen and a number can prove.

    `runs` maps a label to config overrides (dotted keys, as with --set), applied on top of
    the defaults and `base`; each run trains for `steps` steps from the same seed. `check`
    gets, per label, the run's records and its final Simulation, and returns a Verdict.
    `watch` says in words where to look; `panel` is the TUI panel to open on and `focus` the
    layer statistic (a LayerRecord field) the layer table shows first. `section` names the
    section of the lecture the lesson proves.

    `control` is the same experiment with the claimed cause removed or the comparison made
    fair: per run label, overrides applied on top of that run's (labels it leaves out run
    unchanged). The same check over the control's runs must fail; `control_note` says in a
    sentence what the control changes.
    """

    family = "lesson"
    title: ClassVar[str] = ""
    explanation: ClassVar[str] = ""
    watch: ClassVar[str] = ""
    section: ClassVar[str] = ""
    panel: ClassVar[str] = "layers"
    focus: ClassVar[str] = ""
    base: ClassVar[dict[str, Any]] = {}
    runs: ClassVar[dict[str, dict[str, Any]]] = {}
    control: ClassVar[dict[str, dict[str, Any]]] = {}
    control_note: ClassVar[str] = ""
    steps: ClassVar[int] = 300

    def overrides(self, label: str, control: bool = False) -> list[tuple[str, Any]]:
        """The dotted-key overrides of one run, in the order they apply."""
        items = [*self.base.items(), *self.runs[label].items()]
        if control:
            items += self.control.get(label, {}).items()
        return items

    def check(self, results: dict[str, Any]) -> Verdict:
        raise NotImplementedError


@dataclass(frozen=True)
class Finding:
    """One thing the doctor found wrong: what, where, how sure, the lecture's remedy.

    `code` names the pathology (e.g. "vanishing_gradients"); `title` is the one line the
    status bar shows; `evidence` the numbers behind it; `layers` (counted from 1) and
    `steps` (first, last) where it was seen; `strength` how far past its threshold, in
    decades or e-folds (> 0; larger is surer); `remedy` what to do in words, `fix` the same
    as config overrides (dotted keys) that the TUI can apply, empty when there is no one
    setting to change; `section` the lecture section that explains it."""

    code: str
    title: str
    evidence: str
    remedy: str
    section: str
    strength: float = 1.0
    layers: tuple[int, ...] = ()
    steps: tuple[int, int] = (0, 0)
    fix: tuple[tuple[str, Any], ...] = ()

    @property
    def sureness(self) -> str:
        return "clear" if self.strength >= 1.0 else "likely"

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "title": self.title, "evidence": self.evidence,
                "remedy": self.remedy, "section": self.section,
                "strength": round(self.strength, 3), "sureness": self.sureness,
                "layers": list(self.layers), "steps": list(self.steps),
                "fix": {key: value for key, value in self.fix}}


class DoctorCheck(Component):
    """A diagnosis the doctor can make: reads the evidence of a run (see nnsim.doctor
    .Evidence: the recent records, the config, the thresholds) and returns the Findings it
    sees, none when healthy. Thresholds are read from `evidence.threshold(name)` so that
    every number the doctor judges by is declared in one table."""

    family = "check"

    def examine(self, evidence: Any) -> list[Finding]:
        raise NotImplementedError


FAMILIES: dict[str, type[Component]] = {
    "activation": Activation,
    "initializer": Initializer,
    "normalizer": Normalizer,
    "optimizer": Optimizer,
    "dataset": Dataset,
    "lesson": Lesson,
    "check": DoctorCheck,
}
